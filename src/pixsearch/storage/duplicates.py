"""Reads for the duplicate finder (``library/duplicates.py``): every indexed file with its photo's size and
capture time, and thumbnails in batches.

Why its own module: the finder reads across tables that belong to others (``images`` and ``paths`` of
``catalog.py``, ``photo_meta`` of ``photo_meta.py``) in one statement, and SQL lives in ``storage/``.
``photo_meta`` is read through a LEFT JOIN: a photo without a row (indexed before capture times were
read) just has no ``taken_at``, and a catalog whose schema lacks the table altogether reads the same.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

from pixsearch.storage.pathnames import from_sql
from pixsearch.storage.rows import select_in

__all__ = ["DuplicateReads", "FileRow"]

_FILES = (
    "SELECT p.path, i.id, i.width, i.height, p.size, p.mtime_ns, {meta} "
    "FROM paths p JOIN images i ON i.id = p.image_id {join} ORDER BY i.id, p.path"
)
_WITH_META = ("m.taken_at, m.taken_ts, m.taken_source", "LEFT JOIN photo_meta m ON m.image_id = i.id")
_WITHOUT_META = ("NULL, NULL, NULL", "")


@dataclass(frozen=True)
class FileRow:
    """One indexed file: its photo (content hash row) and what the finder shows and ranks by."""

    path: str
    image_id: int
    width: int
    height: int
    size: int  # bytes on disk when indexed
    mtime_ns: int
    taken_at: str | None  # ISO 8601 as the file wrote it; None when unknown
    taken_ts: float | None  # the same instant as UTC epoch seconds
    taken_from: str | None  # 'exif' (the camera said), 'file' (its modification time), 'none'; None: no row


class DuplicateReads:
    """The finder's queries over one catalog connection (the catalog's own; used on its thread)."""

    def __init__(self, db: sqlite3.Connection) -> None:
        self._db = db

    def files(self) -> list[FileRow]:
        """Every indexed path, by photo id then path (exact copies, one photo's paths, are adjacent)."""
        try:
            rows = self._db.execute(_FILES.format(meta=_WITH_META[0], join=_WITH_META[1])).fetchall()
        except sqlite3.OperationalError as exc:  # a catalog from before photo_meta: no capture times
            if "photo_meta" not in str(exc):
                raise
            rows = self._db.execute(_FILES.format(meta=_WITHOUT_META[0], join=_WITHOUT_META[1])).fetchall()
        return [
            FileRow(
                from_sql(p), int(i), int(w), int(h), int(s), int(m), t, None if ts is None else float(ts), src
            )
            for p, i, w, h, s, m, t, ts, src in rows
        ]

    def thumbnails(self, image_ids: Sequence[int], batch: int = 512) -> Iterator[tuple[int, bytes]]:
        """(image id, thumbnail JPEG) for those of ``image_ids`` that have one, ``batch`` rows at a time:
        at 100K photos the thumbnails (~15 KB each) are never all in memory at once."""
        ids = [int(i) for i in image_ids]
        for s in range(0, len(ids), batch):
            sql = "SELECT id, thumbnail FROM images WHERE id IN ({}) AND thumbnail IS NOT NULL"
            for i, t in select_in(self._db, sql, ids[s : s + batch]):
                yield int(i), bytes(t)
