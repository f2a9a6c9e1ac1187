"""``pixsearch index --watch`` and ``pixsearch serve --watch`` end to end: real processes, real Flickr8k
photos, real file-system events. A photo copied in becomes searchable from another process; Ctrl+C
(SIGINT) in the middle of a batch exits 130 and leaves a library that ``doctor`` passes and the next
``index`` completes; an open web page shows a photo added meanwhile without a reload."""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import PipeLines, catalog_generation, wait_until
from tests.e2e.test_web import ARGS, CHROMIUM

CLI = [sys.executable, "-m", "pixsearch.cli"]


@pytest.fixture(scope="module")
def names(flickr8k: Path) -> list[str]:
    return (flickr8k / "test.txt").read_text().split()[:14]


def _caption(flickr8k: Path, name: str) -> str:
    for line in (flickr8k / "captions.csv").read_text().splitlines():
        if line.startswith(name + ","):
            return line.split(",", 1)[1].strip(' ."')
    raise AssertionError(f"no caption for {name}")


def _until(lines: PipeLines[str], pattern: str, timeout: float = 120.0) -> str:
    """The first line matching ``pattern`` (earlier ones skipped), within ``timeout`` s each."""
    while True:
        line = lines.next(timeout=timeout)
        assert line, f"ended before a line matching {pattern!r}; saw {lines.seen!r}"
        if re.search(pattern, line):
            return line


def _watch(lib: Path, folder: Path, env: dict[str, str] | None = None) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [*CLI, "index", "--watch", str(folder), "-L", str(lib)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, **(env or {})},
    )


def test_index_watch_makes_a_new_photo_searchable(tmp_path: Path, flickr8k: Path, names: list[str]) -> None:
    folder, lib = tmp_path / "photos", tmp_path / "lib"
    folder.mkdir()
    for n in names[:2]:
        shutil.copy(flickr8k / "images" / n, folder / n)
    proc = _watch(lib, folder)
    assert proc.stdout is not None and proc.stderr is not None
    out, err = PipeLines(proc.stdout), PipeLines(proc.stderr)
    try:
        assert "added 2" in out.next()  # the usual index report first
        _until(err, r"^watching .*photos")
        dog = names[2]  # "A little tan dog with large ears running through the grass ."
        shutil.copy(flickr8k / "images" / dog, folder / dog)
        line = _until(out, r"added \d")
        assert re.search(r"\d\d:\d\d:\d\d added 1, changed 0, removed 0, failed 0", line), line
        found = subprocess.run(
            [*CLI, "search", _caption(flickr8k, dog), "-L", str(lib), "--json", "-k", "1"],
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert found.returncode == 0, found.stderr
        assert json.loads(found.stdout)["results"][0]["name"] == dog
        (folder / names[0]).unlink()
        assert re.search(r"added 0, changed 0, removed 1, failed 0", _until(out, r"removed \d"))
    finally:
        proc.send_signal(signal.SIGINT)
        proc.wait(timeout=60)
    assert proc.returncode == 130
    assert "stopped watching; what was committed is kept" in err.rest(timeout=5)


def test_sigint_during_a_batch_leaves_a_consistent_library(
    tmp_path: Path, flickr8k: Path, names: list[str]
) -> None:
    folder, lib = tmp_path / "photos", tmp_path / "lib"
    folder.mkdir()
    shutil.copy(flickr8k / "images" / names[0], folder / names[0])
    proc = _watch(lib, folder, {"PIXSEARCH_BATCH_SIZE": "1"})  # a commit a photo: Ctrl+C between two
    assert proc.stdout is not None and proc.stderr is not None
    err, _ = PipeLines(proc.stderr), PipeLines(proc.stdout)  # both drained
    try:
        _until(err, r"^watching ")
        before = catalog_generation(lib)
        for n in names[1:]:
            shutil.copy(flickr8k / "images" / n, folder / n)
        wait_until(lambda: catalog_generation(lib) > before, 120, "the watcher's first commit")
        proc.send_signal(signal.SIGINT)
        proc.wait(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 130, err.rest(timeout=5)
    doctor = subprocess.run([*CLI, "doctor", "-L", str(lib)], capture_output=True, text=True, timeout=120)
    assert doctor.returncode == 0, doctor.stdout + doctor.stderr
    again = subprocess.run(
        [*CLI, "index", str(folder), "-L", str(lib), "--json"], capture_output=True, text=True, timeout=300
    )
    rep = json.loads(again.stdout)
    assert rep["unchanged"] >= 2 and rep["added"] + rep["unchanged"] == len(names), rep  # resumed


def test_watch_refuses_sample(tmp_path: Path) -> None:
    r = subprocess.run(
        [*CLI, "index", "--watch", "--sample", "3", str(tmp_path), "-L", str(tmp_path / "lib")],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert r.returncode == 2 and "--sample" in r.stderr and not (tmp_path / "lib").exists()


# -- the web page ----------------------------------------------------------------------------------------
@pytest.fixture
def watched_server(built_library: Path, tmp_path: Path) -> Iterator[tuple[str, Path, PipeLines[str]]]:
    """``pixsearch serve --watch INCOMING`` over a copy of the gallery library: (URL, INCOMING, output)."""
    lib, incoming = tmp_path / "lib", tmp_path / "incoming"
    shutil.copytree(built_library, lib)
    incoming.mkdir()
    proc = subprocess.Popen(
        [*CLI, "serve", "-L", str(lib), "--port", "0", "--watch", str(incoming)],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    assert proc.stdout is not None
    out = PipeLines(proc.stdout)
    try:
        m = re.search(r"http://127\.0\.0\.1:(\d+)/", _until(out, r"http://"))
        assert m
        _until(out, r"^watching ")
        yield f"http://127.0.0.1:{m.group(1)}", incoming, out
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(timeout=60)
        finally:
            if proc.poll() is None:
                proc.kill()


@pytest.mark.slow  # a server with its reader processes, a watcher and a real chromium
@pytest.mark.skipif(not CHROMIUM.exists(), reason="browser tests need Debian's chromium at /usr/bin/chromium")
def test_open_page_shows_a_photo_added_meanwhile(watched_server, flickr8k: Path, names: list[str]) -> None:  # type: ignore[no-untyped-def]
    from playwright.sync_api import sync_playwright

    base, incoming, out = watched_server
    dog = names[2]
    words = _caption(flickr8k, dog)
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=ARGS)
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 860})
            errors: list[str] = []
            page.on("pageerror", lambda e: errors.append(str(e)))
            page.goto(base + "/")
            page.wait_for_selector("#stats:has-text('24 photos')")
            page.fill("#q", words)
            page.wait_for_selector(".tile img.loaded")
            page.evaluate("window.sameDocument = true")  # gone if the page reloads
            shutil.copy(flickr8k / "images" / dog, incoming / "new-dog.jpg")
            assert "added 1" in _until(out, r"added \d")
            page.wait_for_selector("#stats:has-text('25 photos')", timeout=60_000)
            ask = "(q) => fetch('/api/search?k=24&q=' + encodeURIComponent(q)).then((r) => r.json())"
            hits = page.evaluate(ask, words)["results"]
            new_id = next(r["image_id"] for r in hits if r.get("name") == "new-dog.jpg")
            page.wait_for_selector(f".tile[data-id='{new_id}']", timeout=60_000)
            assert page.evaluate("window.sameDocument") is True
            assert not errors, errors
        finally:
            browser.close()
