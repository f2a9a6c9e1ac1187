"""The REST API's Libraries (api/worker.py): reads on a pool of readers at once, writes on one writer.

Overlap is shown, never timed: a read waits at a rendezvous that only a second read in flight at the
same time can open (a thread barrier, or for reader processes files in a folder), so serialised reads
fail the test with a broken rendezvous after its deadline instead of passing slowly. Fakes stand in for
the Library where a test is about threads and processes; the real gallery library where it is about
what a read answers.
"""

from __future__ import annotations

import asyncio
import io
import multiprocessing
import os
import shutil
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from PIL import Image

from pixsearch import Library
from pixsearch.api.worker import LibraryWorker
from pixsearch.config import Settings, load_settings
from pixsearch.errors import BlockedError, ConfigError, MediaError
from pixsearch.models.encoder import JointEncoder
from pixsearch.policy.rules import DISCLAIMER

DEADLINE = 60.0  # a rendezvous nobody else reaches fails after this (a bound, not a measurement)


# -- fakes (module level: reader processes import them from here) ---------------------------------------
class FakeCatalog:
    def get_meta(self, key: str) -> str | None:
        return "0"


class FakeVectors:
    def refresh(self) -> None:
        pass


class FakeLibrary:
    """Records the thread it was opened on, every thread that used it, and the one that closed it."""

    def __init__(self, settings: Settings, encoder: JointEncoder | None) -> None:
        self.settings = settings
        self.encoder: Any = encoder if encoder is not None else object()
        self.shared_encoder = encoder is not None
        self.catalog = FakeCatalog()
        self.vectors = FakeVectors()
        self.opened_on = threading.get_ident()
        self.used_on: set[int] = set()
        self.closed_on: int | None = None
        OPENED.append(self)

    def use(self) -> FakeLibrary:
        self.used_on.add(threading.get_ident())
        return self

    def close(self) -> None:
        self.closed_on = threading.get_ident()
        marks = self.settings.library / "closed"
        if marks.is_dir():  # reader processes say so in a file: the test cannot see their objects
            (marks / str(os.getpid())).touch()


OPENED: list[FakeLibrary] = []


def fake_opener(settings: Settings, encoder: JointEncoder | None) -> Library:
    return FakeLibrary(settings, encoder)  # type: ignore[return-value]


def rendezvous(folder: Path, n: int) -> int:
    """Wait until ``n`` callers (in any processes) are here at once; this process's id."""
    (folder / f"{os.getpid()}-{threading.get_ident()}").touch()
    end = time.monotonic() + DEADLINE
    while len(list(folder.iterdir())) < n:
        if time.monotonic() > end:
            raise TimeoutError(f"only {len(list(folder.iterdir()))} of {n} reads were in flight at once")
        time.sleep(0.01)
    return os.getpid()


def raise_media_error(lib: Library) -> None:
    raise MediaError("photo.jpg", "cannot decode")


def raise_blocked(lib: Library) -> None:
    raise BlockedError("not here", topic="x")


@pytest.fixture(autouse=True)
def _fresh() -> Iterator[None]:
    OPENED.clear()
    yield
    OPENED.clear()


async def _together(worker: LibraryWorker, fns: list[Callable[[Library], Any]]) -> list[Any]:
    return await asyncio.gather(*(worker.run(fn) for fn in fns))


# -- threads ------------------------------------------------------------------------------------------
def test_reads_overlap_on_reader_threads(tmp_path: Path) -> None:
    worker = LibraryWorker(Settings(library=tmp_path), fake_opener, readers=2)
    gate = threading.Barrier(2, timeout=DEADLINE)  # broken (and the test failed) unless both are in flight

    def read(lib: Library) -> int:
        gate.wait()
        return threading.get_ident()

    try:
        got = asyncio.run(_together(worker, [read, read]))
    finally:
        worker.release()
    assert len(set(got)) == 2  # two threads, each with a Library of its own


def test_each_library_stays_on_its_thread_and_the_pool_closes(tmp_path: Path) -> None:
    worker = LibraryWorker(Settings(library=tmp_path), fake_opener, readers=3)
    gate = threading.Barrier(3, timeout=DEADLINE)

    def read(lib: Library) -> str:
        gate.wait()
        return lib.use().__class__.__name__  # type: ignore[attr-defined]

    async def traffic() -> None:
        await _together(worker, [read] * 3)
        await worker.write(lambda lib: lib.use())
        await _together(worker, [lambda lib: lib.use()] * 12)

    asyncio.run(traffic())
    writer, *readers = OPENED
    assert len(readers) == 3 and not writer.shared_encoder
    assert all(r.shared_encoder and r.encoder is writer.encoder for r in readers)  # models loaded once
    worker.release()
    for lib in OPENED:
        assert lib.used_on == {lib.opened_on} and lib.closed_on == lib.opened_on
    assert writer.opened_on not in {r.opened_on for r in readers}  # writes never ran on a reader
    assert not [t.name for t in threading.enumerate() if t.name.startswith("pixsearch-library")]
    # released, it opens again on the next call (an app can start and stop more than once)
    assert worker.run_sync(lambda lib: lib.use()) is OPENED[-1] and len(OPENED) == 6
    worker.release()
    assert all(lib.closed_on is not None for lib in OPENED)


def test_default_pool_size_comes_from_the_cores_or_the_setting(tmp_path: Path) -> None:
    assert LibraryWorker(Settings(library=tmp_path)).readers == max(1, (os.cpu_count() or 2) // 2)
    assert LibraryWorker(Settings(library=tmp_path, readers=3)).readers == 3
    assert LibraryWorker(Settings(library=tmp_path, readers=3), readers=5).readers == 5
    env = {"XDG_CONFIG_HOME": str(tmp_path)}  # no config file of the user's
    assert load_settings(env={**env, "PIXSEARCH_READERS": "4"}).readers == 4
    with pytest.raises(ConfigError, match="readers / PIXSEARCH_READERS must be a whole number >= 1"):
        load_settings(env={**env, "PIXSEARCH_READERS": "0"})


# -- reader processes ---------------------------------------------------------------------------------
def test_reads_overlap_in_reader_processes_and_they_close(tmp_path: Path) -> None:
    (tmp_path / "closed").mkdir()
    meet = tmp_path / "meet"
    meet.mkdir()
    worker = LibraryWorker(Settings(library=tmp_path), fake_opener, readers=2, processes=True)
    try:
        pids = asyncio.run(_together(worker, [lambda lib: rendezvous(meet, 2)] * 2))
        assert len(set(pids)) == 2 and os.getpid() not in pids
        children = [p for p in multiprocessing.active_children() if p.name == "pixsearch-reader"]
        assert sorted(p.pid for p in children) == sorted(pids)
    finally:
        worker.release()
    closed = {int(p.name) for p in (tmp_path / "closed").iterdir()}
    assert closed == {*pids, os.getpid()}  # each reader closed its own Library; the writer (here) too
    assert all(not p.is_alive() for p in children)
    assert OPENED[0].closed_on == OPENED[0].opened_on


def test_errors_come_back_typed_and_a_dead_reader_is_replaced(tmp_path: Path) -> None:
    worker = LibraryWorker(Settings(library=tmp_path), fake_opener, readers=1, processes=True)
    try:
        with pytest.raises(MediaError) as err:  # its __init__ takes (path, reason): rebuilt, not re-run
            worker.run_sync(raise_media_error)
        assert str(err.value) == "photo.jpg: cannot decode"
        with pytest.raises(BlockedError) as blocked:
            worker.run_sync(raise_blocked)
        assert (str(blocked.value), blocked.value.topic) == ("not here", "x")
        with pytest.raises(TypeError, match="pickle"):  # an answer that cannot travel is an error
            worker.run_sync(lambda lib: threading.Lock())
        # killed while idle (the out-of-memory killer, say): the next read goes to a new reader
        first = worker.run_sync(lambda lib: os.getpid())
        (child,) = [p for p in multiprocessing.active_children() if p.pid == first]
        os.kill(first, 9)
        child.join()
        second = worker.run_sync(lambda lib: os.getpid())
        assert second not in (first, os.getpid())
        # killed during a read: that read fails (it may be what killed it), the next one is answered
        with pytest.raises(RuntimeError, match="reader process ended during a call"):
            worker.run_sync(lambda lib: os.kill(os.getpid(), 9))
        assert worker.run_sync(lambda lib: os.getpid()) not in (first, second, os.getpid())
    finally:
        worker.release()


# -- the real library ---------------------------------------------------------------------------------
@pytest.fixture
def lib_dir(built_library: Path, tmp_path: Path) -> Path:
    d = tmp_path / "lib"
    shutil.copytree(built_library, d)
    return d


QUERIES = ["a dog running on grass", "children playing", "a man on a bike", "people at the beach"]


def _page(lib: Library, q: str) -> list[tuple[int, float]]:
    return [(r.image_id, round(r.score, 5)) for r in lib.search(q, k=8)]  # type: ignore[union-attr]


@pytest.mark.parametrize("processes", [False, True], ids=["threads", "processes"])
def test_concurrent_results_equal_the_serial_path(lib_dir: Path, processes: bool) -> None:
    with Library.open(lib_dir, create=False) as lib:
        serial = [_page(lib, q) for q in QUERIES]
    worker = LibraryWorker(load_settings(library=lib_dir), readers=2, processes=processes)
    try:
        worker.warm()
        got = asyncio.run(_together(worker, [lambda lib, q=q: _page(lib, q) for q in QUERIES * 3]))
        # the policy travels with the read: a stricter region's block comes back as itself
        assert worker.run_sync(lambda lib: len(lib.search("a little girl playing", k=3))) == 3
        with pytest.raises(BlockedError) as blocked:
            worker.run_sync(lambda lib: lib.with_region("restricted").search("a little girl playing", k=3))
        assert str(blocked.value) == DISCLAIMER
    finally:
        worker.release()
    assert got == serial * 3, (got, serial)


def _jpeg(path: Path) -> bytes:
    buf = io.BytesIO()
    Image.open(path).convert("RGB").save(buf, "JPEG", quality=55)  # new bytes, the same picture
    return buf.getvalue()


@pytest.mark.parametrize("processes", [False, True], ids=["threads", "processes"])
def test_a_write_is_seen_by_the_next_read_on_every_reader(
    lib_dir: Path, tmp_path: Path, processes: bool
) -> None:
    worker = LibraryWorker(load_settings(library=lib_dir), readers=2, processes=processes)

    def nearest_on_each(photo: int, folder: Path) -> set[tuple[int, int]]:
        folder.mkdir()

        def read(lib: Library) -> tuple[int, int]:
            rendezvous(folder, 2)  # both readers answer: neither may be a stale one
            hit = lib.similar(photo, k=1)[0]
            return hit.image_id, threading.get_ident() if not processes else os.getpid()  # type: ignore[union-attr]

        return set(asyncio.run(_together(worker, [read, read])))

    try:
        src = Path(worker.run_sync(lambda lib: lib.catalog.image_paths(5)[0].path))
        before = nearest_on_each(5, tmp_path / "before")  # both readers have their indexes loaded now
        added = asyncio.run(worker.write(lambda lib: lib.add_photo(_jpeg(src))))
        after = nearest_on_each(5, tmp_path / "after")
    finally:
        worker.release()
    assert len(before) == 2 and added.image_id not in {i for i, _ in before}
    assert {i for i, _ in after} == {added.image_id}  # the copy is now the nearest photo, on each reader
