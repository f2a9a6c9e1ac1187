"""REST routes for single photos, by catalog id only: record, thumbnail, original file, add, delete.

A request names an integer id, never a path; the Library finds files through its catalog
(``library/files.py``) and serves an original only if it still holds the indexed bytes (else 409
``file_changed``). An answer never holds a path of the server's file system: a photo's paths are given
relative to the folder that was indexed, with that root's id (``results.root_relative``).
Writes (add, delete) need the library's bearer token.
"""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Any

from fastapi import Depends, FastAPI
from fastapi.responses import FileResponse, Response

from pixsearch.api.params import PhotoId, Region, Upload
from pixsearch.api.uploads import Uploads
from pixsearch.api.worker import LibraryWorker
from pixsearch.library.facade import Library
from pixsearch.results import shown

__all__ = ["MEDIA_TYPES", "add_photo_routes", "media_type", "urls"]

MEDIA_TYPES = {".jpg": "image/jpeg", ".jpeg": "image/jpeg", ".png": "image/png", ".webp": "image/webp"}
MEDIA_TYPES |= {".gif": "image/gif", ".bmp": "image/bmp", ".tif": "image/tiff", ".tiff": "image/tiff"}
MEDIA_TYPES |= {".heic": "image/heic", ".heif": "image/heif", ".jpe": "image/jpeg"}


def urls(image_id: int) -> dict[str, str]:
    return {
        "thumbnail_url": f"/api/photos/{image_id}/thumbnail",
        "file_url": f"/api/photos/{image_id}/file",
    }


def media_type(path: Path) -> str:
    return MEDIA_TYPES.get(path.suffix.lower(), "application/octet-stream")


def add_photo_routes(
    app: FastAPI,
    worker: LibraryWorker,
    uploads: Uploads,
    need_token: Callable[..., Coroutine[Any, Any, None]],
) -> None:
    @app.get("/api/photos/{image_id}", tags=["photos"])
    async def photo(image_id: PhotoId, region: Region = None) -> dict[str, Any]:
        """Metadata: size, paths (relative to their indexed root, with the root's id), every caption with
        its source, labels."""
        info = await worker.run(lambda lib: lib.with_region(region).photo_info(image_id).to_dict(lib.roots()))
        return {**info, **urls(image_id)}

    @app.get(
        "/api/photos/{image_id}/thumbnail",
        tags=["photos"],
        response_class=Response,
        responses={200: {"content": {"image/jpeg": {}}}},
    )
    async def thumbnail(image_id: PhotoId, region: Region = None) -> Response:
        """A JPEG at most 256 px on a side."""
        data = await worker.run(lambda lib: lib.with_region(region).thumbnail(image_id))
        return Response(data, media_type="image/jpeg", headers={"Cache-Control": "private, max-age=300"})

    @app.get(
        "/api/photos/{image_id}/file",
        tags=["photos"],
        response_class=FileResponse,
        responses={200: {"content": {"image/*": {}}}},
    )
    async def original(image_id: PhotoId, region: Region = None) -> FileResponse:
        """The original file, as indexed; 409 ``file_changed`` when the file no longer holds those bytes."""
        path = await worker.run(lambda lib: lib.with_region(region).original(image_id))
        return FileResponse(  # a name that is not UTF-8 cannot go into a header as it is
            path, media_type=media_type(path), content_disposition_type="inline", filename=shown(path.name)
        )

    @app.post("/api/photos", tags=["photos"], dependencies=[Depends(need_token)], status_code=201)
    async def add_photo(file: Upload) -> dict[str, Any]:
        """Add a photo (stored under the library's uploads/ folder, then indexed). Needs the token."""
        data = await uploads.original(file)  # bounded in bytes and pixels before the Library sees it

        def run(lib: Library) -> dict[str, Any]:
            try:
                added = lib.add_photo(data)  # a photo that cannot be indexed: MediaError, 422
            finally:
                worker.mark_written()
            return {
                "image_id": added.image_id,
                "added": added.added,
                "duplicate": not added.added,
                **urls(added.image_id or 0),
            }

        return await worker.write(run)

    @app.delete("/api/photos/{image_id}", tags=["photos"], dependencies=[Depends(need_token)])
    async def delete_photo(image_id: PhotoId) -> dict[str, Any]:
        """Forget a photo (an uploaded one's file is deleted too). Needs the token."""

        def run(lib: Library) -> dict[str, Any]:
            out = lib.delete_photo(image_id)
            worker.mark_written()
            return out.to_dict()

        return await worker.write(run)
