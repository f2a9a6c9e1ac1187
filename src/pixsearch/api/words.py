"""REST routes for the words the models write about a photo: caption and match score.

They are registered only when the Library offers the feature (``Library.caption``, ``Library.score``),
so the API and its OpenAPI schema never advertise an endpoint that cannot answer.
"""

from __future__ import annotations

import dataclasses
from typing import Annotated, Any

from fastapi import FastAPI, Form, Query

from pixsearch.api import photos
from pixsearch.api.params import PhotoId, Region, Upload, read_upload
from pixsearch.api.worker import LibraryWorker
from pixsearch.library.facade import Library

__all__ = ["add_optional_routes", "as_dict", "features"]

Beam = Annotated[int, Query(ge=1, le=8, description="Beam width of the caption search.")]
Text = Annotated[str, Query(min_length=1, max_length=500, description="The text to score against.")]


def as_dict(obj: Any) -> dict[str, Any]:
    if hasattr(obj, "to_dict"):
        return dict(obj.to_dict())
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return dataclasses.asdict(obj)
    return {"value": obj}


def _call(lib: Library, region: str | None, method: str, *args: Any, **kw: Any) -> Any:
    """``lib.<method>`` as seen from ``region`` (methods other engineers add: looked up by name)."""
    return getattr(lib.with_region(region), method)(*args, **kw)


def features() -> dict[str, bool]:
    """What this install can answer: each needs its Library method and its shipped model file."""
    caption = callable(getattr(Library, "caption", None))
    if caption:
        try:
            from pixsearch.models.captioner import available_captioners

            caption = bool(available_captioners())
        except Exception:  # an install without the captioner module or its runtime
            caption = False
    score = callable(getattr(Library, "score", None))
    if score:
        try:
            from pixsearch.models.scorer import DEFAULT_SCORER, WEIGHTS_DIR

            score = (WEIGHTS_DIR / f"{DEFAULT_SCORER}.json").is_file()
        except Exception:
            score = False
    return {"caption": caption, "score": score}


def add_optional_routes(app: FastAPI, worker: LibraryWorker, limit: int) -> dict[str, bool]:
    """Register the routes of the features this install has; returns ``features()``."""
    have = features()
    if have["caption"]:

        @app.get("/api/photos/{image_id}/caption", tags=["words"])
        async def caption_photo(image_id: PhotoId, beam: Beam = 3, region: Region = None) -> dict[str, Any]:
            """A caption written by pixsearch's captioner for this photo."""

            def run(lib: Library) -> str:
                photos.guard(lib.with_region(region), image_id)
                return str(_call(lib, region, "caption", image_id, beam=beam))

            return {"image_id": image_id, "caption": await worker.run(run)}

        @app.post("/api/caption", tags=["words"])
        async def caption_upload(
            file: Upload, beam: Annotated[int, Form(ge=1, le=8)] = 3, region: Region = None
        ) -> dict[str, Any]:
            """A caption for an uploaded photo (not stored)."""
            data = await read_upload(file, limit)
            text = await worker.run(lambda lib: str(_call(lib, region, "caption", data, beam=beam)))
            return {"caption": text}

    if have["score"]:

        @app.get("/api/photos/{image_id}/score", tags=["words"])
        async def score_photo(image_id: PhotoId, text: Text, region: Region = None) -> dict[str, Any]:
            """How well ``text`` fits this photo, 0..1 (calibrated)."""

            def run(lib: Library) -> dict[str, Any]:
                photos.guard(lib.with_region(region), image_id)
                return as_dict(_call(lib, region, "score", image_id, text))

            return {"image_id": image_id, "text": text, **(await worker.run(run))}

        @app.post("/api/score", tags=["words"])
        async def score_upload(
            file: Upload, text: Annotated[str, Form(min_length=1, max_length=500)], region: Region = None
        ) -> dict[str, Any]:
            """How well ``text`` fits an uploaded photo, 0..1."""
            data = await read_upload(file, limit)
            out = await worker.run(lambda lib: as_dict(_call(lib, region, "score", data, text)))
            return {"text": text, **out}

    return have
