"""REST routes for the words the models write about a photo: caption and match score.

They are registered only when the Library offers the feature (``Library.caption``, ``Library.score``),
so the API and its OpenAPI schema never advertise an endpoint that cannot answer.
"""

from __future__ import annotations

import dataclasses
from typing import Annotated, Any

from fastapi import FastAPI, File, Form, Query, UploadFile
from fastapi import Path as PathParam

from . import api_photos as photos
from .api_worker import LibraryWorker
from .library import Library

__all__ = ["add_optional_routes", "as_dict"]

PhotoId = Annotated[int, PathParam(ge=1, le=2**63 - 1, description="Catalog id of the photo.")]
Beam = Annotated[int, Query(ge=1, le=8, description="Beam width of the caption search.")]
Text = Annotated[str, Query(min_length=1, max_length=500, description="The text to score against.")]
Upload = Annotated[UploadFile, File(description="A photo.")]


def as_dict(obj: Any) -> dict[str, Any]:
    if hasattr(obj, "to_dict"):
        return dict(obj.to_dict())
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return dataclasses.asdict(obj)
    return {"value": obj}


def add_optional_routes(app: FastAPI, worker: LibraryWorker, limit: int) -> None:
    from .api import _read_upload

    if callable(getattr(Library, "caption", None)):

        @app.get("/api/photos/{image_id}/caption", tags=["words"])
        async def caption_photo(image_id: PhotoId, beam: Beam = 3) -> dict[str, Any]:
            """A caption written by pixsearch's captioner for this photo."""

            def run(lib: Library) -> str:
                photos.guard(lib, image_id)
                return str(
                    lib.caption(  # type: ignore[attr-defined]
                        image_id, beam=beam
                    )
                )

            return {"image_id": image_id, "caption": await worker.run(run)}

        @app.post("/api/caption", tags=["words"])
        async def caption_upload(
            file: Upload,
            beam: Annotated[int, Form(ge=1, le=8)] = 3,
            region: Annotated[str | None, Form()] = None,
        ) -> dict[str, Any]:
            """A caption for an uploaded photo (not stored)."""
            data = await _read_upload(file, limit)
            text = await worker.run(
                lambda lib: str(
                    lib.caption(  # type: ignore[attr-defined]
                        data, beam=beam
                    )
                )
            )
            return {"caption": text}

    if callable(getattr(Library, "score", None)):

        @app.get("/api/photos/{image_id}/score", tags=["words"])
        async def score_photo(image_id: PhotoId, text: Text) -> dict[str, Any]:
            """How well ``text`` fits this photo, 0..1 (calibrated)."""

            def run(lib: Library) -> dict[str, Any]:
                photos.guard(lib, image_id)
                return as_dict(
                    lib.score(  # type: ignore[attr-defined]
                        image_id, text
                    )
                )

            return {"image_id": image_id, "text": text, **(await worker.run(run))}

        @app.post("/api/score", tags=["words"])
        async def score_upload(
            file: Upload, text: Annotated[str, Form(min_length=1, max_length=500)]
        ) -> dict[str, Any]:
            """How well ``text`` fits an uploaded photo, 0..1."""
            data = await _read_upload(file, limit)
            out = await worker.run(
                lambda lib: as_dict(
                    lib.score(  # type: ignore[attr-defined]
                        data, text
                    )
                )
            )
            return {"text": text, **out}
