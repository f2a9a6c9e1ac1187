"""The ``pixsearch eval`` tasks and the metrics training reports with (never imports ``pixsearch.train``)."""
