"""REST routes that find photos: by words, by an uploaded photo, by a library photo; and the page they answer.

A page is ``{query?, confident?, below_threshold?, image_id?, k, offset, results, next_offset}``; each
result is the Library's own JSON (``results.py``, paths relative to their indexed root with the root's id:
never a server path) plus its thumbnail and file URLs, or a withheld entry (the disclaimer only) where
the region's policy hides the photo.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any

from fastapi import Depends, FastAPI, Form

from pixsearch.api import photos
from pixsearch.api.params import (
    MAX_K,
    MAX_OFFSET,
    After,
    Before,
    Camera,
    ComposedQuery,
    Folder,
    K,
    Near,
    Offset,
    PhotoId,
    Place,
    QueryTerm,
    Region,
    SearchText,
    Sort,
    Threshold,
    Upload,
)
from pixsearch.api.uploads import Uploads
from pixsearch.api.worker import LibraryWorker
from pixsearch.errors import QueryError
from pixsearch.library.facade import Library
from pixsearch.results import Result, Roots, SearchResults, Withheld, shown
from pixsearch.search.filters import Filters
from pixsearch.search.terms import Term

__all__ = ["CONFIDENT_CAPTION", "CONFIDENT_MATCH", "add_search_routes", "confident", "result_json"]

# Best calibrated match (0..1) below which a search says "no confident match". Measured on the example
# gallery: unrelated queries (sushi, a cat on a sofa, physics) top out at 0.05-0.12, real ones at 0.26-0.69.
# An explicit ``threshold`` uses the Library's own verdict (nothing passed: the best few below it).
CONFIDENT_MATCH = 0.2
CONFIDENT_CAPTION = 0.4  # the same for the best caption's cosine, when results carry no match


def result_json(r: Result | Withheld, roots: Roots) -> dict[str, Any]:
    """A result as the API gives it: with its photo's name and URLs, paths relative to ``roots``; a
    withheld one as the disclaimer."""
    d = r.to_dict(roots)
    if isinstance(r, Result):
        d.update(photos.urls(r.image_id))
        d["name"] = shown(Path(r.path).name)
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


def _page(
    found: tuple[Sequence[Result | Withheld], Roots], k: int, offset: int, **extra: Any
) -> dict[str, Any]:
    results, roots = found
    items = [result_json(r, roots) for r in results]
    below, no_match = [], False
    if isinstance(results, SearchResults):  # a text search's page: it knows what its threshold cut
        below = [result_json(r, roots) for r in results.below_threshold]
        no_match = results.no_confident_match
    if "query" in extra:
        extra["confident"] = confident(items) and not no_match
    if below:  # a threshold nothing passed: the best few under it, marked as such
        extra["below_threshold"] = below
    return {
        **extra,
        "k": k,
        "offset": offset,
        "results": items,
        "next_offset": offset + len(items) if len(items) >= k else None,
    }


@dataclass(frozen=True)
class FilterArgs:
    """The filter query parameters every search route takes, parsed in the Library's worker (the folder
    is relative to the indexed folders, whose list the worker reads)."""

    after: str | None = None
    before: str | None = None
    camera: str | None = None
    folder: str | None = None
    near: str | None = None
    place: str | None = None

    def parse(self, roots: Roots) -> Filters:
        where = _below_roots(self.folder, roots)
        return Filters.parse(self.after, self.before, self.camera, where, self.near, self.place)


def _filter_args(
    after: After = None,
    before: Before = None,
    camera: Camera = None,
    folder: Folder = None,
    near: Near = None,
    place: Place = None,
) -> FilterArgs:
    return FilterArgs(after, before, camera, folder, near, place)


Where = Annotated[FilterArgs, Depends(_filter_args)]


def _below_roots(folder: str | None, roots: Roots) -> list[str] | None:
    """A folder as the API names it (relative to an indexed folder, like a result's ``path``) below
    every indexed folder: the server's paths are never written by clients."""
    if folder is None or not folder.strip("/ "):
        return None
    sub = folder.strip("/")
    return [f"{r.rstrip('/')}/{sub}" for r in roots.values()]


def _term(t: QueryTerm) -> Term:
    """A composed query's term as the Library takes it; an upload's base64 is decoded here (400 when it
    is not base64; a photo that does not decode is the Library's 422 ``bad_image``)."""
    if t.upload is not None:
        if t.text is not None or t.photo_id is not None:
            raise QueryError("a query term is words, a photo_id or an upload: one of them")
        try:
            return Term(t.weight, photo=base64.b64decode(t.upload, validate=True))
        except binascii.Error:
            raise QueryError("upload: not base64") from None
    return Term(t.weight, text=t.text, photo=t.photo_id)


def add_search_routes(app: FastAPI, worker: LibraryWorker, uploads: Uploads) -> None:
    @app.get("/api/search", tags=["search"])
    async def search(
        q: SearchText = None,
        k: K = 24,
        offset: Offset = 0,
        threshold: Threshold = None,
        region: Region = None,
        where: Where = None,  # type: ignore[assignment]  # FastAPI fills it (Depends)
        sort: Sort = None,
    ) -> dict[str, Any]:
        """Text -> photos, best first, or (no ``q``) the photos the filters keep, newest first. A query the
        region's policy blocks answers 451; a bad filter 422."""

        def run(lib: Library) -> tuple[list[Result | Withheld], Roots]:
            roots = lib.roots()
            f = where.parse(roots)
            view = lib.with_region(region)
            if q is None:
                return view.browse(f, sort or "-date", k, offset), roots
            return view.search(q, k, offset, threshold, f, sort or "relevance"), roots

        found = await worker.run(run)
        return _page(found, k, offset, **({} if q is None else {"query": q}))

    @app.post("/api/search", tags=["search"])
    async def composed(body: ComposedQuery, region: Region = None) -> dict[str, Any]:
        """Words and library photos added and taken away (``weight`` < 0: less like it), ranked in the
        joint space alone: results carry ``score`` (cosine), no ``match``. The web page's "less like this"."""

        def run(lib: Library) -> tuple[list[Result | Withheld], Roots]:
            roots = lib.roots()
            where = _below_roots(body.folder, roots)
            f = Filters.parse(body.after, body.before, body.camera, where, body.near, body.place)
            terms = [_term(t) for t in body.terms]
            view = lib.with_region(region)
            for t in body.terms:
                if t.photo_id is not None:
                    view.ensure_photo(t.photo_id)  # 404 for an id the library does not hold
            return view.compose(terms, body.k, body.offset, f), roots

        return _page(await worker.run(run), body.k, body.offset)

    @app.post("/api/search/image", tags=["search"])
    async def search_by_image(
        file: Upload,
        k: Annotated[int, Form(ge=1, le=MAX_K)] = 24,
        offset: Annotated[int, Form(ge=0, le=MAX_OFFSET)] = 0,
        region: Region = None,
        where: Where = None,  # type: ignore[assignment]
    ) -> dict[str, Any]:
        """Photo -> the most similar photos in the library (the upload is not stored), among the photos
        the filters keep."""
        data = await uploads.photo(file)  # decoded and shrunk off the Library's thread

        def run(lib: Library) -> tuple[list[Result | Withheld], Roots]:
            roots = lib.roots()
            return lib.with_region(region).similar(data, k, offset, where.parse(roots)), roots

        return _page(await worker.run(run), k, offset)

    @app.get("/api/photos/{image_id}/similar", tags=["search"])
    async def similar(
        image_id: PhotoId,
        k: K = 24,
        offset: Offset = 0,
        region: Region = None,
        where: Where = None,  # type: ignore[assignment]
    ) -> Any:
        """Photos that look like this one, among the photos the filters keep."""

        def run(lib: Library) -> tuple[list[Result | Withheld], Roots]:
            view = lib.with_region(region)
            view.ensure_photo(image_id)
            roots = lib.roots()
            return view.similar(image_id, k, offset, where.parse(roots)), roots

        return _page(await worker.run(run), k, offset, image_id=image_id)
