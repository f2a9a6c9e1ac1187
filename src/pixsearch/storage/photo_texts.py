"""The ``photo_texts`` table and its FTS5 index: words that belong to a photo but are not captions.

Kinds: 'keyword' (the owner's IPTC/XMP keywords, written by the metadata enricher), 'place' (the offline
place name of its GPS position, so a search for "paris" finds photos taken there by the same BM25 path as
words), 'ocr' (text read in the photo, with the recogniser's confidence). Each enricher replaces its
kinds for a batch through ``Enrichments.save`` with a ``TextRows`` output, in the indexer's transaction;
``catalog.photo_texts`` (``PhotoTextsTable``) reads them, ranks them for a query (``fts_rank``) and counts
them. The same text of the same kind is stored once per photo (``UNIQUE(image_id, kind, text)``).
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from dataclasses import dataclass

from pixsearch.storage.rows import fts_query, fts_words, placeholders, select_in

__all__ = ["KINDS", "PhotoTextsTable", "TextRow", "TextRows"]

KINDS = ("keyword", "ocr", "place")


@dataclass(frozen=True)
class TextRow:
    image_id: int
    kind: str  # one of KINDS
    text: str
    confidence: float | None = None  # the recogniser's, for 'ocr'; None for the owner's own words


@dataclass(frozen=True)
class TextRows:
    """Rows of ``kinds`` for a batch: each photo of the batch loses its old rows of those kinds and gets
    these (a photo redone with nothing left has none). Not marked in ``enrichments`` by itself: the
    enricher's own output says it is done, or wraps this one (``marks_done``)."""

    kinds: tuple[str, ...]
    rows: Sequence[TextRow]
    marks_done: bool = False

    def write(self, db: sqlite3.Connection, image_ids: Sequence[int], fingerprint: str) -> list[int]:
        kinds = tuple(dict.fromkeys(self.kinds))
        bad = (set(kinds) | {r.kind for r in self.rows}) - set(KINDS)
        if bad or any(r.kind not in kinds for r in self.rows):
            raise ValueError(f"photo text kinds {sorted(bad) or sorted({r.kind for r in self.rows})}")
        select_in(
            db,
            f"DELETE FROM photo_texts WHERE kind IN ({placeholders(len(kinds))}) AND image_id IN ({{}})",
            image_ids,
            before=kinds,
        )
        db.executemany(
            "INSERT OR IGNORE INTO photo_texts(image_id, kind, text, confidence) VALUES (?, ?, ?, ?)",
            [(int(r.image_id), r.kind, r.text, r.confidence) for r in self.rows if r.text.strip()],
        )
        return []


class PhotoTextsTable:
    """Queries over ``photo_texts`` on the catalog's connection (``catalog.photo_texts``)."""

    def __init__(self, db: sqlite3.Connection) -> None:
        self._db = db

    def save(self, kind: str, image_ids: Sequence[int], rows: Sequence[TextRow]) -> None:
        """Replace the ``kind`` rows of ``image_ids`` by ``rows``, in the caller's transaction (an
        enricher writes the same through ``catalog.enrichments.save(name, fp, ids, TextRows(...))``)."""
        TextRows((kind,), rows).write(self._db, image_ids, "")

    def texts_of(self, image_ids: Sequence[int], kind: str) -> dict[int, list[str]]:
        """Image id -> its texts of ``kind`` in the order written (ids without any left out)."""
        out: dict[int, list[str]] = {}
        sql = "SELECT image_id, text FROM photo_texts WHERE kind = ? AND image_id IN ({}) ORDER BY id"
        for iid, text in select_in(self._db, sql, image_ids, before=[kind]):
            out.setdefault(int(iid), []).append(str(text))
        return out

    def fts_rank(self, text: str, limit: int, kinds: Sequence[str] | None = None) -> list[tuple[int, float]]:
        """(image id, bm25) best first for the free text ``text`` over the texts of ``kinds`` (None: all),
        each photo once with its best row; bm25 is positive, larger is better (as ``captions.fts_rank``)."""
        q = fts_query(text)
        if not q or limit <= 0:
            return []
        sql = (
            "SELECT t.image_id, MAX(-f.rank) AS score FROM photo_texts_fts f JOIN photo_texts t "
            "ON t.id = f.rowid WHERE photo_texts_fts MATCH ?"
        )
        args: list[object] = [q]
        if kinds is not None:
            if not kinds:
                return []
            sql += f" AND t.kind IN ({placeholders(len(kinds))})"
            args += list(kinds)
        sql += " GROUP BY t.image_id ORDER BY score DESC LIMIT ?"
        rows = self._db.execute(sql, [*args, int(limit)]).fetchall()
        return [(int(i), float(s)) for i, s in rows]

    def coverage(self, text: str, limit: int) -> list[tuple[int, float]]:
        """(image id, share of ``text``'s words found among the photo's own words) for the photos whose
        texts match any of them (BM25's best ``limit``). Why not BM25 itself: in a library where few
        photos have keywords or readable text, FTS5's IDF is near zero (a word in 1 of 2 rows scores
        1e-6), while "all three words of the query are on the sign" is plain evidence at any size."""
        want = fts_words(text)
        hits = self.fts_rank(text, limit)
        if not want or not hits:
            return []
        words: dict[int, set[str]] = {}
        sql = "SELECT image_id, text FROM photo_texts WHERE image_id IN ({})"
        for iid, t in select_in(self._db, sql, [i for i, _ in hits]):
            words.setdefault(int(iid), set()).update(fts_words(str(t)))
        out = [(i, sum(w in words.get(i, set()) for w in want) / len(want)) for i, _ in hits]
        return [(i, c) for i, c in out if c > 0]

    def counts(self) -> dict[str, int]:
        """Rows per kind (every kind present, 0 when none), in one statement."""
        rows = dict(self._db.execute("SELECT kind, COUNT(*) FROM photo_texts GROUP BY kind").fetchall())
        return {k: int(rows.get(k, 0)) for k in KINDS}
