"""Issue #7: a library never loses or corrupts data. One test (at least) per numbered item; each failed on
the code before the fix. Real photos, real files, real processes where the item is about processes."""

from __future__ import annotations

import json
import os
import shutil
import sqlite3
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest

from pixsearch import Library
from pixsearch.errors import BusyError, ImageTooLargeError, LibraryNotFoundError, MediaError, NotFoundError
from pixsearch.evaluation.retrieval import rank_of_first_hit, retrieval_metrics
from pixsearch.storage.catalog import Catalog
from pixsearch.storage.vectorset import VectorSet
from tests.conftest import PipeLines, catalog_generation, copy_without_index, wait_until

PIX = [sys.executable, "-m", "pixsearch.cli"]
_ENCODERS: dict = {}


@pytest.fixture(autouse=True)
def _one_encoder_per_model(monkeypatch: pytest.MonkeyPatch) -> None:
    """Library.open builds a fresh encoder (ONNX sessions: seconds) each time; these tests open many."""
    import pixsearch.library.facade as library_module

    real = library_module.create_encoder

    def cached(name: str | None = None):  # type: ignore[no-untyped-def]
        if name not in _ENCODERS:
            _ENCODERS[name] = real(name)
        return _ENCODERS[name]

    monkeypatch.setattr(library_module, "create_encoder", cached)


def photos_in(gallery_subset: Path, dst: Path, n: int, start: int = 0) -> list[Path]:
    dst.mkdir(parents=True, exist_ok=True)
    out = []
    for p in sorted((gallery_subset / "photos").glob("*.jpg"))[start : start + n]:
        shutil.copy(p, dst / p.name)
        out.append(dst / p.name)
    return out


def cli(*args: str, timeout: float = 300) -> subprocess.CompletedProcess:
    return subprocess.run([*PIX, *args], capture_output=True, text=True, timeout=timeout)


def index_keys_on_disk(lib_dir: Path) -> np.ndarray:
    """The keys of images.usearch as saved (no repair), when its stamp says it is fresh; else None."""
    from pixsearch.storage.vectors import load_index

    with Library.open(lib_dir) as lib:
        side = json.loads((lib_dir / "images.usearch.json").read_text())
        gen = lib.catalog.get_meta("vectors_gen")
        assert str(side["generation"]) == str(gen), "the stamp should claim fresh for this check"
        return np.sort(load_index("usearch", lib_dir / "images.usearch", lib.encoder.dim).keys())


# -- 1: a stale index is never marked fresh -------------------------------------------------------------
def test_ctrl_c_between_commit_and_index_update_leaves_a_repairable_index(
    gallery_subset: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    photos_in(gallery_subset, tmp_path / "p", 6)
    calls = {"n": 0}
    real_add = VectorSet.add

    def add(self: VectorSet, name: str, keys: list[int], vectors: np.ndarray) -> None:
        if name == "images":
            calls["n"] += 1
            if calls["n"] == 2:  # batch 2 is committed to SQLite; Ctrl-C before its vectors reach the index
                raise KeyboardInterrupt
        real_add(self, name, keys, vectors)

    monkeypatch.setattr(VectorSet, "add", add)
    with Library.open(tmp_path / "lib") as lib:
        lib.settings = type(lib.settings)(**{**lib.settings.__dict__, "batch_size": 2})
        rep = lib.add([tmp_path / "p"])
        assert rep.interrupted
        committed = np.sort(lib.catalog.image_ids())
    monkeypatch.setattr(VectorSet, "add", real_add)
    assert len(committed) == 4
    with Library.open(tmp_path / "lib") as lib:
        keys = np.sort(lib.vectors.get("images").keys())
        assert np.array_equal(keys, committed)  # repaired on open, not trusted
        for iid in committed.tolist():
            assert lib.similar(int(iid), k=1)


def test_an_interrupted_repair_is_not_registered_or_saved(built_library: Path, tmp_path: Path) -> None:
    lib_dir = copy_without_index(built_library, tmp_path / "lib")
    with Library.open(lib_dir) as lib:
        real = lib.vectors._catalog_vectors
        state = {"n": 0}

        def flaky(name: str, ids: list[int] | None) -> tuple[np.ndarray, np.ndarray]:
            state["n"] += 1
            raise KeyboardInterrupt

        lib.vectors._catalog_vectors = flaky  # type: ignore[method-assign]
        with pytest.raises(KeyboardInterrupt):
            lib.vectors.get("images")
        lib.vectors._catalog_vectors = real  # type: ignore[method-assign]
        with lib.writing():
            lib.vectors.save()
    with Library.open(lib_dir) as lib:
        assert len(lib.vectors.get("images")) == 24
        assert all(lib.vectors.consistent().values())


# -- 2: one writer at a time; readers go on; unique temp names; reindex with readers open ------------
HOLDER = """
import sys, time
from pixsearch import Library
lib = Library.open(sys.argv[1])
with lib.writing():
    print("held", flush=True)
    sys.stdin.readline()
"""


def test_second_writer_is_busy_or_waits_and_readers_keep_reading(built_library: Path, tmp_path: Path) -> None:
    lib_dir = tmp_path / "lib"
    shutil.copytree(built_library, lib_dir)
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLDER, str(lib_dir)], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    )
    try:
        assert holder.stdout is not None and PipeLines(holder.stdout).next(timeout=120).strip() == "held"
        p = cli("remove", str(tmp_path / "nothing"), "-L", str(lib_dir))
        assert p.returncode == 5, p.stderr
        line = p.stderr.strip()
        assert "\n" not in line and f"library is busy (PID {holder.pid}" in line and "use --wait" in line
        with Library.open(lib_dir) as lib, pytest.raises(BusyError):
            lib.remove([tmp_path / "nothing"])
        p = cli("search", "a dog", "-L", str(lib_dir), "--json")  # readers are not blocked
        assert p.returncode == 0 and json.loads(p.stdout)["results"], p.stderr
        waiter = subprocess.Popen(
            [*PIX, "remove", str(tmp_path / "nothing"), "-L", str(lib_dir), "--wait"],
            stderr=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        assert waiter.stderr is not None
        said = PipeLines(waiter.stderr).next(timeout=120)  # once it reaches the lock and says so
        assert "library is busy" in said and "waiting" in said, said
        time.sleep(0.5)
        assert waiter.poll() is None, "--wait should wait while the lock is held"
    finally:
        assert holder.stdin is not None
        holder.stdin.write("\n")
        holder.stdin.close()
        holder.wait(timeout=30)
    waiter.communicate(timeout=120)
    assert waiter.returncode == 1  # ran after the holder left: removed 0 paths -> exit 1


def test_sidecar_saves_from_two_threads_do_not_collide(built_library: Path, tmp_path: Path) -> None:
    lib_dir = tmp_path / "lib"
    shutil.copytree(built_library, lib_dir)
    errors: list[BaseException] = []

    def saver() -> None:
        try:
            with Library.open(lib_dir) as lib:
                vs = lib.vectors
                vs.get("captions")
                vs.writer = True  # as if each held the lock: this is about the temp files alone
                for _ in range(150):
                    getattr(vs, "_saved", {}).clear()  # force a real write each time
                    vs.save("captions")
        except BaseException as exc:  # noqa: BLE001 - collected for the assert
            errors.append(exc)

    threads = [threading.Thread(target=saver) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors, errors[0]
    assert not [f for f in lib_dir.iterdir() if f.name.endswith(".tmp")]


def test_reindex_with_another_connection_open_loses_nothing(gallery_subset: Path, tmp_path: Path) -> None:
    photos = tmp_path / "p"
    photos_in(gallery_subset, photos, 4)
    lib_dir = tmp_path / "lib"
    with Library.open(lib_dir) as lib:
        lib.add([photos], captions_csv=gallery_subset / "captions.csv")
    reader = sqlite3.connect(lib_dir / "catalog.db", isolation_level=None)  # e.g. a server answering searches
    assert reader.execute("SELECT COUNT(*) FROM images").fetchone()[0] == 4
    with Library.open(lib_dir) as lib:
        lib.reindex()
    assert reader.execute("SELECT COUNT(*) FROM images").fetchone()[0] == 4  # still a valid database
    photos_in(gallery_subset, photos, 3, start=4)
    writer = Library.open(lib_dir)  # a long-lived writer: its commits sit in the WAL
    try:
        assert writer.add([photos]).added == 3
        # the reader sees them: it reads the library's catalog, not a file renamed away under it
        assert reader.execute("SELECT COUNT(*) FROM images").fetchone()[0] == 7
        reader.close()
        fresh = sqlite3.connect(lib_dir / "catalog.db")
        assert fresh.execute("SELECT COUNT(*) FROM images").fetchone()[0] == 7
        assert fresh.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        fresh.close()
    finally:
        writer.close()
    with Library.open(lib_dir) as lib:
        assert lib.stats()["images"] == 7 and all(lib.vectors.consistent().values())


# -- 3: prune, reindex and edits keep what they must ---------------------------------------------------
def test_prune_refuses_a_missing_or_empty_root_unless_forced(gallery_subset: Path, tmp_path: Path) -> None:
    photos = tmp_path / "mnt" / "photos"
    photos_in(gallery_subset, photos, 3)
    with Library.open(tmp_path / "lib") as lib:
        lib.add([photos])
        photos.rename(tmp_path / "elsewhere")  # the disk is unmounted
        with pytest.raises(NotFoundError, match="--force"):
            lib.add([photos], prune=True)
        photos.mkdir()  # an empty mount point
        with pytest.raises(NotFoundError, match="unmounted"):
            lib.add([photos], prune=True)
        assert lib.stats()["images"] == 3
        p = cli("index", str(photos), "--prune", "-L", str(tmp_path / "lib"))
        assert p.returncode == 4 and "refusing to prune" in p.stderr and "--force" in p.stderr
        p = cli("index", str(tmp_path / "gone"), "--prune", "-L", str(tmp_path / "lib"))
        assert "refusing" not in p.stderr  # nothing indexed under that missing root: nothing to protect
        assert lib.add([photos], prune=True, force=True).removed == 3


def test_reindex_keeps_photos_it_cannot_read(gallery_subset: Path, tmp_path: Path) -> None:
    photos = tmp_path / "p"
    files = photos_in(gallery_subset, photos, 4)
    with Library.open(tmp_path / "lib") as lib:
        lib.add([photos], captions_csv=gallery_subset / "captions.csv")
        before = lib.stats()
        gone = files[1]
        gone.rename(tmp_path / "away.jpg")  # unreadable this time (a disk is offline)
        rep = lib.reindex()
        assert [p for p, _ in rep.kept] == [str(gone)] and not rep.failed
        after = lib.stats()
        assert (after["images"], after["human_captions"]) == (before["images"], before["human_captions"])
        iid = lib.catalog.image_for_path(str(gone))
        assert iid is not None and lib.similar(iid, k=1)
        (tmp_path / "away.jpg").rename(gone)
        assert lib.add([photos]).unchanged == 4  # the file is back: read again, same bytes, same photo


def test_editing_a_photo_keeps_its_human_captions(gallery_subset: Path, tmp_path: Path) -> None:
    photos = tmp_path / "p"
    a, _b = photos_in(gallery_subset, photos, 2)
    (edited,) = photos_in(gallery_subset, tmp_path / "elsewhere", 1, start=5)
    csv = tmp_path / "c.csv"
    csv.write_text(f"image,caption\n{a.name},a caption written by a person\n")
    with Library.open(tmp_path / "lib") as lib:
        lib.add([photos], captions_csv=csv)
        a.write_bytes(edited.read_bytes())  # edited: new bytes at the same path
        os.utime(a, ns=(time.time_ns(), time.time_ns() + 10**9))
        assert lib.add([photos]).updated == 1
        row = lib.catalog.images([lib.catalog.image_for_path(str(a))])
        texts = [c.text for r in row.values() for c in r.captions if c.source == "human"]
        assert texts == ["a caption written by a person"]
        assert all(lib.vectors.consistent().values())
        assert lib.search("a caption written by a person", k=1)[0].path == str(a)


# -- 4: ids are never reused -------------------------------------------------------------------------
def test_ids_are_never_reused(gallery_subset: Path, tmp_path: Path) -> None:
    photos = tmp_path / "p"
    files = photos_in(gallery_subset, photos, 3)
    csv = tmp_path / "c.csv"
    csv.write_text("image,caption\n" + "".join(f"{f.name},caption of {f.stem}\n" for f in files))
    with Library.open(tmp_path / "lib") as lib:
        lib.add([photos], captions_csv=csv)
        top_img = int(lib.catalog.image_ids().max())
        top_cap = int(lib.catalog.caption_ids().max())
        newest = next(p for p in files if lib.catalog.image_for_path(str(p)) == top_img)
        lib.remove([newest])
        newest.rename(photos / "renamed.jpg")
        csv.write_text(f"image,caption\nrenamed.jpg,caption of {newest.stem}\n")
        lib.add([photos], captions_csv=csv)
        assert lib.catalog.image_for_path(str(photos / "renamed.jpg")) == top_img + 1
        assert int(lib.catalog.caption_ids().max()) > top_cap


# -- 5: exact matches ---------------------------------------------------------------------------------
def test_remove_matches_paths_exactly(gallery_subset: Path, tmp_path: Path) -> None:
    photos_in(gallery_subset, tmp_path / "Photos" / "Trip", 2)
    photos_in(gallery_subset, tmp_path / "Photos" / "trip", 2, start=2)
    photos_in(gallery_subset, tmp_path / "Photos" / "Trip2", 1, start=4)
    with Library.open(tmp_path / "lib") as lib:
        lib.add([tmp_path / "Photos"])
        assert lib.remove([tmp_path / "Photos" / "Trip"]) == 2
        left = sorted(Path(p).parent.name for p in lib.catalog.all_paths())
        assert left == ["Trip2", "trip", "trip"]
        assert lib.remove([tmp_path / "Photos" / "TRIP"]) == 0


def test_captions_csv_matches_relative_paths_then_unique_names(gallery_subset: Path, tmp_path: Path) -> None:
    root = tmp_path / "photos"
    src = sorted((gallery_subset / "photos").glob("*.jpg"))
    for year, s in (("2019", src[0]), ("2020", src[1])):
        (root / year).mkdir(parents=True)
        shutil.copy(s, root / year / "IMG_0001.jpg")
    shutil.copy(src[2], root / "2020" / "unique.jpg")
    csv = root / "captions.csv"
    csv.write_text(
        "image,caption\nIMG_0001.jpg,which one is this\n2019/IMG_0001.jpg,the 2019 photo\n"
        "unique.jpg,the only unique one\n"
    )
    with Library.open(tmp_path / "lib") as lib:
        rep = lib.add([root], captions_csv=csv)
        caps = {
            Path(p).relative_to(root).as_posix(): sorted(c.text for c in r.captions if c.source == "human")
            for r in lib.catalog.images(lib.catalog.image_ids().tolist()).values()
            for p in r.paths
        }
    assert caps == {
        "2019/IMG_0001.jpg": ["the 2019 photo"],
        "2020/IMG_0001.jpg": [],
        "2020/unique.jpg": ["the only unique one"],
    }
    assert any("'IMG_0001.jpg' fits 2 photos" in w for w in rep.warnings)


# -- 6: media's guards --------------------------------------------------------------------------------
def test_indexer_and_image_vector_use_media_guards(gallery_subset: Path, tmp_path: Path) -> None:
    photos = tmp_path / "p"
    photos_in(gallery_subset, photos, 1)
    big = photos / "huge.jpg"
    with open(big, "wb") as f:  # sparse: 201 MiB on paper, nothing on disk
        f.truncate(201 * 2**20)
    fifo = tmp_path / "pipe.jpg"
    os.mkfifo(fifo)
    with Library.open(tmp_path / "lib") as lib:
        rep = lib.add([photos, fifo])
        failed = {Path(p).name: why for p, why in rep.failed}
        assert "MiB limit" in failed["huge.jpg"] and "regular file" in failed["pipe.jpg"]
        with pytest.raises(ImageTooLargeError):
            lib.image_vector(big)
        with pytest.raises(MediaError, match="regular file"):
            lib.similar(fifo)  # must not block reading the pipe


# -- 7: paths ----------------------------------------------------------------------------------------
def test_tilde_expands_and_read_only_commands_never_create(
    gallery_subset: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.chdir(tmp_path)
    with Library.open("~/lib") as lib:
        assert lib.settings.library == tmp_path / "home" / "lib"
    assert (tmp_path / "home" / "lib" / "catalog.db").is_file() and not (tmp_path / "~").exists()
    with pytest.raises(LibraryNotFoundError, match="no library at"):
        Library.open(tmp_path / "typo", create=False)
    cmds = [["search", "dog"], ["similar", "x.jpg"], ["stats"], ["doctor"], ["remove", "x.jpg"], ["reindex"]]
    procs = [  # at once: each is a cold start
        subprocess.Popen([*PIX, *c, "-L", str(tmp_path / "typo")], stderr=subprocess.PIPE, text=True)
        for c in cmds
    ]
    for c, proc in zip(cmds, procs, strict=True):
        _, err = proc.communicate(timeout=300)
        assert proc.returncode == 4 and "no library at" in err, (c, err)
    assert not (tmp_path / "typo").exists()


# -- 8: one-line errors, documented exit codes, interrupted reindex ------------------------------------
def test_os_errors_are_one_line_and_reindex_interruption_exits_130(
    built_library: Path, tmp_path: Path
) -> None:
    not_a_dir = tmp_path / "file"
    not_a_dir.write_text("x")
    p = cli("index", str(tmp_path), "-L", str(not_a_dir / "lib"))
    assert p.returncode == 1 and "Traceback" not in p.stderr and len(p.stderr.strip().splitlines()) == 1
    lib_dir = tmp_path / "lib"
    shutil.copytree(built_library, lib_dir)
    env = {**os.environ, "PIXSEARCH_BATCH_SIZE": "1"}
    proc = subprocess.Popen(
        [*PIX, "reindex", "-L", str(lib_dir)],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    # SIGINT (as Ctrl-C) once the rebuild has committed a batch in .reindex/, not after a fixed sleep
    wait_until(lambda: catalog_generation(lib_dir / ".reindex") > 0 or proc.poll() is not None, 120, "commit")
    assert proc.poll() is None, "reindex finished before it could be interrupted"
    proc.send_signal(2)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, err
    assert "interrupted" in err and "Traceback" not in err
    with Library.open(lib_dir) as lib:  # the library is untouched and whole
        assert lib.stats()["images"] == 24 and all(lib.vectors.consistent().values())


# -- 9: big deletes -----------------------------------------------------------------------------------
def test_delete_orphans_past_sqlite_variable_limit(tmp_path: Path) -> None:
    cat = Catalog.open(tmp_path / "catalog.db")
    db = cat.connection_for_tests()
    db.setlimit(sqlite3.SQLITE_LIMIT_VARIABLE_NUMBER, 999)  # SQLite's default before 3.32
    blob = np.zeros(4, np.float16).tobytes()
    with cat.transaction():
        db.executemany(
            "INSERT INTO images(hash, width, height, added_at, vector) VALUES (?, 1, 1, 0, ?)",
            ((f"h{i}", blob) for i in range(2_500)),
        )
        imgs, _ = cat.delete_orphans()
    assert len(imgs) == 2_500 and cat.is_empty()
    cat.close()


# -- 10a: ties count against the query -----------------------------------------------------------------
def test_ties_count_against_the_query() -> None:
    collapsed = np.zeros((5, 5), dtype=np.float32)
    assert rank_of_first_hit(collapsed, np.arange(5)).tolist() == [5] * 5
    assert retrieval_metrics(collapsed, np.arange(5))["t2i"]["R@1"] == 0.0
    sim = np.array([[0.9, 0.9, 0.1], [0.2, 0.8, 0.8]], dtype=np.float32)
    assert rank_of_first_hit(sim, [np.array([0]), np.array([2])]).tolist() == [2, 2]
    assert rank_of_first_hit(sim, [np.array([0, 1]), np.array([1, 2])]).tolist() == [1, 1]  # positives tie


# -- 11: thumbnails are kept and readable --------------------------------------------------------------
def test_thumbnails_are_readable_by_id(built_library: Path) -> None:
    import io

    from PIL import Image

    with Library.open(built_library) as lib:
        iid = int(lib.catalog.image_ids()[0])
        img = Image.open(io.BytesIO(lib.catalog.thumbnail(iid) or b""))
        assert img.format == "JPEG" and max(img.size) <= 256
        assert lib.catalog.thumbnail(10**9) is None
