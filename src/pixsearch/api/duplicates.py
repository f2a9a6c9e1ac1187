"""REST route for duplicate photos: ``GET /api/duplicates``.

The answer is ``Library.duplicates`` as JSON (``library/duplicates.py``): groups of files that hold one
photo, the suggested copy to keep first (``best``), each file's path relative to its indexed root with the
root's id (never a server path), its size, capture time and similarity to the suggested copy, and the
thumbnail and file URLs a page shows it with. Photos the region withholds are in no group. It only reads:
deleting a copy is the client's choice, through ``DELETE /api/photos/{id}``.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, FastAPI, Query

from pixsearch.api import photos
from pixsearch.api.params import Region
from pixsearch.api.worker import LibraryWorker
from pixsearch.library.facade import Library

__all__ = ["add_duplicate_routes"]

Similarity = Annotated[
    float | None,
    Query(
        ge=0.0,
        le=1.0,
        allow_inf_nan=False,
        description="How alike two photos must look to be called copies (0..1); the library's default "
        "when omitted. Higher finds fewer, surer copies.",
    ),
]
Prefer = Annotated[
    Literal["largest", "oldest"],
    Query(description="Which copy to suggest keeping: the largest (most pixels) or the oldest."),
]


def add_duplicate_routes(app: FastAPI, worker: LibraryWorker) -> None:
    router = APIRouter(tags=["photos"])

    @router.get("/api/duplicates")
    async def duplicates(
        threshold: Similarity = None, prefer: Prefer = "largest", region: Region = None
    ) -> dict[str, Any]:
        """Groups of exact and near-duplicate photos (resized, re-encoded, cropped, edited copies), the
        copy to keep first. Nothing is deleted."""

        def run(lib: Library) -> dict[str, Any]:
            found = lib.with_region(region).duplicates(threshold, prefer)
            d = found.to_dict(lib.roots())
            for g in d["groups"]:
                for p in g["photos"]:
                    p.update(photos.urls(p["image_id"]))
            return d

        return await worker.run(run)

    app.include_router(router)
