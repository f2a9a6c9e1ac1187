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


def _serve(lib: Path) -> tuple[subprocess.Popen[str], list[str]]:
    cmd = [sys.executable, "-m", "pixsearch.cli", "serve", "-L", str(lib), "--port", "0"]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    assert proc.stdout is not None
    lines = [proc.stdout.readline() for _ in range(3)]
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
