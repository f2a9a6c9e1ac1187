"""Which photos a search or a browse may return: capture time, camera, folder, GPS position, place name.

:class:`Filters` is parsed once at the edge (the CLI's options, the REST API's query parameters, a Python
caller's keywords) from the strings people type, and turned into the set of photo ids that pass every
filter given (:meth:`Filters.allowed`) from the ``photo_meta`` table the metadata enricher fills
(``storage/photo_meta.py``) and the catalog's paths. A search ranks only those photos
(``search/text.py``); a browse lists them by date (``library/facade.py``).

Dates are calendar periods: ``2024``, ``2024-05``, ``2024-05-17`` or a full ISO time. ``after`` keeps
photos taken at or after the period's start, ``before`` those taken before its start (``--after 2024-05
--before 2024-06`` is May 2024). Periods are UTC, as the timeline's months are; a capture time the
camera wrote without an offset counts in this machine's zone (``indexing/metadata/dates.py``), so away
from UTC a photo taken near midnight may fall on the neighbouring day.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Literal, cast

from pixsearch.errors import QueryError

if TYPE_CHECKING:
    from pixsearch.storage.catalog import Catalog

__all__ = [
    "DEEPER_MAX",
    "EXACT_ALLOWED",
    "SORTS",
    "Filters",
    "Sort",
    "check_sort",
    "gather_plan",
    "parse_date",
]
__all__ += ["parse_near"]

Sort = Literal["relevance", "date", "-date"]
SORTS: tuple[Sort, ...] = ("relevance", "date", "-date")  # -date: newest first
DEFAULT_KM = 5.0  # radius when ``near`` gives only a position
# A filter allowing at most this many photos has every one of them scored (exact, nothing missed);
# a larger one gathers each signal's hits deeper, by the share of the library it leaves out (capped)...
EXACT_ALLOWED = 5000
DEEPER_MAX = 10
_DATE = re.compile(r"^(\d{4})(?:-(\d{1,2})(?:-(\d{1,2}))?)?$")


def check_sort(sort: str) -> Sort:
    """``sort`` as one of :data:`SORTS`, or QueryError naming them."""
    if sort not in SORTS:
        raise QueryError(f"unknown sort {sort!r}: use one of {', '.join(SORTS)}")
    return cast(Sort, sort)


def gather_plan(allowed: int, library: int, depth: int, hits: int) -> tuple[int, bool]:
    """(hits each signal gathers, whether to score every allowed photo exactly) for a search of ``depth``
    results among ``allowed`` of ``library`` photos, where an unfiltered one gathers ``hits``. Exact when
    the filter allows few photos, or when even the deeper gathering would bring back fewer than twice
    the depth of allowed ones (a filtered search returns k results whenever k photos pass)."""
    if allowed <= EXACT_ALLOWED:
        return hits, True
    n = hits * min(DEEPER_MAX, -(-library // allowed))
    return n, n * allowed < 2 * depth * max(library, 1)


def parse_date(text: str, what: str = "date") -> float:
    """The start of the period ``text`` names, as UTC epoch seconds: ``2024`` -> 2024-01-01 00:00."""
    t = text.strip()
    m = _DATE.match(t)
    try:
        if m:
            year, month, day = int(m[1]), int(m[2] or 1), int(m[3] or 1)
            dt = datetime(year, month, day, tzinfo=UTC)
        else:
            dt = datetime.fromisoformat(t)
            dt = dt if dt.tzinfo else dt.replace(tzinfo=UTC)
    except ValueError:
        raise QueryError(f"{what}: {text!r} is not a date (use 2024, 2024-05, 2024-05-17)") from None
    return dt.timestamp()


def parse_near(text: str) -> tuple[float, float, float]:
    """ "LAT,LON[,KM]" -> (lat, lon, km); the radius defaults to :data:`DEFAULT_KM`."""
    parts = [p.strip() for p in text.replace(";", ",").split(",")]
    try:
        nums = [float(p) for p in parts]
    except ValueError:
        nums = []
    if len(nums) not in (2, 3) or not all(math.isfinite(n) for n in nums):
        raise QueryError(f"near: {text!r} is not LAT,LON or LAT,LON,KM (e.g. 48.8584,2.2945,2)")
    lat, lon, km = nums[0], nums[1], nums[2] if len(nums) == 3 else DEFAULT_KM
    if abs(lat) > 90 or abs(lon) > 180 or km <= 0:
        raise QueryError(f"near: {text!r} is off the globe or has no radius")
    return lat, lon, km


def _folder(path: str | Path) -> str:
    p = str(Path(path).expanduser().resolve())
    return p if p.endswith("/") else p + "/"


@dataclass(frozen=True)
class Filters:
    """Conditions a photo must meet, all of them (None or empty: no condition). ``after``/``before`` are
    UTC epoch seconds (after <= taken < before); ``folders`` absolute folders ending in "/" (a photo with
    a file below any of them passes); ``near`` (lat, lon, km); ``camera`` and ``place`` free text."""

    after: float | None = None
    before: float | None = None
    camera: str | None = None
    folders: tuple[str, ...] = ()
    near: tuple[float, float, float] | None = None
    place: str | None = None

    @classmethod
    def parse(
        cls,
        after: str | None = None,
        before: str | None = None,
        camera: str | None = None,
        folder: str | Path | Sequence[str | Path] | None = None,
        near: str | None = None,
        place: str | None = None,
    ) -> Filters:
        """From what people type (empty strings count as not given); QueryError for a bad value."""
        folders: Sequence[str | Path] = ()
        if isinstance(folder, str | Path):
            folders = [folder] if str(folder).strip() else []
        elif folder is not None:
            folders = folder
        f = cls(
            after=parse_date(after, "after") if after and after.strip() else None,
            before=parse_date(before, "before") if before and before.strip() else None,
            camera=camera.strip() or None if camera else None,
            folders=tuple(_folder(p) for p in folders),
            near=parse_near(near) if near and near.strip() else None,
            place=place.strip() or None if place else None,
        )
        if f.after is not None and f.before is not None and f.after >= f.before:
            raise QueryError(f"after {after} is not before {before}: no photo can pass both")
        return f

    @property
    def active(self) -> bool:
        return any(v not in (None, ()) for v in self.__dict__.values())

    def allowed(self, catalog: Catalog) -> set[int] | None:
        """Ids of the photos passing every condition (None: no condition, every photo passes)."""
        sets: list[set[int]] = []
        meta = catalog.photo_meta
        if self.after is not None or self.before is not None:
            sets.append(meta.ids_taken_between(self.after, self.before))
        if self.camera:
            sets.append(meta.ids_with_camera(self.camera))
        if self.folders:
            sets.append(set().union(*(catalog.ids_under(f) for f in self.folders)))
        if self.near is not None:
            sets.append(meta.ids_near(*self.near))
        if self.place:
            sets.append(meta.ids_at_place(self.place))
        if not sets:
            return None
        sets.sort(key=len)
        return sets[0].intersection(*sets[1:])
