"""The ``photo_meta`` table: one row per photo of what its file says (capture time, camera, lens, GPS
position and place name, orientation), written by the metadata enricher and read by filters, sorting and
results.

Writes go through ``Enrichments.save`` like every enricher's (``MetaRows`` is the ``Output``), in the
indexer's batch transaction. Reads are ``catalog.photo_meta`` (``PhotoMetaTable``): the rows of given
photos, and the id sets a filter needs (taken between, camera, near a position, at a place). Times are
``taken_ts`` (UTC epoch seconds) and half-open: ``after <= taken_ts < before``.
"""

from __future__ import annotations

import math
import sqlite3
import unicodedata
from collections.abc import Collection, Sequence
from dataclasses import astuple, dataclass

from pixsearch.errors import QueryError
from pixsearch.storage.rows import placeholders, select_in

__all__ = ["EARTH_KM", "MetaRow", "MetaRows", "PhotoMetaTable", "haversine_km"]

EARTH_KM = 6371.0088  # mean Earth radius
_KM_PER_DEG = math.pi * EARTH_KM / 180.0
_COLUMNS = (
    "image_id, taken_at, taken_ts, taken_source, camera_make, camera_model, lens, lat, lon, place, "
    "country, orientation, extractor"
)
_SOURCES = frozenset({"exif", "file", "none"})


@dataclass(frozen=True)
class MetaRow:
    """One photo's stored metadata. ``taken_at`` ISO 8601 as written (offset when known), ``taken_ts``
    UTC epoch seconds, ``taken_source`` 'exif' | 'file' (file modification time) | 'none'."""

    image_id: int
    taken_at: str | None = None
    taken_ts: float | None = None
    taken_source: str = "none"
    camera_make: str | None = None
    camera_model: str | None = None
    lens: str | None = None
    lat: float | None = None
    lon: float | None = None
    place: str | None = None
    country: str | None = None
    orientation: int | None = None
    extractor: str = ""  # the metadata enricher's fingerprint (set by ``MetaRows.write``)

    @property
    def camera(self) -> str | None:
        """Make and model as people say it: "Canon EOS 5D", not "Canon Canon EOS 5D"."""
        make, model = self.camera_make or "", self.camera_model or ""
        if make and model.lower().startswith(make.split()[0].lower()):
            return model
        return " ".join(p for p in (make, model) if p) or None


@dataclass(frozen=True)
class MetaRows:
    """The metadata enricher's rows for a batch: each photo's row replaces its old one, stamped with the
    enricher's fingerprint in ``extractor``."""

    rows: Sequence[MetaRow]
    marks_done = True

    def write(self, db: sqlite3.Connection, image_ids: Sequence[int], fingerprint: str) -> list[int]:
        bad = {r.taken_source for r in self.rows} - _SOURCES
        if bad:
            raise ValueError(f"taken_source {sorted(bad)}")
        db.executemany(
            f"INSERT OR REPLACE INTO photo_meta({_COLUMNS}) VALUES ({placeholders(13)})",
            [astuple(r)[:-1] + (fingerprint,) for r in self.rows],
        )
        return []


def haversine_km(lat1: float, lon1: float, lat2: float, lon2: float) -> float:
    """Great-circle distance in km."""
    p1, p2 = math.radians(lat1), math.radians(lat2)
    dp, dl = p2 - p1, math.radians(lon2 - lon1)
    a = math.sin(dp / 2) ** 2 + math.cos(p1) * math.cos(p2) * math.sin(dl / 2) ** 2
    return 2 * EARTH_KM * math.asin(min(1.0, math.sqrt(a)))


class PhotoMetaTable:
    """Queries over ``photo_meta`` on the catalog's connection (``catalog.photo_meta``)."""

    def __init__(self, db: sqlite3.Connection) -> None:
        self._db = db

    def meta_for(self, image_ids: Sequence[int]) -> dict[int, MetaRow]:
        """Image id -> its row, for the ids that have one (a photo not yet read by the enricher has none)."""
        rows = select_in(self._db, f"SELECT {_COLUMNS} FROM photo_meta WHERE image_id IN ({{}})", image_ids)
        return {int(r[0]): MetaRow(*r) for r in rows}

    def ids_taken_between(
        self,
        after_ts: float | None = None,
        before_ts: float | None = None,
        sources: Collection[str] = ("exif", "file"),
    ) -> set[int]:
        """Photos taken at ``after_ts <= taken_ts < before_ts`` (either bound None: open), counting only
        times from ``sources`` ('exif' alone: the camera's own clock, no file times)."""
        src = sorted(set(sources) & _SOURCES)
        if not src:
            return set()
        sql = f"SELECT image_id FROM photo_meta WHERE taken_source IN ({placeholders(len(src))})"
        args: list[object] = list(src)
        if after_ts is not None:
            sql += " AND taken_ts >= ?"
            args.append(_finite(after_ts, "after"))
        if before_ts is not None:
            sql += " AND taken_ts < ?"
            args.append(_finite(before_ts, "before"))
        return {int(r[0]) for r in self._db.execute(sql, args)}

    def by_date(
        self,
        image_ids: Collection[int] | None = None,
        newest_first: bool = True,
        limit: int | None = None,
        offset: int = 0,
    ) -> list[int]:
        """``image_ids`` (None: every photo in the library) ordered by capture time, newest or oldest
        first; photos with no time (or not read yet) last, by id; ``limit``/``offset``: one page of
        that order. Every photo: one statement, the page cut in SQL; given ids: their rows only, sorted
        here (a filter's few thousand rows, not the library's)."""
        end = None if limit is None else offset + limit
        if image_ids is None:
            direction = "DESC" if newest_first else "ASC"
            sql = (
                "SELECT i.id FROM images i LEFT JOIN photo_meta m ON m.image_id = i.id "
                f"ORDER BY m.taken_ts IS NULL, m.taken_ts {direction}, i.id LIMIT ? OFFSET ?"
            )
            rows = self._db.execute(sql, (-1 if limit is None else limit, offset))
            return [int(r[0]) for r in rows]
        want = set(image_ids)
        taken = {
            int(i): float(ts)
            for i, ts in select_in(
                self._db, "SELECT image_id, taken_ts FROM photo_meta WHERE image_id IN ({})", sorted(want)
            )
            if ts is not None
        }
        sign = -1.0 if newest_first else 1.0
        dated = sorted(taken, key=lambda i: (sign * taken[i], i))
        return [*dated, *sorted(want - set(taken))][offset:end]

    def ids_with_camera(self, text: str) -> set[int]:
        """Photos whose "make model" contains ``text``, case-insensitively ("canon", "eos 5d", "iphone")."""
        needle = " ".join(text.split())
        if not needle:
            return set()
        pattern = "%" + needle.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
        rows = self._db.execute(
            "SELECT image_id FROM photo_meta "
            "WHERE (COALESCE(camera_make, '') || ' ' || COALESCE(camera_model, '')) LIKE ? ESCAPE '\\'",
            (pattern,),
        )
        return {int(r[0]) for r in rows}

    def ids_near(self, lat: float, lon: float, km: float) -> set[int]:
        """Photos within ``km`` of (``lat``, ``lon``): a bounding box on the indexed columns, then the
        great-circle distance. QueryError for a position off the globe or a radius that is not positive."""
        lat, lon, km = _finite(lat, "latitude"), _finite(lon, "longitude"), _finite(km, "distance")
        if abs(lat) > 90 or abs(lon) > 180 or km <= 0:
            raise QueryError(f"no such place or radius: lat {lat:g}, lon {lon:g}, {km:g} km")
        dlat = km / _KM_PER_DEG
        lat_lo, lat_hi = max(-90.0, lat - dlat), min(90.0, lat + dlat)
        cos = math.cos(math.radians(max(abs(lat_lo), abs(lat_hi))))
        dlon = 360.0 if lat_hi >= 90 or lat_lo <= -90 or cos < 1e-9 else km / (_KM_PER_DEG * cos)
        if dlon >= 180:
            spans = [(-180.0, 180.0)]
        else:  # a box across the antimeridian is two boxes
            lo, hi = lon - dlon, lon + dlon
            spans = [(max(lo, -180.0), min(hi, 180.0))]
            if lo < -180:
                spans.append((lo + 360.0, 180.0))
            if hi > 180:
                spans.append((-180.0, hi - 360.0))
        lon_sql = " OR ".join("lon BETWEEN ? AND ?" for _ in spans)
        rows = self._db.execute(
            "SELECT image_id, lat, lon FROM photo_meta WHERE lat IS NOT NULL AND lat BETWEEN ? AND ? "
            f"AND ({lon_sql})",
            [lat_lo, lat_hi, *[v for s in spans for v in s]],
        )
        return {int(i) for i, a, b in rows if haversine_km(lat, lon, a, b) <= km}

    def ids_at_place(self, name: str) -> set[int]:
        """Photos whose place or country names ``name``: its words, in order, as whole words, ignoring
        case and accents ("paris", "ile de france", "new york", "united states"). One pass over the rows
        with a place; each distinct place is matched once (a library has few)."""
        want = _words(name)
        if not want:
            return set()
        rows = self._db.execute(
            "SELECT image_id, place, country FROM photo_meta WHERE place IS NOT NULL OR country IS NOT NULL"
        )
        seen: dict[tuple[str | None, str | None], bool] = {}
        out: set[int] = set()
        for iid, p, c in rows:
            hit = seen.get((p, c))
            if hit is None:
                hit = seen[(p, c)] = _contains(_words(p or "") + ["|"] + _words(c or ""), want)
            if hit:
                out.add(int(iid))
        return out

    def counts(self) -> dict[str, int]:
        """Photos read, with a camera capture time, with a GPS position, with a place name (one
        statement: one snapshot)."""
        row = self._db.execute(
            "SELECT COUNT(*), COALESCE(SUM(taken_source = 'exif'), 0), COALESCE(SUM(lat IS NOT NULL), 0),"
            " COALESCE(SUM(place IS NOT NULL OR country IS NOT NULL), 0) FROM photo_meta"
        ).fetchone()
        keys = ("photos_with_metadata", "photos_with_capture_time", "photos_with_gps", "photos_with_place")
        return {k: int(v) for k, v in zip(keys, row, strict=True)}

    def months(
        self, hidden: Collection[int] = (), only: Collection[int] | None = None
    ) -> tuple[list[tuple[str, int]], int]:
        """([("2024-05", photos taken that month), ...] oldest first, photos with no capture time), not
        counting ``hidden`` (ids a region withholds); ``only``: among these photos (a result set), not
        the library. Months are UTC calendar months of ``taken_ts`` and count file times, as
        ``ids_taken_between`` does: a month's count is what a date filter on it finds. Call inside
        ``catalog.snapshot()`` when ``hidden`` is given (two statements)."""
        month = "CASE WHEN m.taken_source IN ('exif', 'file') THEN strftime('%Y-%m', m.taken_ts, 'unixepoch')"
        month += " END"
        sql = f"SELECT {month}, COUNT(*) FROM images i LEFT JOIN photo_meta m ON m.image_id = i.id"
        if only is None:
            counts = {mo: int(n) for mo, n in self._db.execute(sql + " GROUP BY 1")}
        else:
            counts = {}
            for mo, n in select_in(
                self._db, sql + " WHERE i.id IN ({}) GROUP BY 1", sorted(set(only) - set(hidden))
            ):
                counts[mo] = counts.get(mo, 0) + int(n)
            hidden = ()
        for mo, n in select_in(self._db, sql + " WHERE i.id IN ({}) GROUP BY 1", sorted(hidden)):
            counts[mo] = counts.get(mo, 0) - int(n)
        undated = counts.pop(None, 0)
        return sorted((mo, n) for mo, n in counts.items() if n > 0), max(undated, 0)


def _finite(v: float, what: str) -> float:
    try:
        f = float(v)
    except (TypeError, ValueError):
        raise QueryError(f"{what} must be a number, not {v!r}") from None
    if not math.isfinite(f):
        raise QueryError(f"{what} must be a finite number, not {v!r}")
    return f


def _words(text: str) -> list[str]:
    """Lower-case words without accents ("Île-de-France" -> ["ile", "de", "france"])."""
    plain = "".join(c for c in unicodedata.normalize("NFKD", text) if not unicodedata.combining(c))
    return "".join(c if c.isalnum() else " " for c in plain.casefold()).split()


def _contains(words: list[str], want: list[str]) -> bool:
    n = len(want)
    return any(words[i : i + n] == want for i in range(len(words) - n + 1))
