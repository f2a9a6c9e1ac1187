"""The ``captions`` table and its FTS5 index: the caption queries ``Catalog`` inherits.

Why a base class rather than a second object: every caller holds one catalog and reads captions beside
images and paths (``catalog.add_captions``, ``catalog.fts_search``); the split only keeps each module to
one table group. ``GeneratedCaptions`` is the captions enricher's output, written through
``Enrichments.save`` like every enricher's (see ``enrichments.py``).
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from pixsearch.storage.rows import from_blobs, fts_query, select_in, to_blob

__all__ = ["CaptionRows", "GeneratedCaption", "GeneratedCaptions"]


def _insert(
    db: sqlite3.Connection, image_id: int, items: Sequence[tuple[str, str, np.ndarray, np.ndarray | None]]
) -> list[int]:
    new: list[int] = []
    for text, source, emb, joint in items:
        cur = db.execute(
            "INSERT OR IGNORE INTO captions(image_id, text, source, embedding, joint) VALUES (?, ?, ?, ?, ?)",
            (image_id, text, source, to_blob(emb), None if joint is None else to_blob(joint)),
        )
        if cur.rowcount:
            new.append(int(cur.lastrowid or 0))
    return new


@dataclass(frozen=True)
class GeneratedCaption:
    image_id: int
    text: str
    embedding: np.ndarray  # MiniLM
    joint: np.ndarray | None  # joint space; None for a raw encoder


@dataclass(frozen=True)
class GeneratedCaptions:
    """The captions enricher's output for a batch: replaces the batch's generated captions (a photo
    redone with a new captioner gets the new one), each stamped with the captioner's fingerprint."""

    rows: Sequence[GeneratedCaption]
    marks_done = True

    def write(self, db: sqlite3.Connection, image_ids: Sequence[int], fingerprint: str) -> list[int]:
        select_in(db, "DELETE FROM captions WHERE source = 'generated' AND image_id IN ({})", image_ids)
        new: list[int] = []
        for r in self.rows:
            new += _insert(db, r.image_id, [(r.text, "generated", r.embedding, r.joint)])
        select_in(db, "UPDATE captions SET model = ? WHERE id IN ({})", new, before=[fingerprint])
        return new


class CaptionRows:
    """Caption queries over ``self._db`` (the catalog's connection)."""

    _db: sqlite3.Connection

    def _in(self, sql: str, ids: Sequence[int]) -> list[tuple]:
        return select_in(self._db, sql, ids)

    # -- writes -----------------------------------------------------------------------------------
    def add_captions(
        self, image_id: int, items: Sequence[tuple[str, str, np.ndarray, np.ndarray | None]]
    ) -> list[int]:
        """Insert (text, source, MiniLM embedding, joint vector) rows; exact duplicates are skipped."""
        return _insert(self._db, image_id, items)

    def copy_human_captions(self, src_image: int, dst_image: int) -> list[int]:
        """Give ``dst_image`` the human captions of ``src_image`` (a path's photo was edited: its new bytes
        keep what people wrote about it); returns the new caption ids (for the vector indexes)."""
        rows = self._db.execute(
            "INSERT OR IGNORE INTO captions(image_id, text, source, embedding, joint, model) "
            "SELECT ?, text, source, embedding, joint, model FROM captions "
            "WHERE image_id = ? AND source = 'human' ORDER BY id RETURNING id",
            (dst_image, src_image),
        ).fetchall()
        return sorted(int(r[0]) for r in rows)

    def set_caption_joint(self, rows: Sequence[tuple[int, np.ndarray | None]]) -> None:
        self._db.executemany(
            "UPDATE captions SET joint = ? WHERE id = ?",
            [(None if v is None else to_blob(v), i) for i, v in rows],
        )

    # -- texts ------------------------------------------------------------------------------------
    def caption_texts(self, image_id: int) -> set[str]:
        return {r[0] for r in self._db.execute("SELECT text FROM captions WHERE image_id = ?", (image_id,))}

    def captions_by_image(self, image_ids: Sequence[int]) -> dict[int, list[tuple[str, str]]]:
        """Image id -> its captions' (text, source) in caption order, every given id present."""
        out: dict[int, list[tuple[str, str]]] = {int(i): [] for i in image_ids}
        for iid, text, source in self._in(
            "SELECT image_id, text, source FROM captions WHERE image_id IN ({}) ORDER BY id", image_ids
        ):
            out[int(iid)].append((text, source))
        return out

    def human_captioned(self, image_ids: Sequence[int]) -> set[int]:
        """Those of ``image_ids`` with at least one human caption."""
        sql = "SELECT DISTINCT image_id FROM captions WHERE source = 'human' AND image_id IN ({})"
        return {int(r[0]) for r in self._in(sql, image_ids)}

    def human_captions_by_path(self) -> list[tuple[str, str, str]]:
        """(path, text, source) of every human caption, in caption order, once per path of its photo."""
        return self._db.execute(
            "SELECT p.path, c.text, c.source FROM captions c JOIN paths p ON p.image_id = c.image_id "
            "WHERE c.source = 'human' ORDER BY c.id"
        ).fetchall()

    def caption_models(self, image_id: int) -> dict[int, str | None]:
        """Caption id -> the generator of each caption of the photo (None for a human caption)."""
        rows = self._db.execute("SELECT id, model FROM captions WHERE image_id = ?", (image_id,))
        return dict(rows.fetchall())

    def generated_caption_ids(self, image_ids: Sequence[int]) -> list[int]:
        sql = "SELECT id FROM captions WHERE source = 'generated' AND image_id IN ({})"
        return [int(r[0]) for r in self._in(sql, image_ids)]

    # -- full-text search -------------------------------------------------------------------------
    def fts_rank(self, text: str, limit: int) -> list[tuple[int, float]]:
        """(caption id, bm25) best first over all captions; bm25 is positive, larger is better."""
        q = fts_query(text)
        if not q:
            return []
        # ORDER BY rank on the FTS table alone lets FTS5 sort without materialising a join.
        rows = self._db.execute(
            "SELECT rowid, -rank FROM captions_fts WHERE captions_fts MATCH ? ORDER BY rank LIMIT ?",
            (q, limit),
        ).fetchall()
        return [(int(c), float(b)) for c, b in rows]

    def fts_doc_counts(self, words: Sequence[str]) -> dict[str, int]:
        """Word -> how many captions contain it (as FTS5 matches it: stemmed). Counting skips BM25, so
        it costs a small fraction of ranking by a word."""
        sql = "SELECT count(*) FROM captions_fts WHERE captions_fts MATCH ?"
        return {w: int(self._db.execute(sql, (q,)).fetchone()[0]) for w in words if (q := fts_query(w))}

    def fts_search(self, text: str, limit: int) -> list[tuple[int, int, float]]:
        """(caption id, image id, bm25) best first; bm25 is positive, larger is better."""
        top = self.fts_rank(text, limit)
        owner = self.caption_owner([c for c, _ in top])
        return [(c, owner[c], s) for c, s in top if c in owner]

    # -- vectors ----------------------------------------------------------------------------------
    def caption_vectors(
        self, dim: int, ids: Sequence[int] | None = None, column: str = "embedding"
    ) -> tuple[np.ndarray, np.ndarray]:
        """Caption vectors: ``embedding`` (MiniLM) or ``joint`` (joint space, NULL for raw encoders)."""
        col = {"embedding": "embedding", "joint": "joint"}[column]
        if ids is None:
            rows = self._db.execute(
                f"SELECT id, {col} FROM captions WHERE {col} IS NOT NULL ORDER BY id"
            ).fetchall()
        else:
            rows = self._in(f"SELECT id, {col} FROM captions WHERE {col} IS NOT NULL AND id IN ({{}})", ids)
        return np.array([r[0] for r in rows], dtype=np.int64), from_blobs([r[1] for r in rows], dim)

    def captions_of_images(self, image_ids: Sequence[int]) -> list[tuple[int, int, str, bytes]]:
        """(caption id, image id, source, MiniLM blob) for the given images: exact caption scores for
        search candidates."""
        sql = "SELECT id, image_id, source, embedding FROM captions WHERE image_id IN ({})"
        return self._in(sql, image_ids)

    def caption_embeddings(self, image_ids: Sequence[int]) -> list[tuple[int, str, bytes]]:
        """(image id, source, MiniLM blob) of the given images' captions, in caption order per chunk of
        900 images: a photo's first generated caption is its oldest."""
        return self._in(
            "SELECT image_id, source, embedding FROM captions WHERE image_id IN ({}) ORDER BY id", image_ids
        )

    def caption_ids(self, column: str = "embedding") -> np.ndarray:
        if column == "embedding":  # NOT NULL by schema: an index-only scan, no blob pages read
            return np.array([r[0] for r in self._db.execute("SELECT id FROM captions")], dtype=np.int64)
        col = {"joint": "joint"}[column]
        rows = self._db.execute(f"SELECT id FROM captions WHERE {col} IS NOT NULL")
        return np.array([r[0] for r in rows], dtype=np.int64)

    def caption_owner(self, caption_ids: Sequence[int]) -> dict[int, int]:
        return {
            int(a): int(b)
            for a, b in self._in("SELECT id, image_id FROM captions WHERE id IN ({})", caption_ids)
        }

    def caption_owners(
        self, caption_ids: Sequence[int] | np.ndarray
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(caption ids ascending, their image ids, whether people wrote each) for the known ones of
        ``caption_ids``: arrays, so a search maps hundreds of caption hits to photos without a dict."""
        rows = self._in(
            "SELECT id, image_id, source = 'human' FROM captions WHERE id IN ({}) ORDER BY id",
            [int(c) for c in caption_ids],
        )
        if not rows:
            return np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros(0, dtype=bool)
        a = np.array(rows, dtype=np.int64).reshape(-1, 3)
        order = np.argsort(a[:, 0], kind="stable")  # ORDER BY holds per 900-id chunk only
        a = a[order]
        return a[:, 0], a[:, 1], a[:, 2].astype(bool)

    def caption_sources(self, caption_ids: Sequence[int]) -> dict[int, tuple[int, str]]:
        """Caption id -> (image id, source): who owns each caption and whether people wrote it."""
        rows = self._in("SELECT id, image_id, source FROM captions WHERE id IN ({})", caption_ids)
        return {int(c): (int(iid), str(src)) for c, iid, src in rows}
