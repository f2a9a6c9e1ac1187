"""Security headers on every response: a Content-Security-Policy, no MIME sniffing, no referrer, no framing.

Why: the server hands out files it did not write (originals, uploads' thumbnails) and pages that show
text from its catalog; these headers keep a browser from running any of it as script, from sniffing a
photo into HTML, from framing the gallery (clickjacking) and from telling other sites what was searched.
The gallery page loads only its own /static files (no inline script, style or handler), so its policy
allows nothing else. FastAPI's /docs page is the exception: Swagger UI comes from a CDN and starts from
an inline script, so /docs alone gets a policy that allows exactly that (it works only where that CDN
is reachable, i.e. not offline; /openapi.json is the schema either way, under the strict policy).
"""

from __future__ import annotations

from starlette.datastructures import MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

__all__ = ["CSP", "DOCS_CSP", "SECURITY_HEADERS", "SecurityHeaders"]

CSP = (
    "default-src 'self'; img-src 'self' blob: data:; script-src 'self'; style-src 'self'; "
    "connect-src 'self'; object-src 'none'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'"
)
_CDN = "https://cdn.jsdelivr.net"  # where fastapi.openapi.docs loads Swagger UI from
DOCS_CSP = (
    f"default-src 'self'; img-src 'self' data: https://fastapi.tiangolo.com; script-src {_CDN} "
    f"'unsafe-inline'; style-src {_CDN}; connect-src 'self'; object-src 'none'; frame-ancestors 'none'; "
    "base-uri 'none'; form-action 'self'"
)
SECURITY_HEADERS = {
    "Content-Security-Policy": CSP,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "X-Frame-Options": "DENY",
}
_DOCS_PATHS = ("/docs", "/docs/oauth2-redirect")


class SecurityHeaders:
    """Adds SECURITY_HEADERS to each response (the relaxed policy on /docs); a route's own value wins."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        docs = scope.get("path", "") in _DOCS_PATHS

        async def with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                for name, value in SECURITY_HEADERS.items():
                    if name not in headers:
                        headers[name] = DOCS_CSP if docs and name == "Content-Security-Policy" else value
            await send(message)

        await self.app(scope, receive, with_headers)
