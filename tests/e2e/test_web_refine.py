"""The web page's "more like this" / "less like this" in a real browser (Playwright + Debian's Chromium, a
real uvicorn server over the gallery library, as in test_web.py): a refinement re-runs the search shown as
a composed query (POST /api/search with the words and the photo's id, weighted +1 or -1), shows a
removable chip, and lives in the address (more=, less=); the filter bar's filters go with photo searches
(an uploaded photo, a library photo's similar ones) and with refined searches.
"""

from __future__ import annotations

import base64
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.e2e.test_web import CHROMIUM, _serving, dropped_file

pytestmark = pytest.mark.skipif(
    not CHROMIUM.exists(),
    reason="browser tests need Debian's chromium at /usr/bin/chromium (apt-get install chromium)",
)

WORDS = "a dog running"


@pytest.fixture(scope="module")
def server(built_library: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    lib = tmp_path_factory.mktemp("refinelib") / "lib"
    shutil.copytree(built_library, lib)
    with _serving(lib) as url:
        yield url


def _open(page, url: str) -> None:  # type: ignore[no-untyped-def]
    page.goto(url)
    page.wait_for_selector("#stats:has-text('photos')")


def _settled(page, mode: str) -> list[int]:  # type: ignore[no-untyped-def]
    """The ids the grid shows once a search in ``mode`` has finished loading."""
    page.wait_for_function(
        "(mode) => state.mode === mode && !state.loading && !document.querySelector('.tile.skeleton')",
        arg=mode,
    )
    return [int(i) for i in page.eval_on_selector_all(".tile[data-id]", "ts => ts.map((t) => t.dataset.id)")]


def _text_results(page, server: str, query: str = "") -> list[int]:  # type: ignore[no-untyped-def]
    _open(page, server + "/" + query)
    page.fill("#q", WORDS)
    return _settled(page, "text")


def _chips(page) -> list[tuple[str, str, str]]:  # type: ignore[no-untyped-def]
    """(id, "more"|"less", shown text) of each refinement chip."""
    chips = page.eval_on_selector_all(
        "#refine-chips .refine-chip",
        "cs => cs.map((c) => [c.dataset.id, c.classList.contains('refine-more') ? 'more' : 'less', "
        "c.innerText])",
    )
    return [tuple(c) for c in chips]


def test_less_like_this_drops_the_photo_and_the_chip_brings_it_back(page, server: str) -> None:  # type: ignore[no-untyped-def]
    plain = _text_results(page, server)
    assert len(plain) >= 8 and page.locator(".tile .badge").count() > 0  # a text search shows its match
    first = plain[0]
    page.focus(".tile[data-index='0']")
    page.keyboard.press("Tab")  # the tile's own buttons come next, by keyboard too
    page.keyboard.press("Tab")
    label = page.evaluate("() => document.activeElement.getAttribute('aria-label')")
    assert label.startswith("Less like ") and label.endswith(".jpg")
    with page.expect_request(lambda r: r.method == "POST" and r.url.endswith("/api/search")) as req:
        page.keyboard.press("Enter")
    body = req.value.post_data_json
    assert body["terms"] == [{"text": WORDS, "weight": 1}, {"photo_id": first, "weight": -1}]
    assert body["offset"] == 0 and body["k"] == 24
    refined = _settled(page, "refine")
    assert first not in refined and len(refined) == len(plain) - 1
    assert page.locator(".tile .badge").count() == 0  # a cosine orders the results, it is no "% match"
    chips = _chips(page)
    assert [c[:2] for c in chips] == [(str(first), "less")] and label[len("Less like ") :] in chips[0][2]
    assert f"less={first}" in page.url
    page.click(f"#refine-chips .refine-chip[data-id='{first}']")  # removing the only chip: the plain search
    assert _settled(page, "text") == plain
    assert page.is_hidden("#refinements") and "less=" not in page.url


def test_more_like_this_from_the_viewer_refines_and_the_address_keeps_it(
    page, server: str, shots: Path
) -> None:  # type: ignore[no-untyped-def]
    plain = _text_results(page, server)
    liked = plain[5]
    page.click(".tile[data-index='5']")
    page.wait_for_selector("#viewer:not([hidden])")
    with page.expect_request(lambda r: r.method == "POST" and r.url.endswith("/api/search")) as req:
        page.click("#viewer-more")
    assert {"photo_id": liked, "weight": 1} in req.value.post_data_json["terms"]
    refined = _settled(page, "refine")
    assert page.is_hidden("#viewer") and liked not in refined and refined != plain[:5] + plain[6:]
    page.wait_for_function("() => document.querySelector('.refine-chip').innerText.includes('.jpg')")
    chips = _chips(page)
    assert [c[:2] for c in chips] == [(str(liked), "more")] and f"more={liked}" in page.url
    page.reload()  # the address holds the refined search: the same chips, the same photos
    assert _settled(page, "refine") == refined
    page.wait_for_function("() => document.querySelector('.refine-chip').innerText.includes('.jpg')")
    assert _chips(page) == chips and page.input_value("#q") == WORDS
    page.hover(".cell:nth-child(2) .tile")  # its "More" and "Less" buttons show on hover
    page.wait_for_function(
        "() => [...document.querySelectorAll('.tile img, .refine-chip img')].every((i) => i.complete)"
    )
    page.wait_for_timeout(300)
    page.screenshot(path=str(shots / "desktop-refined.jpg"), quality=85)
    page.fill("#q", "people climbing a rock")  # new words keep the chips
    page.wait_for_function("() => state.q === 'people climbing a rock' && !state.loading")
    again = _settled(page, "refine")
    assert _chips(page) == chips and again != refined and "more=" in page.url
    page.click("#refine-clear")
    _settled(page, "text")
    assert page.is_hidden("#refinements") and "more=" not in page.url


def test_a_refined_search_sends_the_filters(page, server: str) -> None:  # type: ignore[no-untyped-def]
    plain = _text_results(page, server)
    q = f"?q={WORDS.replace(' ', '+')}&more={plain[1]}&less={plain[2]}&from=2000-01&to=2000-01"
    with page.expect_request(lambda r: r.method == "POST" and r.url.endswith("/api/search")) as req:
        page.goto(server + "/" + q)
    body = req.value.post_data_json
    assert body["after"] == "2000-01" and body["before"] == "2000-02"  # "to" is inclusive: all of January
    assert {"photo_id": plain[2], "weight": -1} in body["terms"]
    assert _settled(page, "refine") == []  # no photo was taken in January 2000
    assert "match these filters" in page.inner_text("#message")
    assert [c[:2] for c in _chips(page)] == [(str(plain[1]), "more"), (str(plain[2]), "less")]


def test_photo_searches_keep_to_the_filters(page, server: str, gallery_subset: Path) -> None:  # type: ignore[no-untyped-def]
    """A library photo's similar ones and an uploaded photo's search send the filter bar's filters, and a
    filter changed meanwhile runs the same photo search again."""
    plain = _text_results(page, server)
    page.click(".tile[data-index='0']")
    page.click("#viewer-find-similar")
    similar = _settled(page, "similar")
    assert len(similar) == len(plain) - 1
    with page.expect_request(lambda r: "/similar?" in r.url and "folder=nowhere" in r.url):
        page.fill("#f-folder", "nowhere")
    assert _settled(page, "similar") == []
    assert "match these filters" in page.inner_text("#message")

    photo = sorted((gallery_subset / "photos").glob("*.jpg"))[4]
    dt = dropped_file(page, photo)
    with page.expect_request(lambda r: "/api/search/image?" in r.url and "folder=nowhere" in r.url):
        page.dispatch_event("body", "drop", {"dataTransfer": dt})
    assert _settled(page, "photo") == []
    assert "match these filters" in page.inner_text("#message")
    page.click("#f-clear")  # the same photo, every folder
    assert len(_settled(page, "photo")) >= 8 and page.is_visible("#query-photo")
    with page.expect_request(lambda r: r.method == "POST" and r.url.endswith("/api/search")) as req:
        page.click(".cell:first-child .refine-button[data-weight='-1']")  # the upload stays a term
    terms = req.value.post_data_json["terms"]
    assert base64.b64decode(terms[0]["upload"]) == photo.read_bytes() and terms[1]["weight"] == -1
    _settled(page, "refine")
    assert page.evaluate("() => state.refine") == [{"id": terms[1]["photo_id"], "weight": -1}]
