"""``python -m pixsearch.cli``."""

from pixsearch.cli import main

main()
