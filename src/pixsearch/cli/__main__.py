"""``python -m pixsearch.cli``."""

from . import main

main()
