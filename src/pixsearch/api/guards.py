"""Refusals made before a request's body is read: a body over the size limit, a write without the token.

Why ASGI middleware (not a route dependency, not Starlette's BaseHTTPMiddleware): FastAPI reads and
parses a multipart body (spooling its files to disk) before it runs a route's dependencies, and a
chunked body has no Content-Length to check up front. So the byte limit is counted on ``receive`` while
the body streams in, and a write's token is checked from the headers before the route is called. Both
answer with our JSON error body and ``Connection: close``: the rest of the body is never read.
"""

from __future__ import annotations

from collections.abc import Sequence

from starlette.datastructures import Headers
from starlette.exceptions import HTTPException
from starlette.responses import JSONResponse
from starlette.routing import BaseRoute, Match
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from pixsearch.api.errors import ApiError, error_body
from pixsearch.api.worker import token_matches

__all__ = ["BodyLimit", "BodyTooLarge", "MULTIPART_OVERHEAD", "WriteGate", "token_refusal"]

MULTIPART_OVERHEAD = 64 * 1024  # boundaries, part headers and small form fields beside the file
_CLOSE = {"Connection": "close"}


class BodyTooLarge(HTTPException):
    """Raised from ``receive`` once a body passes the limit. An HTTPException, so FastAPI's body parsing
    passes it on (it turns other errors into a 400) to the error handlers: a 413 ``too_large``."""

    def __init__(self, limit: int) -> None:
        size = f"{limit / 2**20:.0f} MiB" if limit >= 2**20 else f"{limit / 1024:.0f} KiB"
        super().__init__(413, f"request body is over the {size} limit", _CLOSE)


def _refusal(status: int, code: str, message: str, headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse(error_body(code, message), status, headers={**(headers or {}), **_CLOSE})


class BodyLimit:
    """Caps every request body at ``limit`` bytes: from Content-Length when it is declared (before any
    byte is read), else by counting the chunks as they arrive."""

    def __init__(self, app: ASGIApp, limit: int) -> None:
        self.app = app
        self.limit = limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = Headers(scope=scope).get("content-length", "")
        if declared.isdigit() and int(declared) > self.limit:
            too_large = BodyTooLarge(self.limit)
            await _refusal(413, "too_large", str(too_large.detail))(scope, receive, send)
            return
        seen = 0
        started = False

        async def counted() -> Message:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.limit:
                    raise BodyTooLarge(self.limit)
            return message

        async def watched(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, counted, watched)
        except BodyTooLarge as exc:  # read outside FastAPI's handlers (none today): answer here
            if started:
                raise
            await _refusal(413, "too_large", str(exc.detail))(scope, receive, send)


def token_refusal(authorization: str | None, secret: str) -> ApiError | None:
    """Why a request's ``Authorization`` header does not allow a write (None: it does). No bearer token
    is a 401 (with ``WWW-Authenticate``), a wrong one a 403."""
    scheme, _, given = (authorization or "").strip().partition(" ")
    given = given.strip()
    if scheme.lower() != "bearer" or not given:
        return ApiError(401, "unauthorized", "this needs the API token", {"WWW-Authenticate": "Bearer"})
    if not token_matches(given, secret):
        return ApiError(403, "forbidden", "wrong API token")
    return None


class WriteGate:
    """Checks the bearer token of a request to one of ``writes`` (the routes that need it) before the
    route, and so before its body is read: an upload without the token is refused at its headers."""

    def __init__(self, app: ASGIApp, writes: Sequence[BaseRoute], secret: str) -> None:
        self.app = app
        self.writes = list(writes)
        self.secret = secret

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and any(r.matches(scope)[0] is Match.FULL for r in self.writes):
            refused = token_refusal(Headers(scope=scope).get("authorization"), self.secret)
            if refused is not None:
                response = _refusal(refused.status, refused.code, refused.message, refused.headers)
                await response(scope, receive, send)
                return
        await self.app(scope, receive, send)
