"""The vector index's native module (usearch, a pybind11 extension) and Ctrl-C.

Why a module of its own: a SIGINT that lands inside native code does not come back as KeyboardInterrupt.
usearch's threaded add and search turn it into RuntimeError("Operation has been terminated"), and one
that lands while the extension initialises becomes ImportError("initialization failed"): both would end
a command with exit 1 instead of 130. ``interruptible`` gives the first back; writers call
``load_backend`` before their first commit with Ctrl-C held back (``Library.writing``), so the second
cannot happen mid-write.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Callable
from typing import Any

__all__ = ["interruptible", "load_backend"]


def interruptible(call: Callable[[], Any]) -> Any:
    """usearch's threaded add and search answer Ctrl-C with RuntimeError("Operation has been terminated"),
    the KeyboardInterrupt dropped (exit 1, "unexpected RuntimeError", not 130): give it back."""
    try:
        return call()
    except RuntimeError as exc:
        if str(exc) == "Operation has been terminated":
            raise KeyboardInterrupt from None
        raise


def load_backend(name: str) -> None:
    """Import ``name``'s native module now (usearch: a pybind11 extension, else nothing). A Ctrl-C that
    lands while it initialises becomes ImportError("initialization failed"), exit 1: writers load it
    before their first commit, with Ctrl-C held back (``Library.writing``), not lazily right after."""
    if name == "usearch" and importlib.util.find_spec("usearch") is not None:
        import usearch.index  # noqa: F401
