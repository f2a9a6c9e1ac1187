"""The indexer on real gallery photos: names that are not UTF-8 go in and come out exactly, the folders
indexed are recorded as roots, links out of a root need ``follow_links``, and a full disk stops a run with
one StorageError that a later run resumes from."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from pixsearch import Library, StorageError
from tests.conftest import GALLERY

PHOTOS = sorted(p.name for p in (GALLERY / "images").glob("*.jpg"))
# Latin-1, Shift-JIS and bytes that are no encoding at all: Python names these files with surrogates
ODD = [b"caf\xe9.jpg", "写真".encode("shift_jis") + b".jpg", b"\xff\xfe.jpg"]


def _photos(root: Path, n: int, odd: bool = False) -> Path:
    """``root/photos`` with ``n`` distinct gallery photos (the last three under ``ODD`` names if ``odd``)."""
    photos = root / "photos"
    photos.mkdir(parents=True)
    for i, name in enumerate(PHOTOS[:n]):
        dst = os.fsencode(photos) + b"/" + (ODD[i - (n - 3)] if odd and i >= n - 3 else name.encode())
        shutil.copy(GALLERY / "images" / name, os.fsdecode(dst))
    return photos


def test_names_that_are_not_utf8_are_indexed_found_removed_and_pruned(tmp_path: Path) -> None:
    photos = _photos(tmp_path, 6, odd=True)
    odd = [os.path.join(photos, os.fsdecode(n)) for n in ODD]
    with Library.open(tmp_path / "lib") as lib:
        rep = lib.add([photos], generate_captions=False)
        assert (rep.added, rep.failed) == (6, [])
        assert set(odd) <= set(lib.catalog.all_paths())
        for p in odd:  # the stored path names the very file: it can be read again
            iid = lib.catalog.image_for_path(p)
            assert iid is not None and lib.original(iid) == Path(p)
            hits = lib.similar(iid, k=6)
            assert all(Path(r.path).is_file() for r in hits)  # every path a result gives is exact
        assert lib.add([photos], generate_captions=False).unchanged == 6
        assert lib.remove([Path(odd[0])]) == 1
        assert odd[0] not in lib.catalog.all_paths()
        os.unlink(odd[1])
        rep = lib.add([photos], prune=True, generate_captions=False)  # odd[0] is back: it is on disk
        assert (rep.removed, rep.duplicates + rep.added) == (1, 1)
        assert sorted(lib.catalog.all_paths()) == sorted(str(p) for p in photos.iterdir())


def test_one_path_sqlite_cannot_take_does_not_stop_the_run(tmp_path: Path) -> None:
    """Before names that are not UTF-8 were stored as bytes, one of them ended the whole run."""
    photos = _photos(tmp_path, 4, odd=True)
    with Library.open(tmp_path / "lib") as lib:
        rep = lib.add([photos], generate_captions=False)
    assert (rep.added, rep.failed) == (4, [])


def test_the_folders_indexed_are_recorded_as_roots(tmp_path: Path) -> None:
    photos = _photos(tmp_path, 3)
    (photos / "sub").mkdir()
    shutil.move(photos / PHOTOS[2], photos / "sub" / PHOTOS[2])
    lone = tmp_path / "lone"
    lone.mkdir()
    shutil.copy(GALLERY / "images" / PHOTOS[5], lone / "one.jpg")
    with Library.open(tmp_path / "lib") as lib:
        lib.add([photos / "sub"], generate_captions=False)
        lib.add([photos, photos / "sub", lone / "one.jpg", tmp_path / "missing"], generate_captions=False)
        assert sorted(lib.roots().values()) == [str(lone), str(photos), str(photos / "sub")]


def test_links_out_of_a_root_are_indexed_only_when_asked(tmp_path: Path) -> None:
    photos = _photos(tmp_path, 2)
    outside = tmp_path / "outside"
    outside.mkdir()
    shutil.copy(GALLERY / "images" / PHOTOS[3], outside / "x.jpg")
    (photos / "x.jpg").symlink_to(outside / "x.jpg")
    with Library.open(tmp_path / "lib") as lib:
        rep = lib.add([photos], generate_captions=False)
        assert rep.added == 2 and "pass --follow-links" in rep.warnings[0]
        assert lib.add([photos], generate_captions=False, follow_links=True).added == 1
        assert str(photos / "x.jpg") in lib.catalog.all_paths()


def test_a_full_disk_stops_the_run_in_one_line_and_the_next_run_resumes(tmp_path: Path) -> None:
    photos = _photos(tmp_path, 12)
    with Library.open(tmp_path / "lib") as lib:
        lib.add([photos / PHOTOS[0]], generate_captions=False)
        db = lib.catalog.connection_for_tests()
        pages = db.execute("PRAGMA page_count").fetchone()[0]
        db.execute(f"PRAGMA max_page_count={pages + 8}")  # SQLITE_FULL after a few more photos
        with pytest.raises(StorageError) as exc:
            lib.add([photos], generate_captions=False)
        msg = str(exc.value)
        assert msg.startswith("could not write the catalog catalog.db: ") and msg.endswith(
            ": No space left on device; free some space and run the command again"
        )
        partial = lib.stats()["images"]
        assert 1 <= partial < 12
        db.execute(f"PRAGMA max_page_count={pages * 1000}")  # space freed
        rep = lib.add([photos], generate_captions=False)
        assert (rep.unchanged, rep.added) == (partial, 12 - partial)
        assert all(ok for _, ok, _ in lib.doctor())


def test_captions_from_a_csv_on_a_full_disk_are_a_storage_error(tmp_path: Path) -> None:
    photos = _photos(tmp_path, 4)
    csv = tmp_path / "captions.csv"
    csv.write_text(
        "image,caption\n" + "".join(f"{n},a long caption about photo {n} " * 20 + "\n" for n in PHOTOS[:4])
    )
    with Library.open(tmp_path / "lib") as lib:
        lib.add([photos], generate_captions=False)
        db = lib.catalog.connection_for_tests()
        db.execute(f"PRAGMA max_page_count={db.execute('PRAGMA page_count').fetchone()[0]}")
        with pytest.raises(
            StorageError, match="could not write the catalog catalog.db: No space left on device"
        ):
            lib.add([photos], captions_csv=csv, generate_captions=False)
        assert lib.stats()["captions"] == 0  # nothing half-attached
        db.execute("PRAGMA max_page_count=1000000")
        assert lib.add([photos], captions_csv=csv, generate_captions=False).captions_added == 4
