"""`pixsearch serve`: prints the URL (real port with --port 0) and the write token once, then serves."""

from __future__ import annotations

import os
import re
import shutil
import stat
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from tests.conftest import PipeLines


def _serve(lib: Path) -> tuple[subprocess.Popen[str], list[str]]:
    cmd = [sys.executable, "-m", "pixsearch.cli", "serve", "-L", str(lib), "--port", "0"]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    assert proc.stdout is not None
    out = PipeLines(proc.stdout)  # a server that never says where it listens fails here, not at 600 s
    try:
        lines = [out.next(timeout=120) for _ in range(3)]
    except AssertionError:
        proc.kill()
        raise
    return proc, lines


def test_serve_prints_url_and_token_once(built_library: Path, tmp_path: Path) -> None:
    lib = tmp_path / "lib"
    shutil.copytree(built_library, lib, ignore=shutil.ignore_patterns("api_token"))
    proc, lines = _serve(lib)
    try:
        m = re.search(r"http://127\.0\.0\.1:(\d+)/", lines[0])
        assert m and int(m.group(1)) > 0, lines
        token = (lib / "api_token").read_text().strip()
        assert token in lines[1] and "shown once" in lines[1]
        assert stat.S_IMODE(os.stat(lib / "api_token").st_mode) == 0o600
        base = f"http://127.0.0.1:{m.group(1)}"
        r = httpx.get(base + "/api/search", params={"q": "a dog"}, timeout=120)  # answers once warm
        assert r.status_code == 200 and r.json()["results"]
        assert "pixsearch" in httpx.get(base + "/", timeout=30).text
    finally:
        proc.terminate()
        proc.wait(timeout=30)
    proc, lines = _serve(lib)  # a second start keeps the token and does not print it
    proc.terminate()
    proc.wait(timeout=30)
    assert token not in "".join(lines) and "api_token" in lines[1]


def test_serve_port_in_use(built_library: Path, tmp_path: Path) -> None:
    import socket

    lib = tmp_path / "lib"
    shutil.copytree(built_library, lib)
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    s.listen()
    port = s.getsockname()[1]
    try:
        r = subprocess.run(
            [sys.executable, "-m", "pixsearch.cli", "serve", "-L", str(lib), "--port", str(port)],
            capture_output=True,
            text=True,
            timeout=120,
        )
    finally:
        s.close()
    assert r.returncode == 1 and "cannot listen" in r.stderr


@pytest.mark.parametrize("port", ["-1", "70000", "http"])
def test_serve_bad_port(port: str, tmp_path: Path) -> None:
    r = subprocess.run(
        [sys.executable, "-m", "pixsearch.cli", "serve", "-L", str(tmp_path), "--port", port],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert r.returncode == 2 and "port" in r.stderr.lower()


def _serve_with(lib: Path, *args: str) -> tuple[subprocess.Popen[str], str]:
    """A running `pixsearch serve` (with ``args``) and its base URL, once it answers."""
    cmd = [sys.executable, "-m", "pixsearch.cli", "serve", "-L", str(lib), "--port", "0", *args]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    assert proc.stdout is not None
    out = PipeLines(proc.stdout)
    try:
        line = out.next(timeout=120)
        m = re.search(r"http://127\.0\.0\.1:(\d+)/", line)
        assert m, line + out.rest(timeout=5)
    except AssertionError:
        proc.kill()
        raise
    return proc, f"http://127.0.0.1:{m.group(1)}"


def test_serve_answers_only_its_host_names_and_keeps_the_library_private(
    built_library: Path, tmp_path: Path
) -> None:
    lib = tmp_path / "lib"
    shutil.copytree(built_library, lib)
    os.chmod(lib, 0o755)  # as an older pixsearch left it: readable by every user
    os.chmod(lib / "catalog.db", 0o644)
    proc, base = _serve_with(lib, "--allowed-host", "photos.lan", "--allowed-host", "[fd00::5]")
    try:
        port = base.rsplit(":", 1)[1]
        for host, status in [
            ("evil.example", 400),  # a rebound DNS name
            (f"evil.example:{port}", 400),
            (f"127.0.0.1:{port}", 200),
            ("localhost", 200),
            (f"[::1]:{port}", 200),
            ("photos.lan", 200),
            (f"[fd00::5]:{port}", 200),
        ]:
            r = httpx.get(base + "/api/health", headers={"Host": host}, timeout=60)
            assert r.status_code == status, (host, r.status_code)
            assert (
                r.headers["x-frame-options"] == "DENY"
                and "frame-ancestors 'none'" in r.headers["content-security-policy"]
            )
        assert stat.S_IMODE(os.stat(lib).st_mode) == 0o700
        for name in ("catalog.db", "catalog.db-wal", "catalog.db-shm", "api_token"):
            if (lib / name).exists():
                assert stat.S_IMODE(os.stat(lib / name).st_mode) == 0o600, name
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def test_serve_refuses_a_bad_allowed_host(tmp_path: Path) -> None:
    r = subprocess.run(
        [sys.executable, "-m", "pixsearch.cli", "serve", "-L", str(tmp_path / "lib"), "--port", "0"]
        + ["--allowed-host", "http://photos.lan:8000"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert r.returncode != 0 and "not a host name" in r.stderr


CHROMIUM = Path("/usr/bin/chromium")


@pytest.mark.slow  # a real chromium against a real server
@pytest.mark.skipif(not CHROMIUM.exists(), reason="needs Debian's chromium at /usr/bin/chromium")
def test_page_runs_under_its_csp_and_a_bad_query_is_about_the_words(
    built_library: Path, tmp_path: Path
) -> None:
    from playwright.sync_api import sync_playwright

    lib = tmp_path / "lib"
    shutil.copytree(built_library, lib)
    proc, base = _serve_with(lib)
    args = [
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--no-first-run",
        "--disable-background-networking",
    ]
    try:
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=str(CHROMIUM), args=args)
            page = browser.new_page()
            problems: list[str] = []
            page.on("pageerror", lambda e: problems.append(str(e)))
            page.on(
                "console",
                lambda m: problems.append(m.text) if "Content Security Policy" in m.text else None,
            )
            page.goto(base + "/")
            page.wait_for_selector("#stats:has-text('photos')", timeout=120_000)  # app.js ran
            page.fill("#q", "a dog " * 100)  # 600 characters: the API answers 422
            page.wait_for_selector("#message h2", timeout=60_000)
            title = page.inner_text("#message h2")
            browser.close()
    finally:
        proc.terminate()
        proc.wait(timeout=30)
    assert "search" in title.lower() and "photo" not in title.lower(), title
    assert not problems, problems
