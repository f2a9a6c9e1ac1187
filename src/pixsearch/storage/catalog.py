"""The library's SQLite catalog: images, their paths, captions (+ FTS5), vectors and metadata.

The catalog is the single source of truth. Vector blobs live here too, so the ANN index files are a
derived cache: if a crash lands between a catalog commit and an index save, the next open sees the
``vectors_gen`` stamp disagree and repairs the index from here (see ``library.py``). This module is the
queries; the tables and their migrations are ``schema.py``.
"""

from __future__ import annotations

import re
import sqlite3
import time
import weakref
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from pixsearch.storage.schema import SCHEMA_VERSION, connect

__all__ = ["Catalog", "PathRow", "ImageRow", "CaptionRow", "SCHEMA_VERSION", "fts_query"]


@dataclass(frozen=True)
class PathRow:
    path: str
    image_id: int
    size: int
    mtime_ns: int


@dataclass(frozen=True)
class CaptionRow:
    id: int
    image_id: int
    text: str
    source: str


@dataclass(frozen=True)
class ImageRow:
    id: int
    hash: str
    width: int
    height: int
    paths: tuple[str, ...]
    captions: tuple[CaptionRow, ...]


_WORD = re.compile(r"\w+", re.UNICODE)
# Words that match most captions: they add nothing to BM25's ranking but make FTS5 score every row
# (a 100k-caption library went from ~150 ms to a few ms per query without them).
_STOP = frozenset(
    "a an the and or of in on at to for with by from into onto over under is are was were be been being "
    "it its this that these those there their his her he she they them as while".split()
)


def fts_query(text: str) -> str:
    """Free text -> a safe FTS5 query: content words quoted and OR-ed (BM25 rewards covering more)."""
    words = [w.lower() for w in _WORD.findall(text)]
    content = [w for w in words if w not in _STOP] or words
    return " OR ".join(f'"{w}"' for w in dict.fromkeys(content))


def to_blob(v: np.ndarray) -> bytes:
    return np.asarray(v, dtype=np.float16).tobytes()


def from_blobs(blobs: Sequence[bytes], dim: int) -> np.ndarray:
    if not blobs:
        return np.zeros((0, dim), dtype=np.float32)
    return np.frombuffer(b"".join(blobs), dtype=np.float16).reshape(len(blobs), dim).astype(np.float32)


class Catalog:
    """One SQLite file (WAL). Not shared across threads; open one per process/thread."""

    def __init__(self, db: sqlite3.Connection, path: Path) -> None:
        self.db = db
        self.path = path
        # Close the connection when the catalog goes, or at exit: a sqlite3 Connection is in a reference
        # cycle with its own statement cache, so without this only a garbage collection closes it (and
        # checkpoints the WAL), and the CLI skips the final collections (cli/__init__.py).
        self._closer = weakref.finalize(self, db.close)

    @classmethod
    def open(cls, path: Path, readonly: bool = False) -> Catalog:
        """The catalog at ``path``, created or migrated as needed (``schema.connect``)."""
        return cls(connect(path, readonly), path)

    def close(self) -> None:
        self._closer()

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        self.db.execute("BEGIN IMMEDIATE")
        try:
            yield self.db
        except BaseException:
            self.db.execute("ROLLBACK")
            raise
        self.db.execute("COMMIT")

    # -- meta -------------------------------------------------------------------------------------
    def get_meta(self, key: str) -> str | None:
        row = self.db.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return None if row is None else str(row[0])

    def set_meta(self, key: str, value: str) -> None:
        self.db.execute("INSERT OR REPLACE INTO meta(key, value) VALUES (?, ?)", (key, value))

    @property
    def catalog_id(self) -> str:
        """Identity of this catalog's content lineage (changes when ``reindex`` swaps in a new one)."""
        return self.get_meta("catalog_id") or ""

    @contextmanager
    def snapshot(self) -> Iterator[None]:
        """Several SELECTs that must see one committed state (a writer may commit between them)."""
        if self.db.in_transaction:
            yield
            return
        self.db.execute("BEGIN")
        try:
            yield
        finally:
            self.db.execute("COMMIT")

    def bump_generation(self) -> int:
        """Called inside every write transaction that changes vectors; index files record the value."""
        gen = int(self.get_meta("vectors_gen") or 0) + 1
        self.set_meta("vectors_gen", str(gen))
        return gen

    # -- paths and images -------------------------------------------------------------------------
    def get_path(self, path: str) -> PathRow | None:
        row = self.db.execute(
            "SELECT path, image_id, size, mtime_ns FROM paths WHERE path = ?", (path,)
        ).fetchone()
        return None if row is None else PathRow(*row)

    def paths_at(self, path: str) -> list[str]:
        """The indexed path ``path`` itself, else every indexed path under it taken as a folder."""
        if self.get_path(path):
            return [path]
        return self.paths_under(path.rstrip("/") + "/")

    def paths_under(self, prefix: str) -> list[str]:
        """Paths starting with ``prefix`` (a folder ending in "/"), byte for byte: case-sensitive.

        A range on the primary key, not LIKE (case-insensitive for ASCII in SQLite, so "/Photos/Trip/"
        would also match "/Photos/trip/"). Every string with the prefix sorts between it and the prefix
        with its last character bumped by one.
        """
        if not prefix:
            return [r[0] for r in self.db.execute("SELECT path FROM paths")]
        upper = prefix[:-1] + chr(ord(prefix[-1]) + 1)
        rows = self.db.execute("SELECT path FROM paths WHERE path >= ? AND path < ?", (prefix, upper))
        return [r[0] for r in rows if r[0].startswith(prefix)]

    def image_id_for_hash(self, digest: str) -> int | None:
        row = self.db.execute("SELECT id FROM images WHERE hash = ?", (digest,)).fetchone()
        return None if row is None else int(row[0])

    def add_image(
        self, digest: str, width: int, height: int, thumbnail: bytes | None, vector: np.ndarray
    ) -> int:
        cur = self.db.execute(
            "INSERT INTO images(hash, width, height, added_at, thumbnail, vector) VALUES (?, ?, ?, ?, ?, ?)",
            (digest, width, height, time.time(), thumbnail, to_blob(vector)),
        )
        return int(cur.lastrowid or 0)

    def set_path(self, path: str, image_id: int, size: int, mtime_ns: int) -> None:
        self.db.execute(
            "INSERT OR REPLACE INTO paths(path, image_id, size, mtime_ns) VALUES (?, ?, ?, ?)",
            (path, image_id, size, mtime_ns),
        )

    def remove_path(self, path: str) -> bool:
        return self.db.execute("DELETE FROM paths WHERE path = ?", (path,)).rowcount > 0

    def delete_orphans(self) -> tuple[list[int], list[int]]:
        """Drop images no path points at; returns (image ids, caption ids) removed, for the indexes."""
        ids = [
            r[0]
            for r in self.db.execute("SELECT id FROM images WHERE id NOT IN (SELECT image_id FROM paths)")
        ]
        if not ids:
            return [], []
        cap = [r[0] for r in self._in("SELECT id FROM captions WHERE image_id IN ({})", ids)]
        for s in range(0, len(ids), 900):  # chunked: SQLite limits bound parameters per statement
            chunk = ids[s : s + 900]
            self.db.execute(f"DELETE FROM images WHERE id IN ({','.join('?' * len(chunk))})", chunk)
        return ids, cap

    def thumbnail(self, image_id: int) -> bytes | None:
        """The stored JPEG thumbnail (<= 256 px), for the REST API / web page and for ``reindex`` of
        photos whose file cannot be read any more; None for an unknown id."""
        row = self.db.execute("SELECT thumbnail FROM images WHERE id = ?", (image_id,)).fetchone()
        return None if row is None or row[0] is None else bytes(row[0])

    def copy_human_captions(self, src_image: int, dst_image: int) -> list[int]:
        """Give ``dst_image`` the human captions of ``src_image`` (a path's photo was edited: its new bytes
        keep what people wrote about it); returns the new caption ids (for the vector indexes)."""
        rows = self.db.execute(
            "INSERT OR IGNORE INTO captions(image_id, text, source, embedding, joint, model) "
            "SELECT ?, text, source, embedding, joint, model FROM captions "
            "WHERE image_id = ? AND source = 'human' ORDER BY id RETURNING id",
            (dst_image, src_image),
        ).fetchall()
        return sorted(int(r[0]) for r in rows)

    # -- captions ---------------------------------------------------------------------------------
    def add_captions(
        self, image_id: int, items: Sequence[tuple[str, str, np.ndarray, np.ndarray | None]]
    ) -> list[int]:
        """Insert (text, source, MiniLM embedding, joint vector) rows; exact duplicates are skipped."""
        new: list[int] = []
        for text, source, emb, joint in items:
            cur = self.db.execute(
                "INSERT OR IGNORE INTO captions(image_id, text, source, embedding, joint) "
                "VALUES (?, ?, ?, ?, ?)",
                (image_id, text, source, to_blob(emb), None if joint is None else to_blob(joint)),
            )
            if cur.rowcount:
                new.append(int(cur.lastrowid or 0))
        return new

    def caption_texts(self, image_id: int) -> set[str]:
        return {r[0] for r in self.db.execute("SELECT text FROM captions WHERE image_id = ?", (image_id,))}

    def fts_search(self, text: str, limit: int) -> list[tuple[int, int, float]]:
        """(caption id, image id, bm25) best first; bm25 is positive, larger is better."""
        q = fts_query(text)
        if not q:
            return []
        # ORDER BY rank on the FTS table alone lets FTS5 sort without materialising a join.
        top = self.db.execute(
            "SELECT rowid, -rank FROM captions_fts WHERE captions_fts MATCH ? ORDER BY rank LIMIT ?",
            (q, limit),
        ).fetchall()
        owner = self.caption_owner([int(r[0]) for r in top])
        return [(int(c), owner[int(c)], float(s)) for c, s in top if int(c) in owner]

    # -- bulk reads for the vector indexes --------------------------------------------------------
    def image_vectors(self, dim: int, ids: Sequence[int] | None = None) -> tuple[np.ndarray, np.ndarray]:
        if ids is None:
            rows = self.db.execute("SELECT id, vector FROM images ORDER BY id").fetchall()
        else:
            rows = self._in("SELECT id, vector FROM images WHERE id IN ({})", ids)
        return np.array([r[0] for r in rows], dtype=np.int64), from_blobs([r[1] for r in rows], dim)

    def caption_vectors(
        self, dim: int, ids: Sequence[int] | None = None, column: str = "embedding"
    ) -> tuple[np.ndarray, np.ndarray]:
        """Caption vectors: ``embedding`` (MiniLM) or ``joint`` (joint space, NULL for raw encoders)."""
        col = {"embedding": "embedding", "joint": "joint"}[column]
        if ids is None:
            rows = self.db.execute(
                f"SELECT id, {col} FROM captions WHERE {col} IS NOT NULL ORDER BY id"
            ).fetchall()
        else:
            rows = self._in(f"SELECT id, {col} FROM captions WHERE {col} IS NOT NULL AND id IN ({{}})", ids)
        return np.array([r[0] for r in rows], dtype=np.int64), from_blobs([r[1] for r in rows], dim)

    def captions_of_images(self, image_ids: Sequence[int]) -> list[tuple[int, int, bytes]]:
        """(caption id, image id, MiniLM blob) for the given images: exact caption scores for candidates."""
        return self._in("SELECT id, image_id, embedding FROM captions WHERE image_id IN ({})", image_ids)

    def set_caption_joint(self, rows: Sequence[tuple[int, np.ndarray | None]]) -> None:
        self.db.executemany(
            "UPDATE captions SET joint = ? WHERE id = ?",
            [(None if v is None else to_blob(v), i) for i, v in rows],
        )

    def image_ids(self) -> np.ndarray:
        return np.array([r[0] for r in self.db.execute("SELECT id FROM images")], dtype=np.int64)

    def caption_ids(self, column: str = "embedding") -> np.ndarray:
        if column == "embedding":  # NOT NULL by schema: an index-only scan, no blob pages read
            return np.array([r[0] for r in self.db.execute("SELECT id FROM captions")], dtype=np.int64)
        col = {"joint": "joint"}[column]
        rows = self.db.execute(f"SELECT id FROM captions WHERE {col} IS NOT NULL")
        return np.array([r[0] for r in rows], dtype=np.int64)

    def caption_owner(self, caption_ids: Sequence[int]) -> dict[int, int]:
        return {
            int(a): int(b)
            for a, b in self._in("SELECT id, image_id FROM captions WHERE id IN ({})", caption_ids)
        }

    def _in(self, sql: str, ids: Sequence[int]) -> list[tuple]:
        out: list[tuple] = []
        ids = [int(i) for i in ids]
        for s in range(0, len(ids), 900):  # SQLite's bound-parameter limit
            chunk = ids[s : s + 900]
            out += self.db.execute(sql.format(",".join("?" * len(chunk))), chunk).fetchall()
        return out

    # -- reads for results ------------------------------------------------------------------------
    def images(self, ids: Sequence[int]) -> dict[int, ImageRow]:
        with self.snapshot():
            return self._images(ids)

    def _images(self, ids: Sequence[int]) -> dict[int, ImageRow]:
        base = {r[0]: r for r in self._in("SELECT id, hash, width, height FROM images WHERE id IN ({})", ids)}
        paths: dict[int, list[str]] = {i: [] for i in base}
        for p, i in self._in("SELECT path, image_id FROM paths WHERE image_id IN ({}) ORDER BY path", ids):
            paths[i].append(p)
        caps: dict[int, list[CaptionRow]] = {i: [] for i in base}
        for c in self._in(
            "SELECT id, image_id, text, source FROM captions WHERE image_id IN ({}) ORDER BY id", ids
        ):
            caps[c[1]].append(CaptionRow(*c))
        return {i: ImageRow(i, r[1], r[2], r[3], tuple(paths[i]), tuple(caps[i])) for i, r in base.items()}

    def image_for_path(self, path: str) -> int | None:
        row = self.get_path(path)
        return None if row is None else row.image_id

    def all_paths(self) -> list[str]:
        return [r[0] for r in self.db.execute("SELECT path FROM paths")]

    def image_ids_by_name(self) -> dict[str, list[int]]:
        """File base name -> image ids, for attaching a captions CSV that names files, not paths."""
        out: dict[str, list[int]] = {}
        for p, i in self.db.execute("SELECT path, image_id FROM paths"):
            out.setdefault(Path(p).name, []).append(int(i))
        return out

    def is_empty(self) -> bool:
        """Cheap (no COUNT over a big table): this runs on every open."""
        return self.db.execute("SELECT 1 FROM images LIMIT 1").fetchone() is None

    def counts(self) -> dict[str, int]:
        one = lambda sql: int(self.db.execute(sql).fetchone()[0])  # noqa: E731
        return {
            "images": one("SELECT COUNT(*) FROM images"),
            "paths": one("SELECT COUNT(*) FROM paths"),
            "captions": one("SELECT COUNT(*) FROM captions"),
            "human_captions": one("SELECT COUNT(*) FROM captions WHERE source = 'human'"),
            "generated_captions": one("SELECT COUNT(*) FROM captions WHERE source = 'generated'"),
        }
