"""Uploaded photos on the read routes: refused over MAX_UPLOAD_PIXELS from the header, decoded and shrunk
on the uploads' own thread (never the Library's), while searches go on; a library photo's own bytes are
recognised by hash and not decoded at all."""

from __future__ import annotations

import io
import shutil
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from PIL import Image, ImageFile

from pixsearch import media
from pixsearch.api import uploads
from pixsearch.api.app import create_app
from tests.conftest import GALLERY

TOKEN = "upload-test-token"
LIBRARY_PHOTOS = sorted((GALLERY / "images").glob("*.jpg"))[:24]  # the built_library fixture's photos


@pytest.fixture(scope="module")
def client(built_library: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[TestClient]:
    lib = tmp_path_factory.mktemp("uploadlib") / "lib"
    shutil.copytree(built_library, lib)
    with TestClient(create_app(library=lib, allowed_hosts=["testserver"], token=TOKEN)) as c:
        yield c


def _png(img: Image.Image, **kw: object) -> bytes:
    buf = io.BytesIO()
    img.save(buf, "PNG", **kw)
    return buf.getvalue()


def test_a_pixel_bomb_is_413_from_its_header(client: TestClient, monkeypatch: pytest.MonkeyPatch) -> None:
    bomb = _png(Image.new("LA", (10_000, 10_000)), optimize=True)  # ~200 KB on the wire, 100 MP
    assert len(bomb) < 300_000
    decoded: list[object] = []
    real_load = ImageFile.ImageFile.load
    monkeypatch.setattr(ImageFile.ImageFile, "load", lambda im: decoded.append(im) or real_load(im))
    r = client.post("/api/search/image", files={"file": ("bomb.png", bomb)})
    assert r.status_code == 413 and r.json()["error"]["code"] == "too_large", r.text
    assert "50 MP" in r.json()["error"]["message"]
    assert decoded == []  # not decoded: the header said enough (was a 2-second bound: flaky when busy)


def test_a_pixel_bomb_is_not_added_either(client: TestClient) -> None:
    """The write route keeps the upload's own bytes, but only after the same bounded decode: a bomb is
    413 before the Library's full-size decode, and the library is unchanged."""
    before = client.get("/api/stats").json()["images"]
    bomb = _png(Image.new("LA", (10_000, 10_000)), optimize=True)
    r = client.post(
        "/api/photos", files={"file": ("bomb.png", bomb)}, headers={"Authorization": f"Bearer {TOKEN}"}
    )
    assert r.status_code == 413 and "50 MP" in r.json()["error"]["message"], r.text
    assert client.get("/api/stats").json()["images"] == before


def test_uploads_decode_off_the_library_thread(client: TestClient, monkeypatch: pytest.MonkeyPatch) -> None:
    seen: list[tuple[str, int, tuple[int, int]]] = []
    real = media.load_image

    def recording(source, *a, **kw):  # type: ignore[no-untyped-def]
        img = real(source, *a, **kw)
        size = len(source) if isinstance(source, bytes) else -1
        seen.append((threading.current_thread().name, size, img.size))
        return img

    monkeypatch.setattr(media, "load_image", recording)
    photo = Image.open(LIBRARY_PHOTOS[3]).convert("RGB").resize((3000, 2250))  # new bytes, a known picture
    data = _png(photo, compress_level=1)
    r = client.post("/api/search/image", files={"file": ("big.png", data)}, data={"k": "3"})
    assert r.status_code == 200, r.text
    on_uploads = [s for s in seen if s[0].startswith("pixsearch-upload")]
    on_library = [s for s in seen if s[0].startswith("pixsearch-library")]
    assert [s[1] for s in on_uploads] == [len(data)]  # the upload itself: decoded once, on its own thread
    assert on_library and all(
        s[1] < len(data) // 4 and max(s[2]) <= 4 * uploads.UPLOAD_SIDE for s in on_library
    )
    first = r.json()["results"][0]
    assert first["name"] == LIBRARY_PHOTOS[3].name  # shrunk first, the picture still finds itself


def test_a_library_photos_own_bytes_are_not_decoded(
    client: TestClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    def no(data: bytes) -> bytes:
        raise AssertionError("a library photo's bytes were decoded")

    monkeypatch.setattr(uploads, "shrunk", no)
    data = LIBRARY_PHOTOS[5].read_bytes()
    r = client.post("/api/search/image", files={"file": ("same.jpg", data)}, data={"k": "3"})
    assert r.status_code == 200, r.text
    assert LIBRARY_PHOTOS[5].name not in {x.get("name") for x in r.json()["results"]}  # itself excluded


def test_searches_do_not_wait_behind_an_upload(client: TestClient, monkeypatch: pytest.MonkeyPatch) -> None:
    started, release = threading.Event(), threading.Event()
    real = uploads.shrunk

    def slow(data: bytes) -> bytes:  # an upload that takes as long as the test wants to decode
        started.set()
        release.wait(600)  # until the test says (the search below may take long on a busy machine)
        return real(data)

    monkeypatch.setattr(uploads, "shrunk", slow)
    data = _png(Image.open(LIBRARY_PHOTOS[7]).convert("RGB"))
    answer: dict[str, int] = {}

    def upload() -> None:
        answer["status"] = client.post("/api/describe", files={"file": ("q.png", data)}).status_code

    th = threading.Thread(target=upload)
    th.start()
    try:
        assert started.wait(60), "the upload never started decoding"
        r = client.get("/api/search", params={"q": "a dog running", "k": 3})
        assert r.status_code == 200 and r.json()["results"]
        # answered while the upload was still decoding (it decodes until released: no clock needed)
        assert th.is_alive()
    finally:
        release.set()
        th.join(60)
    assert answer == {"status": 200}
