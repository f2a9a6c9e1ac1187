"""The ``pixsearch`` command: parses, calls the Library, prints. The only place that prints or exits.

One module per group of commands; each registers itself on the shared Typer apps in ``_common``.
"""

from __future__ import annotations

import gc

from pixsearch.cli import caption as _caption  # noqa: F401  (registers commands)
from pixsearch.cli import eval as _eval  # noqa: F401
from pixsearch.cli import library as _library  # noqa: F401
from pixsearch.cli import policy as _policy  # noqa: F401
from pixsearch.cli import policy_train as _policy_train  # noqa: F401
from pixsearch.cli import score as _score  # noqa: F401
from pixsearch.cli import serve as _serve  # noqa: F401
from pixsearch.cli import train as _train  # noqa: F401
from pixsearch.cli._common import app

__all__ = ["app", "main"]


def main() -> None:
    try:
        app()
    finally:
        # The process ends next: spare it the interpreter's final garbage collections, which walk every
        # object the command made (typer, pydantic, NumPy, the models): 50-100 ms of a 0.7 s cold
        # `search` (measured). The one thing they used to do, closing SQLite connections (each is in a
        # cycle with its statement cache), the Catalog's finalizer does at exit (index/catalog.py).
        gc.freeze()


if __name__ == "__main__":  # pragma: no cover
    main()
