"""The web page end to end in a real browser: Playwright for Python driving Debian's Chromium against real
uvicorn servers on 127.0.0.1 (ephemeral ports): one in the default region over the gallery library, one
run with ``--region restricted`` over real Flickr8k photos indexed with the real photo policy.

Screenshots (desktop 1280 and phone 390 wide) go to a temp dir, or to docs/screenshots/ with
PIXSEARCH_SCREENSHOTS=1 (how the committed ones were made; JPEG to keep the repository small):
``PIXSEARCH_SCREENSHOTS=1 python -m pytest tests/e2e/test_web.py``.
"""

from __future__ import annotations

import base64
import csv
import shutil
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
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


# Real Flickr8k photos for the restricted server, chosen by their human captions: children with dogs,
# and dogs without people (the real policy flags some of those too: its precision is 0.47, docs/policy.md).
CHILDREN = [
    "3003691049_f4363c2d5c.jpg",
    "3605061440_1d08c80a57.jpg",
    "3373544964_c9f1253b7d.jpg",
    "179009558_69be522c63.jpg",
    "2986280913_13fb2d472e.jpg",
]
DOGS = [
    "1267711451_e2a754b4f8.jpg",
    "1626754053_81126b67b6.jpg",
    "1764955991_5e53a28c87.jpg",
    "2101457132_69c950bc45.jpg",
    "2103568100_5d018c495b.jpg",
    "2283966256_70317e1759.jpg",
    "2300168895_a9b83e16fc.jpg",
    "2358898017_24496b80e8.jpg",
    "1119015538_e8e796281e.jpg",
    "1523984678_edd68464da.jpg",
]


@contextmanager
def _serving(lib: Path, region: str | None = None) -> Iterator[str]:
    """A real uvicorn server over ``lib`` (as ``pixsearch serve --region REGION`` runs it)."""
    import uvicorn

    from pixsearch.api.app import create_app
    from pixsearch.config import load_settings

    app = create_app(load_settings(library=lib, region=region), warm=True)
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
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        srv.should_exit = True
        th.join(timeout=30)


def dropped_file(page, photo: Path):  # type: ignore[no-untyped-def]
    """A DataTransfer holding ``photo`` as "dropped.jpg": what a drop event carries."""
    return page.evaluate_handle(
        """(b64) => {
            const bytes = Uint8Array.from(atob(b64), (c) => c.charCodeAt(0));
            const dt = new DataTransfer();
            dt.items.add(new File([bytes], "dropped.jpg", { type: "image/jpeg" }));
            return dt;
        }""",
        base64.b64encode(photo.read_bytes()).decode(),
    )


@pytest.fixture(scope="module")
def server(built_library: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The default region over the gallery library."""
    lib = tmp_path_factory.mktemp("weblib") / "lib"
    shutil.copytree(built_library, lib)
    with _serving(lib) as url:
        yield url


@pytest.fixture(scope="module")
def restricted(flickr8k: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, dict]]:
    """``--region restricted`` over real Flickr8k photos indexed with their captions and the real photo
    policy (no flag is set by hand): (URL, photo name -> is a child named in its captions)."""
    from pixsearch import Library
    from pixsearch.policy.minor_words import photo_is_positive

    d = tmp_path_factory.mktemp("policyweb")
    (d / "photos").mkdir()
    names = CHILDREN + DOGS
    for n in names:
        shutil.copy(flickr8k / "images" / n, d / "photos" / n)
    with open(flickr8k / "captions.csv", newline="") as f:
        rows = [r for r in csv.DictReader(f) if r["image"] in set(names)]
    with open(d / "captions.csv", "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=["image", "caption"])
        w.writeheader()
        w.writerows({"image": r["image"], "caption": r["caption"]} for r in rows)
    with Library.open(d / "lib") as lib:
        rep = lib.add([d / "photos"], captions_csv=d / "captions.csv")
        assert rep.added == len(names) and not rep.failed
    children = {n: photo_is_positive([r["caption"] for r in rows if r["image"] == n]) for n in names}
    assert {n for n, c in children.items() if c} == set(CHILDREN)
    with _serving(d / "lib", region="restricted") as url:
        yield url, children


def _search(page, base: str, q: str, query: str = "") -> None:  # type: ignore[no-untyped-def]
    page.goto(base + "/" + query)
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
    page.wait_for_function("() => document.getElementById('viewer-img').src.includes('/file')")
    page.wait_for_timeout(300)
    page.screenshot(path=str(shots / "desktop-photo.jpg"), quality=85)
    page.keyboard.press("ArrowRight")  # next photo in the viewer
    page.wait_for_function("() => document.getElementById('viewer-title').textContent.length > 0")
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
    dt = dropped_file(page, photo)
    page.dispatch_event("body", "dragenter", {"dataTransfer": dt})
    assert page.is_visible("#dropzone")
    page.dispatch_event("body", "drop", {"dataTransfer": dt})
    assert page.is_hidden("#dropzone")
    page.wait_for_selector("#query-photo:not([hidden])")
    page.wait_for_selector(".tile img.loaded")
    page.wait_for_function("() => document.getElementById('query-photo-caption').textContent.length > 3")
    assert page.inner_text("#query-photo-caption").strip() not in ("", "—")
    # The dropped photo is in the library: it is not its own neighbour, its look-alikes are.
    assert page.locator(".tile:not(.skeleton)").count() >= 8
    page.wait_for_timeout(300)
    page.screenshot(path=str(shots / "desktop-drop.jpg"), quality=85)


def test_blocked_query_shows_the_disclaimer(page, server: str, restricted, shots: Path) -> None:  # type: ignore[no-untyped-def]
    _search(page, restricted[0], "a little girl playing")
    page.wait_for_selector("#message.blocked")
    assert page.inner_text("#message").strip().endswith(DISCLAIMER)
    assert page.locator(".tile").count() == 0
    page.screenshot(path=str(shots / "desktop-blocked.jpg"), quality=85)
    _search(page, server, "a little girl playing")  # the default region allows it
    page.wait_for_selector(".tile img.loaded")
    assert page.is_hidden("#message") or "blocked" not in (page.get_attribute("#message", "class") or "")


def _shown_names(page) -> list[str]:  # type: ignore[no-untyped-def]
    """File names of the photos the grid shows in the clear (withheld tiles carry no name)."""
    ids = page.eval_on_selector_all(".tile[data-id]", "ts => ts.map((t) => t.dataset.id)")
    paths = [page.evaluate(f"fetch('/api/photos/{i}').then((r) => r.json())")["path"] for i in ids]
    return [Path(p).name for p in paths]


def test_withheld_photos_show_the_disclaimer(page, restricted, shots: Path) -> None:  # type: ignore[no-untyped-def]
    """The real photo policy on real photos: every photo whose captions name a child is withheld."""
    base, children = restricted
    _search(page, base, "a dog playing outside")
    page.wait_for_selector(".tile.withheld")
    page.wait_for_selector(".tile img.loaded")
    withheld = page.locator(".tile.withheld")
    assert withheld.count() >= sum(children.values())
    assert withheld.nth(0).inner_text().strip() == DISCLAIMER
    assert withheld.nth(0).locator("img").count() == 0  # no pixels, no caption, no score
    shown = _shown_names(page)
    assert shown and not [n for n in shown if children[n]]  # no child in the clear
    assert len(shown) + withheld.count() == len(children)
    page.wait_for_function("() => [...document.querySelectorAll('.tile img')].every((i) => i.complete)")
    page.wait_for_timeout(300)
    page.screenshot(path=str(shots / "desktop-withheld.jpg"), quality=85)
    withheld.nth(0).click()
    assert page.is_hidden("#viewer")  # nothing to open


def test_restricted_page_cannot_leave_its_region(page, restricted) -> None:  # type: ignore[no-untyped-def]
    """No region switch: the page sends no region, ignores ``?region=`` in its own URL, and the server
    refuses a looser region however it is asked for (403 region_not_allowed)."""
    base, children = restricted
    sent: list[str] = []
    page.on("request", lambda r: sent.append(r.url))
    _search(page, base, "a dog playing outside", query="?region=default")
    page.wait_for_selector(".tile.withheld")
    page.wait_for_selector(".tile img.loaded")
    assert page.evaluate("document.documentElement.dataset.region") == "restricted"
    assert page.locator("select, [name=region], #region").count() == 0  # nothing to switch with
    shown = _shown_names(page)
    assert not [n for n in shown if children[n]]
    assert page.locator(".tile.withheld").count() + len(shown) == len(children)
    assert not [u for u in sent if "/api/" in u and "region=" in u]
    stats = page.evaluate("fetch('/api/stats').then((r) => r.json())")
    assert stats["region"] == "restricted"
    for url in ("/api/search?q=a+dog&region=default", "/api/photos/1/file?region=default"):
        r = page.evaluate(f"fetch('{url}').then(async (r) => [r.status, await r.json()])")
        assert r[0] == 403 and r[1]["error"]["code"] == "region_not_allowed", r


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
