"""``photo_meta``: rows written through ``Enrichments.save`` in a transaction, read per photo, and the id
sets filters use (taken between, camera, near a position, at a place)."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pytest

from pixsearch.errors import QueryError
from pixsearch.storage.catalog import Catalog
from pixsearch.storage.photo_meta import MetaRow, MetaRows, haversine_km


def _ts(*args: int) -> float:
    return datetime(*args, tzinfo=UTC).timestamp()  # type: ignore[misc]


ROWS = [
    MetaRow(1, "2019-05-01T12:00:00+02:00", _ts(2019, 5, 1, 10), "exif", "Canon", "Canon EOS 5D Mark IV",
            "EF50mm f/1.8", 48.8566, 2.3522, "Paris, Île-de-France", "France", 1),
    MetaRow(2, "2020-01-02T03:04:05+00:00", _ts(2020, 1, 2, 3, 4, 5), "file"),
    MetaRow(3, "2018-12-31T23:00:00", _ts(2018, 12, 31, 23), "exif", "Apple", "iPhone 12 mini", None,
            40.7128, -74.0060, "New York City, New York", "United States", 6),
    MetaRow(4, None, None, "none"),
    MetaRow(5, "2019-07-01T08:00:00+12:00", _ts(2019, 6, 30, 20), "exif", "NIKON CORPORATION", "NIKON D750",
            None, -16.5, 179.9, "Labasa", "Fiji", None),
    MetaRow(6, "2019-07-02T08:00:00-11:00", _ts(2019, 7, 2, 19), "exif", None, None, None, -16.6, -179.9,
            None, None, None),
]  # fmt: skip


@pytest.fixture
def cat(tmp_path: Path) -> Catalog:
    c = Catalog.open(tmp_path / "c.db")
    with c.transaction():
        for n in range(1, 8):
            iid = c.add_image(f"h{n}", 4, 3, None, np.ones(4, dtype=np.float32))
            c.set_path(f"/p/{n}.jpg", iid, 10, 1)
        c.enrichments.save("metadata", "meta-v1|geo", [r.image_id for r in ROWS], MetaRows(ROWS))
    return c


def test_rows_are_saved_marked_done_and_read_back(cat: Catalog) -> None:
    assert cat.enrichments.not_done("metadata", "meta-v1|geo") == [7]
    got = cat.photo_meta.meta_for([1, 2, 3, 7, 99])
    assert sorted(got) == [1, 2, 3]  # 7 not read yet, 99 unknown
    assert got[1].taken_at == "2019-05-01T12:00:00+02:00" and got[1].taken_ts == _ts(2019, 5, 1, 10)
    assert (got[1].lens, got[1].place, got[1].country, got[1].orientation) == (
        "EF50mm f/1.8", "Paris, Île-de-France", "France", 1,
    )  # fmt: skip
    assert got[1].extractor == "meta-v1|geo" and got[2].taken_source == "file"
    assert (got[1].camera, got[3].camera, got[2].camera) == (
        "Canon EOS 5D Mark IV",
        "Apple iPhone 12 mini",
        None,
    )
    assert cat.photo_meta.meta_for([5])[5].camera == "NIKON D750"  # "NIKON CORPORATION" + "NIKON D750"


def test_a_redone_photo_replaces_its_row_and_a_deleted_one_loses_it(cat: Catalog) -> None:
    with cat.transaction():
        cat.enrichments.save("metadata", "meta-v2", [2], MetaRows([MetaRow(2, None, None, "none")]))
    assert cat.photo_meta.meta_for([2])[2] == MetaRow(2, extractor="meta-v2")
    with cat.transaction():
        cat.remove_path("/p/1.jpg")
        cat.delete_orphans()
    assert cat.photo_meta.meta_for([1]) == {}  # ON DELETE CASCADE
    with pytest.raises(ValueError, match="taken_source"), cat.transaction():
        cat.enrichments.save("metadata", "x", [3], MetaRows([MetaRow(3, taken_source="guess")]))


def test_taken_between(cat: Catalog) -> None:
    pm = cat.photo_meta
    assert pm.ids_taken_between(_ts(2019, 1, 1), _ts(2020, 1, 1)) == {1, 5, 6}
    assert pm.ids_taken_between(_ts(2019, 5, 1, 10), _ts(2019, 5, 1, 10, 0, 1)) == {1}  # after is inclusive
    assert pm.ids_taken_between(None, _ts(2019, 5, 1, 10)) == {3}  # before is exclusive
    assert pm.ids_taken_between(_ts(2019, 7, 1)) == {2, 6}
    assert pm.ids_taken_between(_ts(2019, 7, 1), sources=("exif",)) == {6}  # camera clocks only
    assert pm.ids_taken_between() == {1, 2, 3, 5, 6} and pm.ids_taken_between(sources=()) == set()
    with pytest.raises(QueryError):
        pm.ids_taken_between(float("nan"))


def test_camera(cat: Catalog) -> None:
    pm = cat.photo_meta
    assert pm.ids_with_camera("canon") == {1}
    assert pm.ids_with_camera("EOS 5d") == {1}
    assert pm.ids_with_camera("canon eos") == {1}  # across make and model
    assert pm.ids_with_camera("iphone") == {3} and pm.ids_with_camera("nikon d7") == {5}
    assert pm.ids_with_camera("%") == set() and pm.ids_with_camera("_") == set()  # no wildcards
    assert pm.ids_with_camera("  ") == set() and pm.ids_with_camera("leica") == set()


def test_near(cat: Catalog) -> None:
    pm = cat.photo_meta
    assert pm.ids_near(48.85, 2.35, 5) == {1}
    assert pm.ids_near(48.85, 2.35, 0.01) == set()
    assert pm.ids_near(49.4431, 1.0993, 150) == {1}  # Rouen: Paris is ~112 km away
    assert pm.ids_near(49.4431, 1.0993, 100) == set()
    assert pm.ids_near(-16.55, 180.0, 30) == {5, 6}  # across the antimeridian
    assert pm.ids_near(-16.55, -180.0, 30) == {5, 6}
    assert pm.ids_near(89.99, 0, 6000) == {1, 3}  # a box over the pole spans every longitude
    assert haversine_km(48.8566, 2.3522, 40.7128, -74.0060) == pytest.approx(5837, rel=0.01)
    for bad in ((91, 0, 5), (0, 181, 5), (0, 0, 0), (0, 0, -1), (float("inf"), 0, 5)):
        with pytest.raises(QueryError):
            pm.ids_near(*bad)


def test_at_place(cat: Catalog) -> None:
    pm = cat.photo_meta
    assert pm.ids_at_place("paris") == {1} and pm.ids_at_place("PARIS") == {1}
    assert pm.ids_at_place("ile de france") == {1} and pm.ids_at_place("Île-de-France") == {1}
    assert pm.ids_at_place("france") == {1} and pm.ids_at_place("united states") == {3}
    assert pm.ids_at_place("new york") == {3} and pm.ids_at_place("york") == {3}
    assert pm.ids_at_place("par") == set()  # whole words
    assert pm.ids_at_place("france new") == set()  # place and country are not one phrase
    assert pm.ids_at_place("fiji") == {5} and pm.ids_at_place("") == set()


def test_counts(cat: Catalog) -> None:
    got = cat.photo_meta.counts()
    assert (got["photos_with_metadata"], got["photos_with_capture_time"]) == (6, 4)
    assert (got["photos_with_gps"], got["photos_with_place"]) == (4, 3)
