"""GET /api/changes: the generation a page polls moves with every write, the server's own (an upload) and
another process's (``index --watch``), and stays put while nothing is written."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from pixsearch import Library
from pixsearch.api.app import create_app
from pixsearch.api.worker import TOKEN_FILE


@pytest.fixture
def lib_dir(built_library: Path, tmp_path: Path) -> Path:
    d = tmp_path / "lib"
    shutil.copytree(built_library, d)
    return d


@pytest.fixture
def client(lib_dir: Path) -> Iterator[TestClient]:
    with TestClient(create_app(library=lib_dir, allowed_hosts=["testserver"])) as c:
        yield c


def _changes(client: TestClient, since: int | None = None) -> dict:
    r = client.get("/api/changes", params={} if since is None else {"since": since})
    assert r.status_code == 200, r.text
    return r.json()


def test_generation_moves_with_writes(client: TestClient, lib_dir: Path, flickr8k: Path) -> None:
    first = _changes(client)
    gen = first["generation"]
    assert first["changed"] is False and gen > 0
    client.get("/api/search", params={"q": "a dog"})  # reads write nothing
    assert _changes(client, gen) == {"generation": gen, "changed": False}

    photo = flickr8k / "images" / (flickr8k / "test.txt").read_text().split()[0]
    token = (lib_dir / TOKEN_FILE).read_text().strip()
    r = client.post(
        "/api/photos",
        files={"file": ("new.jpg", photo.read_bytes())},
        headers={"Authorization": f"Bearer {token}"},
    )
    assert r.status_code in (200, 201), r.text
    after_upload = _changes(client, gen)
    assert after_upload["changed"] is True and after_upload["generation"] > gen

    # another writer (a watcher, `pixsearch index`): its commit is seen by the server's readers too
    other = lib_dir.parent / "incoming"
    other.mkdir()
    shutil.copy(flickr8k / "images" / (flickr8k / "test.txt").read_text().split()[1], other / "b.jpg")
    with Library.open(lib_dir) as lib:
        assert lib.add([other]).added == 1
    seen = after_upload["generation"]
    moved = _changes(client, seen)
    assert moved["changed"] is True and moved["generation"] > seen
    assert client.get("/api/stats").json()["images"] == 26


@pytest.mark.parametrize("since", ["-1", "x", "1.5"])
def test_bad_since_is_a_422(client: TestClient, since: str) -> None:
    r = client.get("/api/changes", params={"since": since})
    assert r.status_code == 422 and r.json()["error"]["code"]
