"""The REST API (FastAPI; OpenAPI at /docs) and the web page, over one Library.

``create_app()`` builds the app; ``pixsearch serve`` runs it with uvicorn. Every endpoint is ``async``
and runs its Library work on the Library's own thread (``api_worker``: one Library per process, its SQLite
connection used by one thread only). Reads are open; writes (add, delete) need the library's bearer token.
Photos are named by catalog id only. Errors are JSON with a stable code (``api_errors``); the content
policy's BlockedError is HTTP 451 with the disclaimer, and withheld photos stay withheld in every list.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import replace
from pathlib import Path
from typing import Annotated, Any

from fastapi import Depends, FastAPI, Form, Query, Request, Security
from fastapi.responses import FileResponse, JSONResponse, Response
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from fastapi.staticfiles import StaticFiles

from pixsearch import __version__
from pixsearch.api import photos
from pixsearch.api.errors import ApiError, install_error_handlers
from pixsearch.api.params import K, Offset, PhotoId, Region, Threshold, Upload, read_upload
from pixsearch.api.worker import LibraryWorker, ensure_token, token_matches
from pixsearch.config import Settings, load_settings
from pixsearch.library.facade import Library

__all__ = ["create_app", "MAX_UPLOAD_BYTES"]

MAX_UPLOAD_BYTES = 20 * 1024 * 1024  # a camera JPEG is 5-15 MB; anything bigger is refused (413)
WEB = Path(__file__).parent / "web"
# Best calibrated match (0..1) below which a search says "no confident match". Measured on the example
# gallery: unrelated queries (sushi, a cat on a sofa, physics) top out at 0.05-0.12, real ones at 0.26-0.69.
# An explicit ``threshold`` uses the Library's own verdict (nothing passed: the best few below it).
CONFIDENT_MATCH = 0.2
CONFIDENT_CAPTION = 0.4  # the same for the best caption's cosine, when results carry no match


def _regional(lib: Library, region: str | None) -> Library:
    """The Library as seen from ``region`` (shares everything but the policy; unknown -> ConfigError)."""
    return lib.with_region(region)


def _result(r: Any) -> dict[str, Any]:
    d: dict[str, Any] = r.to_dict()
    if not d.get("withheld") and "image_id" in d:
        d.update(photos.urls(int(d["image_id"])))
        d["name"] = Path(d.get("path") or "").name
    return d


def confident(items: list[dict[str, Any]]) -> bool:
    """Does any result plausibly match? On the calibrated ``match`` when results carry it, else on the
    MiniLM query-caption cosine (example gallery: "dog" 0.47, "a dog running on grass" 0.85, unrelated
    queries < 0.25)."""
    matches = [float(d["match"]) for d in items if "match" in d]
    if matches:
        return max(matches) >= CONFIDENT_MATCH
    sims = [float(d.get("scores", {}).get("caption", 0.0)) for d in items]
    return max(sims, default=0.0) >= CONFIDENT_CAPTION


def _page(results: list[Any], k: int, offset: int, **extra: Any) -> dict[str, Any]:
    items = [_result(r) for r in results]
    below = [_result(r) for r in getattr(results, "below_threshold", ())]
    if "query" in extra:
        extra["confident"] = confident(items) and not getattr(results, "no_confident_match", False)
    if below:  # a threshold nothing passed: the best few under it, marked as such
        extra["below_threshold"] = below
    return {
        **extra,
        "k": k,
        "offset": offset,
        "results": items,
        "next_offset": offset + len(items) if len(items) >= k else None,
    }


def create_app(
    settings: Settings | None = None,
    library: Path | str | None = None,
    *,
    max_upload_bytes: int = MAX_UPLOAD_BYTES,
    token: str | None = None,
    warm: bool = False,
) -> FastAPI:
    """The app for one library. ``warm`` opens the Library and loads its models at startup."""
    s = settings or load_settings(library=Path(library) if library else None)
    if library is not None:
        s = replace(s, library=Path(library))
    worker = LibraryWorker(s)
    secret = token or ensure_token(s.library)[0]
    bearer = HTTPBearer(auto_error=False, description="The token printed by `pixsearch serve`.")

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        if warm:
            await worker.run(lambda lib: lib.search("warm up", k=1))
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

    @app.middleware("http")
    async def _limit_body(request: Request, call_next: Any) -> Response:
        # Refuse an oversized upload from its header, before the body is read and spooled.
        length = request.headers.get("content-length", "")
        if length.isdigit() and int(length) > max_upload_bytes + 64 * 1024:
            body = {"error": {"code": "too_large", "message": "request body too large"}}
            return JSONResponse(body, status_code=413)
        response: Response = await call_next(request)
        return response

    async def need_token(cred: HTTPAuthorizationCredentials | None = Security(bearer)) -> None:
        if cred is None or not cred.credentials:
            raise ApiError(401, "unauthorized", "this needs the API token", {"WWW-Authenticate": "Bearer"})
        if cred.scheme.lower() != "bearer" or not token_matches(cred.credentials, secret):
            raise ApiError(403, "forbidden", "wrong API token")

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
            "region": s.region or "default",
            "max_upload_bytes": max_upload_bytes,
            "features": features,
        }

    # -- search -----------------------------------------------------------------------------------
    @app.get("/api/search", tags=["search"])
    async def search(
        q: Annotated[str, Query(min_length=1, max_length=500, description="What to look for, in words.")],
        k: K = 24,
        offset: Offset = 0,
        threshold: Threshold = None,
        region: Region = None,
    ) -> dict[str, Any]:
        """Text -> photos, best first. A query the region's policy blocks answers 451."""
        res = await worker.run(lambda lib: _regional(lib, region).search(q, k, offset, threshold))
        return _page(res, k, offset, query=q)

    @app.post("/api/search/image", tags=["search"])
    async def search_by_image(
        file: Upload,
        k: Annotated[int, Form(ge=1, le=100)] = 24,
        offset: Annotated[int, Form(ge=0, le=10_000)] = 0,
        region: Region = None,
    ) -> dict[str, Any]:
        """Photo -> the most similar photos in the library (the upload is not stored)."""
        data = await read_upload(file, max_upload_bytes)
        res = await worker.run(lambda lib: _regional(lib, region).similar(data, k, offset))
        return _page(res, k, offset)

    @app.get("/api/photos/{image_id}/similar", tags=["search"])
    async def similar(image_id: PhotoId, k: K = 24, offset: Offset = 0, region: Region = None) -> Any:
        """Photos that look like this one."""

        def run(lib: Library) -> list[Any]:
            view = _regional(lib, region)
            photos.guard(view, image_id)
            return view.similar(image_id, k, offset)

        return _page(await worker.run(run), k, offset, image_id=image_id)

    @app.get("/api/photos/{image_id}/describe", tags=["words"])
    async def describe_photo(
        image_id: PhotoId, k: Annotated[int, Query(ge=1, le=50)] = 5, region: Region = None
    ) -> Any:
        """The library's captions that fit this photo best."""

        def run(lib: Library) -> list[Any]:
            view = _regional(lib, region)
            photos.guard(view, image_id)
            return view.describe(image_id, k)

        return {"image_id": image_id, "results": [c.to_dict() for c in await worker.run(run)]}

    @app.post("/api/describe", tags=["words"])
    async def describe_upload(
        file: Upload, k: Annotated[int, Form(ge=1, le=50)] = 5, region: Region = None
    ) -> Any:
        """The library's captions that fit an uploaded photo best."""
        data = await read_upload(file, max_upload_bytes)
        res = await worker.run(lambda lib: _regional(lib, region).describe(data, k))
        return {"results": [c.to_dict() for c in res]}

    # -- photos -----------------------------------------------------------------------------------
    @app.get("/api/photos/{image_id}", tags=["photos"])
    async def photo(image_id: PhotoId, region: Region = None) -> dict[str, Any]:
        """Metadata: size, paths, every caption with its source, labels."""
        return await worker.run(lambda lib: photos.photo_info(_regional(lib, region), image_id))

    @app.get(
        "/api/photos/{image_id}/thumbnail",
        tags=["photos"],
        response_class=Response,
        responses={200: {"content": {"image/jpeg": {}}}},
    )
    async def thumbnail(image_id: PhotoId, region: Region = None) -> Response:
        """A JPEG at most 256 px on a side."""
        data = await worker.run(lambda lib: photos.thumbnail(_regional(lib, region), image_id))
        return Response(data, media_type="image/jpeg", headers={"Cache-Control": "private, max-age=300"})

    @app.get(
        "/api/photos/{image_id}/file",
        tags=["photos"],
        response_class=FileResponse,
        responses={200: {"content": {"image/*": {}}}},
    )
    async def original(image_id: PhotoId, region: Region = None) -> FileResponse:
        """The original file, as indexed."""
        path, media = await worker.run(lambda lib: photos.original(_regional(lib, region), image_id))
        return FileResponse(path, media_type=media, content_disposition_type="inline", filename=path.name)

    @app.post("/api/photos", tags=["photos"], dependencies=[Depends(need_token)], status_code=201)
    async def add_photo(file: Upload) -> dict[str, Any]:
        """Add a photo (stored under the library's uploads/ folder, then indexed). Needs the token."""
        data = await read_upload(file, max_upload_bytes)

        def run(lib: Library) -> dict[str, Any]:
            stored = photos.store_upload(lib, data)
            rep = lib.add([stored.path])
            worker.mark_written()
            if rep.failed:
                stored.path.unlink(missing_ok=True)
                reason = rep.failed[0][1]
                raise ApiError(422, "bad_image", reason)
            iid = lib.catalog.image_for_path(str(stored.path))
            return {
                "image_id": iid,
                "added": bool(rep.added),
                "duplicate": not rep.added,
                **photos.urls(iid or 0),
            }

        return await worker.run(run)

    @app.delete("/api/photos/{image_id}", tags=["photos"], dependencies=[Depends(need_token)])
    async def delete_photo(image_id: PhotoId) -> dict[str, Any]:
        """Forget a photo (an uploaded one's file is deleted too). Needs the token."""

        def run(lib: Library) -> dict[str, Any]:
            out = photos.delete_photo(lib, image_id)
            worker.mark_written()
            return out

        return await worker.run(run)

    from pixsearch.api.words import add_optional_routes  # routes for Library features as they land

    app.state.features.update(add_optional_routes(app, worker, max_upload_bytes))

    # -- the web page -----------------------------------------------------------------------------
    if (WEB / "index.html").is_file():
        app.mount("/static", StaticFiles(directory=WEB), name="static")

        @app.get("/", include_in_schema=False)
        async def index() -> FileResponse:
            return FileResponse(WEB / "index.html", headers={"Cache-Control": "no-cache"})

    return app
