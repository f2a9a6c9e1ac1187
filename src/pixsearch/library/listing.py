"""Turning ranked hits into the results people see, and the orders that are not by relevance.

:func:`to_results` is every read's last step (search, similar, browse): the catalog's rows and the
photo's capture time, camera and place (``photo_meta``) become :class:`~pixsearch.results.Result`, and
the region's policy replaces what it withholds by :class:`~pixsearch.results.Withheld`.
:func:`browse_ids` lists the photos that pass some filters by capture date (no query), and
:func:`by_date` reorders a search's best matches by date (a photographer's "those, in the order I took
them").
"""

from __future__ import annotations

from pixsearch.policy.enforcement import Enforcer
from pixsearch.results import Result, SearchResults, Withheld
from pixsearch.search.filters import Filters, Sort
from pixsearch.search.text import Hit
from pixsearch.storage.catalog import Catalog

__all__ = ["DATE_MATCH", "DATE_POOL", "browse_ids", "by_date", "to_results"]

# A search sorted by date orders its best this many matches (or the page's depth, when deeper) by
# capture time: beyond them the matches are too weak to be worth dating.
DATE_POOL = 100
# ... and only those whose match reaches this, unless the caller gives its own threshold: in date order
# a weak match would sit among strong ones with nothing to tell them apart. The REST API calls a result
# confident from the same 0.2 (example gallery: unrelated queries top out at 0.05-0.12).
DATE_MATCH = 0.2


def to_results(
    catalog: Catalog, withhold: Enforcer, hits: list[Hit], match: dict[int, float] | None = None
) -> list[Result | Withheld]:
    """``hits`` as results in the same order, with match scores when given; withheld photos masked."""
    ids = [h.image_id for h in hits]
    rows = catalog.images(ids)
    meta = catalog.photo_meta.meta_for(ids)
    caps = {c.id: c.text for r in rows.values() for c in r.captions}
    res: list[Result] = []
    for h in hits:
        r, m = rows.get(h.image_id), meta.get(h.image_id)
        if r is None:
            continue  # removed since it was found
        res.append(
            Result(
                r.id,
                h.score,
                r.paths,
                tuple(c.text for c in r.captions),
                h.scores,
                caps.get(h.caption_id or -1),
                r.width,
                r.height,
                None if match is None else match.get(r.id),
                taken_at=m.taken_at if m else None,
                taken_from=m.taken_source if m and m.taken_at else None,
                camera=m.camera if m else None,
                place=", ".join(p for p in (m.place, m.country) if p) or None if m else None,
            )
        )
    return withhold.mask(res, lambda x: x.image_id)


def browse_ids(catalog: Catalog, filters: Filters, sort: Sort, k: int, offset: int) -> list[int]:
    """A page of the photos passing ``filters`` by capture time: oldest first for ``date``, else newest."""
    return catalog.photo_meta.by_date(filters.allowed(catalog), sort != "date", k, offset)


def by_date(catalog: Catalog, found: SearchResults, sort: Sort, k: int, offset: int) -> SearchResults:
    """A page of ``found`` (a search's best matches) in capture-time order; photos without a time, and
    withheld ones, after the dated ones, in their order of relevance. When none reached the threshold,
    the closest ones shown instead (``below_threshold``) come in that order too."""
    page = _in_date_order(catalog, list(found), sort)[offset : offset + k]
    below = [] if page else _in_date_order(catalog, list(found.below_threshold), sort)
    return SearchResults(page, found.threshold, below)


def _in_date_order(catalog: Catalog, found: list[Result | Withheld], sort: Sort) -> list[Result | Withheld]:
    items = [r for r in found if isinstance(r, Result)]
    order = catalog.photo_meta.by_date([r.image_id for r in items], newest_first=sort == "-date")
    pos = {iid: n for n, iid in enumerate(order)}
    undated = {r.image_id for r in items if r.taken_at is None}
    dated = sorted((r for r in items if r.image_id not in undated), key=lambda r: pos[r.image_id])
    rest = [r for r in found if not isinstance(r, Result) or r.image_id in undated]
    return [*dated, *rest]
