"""The REST API's one Library, owned by one thread; and the write token.

Why one thread: a Library holds a SQLite connection (``check_same_thread``) and in-memory vector indexes
that are not safe to mutate from several threads. FastAPI would run sync endpoints on its thread pool, so
instead every endpoint is ``async`` and hands its Library work to :class:`LibraryWorker`, a single-thread
executor that opens the Library on that thread and runs calls one at a time. Requests are therefore
serialised at the Library (a search takes milliseconds; on a 2-core laptop more parallelism would not buy
throughput anyway) while the event loop keeps accepting connections, reading uploads and streaming files.

Another process may index into the same library while we serve (SQLite WAL lets us read meanwhile). Its
commits bump the catalog's ``vectors_gen``; before each call the worker compares it with the generation
its in-memory indexes reflect and, when it moved, brings them up to date from the catalog in memory only
(it never writes index files it does not own the lock for).
"""

from __future__ import annotations

import asyncio
import hmac
import os
import secrets
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from functools import partial
from pathlib import Path
from typing import Any, TypeVar

from pixsearch.config import Settings
from pixsearch.library.facade import Library

__all__ = ["LibraryWorker", "ensure_token", "token_matches", "TOKEN_FILE"]

T = TypeVar("T")
TOKEN_FILE = "api_token"


class LibraryWorker:
    """Runs ``fn(library, ...)`` on the one thread that owns the Library."""

    def __init__(self, settings: Settings, opener: Callable[[Settings], Library] | None = None) -> None:
        self.settings = settings
        self._opener = opener or (lambda s: Library.open(settings=s))
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="pixsearch-library")
        self._lib: Library | None = None
        self._gen: str | None = None
        self._thread: int | None = None

    # -- on the worker thread ---------------------------------------------------------------------
    def _library(self) -> Library:
        assert self._thread in (None, threading.get_ident()), "Library used off its thread"
        if self._lib is None:
            self._lib = self._opener(self.settings)
            self._thread = threading.get_ident()
            self._gen = self._lib.catalog.get_meta("vectors_gen")
        else:
            self._sync(self._lib)
        return self._lib

    def _sync(self, lib: Library) -> None:
        """Catch up with commits made by other processes (or our own writes) since the last call."""
        gen = lib.catalog.get_meta("vectors_gen")
        if gen == self._gen:
            return
        lib.vectors.refresh()  # in memory only: the index files are the writer's to save
        self._gen = gen

    def _call(self, fn: Callable[..., T], args: tuple[Any, ...], kw: dict[str, Any]) -> T:
        return fn(self._library(), *args, **kw)

    def mark_written(self) -> None:
        """After our own write: our indexes already hold it; only remember the new generation."""
        if self._lib is not None:
            self._gen = self._lib.catalog.get_meta("vectors_gen")

    # -- from the event loop ----------------------------------------------------------------------
    async def run(self, fn: Callable[..., T], *args: Any, **kw: Any) -> T:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._pool, partial(self._call, fn, args, kw))

    def run_sync(self, fn: Callable[..., T], *args: Any, **kw: Any) -> T:
        """For startup and shutdown (no event loop needed)."""
        return self._pool.submit(self._call, fn, args, kw).result()

    def release(self) -> None:
        """Close the Library (on its thread); the next call opens it again. For app shutdown: an app
        can be started and stopped more than once (TestClient does), so the thread stays."""

        def _close() -> None:
            if self._lib is not None:
                self._lib.close()
                self._lib = None
                self._thread = None

        self._pool.submit(_close).result()


def ensure_token(library: Path) -> tuple[str, bool]:
    """The library's API write token: (token, created now). Made once, owner-only (0600)."""
    path = library / TOKEN_FILE
    library.mkdir(parents=True, exist_ok=True, mode=0o700)  # owner-only, as library/opening.py keeps it
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        token = path.read_text().strip()
        if token:
            if path.stat().st_mode & 0o077:
                os.chmod(path, 0o600)
            return token, False
        path.unlink()  # an empty token file (crash mid-write): make a new one
        return ensure_token(library)
    token = secrets.token_urlsafe(32)
    with os.fdopen(fd, "w") as f:
        f.write(token + "\n")
    return token, True


def token_matches(given: str, expected: str) -> bool:
    return hmac.compare_digest(given.encode(), expected.encode())
