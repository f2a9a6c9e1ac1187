"""The REST API's Libraries: one writer, a pool of readers that search at once; and the write token.

Why a pool: a Library holds a SQLite connection (``check_same_thread``) and in-memory vector indexes, so
each is used by one thread only; with one Library a server answered one search at a time, and a second
core sat idle. Every endpoint is ``async`` and hands its Library work to :class:`LibraryWorker`:

* writes (add and delete a photo) run on the one writer thread, on its own Library; each also holds the
  library's write lock (``Library.writing``), as any other writing process does;
* reads run on ``readers`` threads (``Settings.readers``, else one per two cores), each with a Library of its
  own (its connection, its vector indexes) opened on that thread. As *threads* they share the writer's
  encoder (the models are the big memory; ONNX Runtime, NumPy and usearch release the GIL), but much of
  a search is Python holding the GIL (about half of one at 10,000 photos), so on 2 cores threads reach
  ~1.3-1.5x one reader's throughput. As *processes* (``processes=True``, what ``pixsearch serve`` uses)
  each thread drives a spawned child process that owns the Library, so searches really run side by
  side, at the cost of each child loading its own models (~200 MB) and ONNX Runtime's threads being
  split between them. Calls travel pickled (cloudpickle: a route's closure goes as it is); an error
  comes back as the same typed exception. Milvus Lite (one process per file) keeps threads.

A reader is a process that reads while another one writes: SQLite WAL gives every read one committed
snapshot (``Library`` reads run in one read transaction), never half a write. Commits, ours or another
process's (``pixsearch index``), bump the catalog's ``vectors_gen``; before each call a Library compares
it with the generation its in-memory indexes reflect and, when it moved, brings them up to date from the
catalog in memory only (index files are the writer's to save). So the read after a write sees it.
"""

from __future__ import annotations

import asyncio
import hmac
import multiprocessing
import os
import pickle
import secrets
import signal
import threading
import traceback
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from functools import partial
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any, TypeVar

from pixsearch.config import Settings
from pixsearch.errors import PixsearchError
from pixsearch.library.facade import Library
from pixsearch.models.encoder import JointEncoder

__all__ = ["LibraryWorker", "default_readers", "Opener", "ensure_token", "token_matches", "TOKEN_FILE"]

T = TypeVar("T")
TOKEN_FILE = "api_token"
Opener = Callable[[Settings, JointEncoder | None], Library]  # (settings, encoder to share or None)
CLOSE_WAIT = 30.0  # seconds a reader process gets to close its Library before it is killed
GATHER_WAIT = 60.0  # seconds every reader thread gets to reach a job run on each (``_each``)


def open_library(settings: Settings, encoder: JointEncoder | None) -> Library:
    return Library.open(settings=settings, encoder=encoder)


class _Seat:
    """One Library, opened on the thread that uses it and used by that thread alone."""

    def __init__(
        self, settings: Settings, opener: Opener, encoder: Callable[[], JointEncoder | None]
    ) -> None:
        self.settings, self._opener, self._encoder = settings, opener, encoder
        self.lib: Library | None = None
        self._gen: str | None = None
        self._thread: int | None = None

    def library(self) -> Library:
        assert self._thread in (None, threading.get_ident()), "Library used off its thread"
        if self.lib is None:
            self.lib = self._opener(self.settings, self._encoder())
            self._thread = threading.get_ident()
            self._gen = self.lib.catalog.get_meta("vectors_gen")
        else:
            self._sync(self.lib)
        return self.lib

    def _sync(self, lib: Library) -> None:
        """Catch up with commits made by other processes (or other Libraries here) since the last call."""
        gen = lib.catalog.get_meta("vectors_gen")
        if gen == self._gen:
            return
        lib.vectors.refresh()  # in memory only: the index files are the writer's to save
        self._gen = gen

    def mark_written(self) -> None:
        """After this Library's own write: its indexes already hold it; only remember the generation."""
        if self.lib is not None:
            self._gen = self.lib.catalog.get_meta("vectors_gen")

    def call(self, fn: Callable[..., T], args: tuple[Any, ...], kw: dict[str, Any]) -> T:
        return fn(self.library(), *args, **kw)

    def close(self) -> None:
        if self.lib is not None:
            assert self._thread == threading.get_ident(), "Library closed off its thread"
            self.lib.close()
            self.lib, self._thread = None, None

    def stop(self) -> None:
        """From another thread: nothing to do (a connection is closed on its own thread or not at all)."""


# -- reader processes ---------------------------------------------------------------------------------
def _reader_main(conn: Connection, settings: Settings, opener: Opener) -> None:
    """A reader process: run each call it is sent on its one Library until told to stop (an empty
    message) or until the server is gone (the pipe closes); then close the Library."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl+C is the server's: it closes its readers
    seat = _Seat(settings, opener, lambda: None)
    try:
        while True:
            try:
                msg = conn.recv_bytes()
            except (EOFError, OSError):
                return
            if not msg:
                return
            try:
                fn, args, kw = pickle.loads(msg)
                reply = pickle.dumps((True, seat.call(fn, args, kw)), pickle.HIGHEST_PROTOCOL)
            except BaseException as exc:  # noqa: BLE001 - every failure goes back to the caller
                reply = _error_reply(exc)
            conn.send_bytes(reply)
    finally:
        seat.close()


def _error_reply(exc: BaseException) -> bytes:
    """The exception as the server can rebuild it: itself when it survives pickling; else its class,
    arguments and attributes (typed errors whose ``__init__`` takes other arguments than their message);
    else a RuntimeError naming it. An unexpected one carries this process's traceback as a note."""
    if not isinstance(exc, PixsearchError):
        exc.add_note(f"in reader process {os.getpid()}:\n{''.join(traceback.format_exception(exc))}")
    try:
        pickle.loads(reply := pickle.dumps((False, exc)))
        return reply
    except Exception:  # noqa: BLE001 - fall back to a form that pickles
        pass
    try:
        state = {k: v for k, v in vars(exc).items() if _pickles(v)}
        return pickle.dumps((False, (_rebuild, type(exc), exc.args, state)))
    except Exception:  # noqa: BLE001 - a class that cannot be named in another process
        return pickle.dumps((False, RuntimeError(f"{type(exc).__name__}: {exc}")))


def _pickles(v: object) -> bool:
    try:
        pickle.dumps(v)
        return True
    except Exception:  # noqa: BLE001 - only asking
        return False


def _rebuild(cls: type[BaseException], args: tuple[Any, ...], state: dict[str, Any]) -> BaseException:
    exc = cls.__new__(cls, *args)  # BaseException.__new__ takes any arguments and runs no __init__
    exc.args = args
    exc.__dict__.update(state)
    return exc


class _ProcessSeat:
    """The server's side of one reader process: spawned on first use, driven by one pool thread."""

    def __init__(self, settings: Settings, opener: Opener) -> None:
        self.settings, self._opener = settings, opener
        self._conn: Connection | None = None
        self.proc: multiprocessing.process.BaseProcess | None = None

    def _send(self, msg: bytes) -> Connection:
        if self._conn is None:
            ctx = multiprocessing.get_context("spawn")  # never fork a process with native threads
            self._conn, theirs = ctx.Pipe()
            self.proc = ctx.Process(
                target=_reader_main, args=(theirs, self.settings, self._opener), name="pixsearch-reader"
            )
            self.proc.daemon = True  # dies with the server should it be killed before closing us
            self.proc.start()
            theirs.close()
        self._conn.send_bytes(msg)
        return self._conn

    def call(self, fn: Callable[..., T], args: tuple[Any, ...], kw: dict[str, Any]) -> T:
        import cloudpickle  # only the reader processes need it

        msg = cloudpickle.dumps((fn, args, kw), pickle.HIGHEST_PROTOCOL)
        try:
            conn = self._send(msg)
        except OSError:  # it died while idle (killed, out of memory): the call never reached it
            self.close()
            conn = self._send(msg)
        try:
            ok, out = pickle.loads(conn.recv_bytes())
        except (EOFError, OSError) as exc:  # it died during the call: not retried (the call may be why)
            self.close()
            raise RuntimeError("a reader process ended during a call") from exc
        if ok:
            return out  # type: ignore[no-any-return]
        if isinstance(out, tuple):
            out = out[0](*out[1:])
        raise out

    def close(self) -> None:
        conn, proc, self._conn, self.proc = self._conn, self.proc, None, None
        if conn is not None:
            try:
                conn.send_bytes(b"")
            except OSError:
                pass
            conn.close()
        if proc is not None:
            proc.join(CLOSE_WAIT)
            if proc.is_alive():
                proc.kill()
                proc.join()

    stop = close  # from any thread: it owns no connection of this process


# -- the pool -----------------------------------------------------------------------------------------
def default_readers() -> int:
    """One reader per two cores: a search keeps about two busy (the search, and the content policy's
    check of the query on a thread beside it). Measured with ``benchmarks/bench_api_load.py --idle-only``
    on 2 cores, 10,000 photos: one reader 13.4 / 48.5 / 41.4 searches/s at 1 / 8 / 32 clients against
    11.0 / 39.8 / 37.4 with two, at half the memory (PSS 442 against 790 MB)."""
    return max(1, (os.cpu_count() or 2) // 2)


class LibraryWorker:
    """Runs ``fn(library, ...)``: reads on a pool of ``readers`` Libraries at once, writes on the one
    writer's. ``readers`` defaults to ``settings.readers``, else :func:`default_readers`."""

    def __init__(
        self,
        settings: Settings,
        opener: Opener | None = None,
        *,
        readers: int | None = None,
        processes: bool = False,
    ) -> None:
        self.settings = settings
        self._opener: Opener = opener or open_library
        self.readers = max(1, readers or settings.readers or default_readers())
        self.processes = processes
        self._lock = threading.Lock()
        self._writer_pool: ThreadPoolExecutor | None = None
        self._writer = _Seat(settings, self._opener, lambda: None)
        self._pool: ThreadPoolExecutor | None = None
        self._local = threading.local()
        self._seats: list[_Seat | _ProcessSeat] = []

    # -- the writer -------------------------------------------------------------------------------
    def _writer_thread(self) -> ThreadPoolExecutor:
        with self._lock:
            if self._writer_pool is None:
                self._writer_pool = ThreadPoolExecutor(
                    max_workers=1, thread_name_prefix="pixsearch-library-writer"
                )
            return self._writer_pool

    def _primary(self) -> Library:
        """The writer's Library, opened first (on its thread): it creates a new library and records its
        model, and a bad region or a model mismatch fails here, in this process, as a one-line error."""
        lib = self._writer.lib
        if lib is not None:
            return lib
        return self._writer_thread().submit(self._writer.library).result()

    def mark_written(self) -> None:
        """After a write on the writer's Library (call it from inside ``write``)."""
        self._writer.mark_written()

    async def write(self, fn: Callable[..., T], *args: Any, **kw: Any) -> T:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._writer_thread(), partial(self._writer.call, fn, args, kw))

    def write_sync(self, fn: Callable[..., T], *args: Any, **kw: Any) -> T:
        return self._writer_thread().submit(self._writer.call, fn, args, kw).result()

    # -- the readers ------------------------------------------------------------------------------
    def _reader_pool(self) -> ThreadPoolExecutor:
        primary = self._primary()
        with self._lock:
            if self._pool is None:
                if self.processes and str(primary.settings.store or "").startswith("milvus-lite:"):
                    self.processes = False  # Milvus Lite opens its file in one process at a time
                self._pool = ThreadPoolExecutor(
                    max_workers=self.readers, thread_name_prefix="pixsearch-library-reader"
                )
            return self._pool

    def _seat(self) -> _Seat | _ProcessSeat:
        seat: _Seat | _ProcessSeat | None = getattr(self._local, "seat", None)
        if seat is None:
            if self.processes:  # ONNX Runtime's threads split the cores between the readers
                cores = max(1, (os.cpu_count() or 1) // self.readers)
                seat = _ProcessSeat(
                    replace(self.settings, threads=self.settings.threads or cores), self._opener
                )
            else:  # the writer's encoder: its models are loaded once
                encoder = self._primary().encoder
                seat = _Seat(self.settings, self._opener, lambda: encoder)
            self._local.seat = seat
            with self._lock:
                self._seats.append(seat)
        return seat

    def _read(self, fn: Callable[..., T], args: tuple[Any, ...], kw: dict[str, Any]) -> T:
        return self._seat().call(fn, args, kw)

    async def run(self, fn: Callable[..., T], *args: Any, **kw: Any) -> T:
        """A read, on one of the readers (several run at once)."""
        pool = await asyncio.to_thread(self._reader_pool) if self._pool is None else self._pool
        return await asyncio.get_running_loop().run_in_executor(pool, partial(self._read, fn, args, kw))

    def run_sync(self, fn: Callable[..., T], *args: Any, **kw: Any) -> T:
        """A read, for startup and shutdown (no event loop needed)."""
        return self._reader_pool().submit(self._read, fn, args, kw).result()

    def _each(self, job: Callable[[], object]) -> None:
        """Run ``job`` once on every reader thread: each waits for all to start, so no thread takes two."""
        pool = self._pool
        if pool is None:
            return
        gate = threading.Barrier(self.readers)

        def one() -> None:
            gate.wait(timeout=GATHER_WAIT)
            job()

        for f in [pool.submit(one) for _ in range(self.readers)]:
            f.result()

    def warm(self) -> None:
        """Open every reader and load its models now: the first visitors do not wait for them. A bad
        region or a model mismatch is raised here (``pixsearch serve`` says so in one line)."""
        warm_up = partial(self._read, lambda lib: lib.search("warm up", k=1), (), {})
        pool = self._reader_pool()
        if not self.processes:
            pool.submit(warm_up).result()  # one first: the threads share the models it loads
        self._each(warm_up)

    def release(self) -> None:
        """Close every Library, each on its own thread, and stop the reader processes; the next call
        opens them again (an app can be started and stopped more than once: TestClient does)."""

        def close_mine() -> None:
            seat = getattr(self._local, "seat", None)
            if seat is not None:
                self._local.seat = None
                seat.close()

        try:
            self._each(close_mine)
        finally:
            with self._lock:
                pool, self._pool, writer, self._writer_pool = self._pool, None, self._writer_pool, None
                left, self._seats = self._seats, []
            if pool is not None:
                pool.shutdown(wait=True)
            for seat in left:  # any close_mine did not reach (a barrier timed out)
                seat.stop()
            if writer is not None:
                writer.submit(self._writer.close).result()
                writer.shutdown(wait=True)


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
