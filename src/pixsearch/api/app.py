"""The REST API (FastAPI; OpenAPI at /docs) and the web page, over one Library.

``create_app()`` builds the app; ``pixsearch serve`` runs it with uvicorn. Every endpoint is ``async``
and runs its Library work on a Library's own thread (``worker.py``: reads on a pool of readers at once,
writes on the one writer; each SQLite connection used by one thread only). Reads are open; writes (add,
delete) need the library's bearer token.
Photos are named by catalog id only. Errors are JSON with a stable code (``errors.py``); the content
policy's BlockedError is HTTP 451 with the disclaimer, and withheld photos stay withheld in every list.
Before any route: a Host the server does not go by is a 400 (``hosts.py``: DNS rebinding), a body over
the limit a 413 and a write without the token a 401/403, its body unread (``guards.py``); every response
carries the security headers (``headers.py``); uploads are decoded off the Library's thread
(``uploads.py``).
The routes live by resource: ``search.py`` (finding photos), ``photos.py`` (one photo by id),
``words.py`` (describe, caption, score); this module keeps the service routes and the web page.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import replace
from pathlib import Path
from typing import Any

from fastapi import FastAPI, Request, Security
from fastapi.responses import FileResponse
from fastapi.routing import APIRoute
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from fastapi.staticfiles import StaticFiles
from starlette.middleware.trustedhost import TrustedHostMiddleware

from pixsearch import __version__
from pixsearch.api.changes import add_change_routes
from pixsearch.api.duplicates import add_duplicate_routes
from pixsearch.api.errors import install_error_handlers
from pixsearch.api.guards import MULTIPART_OVERHEAD, BodyLimit, WriteGate, token_refusal
from pixsearch.api.headers import SecurityHeaders
from pixsearch.api.hosts import allowed_hosts as host_names
from pixsearch.api.photos import add_photo_routes
from pixsearch.api.search import add_search_routes
from pixsearch.api.timeline import add_timeline_routes
from pixsearch.api.uploads import Uploads
from pixsearch.api.words import add_describe_routes, add_word_routes
from pixsearch.api.worker import LibraryWorker, ensure_token
from pixsearch.config import Settings, load_settings

__all__ = ["create_app", "MAX_UPLOAD_BYTES"]

MAX_UPLOAD_BYTES = 20 * 1024 * 1024  # a camera JPEG is 5-15 MB; anything bigger is refused (413)
WEB = Path(__file__).parent / "web"


def create_app(
    settings: Settings | None = None,
    library: Path | str | None = None,
    *,
    max_upload_bytes: int = MAX_UPLOAD_BYTES,
    token: str | None = None,
    warm: bool = False,
    host: str = "127.0.0.1",
    allowed_hosts: Sequence[str] = (),
    readers: int | None = None,
    reader_processes: bool = False,
) -> FastAPI:
    """The app for one library. ``warm`` opens the Library and loads its models at startup. It answers
    to the names of ``host`` (the address it is served on) and to ``allowed_hosts`` (``hosts.py``).
    ``readers`` searches run at once (default ``settings.readers``, else one per core), on threads or,
    with ``reader_processes``, in reader processes (``worker.py``)."""
    s = settings or load_settings(library=Path(library) if library else None)
    if library is not None:
        s = replace(s, library=Path(library))
    worker = LibraryWorker(s, readers=readers, processes=reader_processes)
    secret = token or ensure_token(s.library)[0]
    bearer = HTTPBearer(auto_error=False, description="The token printed by `pixsearch serve`.")

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        if warm:
            await asyncio.to_thread(worker.warm)  # every reader, with its models
        yield
        worker.release()

    app = FastAPI(
        title="pixsearch",
        version=__version__,
        description="Find photos from words and words for photos. Writes need `Authorization: Bearer`.",
        lifespan=lifespan,
    )
    app.state.worker = worker
    app.state.settings = s
    app.state.features = {}
    install_error_handlers(app)

    uploads = Uploads(worker, max_upload_bytes)

    async def need_token(request: Request, _: HTTPAuthorizationCredentials | None = Security(bearer)) -> None:
        # WriteGate has checked already, before the body was read; this names the scheme in the schema.
        refused = token_refusal(request.headers.get("authorization"), secret)
        if refused is not None:
            raise refused

    # -- service ----------------------------------------------------------------------------------
    @app.get("/api/health", tags=["service"])
    async def health() -> dict[str, Any]:
        """Liveness: answers without touching the library."""
        return {"status": "ok", "version": __version__}

    @app.get("/api/stats", tags=["service"])
    async def stats() -> dict[str, Any]:
        """Counts of photos and captions, the model, the policy region."""
        d = await worker.run(lambda lib: lib.stats())
        d.pop("library", None)  # the server's filesystem layout is not the client's business
        features = app.state.features
        return {
            **d,
            "region": d["region"],  # the region in force: the server's floor (its --region, or the pin)
            "max_upload_bytes": max_upload_bytes,
            "features": features,
        }

    # -- the resources (in this order in the OpenAPI schema) ----------------------------------------
    add_search_routes(app, worker, uploads)
    add_describe_routes(app, worker, uploads)
    add_photo_routes(app, worker, uploads, need_token)
    add_duplicate_routes(app, worker)
    add_timeline_routes(app, worker)  # photos per month (the page's timeline strip)
    add_change_routes(app, worker)  # has the library changed? (the page's live refresh)
    app.state.features.update(add_word_routes(app, worker, uploads))

    # -- the web page -----------------------------------------------------------------------------
    if (WEB / "index.html").is_file():
        app.mount("/static", StaticFiles(directory=WEB), name="static")

        @app.get("/", include_in_schema=False)
        async def index() -> FileResponse:
            return FileResponse(WEB / "index.html", headers={"Cache-Control": "no-cache"})

    # -- before any route (the last added runs first) ----------------------------------------------
    writes = [
        r
        for r in app.routes
        if isinstance(r, APIRoute) and any(d.call is need_token for d in r.dependant.dependencies)
    ]
    app.add_middleware(WriteGate, writes=writes, secret=secret)
    app.add_middleware(BodyLimit, limit=max_upload_bytes + MULTIPART_OVERHEAD)
    hosts = host_names(host, allowed_hosts)
    app.add_middleware(TrustedHostMiddleware, allowed_hosts=hosts, www_redirect=False)
    app.add_middleware(SecurityHeaders)
    return app
