"""``GET /api/timeline``: photos per month of capture, oldest first, and the undated ones; each month's count
is what the date filter of ``/api/search`` finds for it (both in UTC, file times included); photos the
region withholds count nowhere.

A library of its own: gallery photos re-saved with EXIF capture times written by the test (Pillow), one
with no EXIF but an old file time, one with neither (a file time in 2099 is absurd, so no time at all).
"""

from __future__ import annotations

import os
import sqlite3
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from pixsearch import Library
from pixsearch.api.app import create_app
from pixsearch.config import load_settings
from tests.conftest import GALLERY
from tests.unit.indexing.metadata.photos import exif_for, photo

LOCAL = "http://127.0.0.1"
SOURCES = sorted((GALLERY / "images").glob("*.jpg"))[:7]
# file name -> (EXIF DateTimeOriginal, OffsetTimeOriginal) or None (no EXIF time)
TAKEN: dict[str, tuple[str, str] | None] = {
    "may.jpg": ("2019:05:03 10:00:00", "+00:00"),
    "june_in_paris.jpg": ("2019:06:01 01:00:00", "+02:00"),  # 2019-05-31 23:00 UTC: a May photo
    "july.jpg": ("2019:07:14 12:00:00", "+00:00"),
    "new_year.jpg": ("2021:01:02 08:00:00", "+01:00"),
    "january.jpg": ("2021:01:20 18:30:00", "-05:00"),
    "scanned.jpg": None,  # the file's time: 2018-03
    "undated.jpg": None,  # a file time in 2099: absurd, so no time
}
FILE_TIMES = {
    "scanned.jpg": datetime(2018, 3, 4, 5, 6, 7, tzinfo=UTC).timestamp(),
    "undated.jpg": datetime(2099, 1, 1, tzinfo=UTC).timestamp(),
}
FLAGGED = ("new_year.jpg", "scanned.jpg", "undated.jpg")  # withheld in the restricted region


@pytest.fixture(scope="module")
def lib_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    base = tmp_path_factory.mktemp("timeline")
    for src, (name, taken) in zip(SOURCES, TAKEN.items(), strict=True):
        exif = exif_for(*taken, make="Canon", model="Canon EOS 5D") if taken else None
        p = photo(src, base / "photos" / name, exif)
        if name in FILE_TIMES:
            os.utime(p, (FILE_TIMES[name], FILE_TIMES[name]))
    with Library.open(base / "lib") as lib:
        rep = lib.add([base / "photos"], generate_captions=False)
        assert rep.added == len(TAKEN) and not rep.failed
    db = sqlite3.connect(base / "lib" / "catalog.db")
    ids = {Path(p).name: i for p, i in db.execute("SELECT path, image_id FROM paths")}
    db.executemany(
        "INSERT OR REPLACE INTO flags(image_id, flagged, evidence, policy) VALUES (?, ?, '{}', 'test')",
        [(i, int(n in FLAGGED)) for n, i in ids.items()],
    )
    db.commit()
    db.close()
    return base / "lib"


@pytest.fixture(scope="module")
def client(lib_dir: Path) -> Iterator[TestClient]:
    with TestClient(create_app(load_settings(library=lib_dir)), base_url=LOCAL) as c:
        yield c


def _timeline(client: TestClient, **params: str) -> tuple[list[tuple[str, int]], int]:
    r = client.get("/api/timeline", params=params)
    assert r.status_code == 200, r.text
    body = r.json()
    assert set(body) == {"months", "undated"}
    return [(m["month"], m["count"]) for m in body["months"]], body["undated"]


def _next_month(m: str) -> str:
    y, mo = map(int, m.split("-"))
    return f"{y + mo // 12}-{mo % 12 + 1:02d}"


def test_months_oldest_first_with_the_undated(client: TestClient) -> None:
    months, undated = _timeline(client)
    assert months == [("2018-03", 1), ("2019-05", 2), ("2019-07", 1), ("2021-01", 2)]
    assert undated == 1
    assert sum(n for _, n in months) + undated == len(TAKEN)


def test_each_month_counts_what_its_date_filter_finds(client: TestClient) -> None:
    """A click on a month browses ``after=M&before=M+1``: the page shows exactly the count it drew."""
    for month, count in _timeline(client)[0]:
        r = client.get("/api/search", params={"after": month, "before": _next_month(month), "k": 50})
        assert r.status_code == 200, r.text
        got = r.json()["results"]
        assert len(got) == count, (month, [x["path"] for x in got])
        assert all(x["taken_at"] for x in got)


def test_withheld_photos_count_nowhere(client: TestClient) -> None:
    months, undated = _timeline(client, region="restricted")
    assert months == [("2019-05", 2), ("2019-07", 1), ("2021-01", 1)]  # 2018-03 held only a withheld photo
    assert undated == 0


def test_a_restricted_server_answers_for_its_own_region(lib_dir: Path) -> None:
    s = load_settings(library=lib_dir, region="restricted")
    with TestClient(create_app(s), base_url=LOCAL) as c:
        assert _timeline(c) == ([("2019-05", 2), ("2019-07", 1), ("2021-01", 1)], 0)
        r = c.get("/api/timeline", params={"region": "default"})  # looser than the server's floor
        assert r.status_code == 403 and r.json()["error"]["code"] == "region_not_allowed"


def test_an_empty_library_has_no_months(tmp_path: Path) -> None:
    with TestClient(create_app(load_settings(library=tmp_path / "lib")), base_url=LOCAL) as c:
        assert _timeline(c) == ([], 0)
