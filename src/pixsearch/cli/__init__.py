"""The ``pixsearch`` command: parses, calls the Library, prints. The only place that prints or exits.

One module per group of commands; each registers its commands on the shared Typer apps in ``_common``.
``COMMANDS`` names the modules behind each command: ``main`` imports only the ones the command line
asks for, so ``pixsearch search`` never builds (or imports) ``serve``, ``train`` or ``eval``; ``--help``
or an unknown name loads them all. A new command module is one entry in ``COMMANDS``.
"""

from __future__ import annotations

import gc
import importlib
import sys
from typing import Any

__all__ = ["COMMANDS", "app", "main"]

# command (first word after `pixsearch`) -> the modules of pixsearch.cli that define it, in help order
COMMANDS: dict[str, tuple[str, ...]] = {
    "index": ("library",),
    "search": ("search",),
    "similar": ("search",),
    "describe": ("search",),
    "score": ("score",),
    "caption": ("caption",),
    "stats": ("library",),
    "remove": ("library",),
    "reindex": ("library",),
    "doctor": ("library",),
    "duplicates": ("duplicates",),
    "export": ("export",),
    "serve": ("serve",),
    "policy": ("policy",),
    "train": ("train", "caption", "score", "policy_train"),
    "eval": ("eval", "caption", "score", "policy"),
}


def load(modules: tuple[str, ...] | None = None) -> Any:
    """Import the named command modules (all when None); returns the app they registered on."""
    wanted = (
        modules if modules is not None else tuple(dict.fromkeys(m for ms in COMMANDS.values() for m in ms))
    )
    for name in wanted:
        importlib.import_module(f"pixsearch.cli.{name}")
    from pixsearch.cli._common import app

    return app


def _modules_for(argv: list[str]) -> tuple[str, ...] | None:
    """The modules a command line needs: its first word's, or all (``--help``, a typo, no command)."""
    first = next((a for a in argv if not a.startswith("-")), None)
    if first is None or first != (argv[0] if argv else None):  # options before the command: all
        return None
    return COMMANDS.get(first)


def __getattr__(name: str) -> Any:
    """``from pixsearch.cli import app``: the app with every command (tests, ``typer.testing``)."""
    if name == "app":
        return load()
    raise AttributeError(f"module 'pixsearch.cli' has no attribute {name!r}")


def main() -> None:
    app = load(_modules_for(sys.argv[1:]))
    try:
        app()
    finally:
        # The process ends next: spare it the interpreter's final garbage collections, which walk every
        # object the command made (typer, NumPy, the models): 50-100 ms of a 0.7 s cold `search`
        # (measured). The one thing they used to do, closing SQLite connections (each is in a cycle
        # with its statement cache), the Catalog's finalizer does at exit (index/catalog.py).
        gc.freeze()


if __name__ == "__main__":  # pragma: no cover
    main()
