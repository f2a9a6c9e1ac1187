"""enrichers."""
