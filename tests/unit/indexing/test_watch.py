"""The folder watcher on real Flickr8k photos and real file-system events: new, changed and removed photos
reach the library through its writer; files still being written, temporary and hidden names, the
library's own folder wait or stay out; a stop event ends it; a vanished root forgets nothing.

The watcher runs on a thread of its own with its own Library (as ``serve --watch`` runs it); the test
reads the library through another Library, as any reader would. Every wait has a deadline.
"""

from __future__ import annotations

import os
import queue
import shutil
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from pixsearch import Library
from pixsearch.config import load_settings
from pixsearch.indexing.watch import WatchBatch, WatchConfig, Watcher, is_temporary
from pixsearch.media import content_hash
from tests.conftest import catalog_generation, wait_until

# Short times keep the tests quick; the half-written test does not depend on them (see there).
FAST = WatchConfig(debounce=0.4, step=0.1, settle=0.4, max_delay=1.0, lock_wait=0.5, retry=0.2)


class Running:
    """A Watcher on its own thread (with its own Library), its batches in a queue."""

    def __init__(
        self, lib_dir: Path, roots: list[Path], config: WatchConfig = FAST, batch_size: int = 32
    ) -> None:
        self.batches: queue.Queue[WatchBatch] = queue.Queue()
        self.seen: list[WatchBatch] = []
        self.notes: list[str] = []
        self.unsettled: list[Path] = []
        self.ready = threading.Event()
        self.stop_event = threading.Event()
        self.error: BaseException | None = None
        self.on_unsettled = lambda p: None
        self._args = (load_settings(library=lib_dir, batch_size=batch_size), roots, config)
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self) -> None:
        settings, roots, config = self._args

        def unsettled(p: Path) -> None:
            self.unsettled.append(p)
            self.on_unsettled(p)

        try:
            with Library.open(settings=settings) as lib:
                w = Watcher(
                    lib,
                    roots,
                    config,
                    on_batch=self.batches.put,
                    on_ready=self.ready.set,
                    on_note=self.notes.append,
                    on_unsettled=unsettled,
                )
                w.run(self.stop_event)
        except BaseException as exc:  # noqa: BLE001 - handed to the test thread
            self.error = exc
            self.ready.set()

    def wait_ready(self, timeout: float = 120.0) -> None:
        assert self.ready.wait(timeout), f"watcher not ready within {timeout:g} s"
        assert self.error is None, self.error

    def next_batch(self, timeout: float = 60.0) -> WatchBatch:
        try:
            b = self.batches.get(timeout=timeout)
        except queue.Empty:
            raise AssertionError(f"no batch within {timeout:g} s (error: {self.error!r})") from None
        self.seen.append(b)
        return b

    def stop(self, timeout: float = 60.0) -> None:
        self.stop_event.set()
        self.thread.join(timeout)
        assert not self.thread.is_alive(), f"watcher still running {timeout:g} s after stop"
        assert self.error is None, self.error


@contextmanager
def watching(lib_dir: Path, roots: list[Path], config: WatchConfig = FAST) -> Iterator[Running]:
    r = Running(lib_dir, roots, config)
    try:
        r.wait_ready()
        yield r
    finally:
        r.stop()


@pytest.fixture(scope="module")
def photos(flickr8k: Path) -> list[Path]:
    """Six real test-split photos (different bytes, different sizes)."""
    names = (flickr8k / "test.txt").read_text().split()[:6]
    return [flickr8k / "images" / n for n in names]


def _indexed(lib_dir: Path, path: Path) -> str | None:
    """The content hash the library holds for ``path`` (None: not indexed), read as another reader would."""
    with Library.open(lib_dir, create=False) as lib:
        row = lib.catalog.get_path(str(path))
        return None if row is None else lib.catalog.image_hash(row.image_id)


def test_new_photo_is_indexed(tmp_path: Path, photos: list[Path]) -> None:
    root = tmp_path / "photos"
    root.mkdir()
    with watching(tmp_path / "lib", [root]) as w:
        new = root / photos[0].name
        shutil.copy(photos[0], new)
        b = w.next_batch()
        assert (b.added, b.changed, b.removed, b.failed) == (1, 0, 0, [])
        assert b.files == (str(new),)
        assert _indexed(tmp_path / "lib", new) == content_hash(photos[0])
        # in a sub-folder created after the watch began, too
        (root / "trip").mkdir()
        shutil.copy(photos[1], root / "trip" / photos[1].name)
        b = w.next_batch()
        assert b.added == 1 and b.files == (str(root / "trip" / photos[1].name),)


def test_folder_moved_in_is_walked(tmp_path: Path, photos: list[Path]) -> None:
    """A folder moved in whole brings one event for itself, none for its photos: it is walked."""
    root, outside = tmp_path / "photos", tmp_path / "elsewhere" / "card"
    root.mkdir()
    outside.mkdir(parents=True)
    for p in photos[:2]:
        shutil.copy(p, outside / p.name)
    with watching(tmp_path / "lib", [root]) as w:
        os.rename(outside, root / "card")
        b = w.next_batch()
        assert b.added == 2 and sorted(b.files) == sorted(str(root / "card" / p.name) for p in photos[:2])


def test_changed_photo_is_encoded_again(tmp_path: Path, photos: list[Path]) -> None:
    root = tmp_path / "photos"
    root.mkdir()
    target = root / "photo.jpg"
    shutil.copy(photos[0], target)
    with watching(tmp_path / "lib", [root]) as w:
        b = w.next_batch()  # the catch-up: what was there before the watch began
        assert b.catch_up and b.added == 1 and b.files == ()
        assert _indexed(tmp_path / "lib", target) == content_hash(photos[0])
        shutil.copyfile(photos[2], target)  # the photo edited in place: other bytes under the same name
        b = w.next_batch()
        assert (b.added, b.changed, b.removed, b.failed) == (0, 1, 0, [])
        assert _indexed(tmp_path / "lib", target) == content_hash(photos[2])


def test_removed_photo_is_forgotten(tmp_path: Path, photos: list[Path]) -> None:
    root = tmp_path / "photos"
    (root / "old").mkdir(parents=True)
    shutil.copy(photos[0], root / photos[0].name)
    for p in photos[1:3]:
        shutil.copy(p, root / "old" / p.name)
    with watching(tmp_path / "lib", [root]) as w:
        assert w.next_batch().added == 3  # the catch-up
        (root / photos[0].name).unlink()
        b = w.next_batch()
        assert (b.added, b.changed, b.removed) == (0, 0, 1)
        assert b.forgotten == (str(root / photos[0].name),)
        assert _indexed(tmp_path / "lib", root / photos[0].name) is None
        shutil.rmtree(root / "old")  # a folder: everything under it
        b = w.next_batch()
        assert b.removed == 2
        with Library.open(tmp_path / "lib", create=False) as lib:
            assert lib.stats()["images"] == 0
            assert all(ok for _, ok, _ in lib.doctor())


def test_renamed_photo_keeps_its_image(tmp_path: Path, photos: list[Path]) -> None:
    """A rename is a deletion and a creation; the new path is added before the old one is forgotten, so
    the photo keeps its image (and whatever was stored with it)."""
    root = tmp_path / "photos"
    root.mkdir()
    shutil.copy(photos[0], root / "a.jpg")
    with watching(tmp_path / "lib", [root]) as w:
        assert w.next_batch().catch_up
        with Library.open(tmp_path / "lib", create=False) as lib:
            before = lib.catalog.get_path(str(root / "a.jpg"))
        assert before is not None
        os.rename(root / "a.jpg", root / "b.jpg")
        got = [w.next_batch()]
        while sum(b.removed for b in got) < 1 or sum(b.added for b in got) < 1:
            got.append(w.next_batch())
        with Library.open(tmp_path / "lib", create=False) as lib:
            after = lib.catalog.get_path(str(root / "b.jpg"))
            assert lib.catalog.get_path(str(root / "a.jpg")) is None
        assert after is not None and after.image_id == before.image_id


def test_half_written_photo_waits_until_complete(tmp_path: Path, photos: list[Path]) -> None:
    """A photo is indexed only once its size and mtime stay still. Deterministic: the rest of the file is
    written from the watcher's own thread the first time it reports the file unsettled, so its next
    look always finds it changed (as a slow copy would be)."""
    root = tmp_path / "photos"
    root.mkdir()
    data = photos[3].read_bytes()
    half = root / "slow.jpg"
    looks: list[int] = []

    def finish(p: Path) -> None:
        if p == half:
            looks.append(p.stat().st_size)
            if len(looks) == 1:
                with open(half, "ab") as f:
                    f.write(data[len(data) // 2 :])

    w = Running(tmp_path / "lib", [root])
    w.on_unsettled = finish
    try:
        w.wait_ready()
        with open(half, "wb") as f:
            f.write(data[: len(data) // 2])
        b = w.next_batch()
        assert (b.added, b.failed) == (1, []) and b.files == (str(half),)
        assert looks[:2] == [len(data) // 2, len(data)]  # seen half, then whole, then indexed
        assert _indexed(tmp_path / "lib", half) == content_hash(data)
    finally:
        w.stop()


def test_temporary_hidden_and_library_files_are_ignored(tmp_path: Path, photos: list[Path]) -> None:
    root = tmp_path / "photos"
    root.mkdir()
    lib_dir = root / "library"  # the library inside the watched folder: its own files are no photos
    with watching(lib_dir, [root]) as w:
        for name in ("a.jpg.part", "b.tmp", "c.jpg~", ".d.jpg", "e.crdownload", "notes.txt", "#f.jpg#"):
            shutil.copy(photos[0], root / name)
        (root / ".cache").mkdir()
        shutil.copy(photos[0], root / ".cache" / "g.jpg")
        shutil.copy(photos[0], lib_dir / "h.jpg")
        shutil.copy(photos[1], root / "dl.jpg.part")  # a download, renamed into place when done
        os.rename(root / "dl.jpg.part", root / "dl.jpg")
        b = w.next_batch()
        assert b.files == (str(root / "dl.jpg"),) and b.added == 1
        (root / "b.tmp").unlink()  # a temporary file deleted: no batch, no write
        shutil.copy(photos[2], root / "last.jpg")
        b = w.next_batch()
        assert b.files == (str(root / "last.jpg"),) and b.removed == 0
        with Library.open(lib_dir, create=False) as lib:
            assert lib.stats()["images"] == 2
    assert is_temporary("IMG_1.JPG.PART") and is_temporary("~$x.jpg") and not is_temporary("IMG_1.JPG")


def test_stop_event_ends_the_watch(tmp_path: Path, flickr8k: Path) -> None:
    root = tmp_path / "photos"
    root.mkdir()
    w = Running(tmp_path / "lib", [root])
    w.wait_ready()
    w.stop(timeout=10)
    # Stopped during the catch-up of a folder (a batch a photo): it ends after the batch in flight, with
    # what it committed kept and the library consistent.
    names = (flickr8k / "test.txt").read_text().split()[:16]
    for n in names:
        shutil.copy(flickr8k / "images" / n, root / n)
    w = Running(tmp_path / "lib", [root], batch_size=1)
    wait_until(lambda: catalog_generation(tmp_path / "lib") > 0, 120, "the catch-up's first commit")
    w.stop(timeout=60)
    with Library.open(tmp_path / "lib", create=False) as lib:
        assert 0 < lib.stats()["images"] < len(names)
        assert all(ok for _, ok, _ in lib.doctor()), lib.doctor()


def test_vanished_root_forgets_nothing(tmp_path: Path, photos: list[Path]) -> None:
    """A watched folder deleted as a whole looks like an unmounted disk: its photos stay indexed."""
    root = tmp_path / "photos"
    root.mkdir()
    for p in photos[:2]:
        shutil.copy(p, root / p.name)
    with watching(tmp_path / "lib", [root]) as w:
        assert w.next_batch().added == 2  # the catch-up
        shutil.rmtree(root)
        wait_until(lambda: any("is gone" in n for n in w.notes), 30, "the watcher noting the vanished root")
        assert w.batches.empty()
    with Library.open(tmp_path / "lib", create=False) as lib:
        assert lib.stats()["images"] == 2


def test_busy_library_is_retried(tmp_path: Path, photos: list[Path]) -> None:
    """Another writer holds the lock: the batch waits (a note says so) and lands once the lock is free."""
    root = tmp_path / "photos"
    root.mkdir()
    with watching(tmp_path / "lib", [root]) as w, Library.open(tmp_path / "lib") as other:
        with other.writing():
            shutil.copy(photos[4], root / "x.jpg")
            wait_until(lambda: any("another writer" in n for n in w.notes), 30, "a busy note")
            assert w.batches.empty()
        b = w.next_batch()
        assert b.added == 1 and b.files == (str(root / "x.jpg"),)
