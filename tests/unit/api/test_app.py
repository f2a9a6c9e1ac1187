"""REST API: every endpoint, its errors (JSON with a stable code, never a 500) and the content policy.

Runs the real app (real models, the 24-photo gallery library) through FastAPI's TestClient.
"""

from __future__ import annotations

import io
import os
import shutil
import sqlite3
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from PIL import Image

from pixsearch.api.app import create_app
from pixsearch.api.worker import TOKEN_FILE, ensure_token
from pixsearch.policy.rules import DISCLAIMER

FLAGGED = 3  # the photo the tests flag for the restricted region


def _jpeg(path: Path, quality: int = 70) -> bytes:
    """A re-encoded copy of a photo: other bytes (not a duplicate), the same picture."""
    buf = io.BytesIO()
    Image.open(path).convert("RGB").save(buf, "JPEG", quality=quality)
    return buf.getvalue()


@pytest.fixture(scope="module")
def lib_dir(built_library: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A writable copy of the gallery library with policy flags: photo FLAGGED flagged, the rest checked."""
    d = tmp_path_factory.mktemp("apilib") / "lib"
    shutil.copytree(built_library, d)
    db = sqlite3.connect(d / "catalog.db")
    ids = [r[0] for r in db.execute("SELECT id FROM images")]
    db.executemany(
        "INSERT OR REPLACE INTO flags(image_id, flagged, evidence, policy) VALUES (?, ?, '{}', 'test')",
        [
            (
                i,
                int(i == FLAGGED),
            )
            for i in ids
        ],
    )
    db.commit()
    db.close()
    return d


TEST_HOSTS = ["testserver"]  # TestClient's Host: allowed here only, never by default


@pytest.fixture(scope="module")
def client(lib_dir: Path) -> Iterator[TestClient]:
    with TestClient(create_app(library=lib_dir, allowed_hosts=TEST_HOSTS)) as c:
        yield c


@pytest.fixture(scope="module")
def token(lib_dir: Path, client: TestClient) -> str:
    return (lib_dir / TOKEN_FILE).read_text().strip()


def _err(r, status: int, code: str) -> dict:  # type: ignore[no-untyped-def]
    assert r.status_code == status, r.text
    body = r.json()
    assert body["error"]["code"] == code and body["error"]["message"], body
    return body


def _path_of(client: TestClient, image_id: int) -> Path:
    """The photo's file on the server (the API itself gives only paths relative to their root)."""
    worker = client.app.state.worker  # type: ignore[attr-defined]
    return Path(worker.run_sync(lambda lib: lib.catalog.image_paths(image_id)[0].path))


# -- service -----------------------------------------------------------------------------------------
def test_health_and_stats(client: TestClient) -> None:
    assert client.get("/api/health").json()["status"] == "ok"
    s = client.get("/api/stats").json()
    assert s["images"] == 24 and s["captions"] >= 24
    assert "library" not in s  # the server's filesystem layout stays on the server
    assert set(s["features"]) == {"caption", "score"}


def test_docs_and_schema(client: TestClient) -> None:
    assert client.get("/docs").status_code == 200
    paths = client.get("/openapi.json").json()["paths"]
    for p in ("/api/search", "/api/search/image", "/api/photos", "/api/photos/{image_id}/similar"):
        assert p in paths


# -- search ------------------------------------------------------------------------------------------
def test_search_results_and_paging(client: TestClient) -> None:
    r = client.get("/api/search", params={"q": "a dog running", "k": 5})
    body = r.json()
    assert r.status_code == 200 and body["query"] == "a dog running"
    res = body["results"]
    assert len(res) == 5 and body["next_offset"] == 5
    assert "dog" in " ".join(res[0]["captions"]).lower()
    first = res[0]
    assert first["thumbnail_url"] == f"/api/photos/{first['image_id']}/thumbnail"
    assert first["name"] == Path(first["path"]).name
    page2 = client.get("/api/search", params={"q": "a dog running", "k": 5, "offset": 5}).json()["results"]
    assert not {x["image_id"] for x in res} & {x["image_id"] for x in page2}
    last = client.get("/api/search", params={"q": "a dog running", "k": 50}).json()
    assert last["next_offset"] is None and len(last["results"]) <= 24


def test_search_threshold_and_confidence(client: TestClient) -> None:
    body = client.get("/api/search", params={"q": "a dog running", "threshold": 0.99}).json()
    assert body["results"] == [] and body["confident"] is False
    plain = client.get("/api/search", params={"q": "a dog running on grass"}).json()
    assert plain["confident"] is True
    # the shipped scorer gives every result a calibrated match score; the best few below the cut are shown
    assert all(0.0 <= r["match"] <= 1.0 for r in plain["results"])
    below = body["below_threshold"]
    assert below and all(r["match"] < 0.99 for r in below) and below[0]["thumbnail_url"]
    for q in ("a plate of sushi", "quantum chromodynamics lecture notes"):
        assert client.get("/api/search", params={"q": q}).json()["confident"] is False


@pytest.mark.parametrize(
    "params",
    [
        {"q": ""},
        {"q": "x" * 501},
        {"q": "dog", "k": 0},
        {"q": "dog", "k": 1000},
        {"q": "dog", "k": "ten"},
        {"q": "dog", "offset": -1},
        {"q": "dog", "threshold": "nan"},
        {"q": "dog", "threshold": 2},
        {"q": "dog", "region": "../etc"},
    ],
)
def test_search_bad_parameters(client: TestClient, params: dict) -> None:
    body = _err(client.get("/api/search", params=params), 422, "invalid_request")
    assert body["details"]


def test_search_bad_query_and_region(client: TestClient) -> None:
    _err(client.get("/api/search", params={"q": "   "}), 400, "bad_query")
    _err(client.get("/api/search", params={"q": "dog", "region": "atlantis"}), 403, "region_not_allowed")


# -- the content policy ------------------------------------------------------------------------------
def test_blocked_query_is_451_with_disclaimer(client: TestClient) -> None:
    q = "a little girl playing"
    assert client.get("/api/search", params={"q": q}).status_code == 200  # default region: allowed
    r = client.get("/api/search", params={"q": q, "region": "restricted"})
    assert r.status_code == 451
    assert r.json() == {"error": {"code": "blocked", "message": DISCLAIMER}, "disclaimer": DISCLAIMER}


def test_flagged_photo_withheld_everywhere(client: TestClient) -> None:
    restricted = {"region": "restricted"}
    for url in (f"/api/photos/{FLAGGED}", f"/api/photos/{FLAGGED}/thumbnail", f"/api/photos/{FLAGGED}/file"):
        assert client.get(url).status_code == 200  # the default region shows it
        body = _err(client.get(url, params=restricted), 451, "blocked")
        assert body["disclaimer"] == DISCLAIMER
    _err(client.get(f"/api/photos/{FLAGGED}/similar", params=restricted), 451, "blocked")
    _err(client.get(f"/api/photos/{FLAGGED}/describe", params=restricted), 451, "blocked")
    # In lists it becomes a Withheld entry: the disclaimer and nothing that identifies the photo.
    res = client.get("/api/photos/1/similar", params={"k": 23, **restricted}).json()["results"]
    withheld = [x for x in res if x.get("withheld")]
    assert withheld == [{"withheld": True, "disclaimer": DISCLAIMER}]
    assert FLAGGED not in {x.get("image_id") for x in res}
    open_res = client.get("/api/photos/1/similar", params={"k": 23}).json()["results"]
    assert FLAGGED in {x["image_id"] for x in open_res}
    # Uploading the flagged photo's own bytes finds it by hash: blocked too.
    data = _path_of(client, FLAGGED).read_bytes()
    r = client.post("/api/search/image", params=restricted, files={"file": ("x.jpg", data)})
    _err(r, 451, "blocked")


# -- photos ------------------------------------------------------------------------------------------
def test_photo_metadata_thumbnail_file(client: TestClient) -> None:
    info = client.get("/api/photos/1").json()
    assert info["image_id"] == 1 and info["width"] > 0 and info["height"] > 0
    assert info["captions"] and {c["source"] for c in info["captions"]} <= {"human", "generated"}
    assert isinstance(info["labels"], list)
    th = client.get("/api/photos/1/thumbnail")
    assert th.headers["content-type"] == "image/jpeg"
    assert max(Image.open(io.BytesIO(th.content)).size) <= 256
    f = client.get("/api/photos/1/file")
    assert f.status_code == 200 and f.content == _path_of(client, 1).read_bytes()
    assert f.headers["content-type"] == "image/jpeg"


@pytest.mark.parametrize(
    "path",
    [
        "/api/photos/999999",
        "/api/photos/999999/thumbnail",
        "/api/photos/999999/file",
        "/api/photos/999999/similar",
        "/api/photos/999999/describe",
    ],
)
def test_unknown_id_404(client: TestClient, path: str) -> None:
    _err(client.get(path), 404, "not_found")


@pytest.mark.parametrize(
    "path",
    [
        "/api/photos/..%2F..%2Fetc%2Fpasswd",
        "/api/photos/%2e%2e%2f%2e%2e%2fetc%2fpasswd/file",
        "/api/photos/../../etc/passwd",
        "/api/photos/1%2F..%2F..%2Fetc%2Fpasswd/file",
        "/api/photos/-1/file",
        "/api/photos/0/thumbnail",
        "/api/photos/99999999999999999999999/file",
        "/api/photos/1.5/file",
        "/static/../../../etc/passwd",
        "/static/%2e%2e/%2e%2e/pyproject.toml",
    ],
)
def test_path_like_ids_never_leak(client: TestClient, path: str) -> None:
    r = client.get(path)
    assert 400 <= r.status_code < 500
    assert r.headers["content-type"].startswith("application/json")
    assert "root:" not in r.text and "[project]" not in r.text


def test_file_gone_from_disk_is_404(client: TestClient, token: str, tmp_path: Path) -> None:
    src = _path_of(client, 2)
    data = _jpeg(src, 60)
    r = client.post(
        "/api/photos", files={"file": ("g.jpg", data)}, headers={"Authorization": f"Bearer {token}"}
    )
    iid = r.json()["image_id"]
    stored = _path_of(client, iid)
    stored.write_bytes(data[:100])  # swapped underneath us: no longer the bytes that were indexed
    _err(client.get(f"/api/photos/{iid}/file"), 409, "file_changed")
    stored.unlink()
    _err(client.get(f"/api/photos/{iid}/file"), 404, "not_found")
    assert (
        client.delete(f"/api/photos/{iid}", headers={"Authorization": f"Bearer {token}"}).status_code == 200
    )


# -- search by photo, similar, describe --------------------------------------------------------------
def test_similar_and_search_by_photo(client: TestClient) -> None:
    sim = client.get("/api/photos/5/similar", params={"k": 4}).json()
    assert len(sim["results"]) == 4 and 5 not in {x["image_id"] for x in sim["results"]}
    data = _jpeg(_path_of(client, 5))  # the same picture, other bytes: it finds itself first
    r = client.post("/api/search/image", files={"file": ("q.jpg", data, "image/jpeg")}, data={"k": "3"})
    assert r.status_code == 200 and r.json()["results"][0]["image_id"] == 5


def test_describe_by_id_and_upload(client: TestClient) -> None:
    by_id = client.get("/api/photos/5/describe", params={"k": 3}).json()["results"]
    assert len(by_id) == 3 and all(x["caption"] for x in by_id)
    up = client.post("/api/describe", files={"file": ("q.jpg", _jpeg(_path_of(client, 5)))}).json()
    assert up["results"][0]["caption"]


def test_upload_errors(client: TestClient, lib_dir: Path) -> None:
    _err(
        client.post("/api/search/image", files={"file": ("a.txt", b"hello, not a photo")}),
        415,
        "unsupported_media_type",
    )
    jpg = _path_of(client, 1).read_bytes()
    _err(client.post("/api/search/image", files={"file": ("t.jpg", jpg[:200])}), 422, "bad_image")
    _err(client.post("/api/search/image", files={"file": ("e.jpg", b"")}), 422, "bad_image")
    _err(client.post("/api/search/image"), 422, "invalid_request")
    with TestClient(create_app(library=lib_dir, max_upload_bytes=10_000, allowed_hosts=TEST_HOSTS)) as small:
        _err(small.post("/api/describe", files={"file": ("big.jpg", jpg)}), 413, "too_large")
        big = jpg + b"\0" * 200_000  # refused from Content-Length, before the body is read
        _err(small.post("/api/describe", files={"file": ("big.jpg", big)}), 413, "too_large")


# -- writes ------------------------------------------------------------------------------------------
def test_writes_need_the_token(client: TestClient, token: str) -> None:
    files = {"file": ("a.jpg", _jpeg(_path_of(client, 1)))}
    r = _err(client.post("/api/photos", files=files), 401, "unauthorized")
    assert r["error"]["message"]
    _err(client.post("/api/photos", files=files, headers={"Authorization": "Bearer nope"}), 403, "forbidden")
    _err(
        client.post("/api/photos", files=files, headers={"Authorization": f"Basic {token}"}),
        401,
        "unauthorized",
    )
    _err(client.delete("/api/photos/1"), 401, "unauthorized")
    _err(client.delete("/api/photos/1", headers={"Authorization": "Bearer x" + token}), 403, "forbidden")
    assert client.get("/api/photos/1").status_code == 200  # nothing was deleted


def test_add_then_delete(client: TestClient, token: str, lib_dir: Path) -> None:
    auth = {"Authorization": f"Bearer {token}"}
    img = Image.new("RGB", (320, 240), (200, 30, 30))
    buf = io.BytesIO()
    img.save(buf, "PNG")
    r = client.post("/api/photos", files={"file": ("red.png", buf.getvalue())}, headers=auth)
    assert r.status_code == 201, r.text
    new = r.json()
    iid = new["image_id"]
    assert new["added"] and not new["duplicate"]
    stored = _path_of(client, iid)
    assert stored.parent == (lib_dir / "uploads").absolute() and stored.suffix == ".png"
    again = client.post("/api/photos", files={"file": ("red2.png", buf.getvalue())}, headers=auth).json()
    assert again["image_id"] == iid and again["duplicate"]
    assert client.get("/api/stats").json()["images"] == 25
    sim = client.post("/api/search/image", files={"file": ("q.png", buf.getvalue())}).json()
    assert iid not in {x["image_id"] for x in sim["results"]}  # the photo itself is excluded
    _err(
        client.post("/api/photos", files={"file": ("x.txt", b"nope")}, headers=auth),
        415,
        "unsupported_media_type",
    )
    d = client.delete(f"/api/photos/{iid}", headers=auth)
    assert d.status_code == 200 and d.json()["files_deleted"] == 1
    assert not stored.exists()
    for url in (f"/api/photos/{iid}", f"/api/photos/{iid}/thumbnail", f"/api/photos/{iid}/file"):
        _err(client.get(url), 404, "not_found")
    _err(client.delete(f"/api/photos/{iid}", headers=auth), 404, "not_found")
    assert client.get("/api/stats").json()["images"] == 24


def test_write_while_another_process_writes_is_409(client: TestClient, token: str, lib_dir: Path) -> None:
    from pixsearch.storage.lock import LibraryLock

    files = {"file": ("b.jpg", _jpeg(_path_of(client, 2), 55))}
    with LibraryLock(lib_dir).hold():  # as `pixsearch index` in another process would
        r = client.post("/api/photos", files=files, headers={"Authorization": f"Bearer {token}"})
        body = _err(r, 409, "busy")
        assert r.headers["retry-after"] == "5" and "busy" in body["error"]["message"]
        assert client.get("/api/search", params={"q": "a dog"}).status_code == 200  # reads go on


def test_token_file_owner_only_and_stable(lib_dir: Path, token: str) -> None:
    mode = stat.S_IMODE(os.stat(lib_dir / TOKEN_FILE).st_mode)
    assert mode == 0o600
    assert ensure_token(lib_dir) == (token, False)


def test_indexing_while_serving(
    client: TestClient, lib_dir: Path, gallery_subset: Path, tmp_path: Path
) -> None:
    """Another writer (as a second process would) adds a photo: the running app sees it at once."""
    from pixsearch import Library

    before = client.get("/api/stats").json()["images"]
    (tmp_path / "new").mkdir()
    src = sorted((gallery_subset / "photos").glob("*.jpg"))[0]
    (tmp_path / "new" / "copy.jpg").write_bytes(_jpeg(src, 50))
    with Library.open(lib_dir) as other:
        rep = other.add([tmp_path / "new"])
        assert rep.added == 1
        iid = other.catalog.image_for_path(str(tmp_path / "new" / "copy.jpg"))
    assert client.get("/api/stats").json()["images"] == before + 1
    assert client.get(f"/api/photos/{iid}/thumbnail").status_code == 200
    sim = client.get(f"/api/photos/{iid}/similar", params={"k": 1}).json()["results"]
    assert (sim[0]["path"], sim[0]["root"]) == (src.name, 1)  # its original is the nearest photo
    with Library.open(lib_dir) as other:
        other.remove([tmp_path / "new"])
    _err(client.get(f"/api/photos/{iid}"), 404, "not_found")


def test_unknown_route_and_method_are_json(client: TestClient) -> None:
    _err(client.get("/api/nope"), 404, "not_found")
    _err(client.put("/api/search"), 405, "method_not_allowed")


def test_web_page_served(client: TestClient) -> None:
    page = client.get("/")
    assert page.status_code == 200 and "pixsearch" in page.text
    assert client.get("/static/app.js").status_code == 200
    assert client.get("/static/app.css").status_code == 200


# -- words: match score and generated captions (registered when their models are installed) ----------
def _feature(client: TestClient, name: str) -> None:
    # the shipped build has every model: a missing one is a packaging regression, not a skip
    assert client.get("/api/stats").json()["features"][name], f"the {name} model is not installed"


def test_score(client: TestClient) -> None:
    _feature(client, "score")
    good = client.get("/api/photos/5/score", params={"text": _caption_of(client, 5)}).json()
    bad = client.get("/api/photos/5/score", params={"text": "a plate of sushi on a table"}).json()
    assert 0.0 <= bad["score"] < good["score"] <= 1.0 and good["image_id"] == 5
    up = client.post(
        "/api/score", files={"file": ("q.jpg", _jpeg(_path_of(client, 5)))}, data={"text": "a dog"}
    )
    assert up.status_code == 200 and 0.0 <= up.json()["score"] <= 1.0
    _err(client.get("/api/photos/5/score", params={"text": ""}), 422, "invalid_request")
    _err(client.get("/api/photos/999999/score", params={"text": "a dog"}), 404, "not_found")
    r = client.get("/api/photos/5/score", params={"text": "a little girl playing", "region": "restricted"})
    _err(r, 451, "blocked")
    r = client.get(f"/api/photos/{FLAGGED}/score", params={"text": "a photo", "region": "restricted"})
    _err(r, 451, "blocked")


def test_caption(client: TestClient) -> None:
    _feature(client, "caption")
    by_id = client.get("/api/photos/5/caption")
    assert by_id.status_code == 200 and by_id.json()["caption"].strip()
    up = client.post("/api/caption", files={"file": ("q.jpg", _jpeg(_path_of(client, 5)))})
    assert up.status_code == 200 and up.json()["caption"].strip()
    _err(
        client.post("/api/caption", files={"file": ("x.txt", b"not a photo")}), 415, "unsupported_media_type"
    )
    _err(client.get(f"/api/photos/{FLAGGED}/caption", params={"region": "restricted"}), 451, "blocked")


def _caption_of(client: TestClient, image_id: int) -> str:
    return str(client.get(f"/api/photos/{image_id}").json()["captions"][0]["text"])
