"""REST routes for the words about a photo: the library's captions that fit it (describe), a caption
written by pixsearch's captioner, and the match score of a text.

Caption and score routes are registered only when their model ships with this install (``features()``),
so the API and its OpenAPI schema never advertise an endpoint that cannot answer.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import FastAPI, Form, Query

from pixsearch.api.params import PhotoId, Region, Upload
from pixsearch.api.uploads import Uploads
from pixsearch.api.worker import LibraryWorker
from pixsearch.library.facade import Library

__all__ = ["add_describe_routes", "add_word_routes", "features"]

Beam = Annotated[int, Query(ge=1, le=8, description="Beam width of the caption search.")]
Text = Annotated[str, Query(min_length=1, max_length=500, description="The text to score against.")]


def features() -> dict[str, bool]:
    """What this install can answer: each needs its shipped model file."""
    from pixsearch.models.captioner import available_captioners
    from pixsearch.models.scorer import DEFAULT_SCORER
    from pixsearch.models.shipped import SCORERS_DIR

    return {
        "caption": bool(available_captioners()),
        "score": (SCORERS_DIR / f"{DEFAULT_SCORER}.json").is_file(),
    }


def add_describe_routes(app: FastAPI, worker: LibraryWorker, uploads: Uploads) -> None:
    @app.get("/api/photos/{image_id}/describe", tags=["words"])
    async def describe_photo(
        image_id: PhotoId, k: Annotated[int, Query(ge=1, le=50)] = 5, region: Region = None
    ) -> Any:
        """The library's captions that fit this photo best."""

        def run(lib: Library) -> list[dict[str, Any]]:  # paths relative to their root: no server path
            view = lib.with_region(region)
            view.ensure_photo(image_id)
            roots = lib.roots()
            return [c.to_dict(roots) for c in view.describe(image_id, k)]

        return {"image_id": image_id, "results": await worker.run(run)}

    @app.post("/api/describe", tags=["words"])
    async def describe_upload(
        file: Upload, k: Annotated[int, Form(ge=1, le=50)] = 5, region: Region = None
    ) -> Any:
        """The library's captions that fit an uploaded photo best."""
        data = await uploads.photo(file)  # decoded and shrunk off the Library's thread

        def run(lib: Library) -> list[dict[str, Any]]:
            roots = lib.roots()
            return [c.to_dict(roots) for c in lib.with_region(region).describe(data, k)]

        return {"results": await worker.run(run)}


def add_word_routes(app: FastAPI, worker: LibraryWorker, uploads: Uploads) -> dict[str, bool]:
    """Register the caption and score routes this install has; returns ``features()``."""
    have = features()
    if have["caption"]:

        @app.get("/api/photos/{image_id}/caption", tags=["words"])
        async def caption_photo(image_id: PhotoId, beam: Beam = 3, region: Region = None) -> dict[str, Any]:
            """A caption written by pixsearch's captioner for this photo."""

            def run(lib: Library) -> str:
                view = lib.with_region(region)
                view.ensure_photo(image_id)
                return view.caption(image_id, beam=beam)

            return {"image_id": image_id, "caption": await worker.run(run)}

        @app.post("/api/caption", tags=["words"])
        async def caption_upload(
            file: Upload, beam: Annotated[int, Form(ge=1, le=8)] = 3, region: Region = None
        ) -> dict[str, Any]:
            """A caption for an uploaded photo (not stored)."""
            data = await uploads.photo(file)
            text = await worker.run(lambda lib: lib.with_region(region).caption(data, beam=beam))
            return {"caption": text}

    if have["score"]:

        @app.get("/api/photos/{image_id}/score", tags=["words"])
        async def score_photo(image_id: PhotoId, text: Text, region: Region = None) -> dict[str, Any]:
            """How well ``text`` fits this photo, 0..1 (calibrated)."""

            def run(lib: Library) -> dict[str, Any]:
                view = lib.with_region(region)
                view.ensure_photo(image_id)
                return view.score(image_id, text).to_dict()

            return {"image_id": image_id, "text": text, **(await worker.run(run))}

        @app.post("/api/score", tags=["words"])
        async def score_upload(
            file: Upload, text: Annotated[str, Form(min_length=1, max_length=500)], region: Region = None
        ) -> dict[str, Any]:
            """How well ``text`` fits an uploaded photo, 0..1."""
            data = await uploads.photo(file)
            out = await worker.run(lambda lib: lib.with_region(region).score(data, text).to_dict())
            return {"text": text, **out}

    return have
