"""One writer at a time per library: an OS file lock on ``<library>/.write.lock``.

Why a file lock: writers are separate processes (``index`` in a terminal, the REST server, a cron job), and
the vector index files are rewritten whole; two writers would each save their own view and the last one
wins. ``filelock`` takes an ``flock`` that the kernel drops when its process dies (kill -9 included), so a
crash never leaves a library locked. Readers never take it: SQLite's WAL gives them committed snapshots, and
index files are replaced atomically. The holder's PID goes into a side file so that "busy" can name it.
"""

from __future__ import annotations

import math
import os
import sys
import tempfile
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

from pixsearch.errors import BusyError

if TYPE_CHECKING:
    from filelock import FileLock

__all__ = ["LibraryLock", "LOCK_NAME"]

LOCK_NAME = ".write.lock"
_OWNER_NAME = ".write.owner"


class LibraryLock:
    """Reentrant within a thread (nested ``hold`` calls count), exclusive across processes and threads."""

    def __init__(self, directory: Path) -> None:
        self.directory = Path(directory)
        self._file_lock: FileLock | None = None
        self._making = threading.Lock()

    @property
    def _lock(self) -> FileLock:
        """Made on first use: every Library has a lock, but readers never take it, and importing
        ``filelock`` is ~10 ms of a cold search. Made once (two would block each other)."""
        with self._making:
            if self._file_lock is None:
                from filelock import FileLock

                self._file_lock = FileLock(str(self.directory / LOCK_NAME))
            return self._file_lock

    @property
    def held(self) -> bool:
        return bool(self._lock.is_locked)

    def holder(self) -> str:
        """Who holds it, as the owner file says ("PID 123 (pixsearch index)"); best effort."""
        try:
            return (self.directory / _OWNER_NAME).read_text(encoding="utf-8").strip() or "another process"
        except OSError:
            return "another process"

    def busy_message(self) -> str:
        return f"library is busy ({self.holder()} is writing); use --wait"

    def _write_owner(self) -> None:
        cmd = " ".join(Path(a).name if i == 0 else a for i, a in enumerate(sys.argv[:2])) or "python"
        fd, tmp = tempfile.mkstemp(dir=self.directory, prefix=f"{_OWNER_NAME}.", suffix=".tmp")
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as f:
                f.write(f"PID {os.getpid()} ({cmd})\n")
            os.replace(tmp, self.directory / _OWNER_NAME)
        except OSError:
            Path(tmp).unlink(missing_ok=True)  # the owner note is a courtesy; never fail a write over it

    @contextmanager
    def hold(self, wait: float = 0.0, on_wait: Callable[[str], None] | None = None) -> Iterator[None]:
        """Hold the lock. ``wait`` seconds to wait (0: fail at once, ``math.inf``: forever).

        Raises :class:`BusyError` when another writer holds it past ``wait``. ``on_wait`` is told once,
        with a one-line message, when we start waiting (the CLI prints it).
        """
        from filelock import Timeout

        self.directory.mkdir(parents=True, exist_ok=True)
        first = not self._lock.is_locked
        try:
            self._lock.acquire(timeout=0)
        except Timeout:
            if wait <= 0:
                raise BusyError(self.busy_message()) from None
            if on_wait is not None:
                on_wait(f"library is busy ({self.holder()} is writing); waiting for it to finish")
            try:
                self._lock.acquire(timeout=-1 if math.isinf(wait) else wait)
            except Timeout:
                raise BusyError(self.busy_message()) from None
        try:
            if first:
                self._write_owner()
            yield
        finally:
            self._lock.release()

    @contextmanager
    def try_hold(self) -> Iterator[bool]:
        """Take the lock only if it is free right now; yields whether we got it (for optional chores)."""
        from filelock import Timeout

        try:
            self.directory.mkdir(parents=True, exist_ok=True)
            self._lock.acquire(timeout=0)
        except (Timeout, OSError):
            yield False
            return
        try:
            yield True
        finally:
            self._lock.release()
