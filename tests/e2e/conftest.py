"""Browser fixtures the web page tests share (test_web, test_web_browse, test_web_refine): Debian's
chromium through Playwright, one browser per module, a fresh page per test that fails it on any
uncaught JavaScript error or Content-Security-Policy violation, and where screenshots go."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.e2e.test_web import ARGS, CHROMIUM, ROOT


@pytest.fixture(scope="module")
def shots(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """docs/screenshots/ with PIXSEARCH_SCREENSHOTS=1 (to refresh the README's pictures), else a temp dir."""
    if os.environ.get("PIXSEARCH_SCREENSHOTS"):
        d = ROOT / "docs" / "screenshots"
        d.mkdir(parents=True, exist_ok=True)
        return d
    return tmp_path_factory.mktemp("screenshots")


@pytest.fixture(scope="module")
def browser() -> Iterator[object]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=str(CHROMIUM), args=ARGS)
        yield b
        b.close()


@pytest.fixture
def page(browser):  # type: ignore[no-untyped-def]
    """A page that fails its test on an uncaught error or a Content-Security-Policy violation.

    ``wait_for_function`` gets arrow functions ("() => ..."): Playwright evaluates a bare expression
    with ``eval`` again on every poll, which the page's CSP (no 'unsafe-eval') refuses, so such a wait
    failed with an EvalError only when its condition was not already true at the first check."""
    ctx = browser.new_context(viewport={"width": 1280, "height": 860})
    pg = ctx.new_page()
    errors: list[str] = []
    pg.on("pageerror", lambda e: errors.append(str(e)))
    pg.on("console", lambda m: errors.append(m.text) if "Content Security Policy" in m.text else None)
    yield pg
    ctx.close()
    assert not errors, errors  # no uncaught JavaScript error on any page
