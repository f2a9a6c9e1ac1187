"""The web page's photographer features in a real browser (Playwright + Debian's Chromium, a real uvicorn
server as in test_web.py): the filter bar (dates, camera, folder), the order toggle, the timeline strip,
capture facts on tiles and in the viewer, "More like this", the duplicates view, and the address keeping
all of it (reload, back).

The library: gallery photos re-saved with EXIF capture times and cameras written by the test (Pillow), in
two folders, plus a half-size re-encoded copy of one of them (a near-duplicate).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from PIL import Image

from tests.conftest import GALLERY
from tests.e2e.test_web import CHROMIUM, _serving
from tests.unit.indexing.metadata.photos import exif_for, photo

pytestmark = pytest.mark.skipif(
    not CHROMIUM.exists(),
    reason="browser tests need Debian's chromium at /usr/bin/chromium (apt-get install chromium)",
)

# folder/file -> (EXIF DateTimeOriginal, camera model); every offset +00:00, so UTC months are these
PHOTOS = {
    "2019/a.jpg": ("2019:05:03 10:00:00", "Canon EOS 5D"),
    "2019/b.jpg": ("2019:05:11 09:30:00", "NIKON D750"),
    "2019/c.jpg": ("2019:05:25 17:45:00", "Canon EOS 5D"),
    "2019/d.jpg": ("2019:07:14 12:00:00", "NIKON D750"),
    "2019/e.jpg": ("2019:07:20 08:15:00", "Canon EOS 5D"),
    "2021/f.jpg": ("2021:01:02 08:00:00", "NIKON D750"),
    "2021/g.jpg": ("2021:01:20 18:30:00", "Canon EOS 5D"),
}
ORIGINAL = "2019/a.jpg"  # its resized copy is copies/a-small.jpg, with the same EXIF
MAKES = {"Canon EOS 5D": "Canon", "NIKON D750": "NIKON CORPORATION"}


def _exif(name: str) -> Image.Exif:
    taken, model = PHOTOS[name]
    return exif_for(taken, "+00:00", MAKES[model], model)


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    base = tmp_path_factory.mktemp("browse")
    sources = sorted((GALLERY / "images").glob("*.jpg"))[: len(PHOTOS)]
    for src, name in zip(sources, PHOTOS, strict=True):
        photo(src, base / "photos" / name, _exif(name))
    with Image.open(base / "photos" / ORIGINAL) as im:
        small = im.convert("RGB").resize((im.width // 2, im.height // 2), Image.Resampling.LANCZOS)
    (base / "photos" / "copies").mkdir()
    small.save(base / "photos" / "copies" / "a-small.jpg", quality=60, exif=_exif(ORIGINAL))
    from pixsearch import Library

    with Library.open(base / "lib") as lib:
        rep = lib.add([base / "photos"], generate_captions=False)
        assert rep.added == len(PHOTOS) + 1 and not rep.failed
    with _serving(base / "lib") as url:
        yield url


def _open(page, url: str) -> None:  # type: ignore[no-untyped-def]
    page.goto(url)
    page.wait_for_selector("#stats:has-text('photos')")


def _taken(page, n: int | None = None) -> list[str]:  # type: ignore[no-untyped-def]
    """The capture times of the tiles shown, in order (once ``n`` tiles are there, when given)."""
    if n is not None:
        page.wait_for_function("(n) => document.querySelectorAll('.tile[data-id]').length === n", arg=n)
    return page.eval_on_selector_all(".tile[data-id]", "ts => ts.map((t) => t.dataset.taken || '')")


def _grid_is(page, months: list[str]) -> list[str]:  # type: ignore[no-untyped-def]
    """Wait until the grid shows exactly one photo per entry of ``months`` (as "YYYY-MM"), in any order."""
    want = sorted(months)
    page.wait_for_function(
        """(want) => {
            const tiles = [...document.querySelectorAll('.tile[data-id]')];
            const got = tiles.map((t) => t.dataset.taken.slice(0, 7)).sort();
            return !document.querySelector('.tile.skeleton') && JSON.stringify(got) === JSON.stringify(want);
        }""",
        arg=want,
    )
    return _taken(page)


def test_a_month_filter_shows_that_month_and_the_address_keeps_it(page, server: str) -> None:  # type: ignore[no-untyped-def]
    _open(page, server + "/")
    page.fill("#f-from", "2019-07")
    page.fill("#f-to", "2019-07")  # "to" is inclusive: all of July
    _grid_is(page, ["2019-07", "2019-07"])
    assert "from=2019-07" in page.url and "to=2019-07" in page.url
    assert "Jul 2019" in page.locator(".tile .facts").first.inner_text()  # the capture date on the tile
    page.reload()
    _grid_is(page, ["2019-07", "2019-07"])
    assert page.input_value("#f-from") == "2019-07" and page.input_value("#f-to") == "2019-07"
    page.go_back()  # only "from" was set then: July 2019 and everything after
    _grid_is(page, ["2019-07", "2019-07", "2021-01", "2021-01"])
    page.fill("#f-folder", "2021")  # a folder below the indexed one
    _grid_is(page, ["2021-01", "2021-01"])
    page.click("#f-clear")
    page.wait_for_selector("#welcome:not([hidden])")  # no words, no filter, no order: the welcome page


def test_the_order_toggle(page, server: str) -> None:  # type: ignore[no-untyped-def]
    _open(page, server + "/")
    page.click("#sort [data-sort='-date']")  # no words: browse everything, newest first
    newest = _taken(page, len(PHOTOS) + 1)
    assert newest == sorted(newest, reverse=True) and newest[0].startswith("2021-01-20")
    assert page.is_disabled("#sort [data-sort='relevance']")
    page.click("#sort [data-sort='date']")
    page.wait_for_function(
        "() => (document.querySelector('.tile[data-id]') || {dataset: {}}).dataset.taken "
        "=== '2019-05-03T10:00:00+00:00'"
    )
    oldest = _taken(page, len(PHOTOS) + 1)
    assert oldest == sorted(oldest) and "sort=date" in page.url
    page.fill("#q", "a photo")  # words: relevance is possible again, the chosen order stays
    page.wait_for_selector("#sort [data-sort='relevance']:not([disabled])")
    assert page.get_attribute("#sort [data-sort='date']", "aria-checked") == "true"
    page.wait_for_selector(".tile[data-id]")
    got = _taken(page)
    assert got == sorted(got)


def test_a_click_on_the_timeline_browses_that_month(page, server: str, shots: Path) -> None:  # type: ignore[no-untyped-def]
    _open(page, server + "/")
    page.wait_for_selector("#timeline:not([hidden]) .tl-month")
    counts = page.eval_on_selector_all(
        ".tl-month:not([disabled])", "bs => bs.map((b) => [b.dataset.month, +b.dataset.count])"
    )
    assert counts == [["2019-05", 4], ["2019-07", 2], ["2021-01", 2]]  # the copy was taken in May too
    assert page.locator(".tl-month").count() == 21  # every month from May 2019 to January 2021
    page.click(".tl-month[data-month='2021-01']")
    _grid_is(page, ["2021-01", "2021-01"])
    assert page.get_attribute(".tl-month[data-month='2021-01']", "aria-pressed") == "true"
    assert page.input_value("#f-from") == "2021-01" and page.input_value("#f-to") == "2021-01"
    page.wait_for_function("() => [...document.querySelectorAll('.tile img')].every((i) => i.complete)")
    page.wait_for_timeout(300)  # the photos fade in
    page.screenshot(path=str(shots / "desktop-browse.jpg"), quality=85)
    page.click(".tl-month[data-month='2021-01']")  # the same month again: every date
    page.wait_for_selector("#welcome:not([hidden])")


def test_the_viewer_shows_the_facts_and_more_like_this(page, server: str) -> None:  # type: ignore[no-untyped-def]
    _open(page, server + "/?from=2021-01&to=2021-01&sort=date")
    _grid_is(page, ["2021-01", "2021-01"])
    page.locator(".tile[data-id]").first.click()
    page.wait_for_selector("#viewer-facts .fact")
    assert "2 Jan 2021, 08:00" in page.inner_text("#viewer-facts")  # the wall clock the camera wrote
    page.click("#viewer-facts button:has-text('NIKON D750')")  # its camera: every photo from it
    assert page.is_hidden("#viewer") and page.input_value("#f-camera") == "NIKON D750"
    _grid_is(page, ["2021-01"])  # the dates still apply
    page.locator(".tile[data-id]").first.click()
    picked = page.get_attribute(".tile[data-id]", "data-id")
    page.click("#viewer-find-similar:has-text('Search by this photo')")
    page.wait_for_function("() => state.mode === 'similar' && !state.loading")
    assert page.is_hidden("#viewer") and page.evaluate("() => state.similarTo") == int(picked)
    assert page.locator(".tile[data-id]").count() == 0  # the filters still apply: no other such photo
    page.click("#f-clear")  # the same photo search over every photo
    _taken(page, len(PHOTOS))
    ids = page.eval_on_selector_all(".tile[data-id]", "ts => ts.map((t) => t.dataset.id)")
    assert page.evaluate("() => state.mode") == "similar" and picked not in ids  # all others, not itself


def test_the_duplicates_view_lists_the_copy(page, server: str, shots: Path) -> None:  # type: ignore[no-untyped-def]
    _open(page, server + "/")
    page.click("#dupes-link")
    page.wait_for_selector(".dup-group")
    assert "view=duplicates" in page.url and page.is_hidden("#filters")
    groups = page.locator(".dup-group")
    assert groups.count() == 1 and groups.first.get_attribute("data-kind") == "near"
    photos = groups.first.locator(".dup-photo")
    assert photos.count() == 2
    keep = groups.first.locator(".dup-photo.keep")
    assert keep.count() == 1 and keep.locator(".keep-badge").text_content() == "Keep"
    with Image.open(sorted((GALLERY / "images").glob("*.jpg"))[0]) as im:
        size = f"{im.width} × {im.height}"
    assert ORIGINAL in keep.inner_text() and size in keep.inner_text()  # the larger one
    assert "copies/a-small.jpg" in photos.nth(1).inner_text() and "KB" in photos.nth(1).inner_text()
    assert page.locator("#dupes button:has-text('Delete')").count() == 0  # read only: the page cannot write
    page.wait_for_function("() => [...document.querySelectorAll('.dup-photo img')].every((i) => i.complete)")
    page.screenshot(path=str(shots / "desktop-duplicates.jpg"), quality=85)
    photos.nth(1).locator("button").click()
    page.wait_for_selector("#viewer:not([hidden]) #viewer-title:has-text('a-small.jpg')")
    page.keyboard.press("Escape")
    page.reload()
    page.wait_for_selector(".dup-group")
    page.go_back()
    page.wait_for_selector("#dupes", state="hidden")
    assert page.is_visible("#welcome") and page.is_visible("#filters")


def test_phone(browser, server: str, shots: Path) -> None:  # type: ignore[no-untyped-def]
    """On a phone the filter fields fold behind a button; the order and the timeline stay; nothing sticks
    out sideways."""
    ctx = browser.new_context(
        viewport={"width": 390, "height": 844}, device_scale_factor=2, is_mobile=True, has_touch=True
    )
    page = ctx.new_page()
    _open(page, server + "/?sort=-date")
    _taken(page, len(PHOTOS) + 1)
    assert page.is_hidden("#f-camera") and page.is_visible("#sort") and page.is_visible("#timeline")
    page.tap("#filters-toggle")
    page.wait_for_selector("#f-camera", state="visible")
    page.wait_for_timeout(300)
    assert page.evaluate("document.scrollingElement.scrollWidth") <= 390
    page.screenshot(path=str(shots / "phone-browse.jpg"), quality=85)
    ctx.close()


def test_the_timeline_follows_the_result_set(page, server: str) -> None:  # type: ignore[no-untyped-def]
    """A camera filter: the strip counts only that camera's photos; words: it asks for the months of the
    search's best matches (the request carries q and the filters, never the dates it picks itself)."""
    _open(page, server + "/?camera=NIKON%20D750")
    page.wait_for_function(
        "() => [...document.querySelectorAll('.tl-month:not([disabled])')].map((b) => b.dataset.month + ':'"
        " + b.dataset.count).join(',') === '2019-05:1,2019-07:1,2021-01:1'"
    )
    with page.expect_request(lambda r: "/api/timeline?" in r.url and "q=" in r.url) as req:
        page.fill("#q", "a dog")
    url = req.value.url
    assert "camera=NIKON" in url and "after=" not in url and "before=" not in url
