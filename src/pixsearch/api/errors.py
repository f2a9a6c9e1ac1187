"""Typed pixsearch errors -> HTTP status + a stable JSON body ``{"error": {"code", "message"}}``.

Clients branch on ``code`` (stable), people read ``message``. Every failure the API knows about is a 4xx
with such a body; a bug still answers JSON (code ``internal``), never an HTML page or a traceback.
"""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from pixsearch import errors as E
from pixsearch.api.headers import SECURITY_HEADERS

__all__ = ["ApiError", "install_error_handlers", "error_body", "status_for"]

log = logging.getLogger("pixsearch.api.app")


class ApiError(Exception):
    """An HTTP-level refusal raised by the API itself (auth, upload size, ...)."""

    def __init__(self, status: int, code: str, message: str, headers: dict[str, str] | None = None):
        super().__init__(message)
        self.status, self.code, self.message, self.headers = status, code, message, headers


def error_body(code: str, message: str, **extra: Any) -> dict[str, Any]:
    return {"error": {"code": code, "message": message}, **extra}


def status_for(exc: Exception) -> tuple[int, str]:
    """(HTTP status, stable code) of an error: a pixsearch error's own (errors.py), else a bug's."""
    if isinstance(exc, E.PixsearchError):
        return exc.http_status, exc.code
    return 500, "internal"


_HTTP_CODES = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    413: "too_large",
    415: "unsupported_media_type",
    422: "invalid_request",
}


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(E.PixsearchError)
    async def _pixsearch(_: Request, exc: E.PixsearchError) -> JSONResponse:
        status, code = status_for(exc)
        if isinstance(exc, E.BlockedError):
            disclaimer = exc.disclaimer or str(exc)
            return JSONResponse(error_body(code, disclaimer, disclaimer=disclaimer), status_code=status)
        msg = str(exc)
        if isinstance(exc, E.MediaError):
            msg = exc.reason  # the path is a temp name or "<upload>": say what is wrong with the photo
        # Another process is writing (one writer per library): the API never queues behind it, since
        # that would stall every read on the Library's one thread. The client retries.
        headers = {"Retry-After": "5"} if code == "busy" else None
        return JSONResponse(error_body(code, msg), status_code=status, headers=headers)

    @app.exception_handler(ApiError)
    async def _api(_: Request, exc: ApiError) -> JSONResponse:
        return JSONResponse(error_body(exc.code, exc.message), exc.status, headers=exc.headers)

    @app.exception_handler(RequestValidationError)
    async def _invalid(_: Request, exc: RequestValidationError) -> JSONResponse:
        details = [
            {"where": ".".join(str(p) for p in e.get("loc", ())), "problem": str(e.get("msg", ""))}
            for e in exc.errors()
        ]
        msg = "; ".join(f"{d['where']}: {d['problem']}" for d in details) or "invalid request"
        return JSONResponse(error_body("invalid_request", msg, details=details), status_code=422)

    @app.exception_handler(StarletteHTTPException)
    async def _http(_: Request, exc: StarletteHTTPException) -> JSONResponse:
        code = _HTTP_CODES.get(exc.status_code, "http_error")
        return JSONResponse(
            error_body(code, str(exc.detail)), status_code=exc.status_code, headers=exc.headers
        )

    @app.exception_handler(Exception)
    async def _bug(_: Request, exc: Exception) -> JSONResponse:
        log.exception("unexpected error")
        # Answered outside the app's middleware (Starlette's ServerErrorMiddleware): add the headers here.
        body = error_body("internal", "internal error (see the server log)")
        return JSONResponse(body, 500, headers=SECURITY_HEADERS)
