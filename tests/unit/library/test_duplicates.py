"""The duplicate finder on real Flickr8k photos: edited copies are grouped with their original, exact copies
are 'exact', two different shots of one scene stay apart, the suggested copy follows ``prefer``, withheld
photos take no part, and nothing is deleted."""

from __future__ import annotations

import os
import shutil
import sqlite3
from pathlib import Path

import pytest
from PIL import Image

from pixsearch import Library
from pixsearch.errors import QueryError
from pixsearch.library.duplicates import DEFAULT_THRESHOLD

ORIGINAL = "1082379191_ec1e53f996.jpg"  # test split, aspect kept (384x288)
EXACT = "1119015538_e8e796281e.jpg"  # test split
# Consecutive shots by one uploader (Flickr ids 4 and 8 apart): the same place a moment later, the
# hardest different-photo pairs of the benchmark's development set (similarity 0.48 and 0.44)
ROPE_SWING = ("186890601_8a6b0f1769.jpg", "186890605_ddff5b694e.jpg")
FIRE = ("539493423_9d7d1b77fa.jpg", "539493431_744eb1abaa.jpg")
OLD = 978_307_200  # 2001-01-01: older than any Flickr8k photo's capture time


@pytest.fixture(scope="module")
def photos(flickr8k: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    d = tmp_path_factory.mktemp("dups") / "photos"
    (d / "copies").mkdir(parents=True)
    for n in (ORIGINAL, EXACT, *ROPE_SWING, *FIRE):
        shutil.copy(flickr8k / "images" / n, d / n)
    shutil.copy(flickr8k / "images" / EXACT, d / "copies" / EXACT)  # the same bytes elsewhere
    with Image.open(flickr8k / "images" / ORIGINAL) as img:
        rgb = img.convert("RGB")
    w, h = rgb.size
    rgb.resize((w // 2, h // 2), Image.Resampling.LANCZOS).save(d / "copies" / "small.jpg", quality=40)
    rgb.crop((round(0.06 * w), round(0.02 * h), round(0.96 * w), round(0.92 * h))).save(  # 10% of each side
        d / "copies" / "cropped.jpg", quality=90
    )
    os.utime(d / "copies" / "small.jpg", (OLD, OLD))  # the oldest file: what --prefer oldest keeps
    return d


@pytest.fixture(scope="module")
def lib_dir(photos: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    d = tmp_path_factory.mktemp("dupslib")
    with Library.open(d) as lib:
        rep = lib.add([photos])
        assert rep.added == 8 and rep.duplicates == 1 and not rep.failed
    return d


def test_edited_copies_are_grouped_with_their_original_and_exact_copies_are_exact(
    lib_dir: Path, photos: Path
) -> None:
    with Library.open(lib_dir) as lib:
        found = lib.duplicates()
    assert found.threshold == DEFAULT_THRESHOLD and found.photos == 8  # 9 files, one pair of exact copies
    by_kind = {g.kind: g for g in found.groups}
    assert len(found.groups) == 2 and set(by_kind) == {"exact", "near"}
    near = by_kind["near"]
    assert [p.path for p in near.photos] == [
        str(photos / ORIGINAL),  # largest first: the one to keep
        str(photos / "copies" / "cropped.jpg"),
        str(photos / "copies" / "small.jpg"),
    ]
    assert near.best == 0 and near.photos[0].similarity == 1.0
    assert all(DEFAULT_THRESHOLD <= p.similarity < 1.0 for p in near.photos[1:])
    assert near.similarity == min(p.similarity for p in near.photos)
    first = near.photos[0]
    assert (first.width, first.height) == (384, 288) and first.bytes == (photos / ORIGINAL).stat().st_size
    exact = by_kind["exact"]
    assert sorted(p.path for p in exact.photos) == sorted(
        [str(photos / "copies" / EXACT), str(photos / EXACT)]
    )
    assert exact.similarity == 1.0 and len({p.image_id for p in exact.photos}) == 1
    assert all(p.is_file() for p in photos.rglob("*.jpg")) and len(list(photos.rglob("*.jpg"))) == 9


def test_different_shots_of_one_scene_are_not_duplicates(lib_dir: Path, photos: Path) -> None:
    """The rope swing and the fire juggler: the same place and people a moment later, by one uploader."""
    with Library.open(lib_dir) as lib:
        grouped = {Path(p.path).name for g in lib.duplicates().groups for p in g.photos}
        assert not grouped & {*ROPE_SWING, *FIRE}
        # what keeps them apart is the pixels: the joint space puts each pair close together
        ids = [lib.catalog.image_for_path(str(photos / n)) for n in (*ROPE_SWING, *FIRE)]
        v = lib.vectors.view("images").get(ids)
    assert float(v[0] @ v[1]) > 0.75 and float(v[2] @ v[3]) > 0.75


def test_best_copy_is_the_largest_or_the_oldest(lib_dir: Path, photos: Path) -> None:
    with Library.open(lib_dir) as lib:
        largest = {g.kind: g for g in lib.duplicates(prefer="largest").groups}["near"]
        oldest = {g.kind: g for g in lib.duplicates(prefer="oldest").groups}["near"]
    assert largest.photos[largest.best].path == str(photos / ORIGINAL)
    assert oldest.photos[oldest.best].path == str(photos / "copies" / "small.jpg")
    assert oldest.photos[0].modified == OLD
    # the similarity is to the suggested copy: the original is now one of the others
    assert oldest.photos[0].similarity == 1.0 and all(p.similarity < 1.0 for p in oldest.photos[1:])


def test_a_stricter_threshold_finds_fewer_copies_and_bad_options_are_one_line_errors(lib_dir: Path) -> None:
    with Library.open(lib_dir) as lib:
        assert [g.kind for g in lib.duplicates(threshold=1.0).groups] == ["exact"]
        assert len(lib.duplicates(threshold=0.0).groups) >= 2
        for bad in (
            {"threshold": 1.5},
            {"threshold": -0.1},
            {"threshold": float("nan")},
            {"prefer": "newest"},
        ):
            with pytest.raises(QueryError):
                lib.duplicates(**bad)  # type: ignore[arg-type]


def test_withheld_photos_are_in_no_group(lib_dir: Path, photos: Path, tmp_path: Path) -> None:
    """In a region that withholds flagged photos, a flagged copy neither shows nor links others."""
    d = tmp_path / "lib"
    shutil.copytree(lib_dir, d)
    with Library.open(d) as lib:
        ids = {Path(p).name: lib.catalog.image_for_path(p) for p in lib.catalog.all_paths()}
    db = sqlite3.connect(d / "catalog.db")
    flagged = {ids[ORIGINAL], ids[EXACT]}
    db.executemany(
        "INSERT OR REPLACE INTO flags(image_id, flagged, evidence, policy) VALUES (?, ?, '{}', 'test')",
        [(i, int(i in flagged)) for i in set(ids.values())],
    )
    db.commit()
    db.close()
    with Library.open(d) as lib:
        assert len(lib.duplicates().groups) == 2  # the default region shows everything
        seen = lib.with_region("restricted").duplicates()
    shown = [Path(p.path).name for g in seen.groups for p in g.photos]
    assert ORIGINAL not in shown and EXACT not in shown
    assert seen.photos == 6  # the copies of the original are still compared with each other


def test_an_empty_library_has_no_duplicates(tmp_path: Path) -> None:
    with Library.open(tmp_path / "lib") as lib:
        found = lib.duplicates()
    assert found.groups == () and found.photos == 0 and found.to_dict()["groups"] == []
