"""What the server refuses before a route runs, over a real uvicorn on 127.0.0.1 (the transport matters:
chunked bodies, Host headers): bodies over the limit, writes without the token, foreign Host names; and
the security headers every response carries.

A chunked upload has no Content-Length, so these tests speak HTTP/1.1 over a plain socket: they decide
what is sent when, and can tell whether the server stopped reading.
"""

from __future__ import annotations

import json
import re
import shutil
import socket
import tempfile
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
import starlette.formparsers

from pixsearch.api.app import create_app
from pixsearch.api.headers import CSP, DOCS_CSP
from pixsearch.api.hosts import LOOPBACK_NAMES, allowed_hosts
from pixsearch.api.worker import ensure_token
from pixsearch.errors import ConfigError
from tests.conftest import GALLERY

LIMIT = 1024 * 1024  # the server's max_upload_bytes here: small, so going over it is quick
WEB = Path(__file__).resolve().parents[3] / "src" / "pixsearch" / "api" / "web"


@dataclass
class Server:
    port: int
    token: str
    lib: Path

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"


@pytest.fixture(scope="module")
def server(built_library: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    import uvicorn

    lib = tmp_path_factory.mktemp("guardlib") / "lib"
    shutil.copytree(built_library, lib)
    app = create_app(library=lib, max_upload_bytes=LIMIT, allowed_hosts=["photos.lan"])
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    srv = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="on"))
    th = threading.Thread(target=srv.run, kwargs={"sockets": [sock]}, daemon=True)
    th.start()
    deadline = time.time() + 120
    while not srv.started:
        assert time.time() < deadline and th.is_alive(), "uvicorn did not start"
        time.sleep(0.05)
    yield Server(sock.getsockname()[1], ensure_token(lib)[0], lib)
    srv.should_exit = True
    th.join(timeout=30)


@pytest.fixture
def spooled(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """The largest size each multipart file part reached in Starlette's spool (memory, then a temp file)."""
    sizes: list[int] = []

    class Recording(tempfile.SpooledTemporaryFile):  # type: ignore[type-arg]
        def __init__(self, *a: object, **kw: object) -> None:
            super().__init__(*a, **kw)  # type: ignore[arg-type]
            self._slot = len(sizes)
            sizes.append(0)

        def write(self, s: bytes) -> int:  # type: ignore[override]
            n = super().write(s)
            sizes[self._slot] = max(sizes[self._slot], self.tell())
            return n

    monkeypatch.setattr(starlette.formparsers, "SpooledTemporaryFile", Recording)
    return sizes


BOUNDARY = "pixsearchtestboundary"


def _head(port: int, path: str, auth: str | None = None) -> bytes:
    lines = [
        f"POST {path} HTTP/1.1",
        f"Host: 127.0.0.1:{port}",
        f"Content-Type: multipart/form-data; boundary={BOUNDARY}",
        "Transfer-Encoding: chunked",
    ]
    if auth:
        lines.append(f"Authorization: {auth}")
    part = f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="file"; filename="big.png"\r\n'
    part += "Content-Type: image/png\r\n\r\n"
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + _chunk(part.encode())


def _chunk(data: bytes) -> bytes:
    return f"{len(data):x}\r\n".encode() + data + b"\r\n"


def _response(sock: socket.socket) -> tuple[int, dict[str, str], dict]:  # type: ignore[type-arg]
    """Status, headers and JSON body of the one response on ``sock`` (read until the server closes)."""
    buf = b""
    try:
        while True:
            got = sock.recv(65536)
            if not got:
                break
            buf += got
            head, sep, rest = buf.partition(b"\r\n\r\n")
            m = re.search(rb"content-length: *(\d+)", head, re.IGNORECASE)
            if sep and m and len(rest) >= int(m.group(1)):
                break
    except (ConnectionResetError, TimeoutError):
        pass
    head, _, body = buf.partition(b"\r\n\r\n")
    status_line, *header_lines = head.decode().split("\r\n")
    headers = {k.lower(): v.strip() for k, _, v in (h.partition(":") for h in header_lines)}
    return int(status_line.split()[1]), headers, json.loads(body)


def _push(sock: socket.socket, total: int, chunk: int = 64 * 1024) -> int:
    """Send up to ``total`` bytes of file data in chunks; how many went out before the server stopped
    taking them (closed the connection, or left them unread for 3 s)."""
    sock.settimeout(3)
    sent = 0
    data = _chunk(b"\0" * chunk)
    try:
        while sent < total:
            sock.sendall(data)
            sent += chunk
    except OSError:  # reset, broken pipe or a full window the server no longer drains
        pass
    return sent


# -- bodies over the limit --------------------------------------------------------------------------
def test_chunked_upload_over_the_limit_is_413_and_never_spooled_past_it(
    server: Server, spooled: list[int]
) -> None:
    with socket.create_connection(("127.0.0.1", server.port)) as sock:
        sock.sendall(_head(server.port, "/api/search/image"))
        sent = _push(sock, 16 * LIMIT)
        status, headers, body = _response(sock)
    assert status == 413 and body["error"]["code"] == "too_large", body
    assert headers.get("connection") == "close"
    assert spooled and max(spooled) <= LIMIT  # the part stopped growing at the limit
    assert sent < 16 * LIMIT  # and the server stopped taking the rest


def test_declared_length_over_the_limit_is_413_unread(server: Server) -> None:
    big = b"\0" * (LIMIT + 128 * 1024)
    r = httpx.post(server.base + "/api/describe", files={"file": ("big.png", big)}, timeout=30)
    assert r.status_code == 413 and r.json()["error"]["code"] == "too_large"


def test_a_body_under_the_limit_still_works(server: Server) -> None:
    data = sorted((GALLERY / "images").glob("*.jpg"))[0].read_bytes()
    assert len(data) < LIMIT
    r = httpx.post(server.base + "/api/search/image", files={"file": ("q.jpg", data)}, timeout=120)
    assert r.status_code == 200 and r.json()["results"], r.text


# -- writes without the token -----------------------------------------------------------------------
@pytest.mark.parametrize(
    ("auth", "status", "code"), [(None, 401, "unauthorized"), ("Bearer wrong", 403, "forbidden")]
)
def test_write_without_the_token_is_refused_before_its_body(
    server: Server, spooled: list[int], auth: str | None, status: int, code: str
) -> None:
    with socket.create_connection(("127.0.0.1", server.port)) as sock:
        sock.settimeout(10)
        sock.sendall(_head(server.port, "/api/photos", auth) + _chunk(b"\0" * 1024))
        got, headers, body = _response(sock)  # answered from the headers: the body is still to come
        sent = _push(sock, 64 * LIMIT)
    assert got == status and body["error"]["code"] == code, body
    assert headers.get("connection") == "close"
    assert spooled == []  # the form was never parsed
    assert sent < 64 * LIMIT  # the server closed instead of reading on


def test_write_with_the_token_reads_its_body(server: Server) -> None:
    r = httpx.post(
        server.base + "/api/photos",
        files={"file": ("x.txt", b"not a photo")},
        headers={"Authorization": f"Bearer {server.token}"},
        timeout=60,
    )
    assert r.status_code == 415 and r.json()["error"]["code"] == "unsupported_media_type"
    r = httpx.delete(server.base + "/api/photos/1", headers={"Authorization": "Bearer nope"}, timeout=30)
    assert r.status_code == 403


# -- Host names (DNS rebinding) ---------------------------------------------------------------------
@pytest.mark.parametrize("host", ["evil.example", "evil.example:{port}", "127.0.0.1.evil.example", ""])
def test_a_foreign_host_is_400(server: Server, host: str) -> None:
    r = httpx.get(server.base + "/api/health", headers={"Host": host.format(port=server.port)}, timeout=30)
    assert r.status_code == 400
    assert r.headers["x-content-type-options"] == "nosniff"


@pytest.mark.parametrize(
    "host", ["127.0.0.1:{port}", "127.0.0.1", "localhost", "LOCALHOST:{port}", "[::1]:{port}", "photos.lan"]
)
def test_the_bound_loopback_and_allowed_hosts_work(server: Server, host: str) -> None:
    r = httpx.get(server.base + "/api/health", headers={"Host": host.format(port=server.port)}, timeout=30)
    assert r.status_code == 200 and r.json()["status"] == "ok"


def test_allowed_host_names() -> None:
    assert allowed_hosts("127.0.0.1") == ["127.0.0.1", "localhost", "[::1]"]
    assert set(allowed_hosts("::1")) == set(LOOPBACK_NAMES)
    assert allowed_hosts("192.168.1.5") == ["192.168.1.5"]  # not loopback: its own name only
    assert allowed_hosts("fe80::1", ["Photos.LAN", "10.0.0.2", "*.home.arpa"]) == [
        "[fe80::1]",
        "photos.lan",
        "10.0.0.2",
        "*.home.arpa",
    ]
    assert set(LOOPBACK_NAMES) < set(allowed_hosts("0.0.0.0"))  # noqa: S104
    for bad in ("http://x", "host:8000", "a b", "", "*"):
        with pytest.raises(ConfigError):
            allowed_hosts("127.0.0.1", [bad])


# -- security headers -------------------------------------------------------------------------------
@pytest.mark.parametrize("path", ["/", "/static/app.js", "/api/health", "/api/nope", "/openapi.json"])
def test_security_headers_on_every_response(server: Server, path: str) -> None:
    r = httpx.get(server.base + path, timeout=30)
    assert r.headers["content-security-policy"] == CSP
    assert "script-src 'self';" in CSP and "unsafe-inline" not in CSP
    assert r.headers["x-content-type-options"] == "nosniff"
    assert r.headers["referrer-policy"] == "no-referrer"
    assert r.headers["x-frame-options"] == "DENY"


def test_docs_alone_get_the_swagger_policy(server: Server) -> None:
    r = httpx.get(server.base + "/docs", timeout=30)
    assert r.status_code == 200 and r.headers["content-security-policy"] == DOCS_CSP
    assert r.headers["x-frame-options"] == "DENY"
    assert httpx.get(server.base + "/openapi.json", timeout=30).json()["paths"]


def test_the_page_has_no_inline_script_style_or_handler() -> None:
    html = (WEB / "index.html").read_text()
    scripts = re.findall(r"<script\b([^>]*)>(.*?)</script>", html, re.DOTALL | re.IGNORECASE)
    assert scripts and all("src=" in attrs and not body.strip() for attrs, body in scripts)
    assert not re.search(r"<style\b", html, re.IGNORECASE)
    assert not re.search(r"\sstyle\s*=", html, re.IGNORECASE)
    assert not re.search(r"\son[a-z]+\s*=", html, re.IGNORECASE)
    assert not re.search(r"javascript:", html, re.IGNORECASE)
