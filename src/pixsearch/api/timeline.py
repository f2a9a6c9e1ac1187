"""REST route for the library's timeline: ``GET /api/timeline``, photos per month of capture.

Why: the web page draws a strip of months above its results, and a click on one browses that month
(``/api/search?after=2024-05&before=2024-06``); the counts are what that filter finds, because both read
``photo_meta``'s UTC capture time, file times included (``storage/photo_meta.py``). Photos the region
withholds are counted nowhere: how many withheld photos a month holds is itself something it withholds.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, FastAPI

from pixsearch.api.params import Region, SearchText
from pixsearch.api.search import Where
from pixsearch.api.worker import LibraryWorker
from pixsearch.library.facade import Library
from pixsearch.library.listing import DATE_POOL
from pixsearch.results import Result
from pixsearch.search.filters import Filters

__all__ = ["add_timeline_routes", "timeline"]


def timeline(lib: Library, q: str | None = None, filters: Filters | None = None) -> dict[str, Any]:
    """``{"months": [{"month": "2024-05", "count": 12}, ...] oldest first, "undated": N}`` over the photos
    ``lib``'s region shows: all of them, those ``filters`` keep, or (``q``) the search's best matches
    in date order (``Library.search(sort="date")``: the set a date-sorted result list pages through).
    One snapshot, so the hidden ids, the set and the counts agree."""
    with lib.catalog.snapshot():
        enforcer = lib.withhold
        hidden = enforcer.hidden(lib.catalog.image_ids().tolist()) if enforcer.active else set()
        only: set[int] | None = None
        if q is not None:
            found = lib.search(q, DATE_POOL, 0, None, filters, "date")
            only = {r.image_id for r in found if isinstance(r, Result)}
        elif filters is not None and filters.active:
            only = filters.allowed(lib.catalog)
        months, undated = lib.catalog.photo_meta.months(hidden, only)
    return {"months": [{"month": m, "count": n} for m, n in months], "undated": undated}


def add_timeline_routes(app: FastAPI, worker: LibraryWorker) -> None:
    router = APIRouter(tags=["photos"])

    @router.get("/api/timeline")
    async def get_timeline(
        q: SearchText = None,
        region: Region = None,
        where: Where = None,  # type: ignore[assignment]  # FastAPI fills it (Depends)
    ) -> dict[str, Any]:
        """Photos per calendar month of capture (UTC; file times count when a photo has no camera
        time), oldest first, and how many have no time at all: of the library, of the photos the filters
        keep, or with ``q`` of that search's best matches. Withheld photos are not counted."""
        return await worker.run(lambda lib: timeline(lib.with_region(region), q, where.parse(lib.roots())))

    app.include_router(router)
