"""The web page end to end in a real browser: Playwright for Python driving Debian's Chromium against a
real uvicorn server on 127.0.0.1 (an ephemeral port) over the gallery library.

Screenshots (desktop 1280 and phone 390 wide) go to a temp dir, or to docs/screenshots/ with
PIXSEARCH_SCREENSHOTS=1 (how the committed ones were made; JPEG to keep the repository small).
"""

from __future__ import annotations

import base64
import os
import shutil
import socket
import sqlite3
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

CHROMIUM = Path("/usr/bin/chromium")
ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
DISCLAIMER = "This image is unavailable in your country in compliance with local laws."
ROOT = Path(__file__).resolve().parents[2]

pytestmark = [
    pytest.mark.slow,  # a real chromium against a real server: ~30 s
    pytest.mark.skipif(
        not CHROMIUM.exists(),
        reason="browser tests need Debian's chromium at /usr/bin/chromium (apt-get install chromium)",
    ),
]


@pytest.fixture(scope="module")
def shots(tmp_path_factory: pytest.TempPathFactory) -> Path:
    if os.environ.get("PIXSEARCH_SCREENSHOTS"):
        d = ROOT / "docs" / "screenshots"
        d.mkdir(parents=True, exist_ok=True)
        return d
    return tmp_path_factory.mktemp("screenshots")


@pytest.fixture(scope="module")
def server(built_library: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    import uvicorn

    from pixsearch.api.app import create_app

    lib = tmp_path_factory.mktemp("weblib") / "lib"
    shutil.copytree(built_library, lib)
    # Policy flags for the restricted region: photos with a dog in a caption are flagged, the rest checked.
    db = sqlite3.connect(lib / "catalog.db")
    dogs = {r[0] for r in db.execute("SELECT image_id FROM captions WHERE lower(text) LIKE '%dog%'")}
    rows = [(i, int(i in dogs)) for (i,) in db.execute("SELECT id FROM images")]
    db.executemany(
        "INSERT OR REPLACE INTO flags(image_id, flagged, evidence, policy) VALUES (?, ?, '{}', 'test')", rows
    )
    db.commit()
    db.close()
    app = create_app(library=lib, warm=True)
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    srv = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="on"))
    th = threading.Thread(target=srv.run, kwargs={"sockets": [sock]}, daemon=True)
    th.start()
    deadline = time.time() + 120
    while not srv.started:
        assert time.time() < deadline and th.is_alive(), "uvicorn did not start"
        time.sleep(0.1)
    yield f"http://127.0.0.1:{port}"
    srv.should_exit = True
    th.join(timeout=30)


@pytest.fixture(scope="module")
def browser() -> Iterator[object]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=str(CHROMIUM), args=ARGS)
        yield b
        b.close()


@pytest.fixture
def page(browser):  # type: ignore[no-untyped-def]
    ctx = browser.new_context(viewport={"width": 1280, "height": 860})
    pg = ctx.new_page()
    errors: list[str] = []
    pg.on("pageerror", lambda e: errors.append(str(e)))
    yield pg
    ctx.close()
    assert not errors, errors  # no uncaught JavaScript error on any page


def _search(page, base: str, q: str, region: str = "") -> None:  # type: ignore[no-untyped-def]
    page.goto(base + ("/?region=" + region if region else "/"))
    page.wait_for_selector("#stats:has-text('photos')")
    page.fill("#q", q)  # typed: results come from the debounced input handler, no Enter needed


def test_type_and_see_results_then_open_one(page, server: str, shots: Path) -> None:  # type: ignore[no-untyped-def]
    page.goto(server + "/")
    page.wait_for_selector("#stats:has-text('24 photos')")
    assert page.is_visible("#welcome")
    page.screenshot(path=str(shots / "desktop-welcome.jpg"), quality=85)
    _search(page, server, "a dog running")
    page.wait_for_selector(".tile img.loaded")
    tiles = page.locator(".tile:not(.skeleton)")
    assert tiles.count() >= 8
    first_cap = tiles.nth(0).locator(".cap").inner_text()
    assert "dog" in first_cap.lower()
    assert "q=a+dog+running" in page.url or "q=a%20dog%20running" in page.url  # reload keeps the query
    page.wait_for_timeout(300)
    page.screenshot(path=str(shots / "desktop-results.jpg"), quality=85)

    tiles.nth(0).click()
    page.wait_for_selector("#viewer-captions li")
    assert page.is_visible("#viewer")
    assert "written by a person" in page.inner_text("#viewer-captions")
    page.wait_for_selector("#viewer-similar img")
    assert page.locator("#viewer-similar img").count() == 8
    page.wait_for_function("document.getElementById('viewer-img').src.includes('/file')")
    page.wait_for_timeout(300)
    page.screenshot(path=str(shots / "desktop-photo.jpg"), quality=85)
    page.keyboard.press("ArrowRight")  # next photo in the viewer
    page.wait_for_function("document.getElementById('viewer-title').textContent.length > 0")
    page.keyboard.press("Escape")
    assert page.is_hidden("#viewer")


def test_keyboard_only(page, server: str) -> None:  # type: ignore[no-untyped-def]
    page.goto(server + "/")
    page.wait_for_selector("#stats:has-text('photos')")
    page.locator("body").click(position={"x": 5, "y": 400})
    page.keyboard.press("/")
    page.keyboard.type("people climbing a rock")
    page.wait_for_selector(".tile img.loaded")
    page.keyboard.press("ArrowDown")  # into the grid
    assert page.evaluate("document.activeElement.dataset.index") == "0"
    page.keyboard.press("ArrowRight")
    assert page.evaluate("document.activeElement.dataset.index") == "1"
    page.keyboard.press("Enter")
    page.wait_for_selector("#viewer-captions li")
    page.keyboard.press("Escape")
    assert page.is_hidden("#viewer")
    assert page.evaluate("document.activeElement.dataset.index") == "1"  # focus returns to the tile


def test_drop_a_photo(page, server: str, gallery_subset: Path, shots: Path) -> None:  # type: ignore[no-untyped-def]
    page.goto(server + "/")
    page.wait_for_selector("#stats:has-text('photos')")
    photo = sorted((gallery_subset / "photos").glob("*.jpg"))[4]
    b64 = base64.b64encode(photo.read_bytes()).decode()
    dt = page.evaluate_handle(
        """(b64) => {
            const bytes = Uint8Array.from(atob(b64), (c) => c.charCodeAt(0));
            const dt = new DataTransfer();
            dt.items.add(new File([bytes], "dropped.jpg", { type: "image/jpeg" }));
            return dt;
        }""",
        b64,
    )
    page.dispatch_event("body", "dragenter", {"dataTransfer": dt})
    assert page.is_visible("#dropzone")
    page.dispatch_event("body", "drop", {"dataTransfer": dt})
    assert page.is_hidden("#dropzone")
    page.wait_for_selector("#query-photo:not([hidden])")
    page.wait_for_selector(".tile img.loaded")
    page.wait_for_function("document.getElementById('query-photo-caption').textContent.length > 3")
    assert page.inner_text("#query-photo-caption").strip() not in ("", "—")
    # The dropped photo is in the library: it is not its own neighbour, its look-alikes are.
    assert page.locator(".tile:not(.skeleton)").count() >= 8
    page.wait_for_timeout(300)
    page.screenshot(path=str(shots / "desktop-drop.jpg"), quality=85)


def test_blocked_query_shows_the_disclaimer(page, server: str, shots: Path) -> None:  # type: ignore[no-untyped-def]
    _search(page, server, "a little girl playing", region="restricted")
    page.wait_for_selector("#message.blocked")
    assert page.inner_text("#message").strip().endswith(DISCLAIMER)
    assert page.locator(".tile").count() == 0
    page.screenshot(path=str(shots / "desktop-blocked.jpg"), quality=85)
    _search(page, server, "a little girl playing")  # the default region allows it
    page.wait_for_selector(".tile img.loaded")
    assert page.is_hidden("#message") or "blocked" not in (page.get_attribute("#message", "class") or "")


def test_withheld_photos_show_the_disclaimer(page, server: str, shots: Path) -> None:  # type: ignore[no-untyped-def]
    _search(page, server, "a dog running", region="restricted")
    page.wait_for_selector(".tile.withheld")
    withheld = page.locator(".tile.withheld")
    assert withheld.count() >= 1
    assert withheld.nth(0).inner_text().strip() == DISCLAIMER
    assert withheld.nth(0).locator("img").count() == 0  # no pixels, no caption, no score
    page.wait_for_timeout(300)
    page.screenshot(path=str(shots / "desktop-withheld.jpg"), quality=85)
    withheld.nth(0).click()
    assert page.is_hidden("#viewer")  # nothing to open


def test_nonsense_query_says_no_confident_match(page, server: str) -> None:  # type: ignore[no-untyped-def]
    _search(page, server, "quantum chromodynamics lecture notes")
    page.wait_for_selector("#message.notice")
    assert "No confident match" in page.inner_text("#message")


def test_phone(browser, server: str, shots: Path) -> None:  # type: ignore[no-untyped-def]
    ctx = browser.new_context(
        viewport={"width": 390, "height": 844}, device_scale_factor=2, is_mobile=True, has_touch=True
    )
    page = ctx.new_page()
    page.goto(server + "/")
    page.wait_for_selector("#stats:has-text('photos')")
    page.screenshot(path=str(shots / "phone-welcome.jpg"), quality=85)
    page.fill("#q", "a dog running")
    page.wait_for_selector(".tile img.loaded")
    page.wait_for_timeout(300)
    assert page.evaluate("document.scrollingElement.scrollWidth") <= 390  # nothing sticks out sideways
    assert (
        page.evaluate(
            "getComputedStyle(document.getElementById('grid')).gridTemplateColumns.split(' ').length"
        )
        == 2
    )
    page.screenshot(path=str(shots / "phone-results.jpg"), quality=85)
    page.locator(".tile:not(.skeleton)").nth(0).tap()
    page.wait_for_selector("#viewer-captions li")
    page.wait_for_selector("#viewer-similar img")
    page.wait_for_timeout(300)
    assert page.evaluate("document.getElementById('viewer').scrollWidth") <= 390
    page.screenshot(path=str(shots / "phone-photo.jpg"), quality=85)
    page.tap("#viewer-close")
    assert page.is_hidden("#viewer")
    ctx.close()
