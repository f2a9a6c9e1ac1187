"""REST API: a server's region is a floor. ``pixsearch serve --region restricted`` answers a request for a
looser (or unknown) region with 403 ``region_not_allowed`` on every route that takes ``region``, and a
flagged photo's bytes never come back; a stricter region than the server's is allowed. New photo bytes
are checked before they are captioned.

Runs the real app (real models, the 24-photo gallery library) through FastAPI's TestClient.
"""

from __future__ import annotations

import io
import shutil
import sqlite3
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from PIL import Image

from pixsearch.api.app import create_app
from pixsearch.config import load_settings
from pixsearch.policy.rules import DISCLAIMER
from tests.conftest import GALLERY

LOCAL = "http://127.0.0.1"  # the Host a server on 127.0.0.1 answers to
FLAGGED = 3  # flagged by hand in the copy below; the rest checked and clear
# A gallery photo whose human captions name children and whose generated caption does not ("a group of
# people are sitting on a bench"): only the photo check can keep a caption of it from being written.
CHILD = GALLERY / "images" / "1468389504_c724bdcad0.jpg"
DOG = GALLERY / "images" / "1319634306_816f21677f.jpg"  # a dog alone: the real photo check passes it


def _jpeg(path: Path, quality: int = 80) -> bytes:
    """The same picture under other bytes: not in the library (by hash), a new photo to the server."""
    buf = io.BytesIO()
    Image.open(path).convert("RGB").save(buf, "JPEG", quality=quality)
    return buf.getvalue()


@pytest.fixture(scope="module")
def lib_dir(built_library: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    d = tmp_path_factory.mktemp("regionlib") / "lib"
    shutil.copytree(built_library, d)
    db = sqlite3.connect(d / "catalog.db")
    ids = [r[0] for r in db.execute("SELECT id FROM images")]
    db.executemany(
        "INSERT OR REPLACE INTO flags(image_id, flagged, evidence, policy) VALUES (?, ?, '{}', 'test')",
        [(i, int(i == FLAGGED)) for i in ids],
    )
    db.commit()
    db.close()
    return d


@pytest.fixture(scope="module")
def restricted(lib_dir: Path) -> Iterator[TestClient]:
    """As ``pixsearch serve --region restricted`` builds it."""
    with TestClient(create_app(load_settings(library=lib_dir, region="restricted")), base_url=LOCAL) as c:
        yield c


@pytest.fixture(scope="module")
def open_server(lib_dir: Path) -> Iterator[TestClient]:
    with TestClient(create_app(load_settings(library=lib_dir)), base_url=LOCAL) as c:
        yield c


def _err(r, status: int, code: str) -> dict:  # type: ignore[no-untyped-def]
    assert r.status_code == status, r.text
    body = r.json()
    assert body["error"]["code"] == code and body["error"]["message"], body
    return body


def _requests(client: TestClient, region: str) -> dict[str, object]:
    """Every route that takes ``region``, asked with ``region``, about photo FLAGGED (or its bytes)."""
    data = client.get("/api/photos/5/file").content  # a photo every region shows
    assert data[:2] == b"\xff\xd8"
    q = {"region": region}
    calls = {
        "search": lambda: client.get("/api/search", params={"q": "children playing", **q}),
        "search_image": lambda: client.post("/api/search/image", params=q, files={"file": ("a.jpg", data)}),
        "similar": lambda: client.get(f"/api/photos/{FLAGGED}/similar", params=q),
        "describe": lambda: client.get(f"/api/photos/{FLAGGED}/describe", params=q),
        "describe_upload": lambda: client.post("/api/describe", params=q, files={"file": ("a.jpg", data)}),
        "photo": lambda: client.get(f"/api/photos/{FLAGGED}", params=q),
        "thumbnail": lambda: client.get(f"/api/photos/{FLAGGED}/thumbnail", params=q),
        "file": lambda: client.get(f"/api/photos/{FLAGGED}/file", params=q),
    }
    features = client.get("/api/stats").json()["features"]
    if features["caption"]:
        calls["caption"] = lambda: client.get(f"/api/photos/{FLAGGED}/caption", params=q)
        calls["caption_upload"] = lambda: client.post(
            "/api/caption", params=q, files={"file": ("a.jpg", data)}
        )
    if features["score"]:
        calls["score"] = lambda: client.get(f"/api/photos/{FLAGGED}/score", params={"text": "a dog", **q})
        calls["score_upload"] = lambda: client.post(
            "/api/score", params=q, files={"file": ("a.jpg", data)}, data={"text": "a dog"}
        )
    return calls


ROUTES = ["search", "search_image", "similar", "describe", "describe_upload", "photo", "thumbnail", "file"]
ROUTES += ["caption", "caption_upload", "score", "score_upload"]


@pytest.mark.parametrize("route", ROUTES)
@pytest.mark.parametrize("region", ["default", "atlantis"])
def test_a_looser_or_unknown_region_is_403(restricted: TestClient, route: str, region: str) -> None:
    calls = _requests(restricted, region)
    assert route in calls, f"the {route} route's model is not installed"
    r = calls[route]()  # type: ignore[operator]
    body = _err(r, 403, "region_not_allowed")
    assert "'restricted'" in body["error"]["message"]  # names the server's region
    assert not r.headers["content-type"].startswith("image/")


def test_a_flagged_photos_bytes_never_come_back(restricted: TestClient, open_server: TestClient) -> None:
    original = open_server.get(f"/api/photos/{FLAGGED}/file").content
    assert original[:2] == b"\xff\xd8"
    for url in (f"/api/photos/{FLAGGED}", f"/api/photos/{FLAGGED}/thumbnail", f"/api/photos/{FLAGGED}/file"):
        assert open_server.get(url).status_code == 200  # the default server shows it
        for params in ({}, {"region": "restricted"}, {"region": "default"}, {"region": "atlantis"}):
            r = restricted.get(url, params=params)
            assert r.status_code in (403, 451), (url, params, r.status_code)
            assert r.headers["content-type"].startswith("application/json")
            assert original not in r.content and b"\xff\xd8" not in r.content[:4]
    # In lists it stays a Withheld entry whatever region is asked for.
    res = restricted.get("/api/photos/1/similar", params={"k": 23}).json()["results"]
    assert {"withheld": True, "disclaimer": DISCLAIMER} in res
    assert FLAGGED not in {x.get("image_id") for x in res}


def test_stats_name_the_region_in_force(restricted: TestClient, open_server: TestClient) -> None:
    assert restricted.get("/api/stats").json()["region"] == "restricted"
    assert open_server.get("/api/stats").json()["region"] == "default"


def test_a_stricter_region_than_the_servers_is_allowed(open_server: TestClient) -> None:
    q = "children playing"
    assert open_server.get("/api/search", params={"q": q, "region": "default"}).status_code == 200
    _err(open_server.get("/api/search", params={"q": q, "region": "restricted"}), 451, "blocked")
    _err(open_server.get(f"/api/photos/{FLAGGED}/file", params={"region": "restricted"}), 451, "blocked")
    r = open_server.get("/api/search", params={"q": "a dog", "region": "restricted"})
    assert r.status_code == 200 and r.json()["results"]
    _err(
        open_server.get("/api/search", params={"q": "a dog", "region": "atlantis"}), 403, "region_not_allowed"
    )


def test_caption_upload_of_a_child_photo_is_refused(restricted: TestClient, open_server: TestClient) -> None:
    """The generated caption names no child, so only the photo check on the new bytes refuses it."""
    assert restricted.get("/api/stats").json()["features"]["caption"], "the captioner is not installed"
    from pixsearch.policy.rules import load_policy

    data = _jpeg(CHILD)
    r = open_server.post("/api/caption", files={"file": ("c.jpg", data)})  # the default region captions it
    assert r.status_code == 200, r.text
    assert not load_policy(load_settings(region="restricted")).check_query(r.json()["caption"]).blocked
    body = _err(restricted.post("/api/caption", files={"file": ("c.jpg", data)}), 451, "blocked")
    assert body["disclaimer"] == DISCLAIMER and "caption" not in body
    r = open_server.post("/api/caption", params={"region": "restricted"}, files={"file": ("c.jpg", data)})
    _err(r, 451, "blocked")
    dog = _jpeg(DOG)  # a photo the check passes still gets its caption
    assert restricted.post("/api/caption", files={"file": ("d.jpg", dog)}).json()["caption"].strip()
