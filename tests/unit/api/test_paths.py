"""What the REST API says about where photos are: paths relative to the folder that was indexed plus that
root's id, never a path of the server's file system; names that are not UTF-8 shown with U+FFFD and still
served; a file that changed since it was indexed is 409, not served as the photo.

A library of its own (real gallery photos, real models) with names in Latin-1, Shift-JIS and plain
invalid bytes, and a link out of the folder indexed with ``follow_links``.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from pixsearch import Library
from pixsearch.api.app import create_app
from tests.conftest import GALLERY

PHOTOS = sorted(p.name for p in (GALLERY / "images").glob("*.jpg"))
ODD = [b"caf\xe9.jpg", "写真".encode("shift_jis") + b".jpg", b"\xff\xfe.jpg"]
SHOWN = [n.decode("utf-8", "replace") for n in ODD]  # "caf\ufffd.jpg", ...


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[TestClient, Path]]:
    base = tmp_path_factory.mktemp("paths")
    photos = base / "photos"
    (photos / "dogs").mkdir(parents=True)
    for name, src in zip(ODD, PHOTOS, strict=False):
        shutil.copy(GALLERY / "images" / src, os.fsdecode(os.fsencode(photos) + b"/" + name))
    shutil.copy(GALLERY / "images" / PHOTOS[3], photos / "dogs" / "rex.jpg")
    (base / "outside").mkdir()
    shutil.copy(GALLERY / "images" / PHOTOS[4], base / "outside" / "linked.jpg")
    (photos / "link.jpg").symlink_to(base / "outside" / "linked.jpg")
    with Library.open(base / "lib") as lib:
        assert lib.add([photos], generate_captions=False, follow_links=True).added == 5
    with TestClient(create_app(library=base / "lib", allowed_hosts=["testserver"])) as c:
        yield c, base


def _ids(client: TestClient) -> dict[str, int]:
    res = client.get("/api/search", params={"q": "a photo", "k": 10}).json()["results"]
    return {r["path"]: r["image_id"] for r in res}


def test_search_gives_paths_relative_to_their_root(served: tuple[TestClient, Path]) -> None:
    client, base = served
    r = client.get("/api/search", params={"q": "a photo", "k": 10})
    assert r.status_code == 200 and str(base) not in r.text  # no server path, anywhere in the page
    res = r.json()["results"]
    assert {x["path"] for x in res} == {*SHOWN, "dogs/rex.jpg", "link.jpg"}
    roots = {x["root"] for x in res}
    assert len(roots) == 1 and isinstance(roots.pop(), int)
    rex = next(x for x in res if x["path"] == "dogs/rex.jpg")
    assert rex["name"] == "rex.jpg" and rex["paths"] == [{"root": rex["root"], "path": "dogs/rex.jpg"}]


def test_a_photo_record_and_its_file_by_id(served: tuple[TestClient, Path]) -> None:
    client, base = served
    ids = _ids(client)
    for shown, raw in zip(SHOWN, ODD, strict=True):
        r = client.get(f"/api/photos/{ids[shown]}")
        assert r.status_code == 200 and str(base) not in r.text
        info = r.json()
        assert (info["path"], info["name"]) == (shown, shown) and isinstance(info["root"], int)
        f = client.get(f"/api/photos/{ids[shown]}/file")
        assert f.status_code == 200, f.text
        assert f.content == Path(os.fsdecode(os.fsencode(base / "photos") + b"/" + raw)).read_bytes()
        assert f.headers["content-type"] == "image/jpeg" and "inline" in f.headers["content-disposition"]
    d = client.get(f"/api/photos/{ids['dogs/rex.jpg']}/describe", params={"k": 3})
    assert d.status_code == 200 and str(base) not in d.text


def test_similar_pages_give_relative_paths_too(served: tuple[TestClient, Path]) -> None:
    client, base = served
    ids = _ids(client)
    r = client.get(f"/api/photos/{ids['dogs/rex.jpg']}/similar", params={"k": 4})
    assert r.status_code == 200 and str(base) not in r.text and r.json()["results"]
    with (GALLERY / "images" / PHOTOS[3]).open("rb") as f:
        up = client.post("/api/search/image", files={"file": ("q.jpg", f.read())}, data={"k": "3"})
    assert up.status_code == 200 and str(base) not in up.text


def test_a_link_retargeted_since_indexing_is_not_served(served: tuple[TestClient, Path]) -> None:
    client, base = served
    iid = _ids(client)["link.jpg"]
    link = base / "photos" / "link.jpg"
    text = base / "outside" / "secret.txt"
    text.write_bytes(b"s" * link.stat().st_size)  # same size: the old check served it as image/jpeg
    link.unlink()
    link.symlink_to(text)
    r = client.get(f"/api/photos/{iid}/file")
    assert r.status_code == 409 and r.json()["error"]["code"] == "file_changed"
    assert "run `pixsearch index`" in r.json()["error"]["message"] and b"sss" not in r.content
