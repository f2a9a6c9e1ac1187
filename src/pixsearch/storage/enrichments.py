"""What photos get at index time besides their vector: the ``labels``, ``flags`` and ``enrichments`` tables.

Every enricher writes through one call, ``Enrichments.save``: it replaces the enricher's previous rows for
a batch of photos and records the photos done at the enricher's fingerprint, inside the indexer's batch
transaction (so a photo and all it was given commit together; an interrupted run loses nothing
half-written). Which photo an enricher has done is recorded in ``enrichments``, so a photo that got
nothing (no label above the threshold, a human caption already) is still done, and a changed model or
policy (another fingerprint) makes it stale.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from pixsearch.storage.rows import fts_query, select_in

__all__ = ["Enrichments", "FlagRow", "Flags", "LabelHit", "LabelRow", "Labels", "Output"]


class Output(Protocol):
    """One enricher's rows for a batch of photos (``Labels``, ``Flags``, ``captions.GeneratedCaptions``)."""

    @property
    def marks_done(self) -> bool:
        """Whether ``save`` records the photos in ``enrichments`` (False where the rows say it themselves)."""
        ...

    def write(self, db: sqlite3.Connection, image_ids: Sequence[int], fingerprint: str) -> list[int]:
        """Replace the rows this output kind stored for ``image_ids``; returns new caption ids, if any."""
        ...


@dataclass(frozen=True)
class LabelRow:
    image_id: int
    label: str  # shown: the class's first name
    words: str  # searched (FTS5): the class's names, synonyms and family
    score: float  # softmax probability


@dataclass(frozen=True)
class Labels:
    """The labels enricher's output: each photo's confident classes replace its old ones."""

    rows: Sequence[LabelRow]
    marks_done = True

    def write(self, db: sqlite3.Connection, image_ids: Sequence[int], fingerprint: str) -> list[int]:
        select_in(db, "DELETE FROM labels WHERE image_id IN ({})", image_ids)
        db.executemany(
            "INSERT OR IGNORE INTO labels(image_id, label, words, score, model) VALUES (?, ?, ?, ?, ?)",
            [(r.image_id, r.label, r.words, r.score, fingerprint) for r in self.rows],
        )
        return []


@dataclass(frozen=True)
class FlagRow:
    image_id: int
    flagged: bool
    evidence: dict[str, Any]  # stored as JSON; ``n_captions`` in it is read back by ``stale_flags``


@dataclass(frozen=True)
class Flags:
    """The policy enricher's verdicts, one row per photo. Not marked in ``enrichments``: a flag row
    carries its own fingerprint and the caption count it saw, which ``stale_flags`` reads."""

    rows: Sequence[FlagRow]
    marks_done = False

    def write(self, db: sqlite3.Connection, image_ids: Sequence[int], fingerprint: str) -> list[int]:
        db.executemany(
            "INSERT OR REPLACE INTO flags(image_id, flagged, evidence, policy) VALUES (?, ?, ?, ?)",
            [
                (r.image_id, int(r.flagged), json.dumps(r.evidence, ensure_ascii=False), fingerprint)
                for r in self.rows
            ],
        )
        return []


@dataclass(frozen=True)
class LabelHit:
    image_id: int
    score: float
    label: str
    words: str


class Enrichments:
    """Queries over the enrichers' tables, on the catalog's connection (``catalog.enrichments``)."""

    def __init__(self, db: sqlite3.Connection) -> None:
        self._db = db

    # -- the one write of every enricher ----------------------------------------------------------
    def save(self, name: str, fingerprint: str, image_ids: Sequence[int], output: Output) -> list[int]:
        """Replace enricher ``name``'s output for ``image_ids`` by ``output`` and record the photos done
        at ``fingerprint``, in the caller's transaction. Returns the caption ids it added (the indexer
        puts them in the caption vector indexes)."""
        ids = [int(i) for i in image_ids]
        new = output.write(self._db, ids, fingerprint)
        if output.marks_done:
            self.mark_done(name, fingerprint, ids)
        return new

    # -- bookkeeping ------------------------------------------------------------------------------
    def mark_done(self, name: str, fingerprint: str, image_ids: Sequence[int]) -> None:
        """Record that ``name`` ran on these images at ``fingerprint`` (inside the caller's transaction)."""
        self._db.executemany(
            "INSERT OR REPLACE INTO enrichments(image_id, name, fingerprint) VALUES (?, ?, ?)",
            [(int(i), name, fingerprint) for i in image_ids],
        )

    def not_done(self, name: str, fingerprint: str) -> list[int]:
        """Images ``name`` has not run on at ``fingerprint`` (new, or done with an older model)."""
        rows = self._db.execute(
            "SELECT id FROM images WHERE id NOT IN "
            "(SELECT image_id FROM enrichments WHERE name = ? AND fingerprint = ?) ORDER BY id",
            (name, fingerprint),
        )
        return [int(r[0]) for r in rows]

    # -- flags ------------------------------------------------------------------------------------
    def stale_flags(self, policy: str) -> list[int]:
        """Images without a flag at fingerprint ``policy``, or with captions attached after their flag
        was computed (the flag's evidence records how many captions it read)."""
        rows = self._db.execute(
            "SELECT i.id FROM images i LEFT JOIN flags f ON f.image_id = i.id "
            "WHERE f.image_id IS NULL OR f.policy != ? OR "
            "COALESCE(json_extract(f.evidence, '$.n_captions'), 0) < "
            "(SELECT COUNT(*) FROM captions c WHERE c.image_id = i.id) ORDER BY i.id",
            (policy,),
        )
        return [int(r[0]) for r in rows]

    def unflagged(self, image_ids: Sequence[int]) -> set[int]:
        """Those of ``image_ids`` checked and not flagged (an unchecked photo is in neither set)."""
        sql = "SELECT image_id FROM flags WHERE flagged = 0 AND image_id IN ({})"
        rows = select_in(self._db, sql, image_ids)
        return {int(r[0]) for r in rows}

    # -- labels -----------------------------------------------------------------------------------
    def label_matches(self, text: str, limit: int) -> list[LabelHit]:
        """Labels whose words match the free text ``text`` (FTS5), most probable first."""
        q = fts_query(text)
        if not q:
            return []
        rows = self._db.execute(
            "SELECT l.image_id, l.score, l.label, l.words FROM labels_fts f JOIN labels l ON l.id = f.rowid "
            "WHERE labels_fts MATCH ? ORDER BY l.score DESC LIMIT ?",
            (q, limit),
        ).fetchall()
        return [LabelHit(int(i), float(s), str(lb), str(w)) for i, s, lb, w in rows]

    def labels_of(self, image_ids: Sequence[int]) -> dict[int, list[tuple[str, float]]]:
        """Image id -> [(label, probability)] best first (ids without labels left out)."""
        out: dict[int, list[tuple[str, float]]] = {}
        sql = "SELECT image_id, label, score FROM labels WHERE image_id IN ({}) ORDER BY score DESC"
        for iid, label, score in select_in(self._db, sql, image_ids):
            out.setdefault(int(iid), []).append((str(label), float(score)))
        return out
