"""Ctrl-C held back while native libraries load, then delivered.

Why: a C++ extension that calls back into Python while it initialises (pybind11 modules such as
``ai_edge_litert``'s interpreter wrapper, loaded with the face/age models) turns a pending
KeyboardInterrupt into a C++ exception; where its initialiser does not catch that, the process ends in
``std::terminate`` (SIGABRT, exit -6) instead of our documented 130 with what was committed kept. Loading
takes a fraction of a second, so the interrupt waits for it and is raised right after, as if it had
landed a moment later.
"""

from __future__ import annotations

import os
import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager

__all__ = ["deferred_interrupt"]


@contextmanager
def deferred_interrupt() -> Iterator[None]:
    """Run the block with SIGINT noted instead of raised; on leaving it, a noted SIGINT goes to the
    handler that was there before (Python's: KeyboardInterrupt). Off the main thread (where Python
    cannot change handlers, and never raises KeyboardInterrupt anyway) the block just runs."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    noted: list[int] = []
    previous = signal.signal(signal.SIGINT, lambda signum, frame: noted.append(signum))
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)
    if not noted:
        return
    if callable(previous):
        previous(signal.SIGINT, None)  # Python's default handler raises KeyboardInterrupt here
    elif previous == signal.SIG_DFL:
        os.kill(os.getpid(), signal.SIGINT)  # the default action, now that it is back
