"""Index-time enrichers: the seam (``base.py``), one module per enricher, and which run (``registry.py``)."""
