"""``GET /api/duplicates``: groups of copies with the copy to keep first, paths relative to their indexed
root (never a server path), the URLs a page shows them with; withheld photos in no group; bad options 422.

A library of its own: gallery photos (real models) plus, in a second folder, an exact and a resized copy.
"""

from __future__ import annotations

import shutil
import sqlite3
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from PIL import Image

from pixsearch import Library
from pixsearch.api.app import create_app
from pixsearch.config import load_settings
from tests.conftest import GALLERY

LOCAL = "http://127.0.0.1"
PHOTOS = sorted(p.name for p in (GALLERY / "images").glob("*.jpg"))[:6]
KEEP = PHOTOS[0]  # resized in the copies folder
TWICE = PHOTOS[1]  # the same bytes in the copies folder


@pytest.fixture(scope="module")
def lib_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    base = tmp_path_factory.mktemp("apidups")
    (base / "photos").mkdir()
    (base / "copies").mkdir()
    for n in PHOTOS:
        shutil.copy(GALLERY / "images" / n, base / "photos" / n)
    shutil.copy(GALLERY / "images" / TWICE, base / "copies" / "same.jpg")
    with Image.open(GALLERY / "images" / KEEP) as img:
        small = img.convert("RGB").resize((img.width // 2, img.height // 2), Image.Resampling.LANCZOS)
    small.save(base / "copies" / "small.jpg", quality=40)
    with Library.open(base / "lib") as lib:
        rep = lib.add([base / "photos", base / "copies"], generate_captions=False)
        assert rep.added == 7 and rep.duplicates == 1
    return base / "lib"


@pytest.fixture(scope="module")
def client(lib_dir: Path) -> Iterator[TestClient]:
    with TestClient(create_app(load_settings(library=lib_dir)), base_url=LOCAL) as c:
        yield c


def _groups(client: TestClient, **params: object) -> list[dict]:
    r = client.get("/api/duplicates", params=params)
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["prefer"] == params.get("prefer", "largest") and 0 <= body["threshold"] <= 1
    return sorted(body["groups"], key=lambda g: g["kind"])


def test_groups_name_photos_by_root_and_relative_path(client: TestClient, lib_dir: Path) -> None:
    exact, near = _groups(client)
    assert (exact["kind"], near["kind"]) == ("exact", "near")
    roots = {p["root"] for g in (exact, near) for p in g["photos"]}
    assert len(roots) == 2 and all(isinstance(r, int) for r in roots)  # photos/ and copies/
    assert sorted(p["path"] for p in exact["photos"]) == sorted([TWICE, "same.jpg"])
    assert [p["path"] for p in near["photos"]] == [KEEP, "small.jpg"]  # the largest first
    assert near["best"] == 0 and near["photos"][0]["similarity"] == 1.0
    assert (
        0.5 < near["photos"][1]["similarity"] <= 1.0 and near["similarity"] == near["photos"][1]["similarity"]
    )
    first = near["photos"][0]
    with Image.open(GALLERY / "images" / KEEP) as img:
        assert (first["width"], first["height"]) == img.size
    assert first["bytes"] == (GALLERY / "images" / KEEP).stat().st_size and "taken_at" in first
    iid = first["image_id"]
    assert first["thumbnail_url"] == f"/api/photos/{iid}/thumbnail"
    assert client.get(first["thumbnail_url"]).status_code == 200
    text = str([exact, near])
    assert str(lib_dir.parent) not in text  # no server path anywhere


def test_prefer_and_threshold_reach_the_library(client: TestClient) -> None:
    exact, near = _groups(client, prefer="oldest", threshold=0.3)
    assert {p["path"] for p in near["photos"]} == {KEEP, "small.jpg"}  # the copies are newer files
    assert near["photos"][0]["path"] == KEEP
    assert [g["kind"] for g in _groups(client, threshold=1.0)] == ["exact"]


@pytest.mark.parametrize(
    "params", [{"threshold": "1.5"}, {"threshold": "-1"}, {"threshold": "nan"}, {"prefer": "newest"}]
)
def test_bad_options_are_422(client: TestClient, params: dict[str, str]) -> None:
    assert client.get("/api/duplicates", params=params).status_code == 422


def test_withheld_photos_are_in_no_group(lib_dir: Path, tmp_path: Path) -> None:
    d = tmp_path / "lib"
    shutil.copytree(lib_dir, d)
    db = sqlite3.connect(d / "catalog.db")
    keep = db.execute("SELECT image_id FROM paths WHERE path LIKE ?", (f"%/photos/{KEEP}",)).fetchone()[0]
    ids = [r[0] for r in db.execute("SELECT id FROM images")]
    db.executemany(
        "INSERT OR REPLACE INTO flags(image_id, flagged, evidence, policy) VALUES (?, ?, '{}', 'test')",
        [(i, int(i == keep)) for i in ids],
    )
    db.commit()
    db.close()
    with TestClient(create_app(load_settings(library=d)), base_url=LOCAL) as c:
        assert [g["kind"] for g in _groups(c)] == ["exact", "near"]  # the default region shows all
        groups = _groups(c, region="restricted")
    assert [g["kind"] for g in groups] == ["exact"]  # the flagged photo and its only link are gone
    assert all(p["image_id"] != keep for g in groups for p in g["photos"])
