"""The library's SQLite catalog: images, their paths, captions (+ FTS5), vectors and metadata.

The catalog is the single source of truth. Vector blobs live here too, so the ANN index files are a
derived cache: if a crash lands between a catalog commit and an index save, the next open sees the
``vectors_gen`` stamp disagree and repairs the index from here (see ``library/facade.py``). Every SQL
statement of the package lives in ``storage/``: this module has images, paths and meta; caption queries
are ``captions.py`` (inherited), the enrichers' tables ``enrichments.py`` (``catalog.enrichments``), and
the tables themselves and their migrations ``schema.py``.
"""

from __future__ import annotations

import sqlite3
import time
import weakref
from collections.abc import Iterator, Sequence
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np

from pixsearch.storage.captions import CaptionRows
from pixsearch.storage.duplicates import DuplicateReads
from pixsearch.storage.enrichments import Enrichments
from pixsearch.storage.failpoints import pause_point
from pixsearch.storage.failures import disk_full, storage_error
from pixsearch.storage.pathnames import from_sql, prefix_ranges, to_sql
from pixsearch.storage.photo_meta import PhotoMetaTable
from pixsearch.storage.photo_texts import PhotoTextsTable
from pixsearch.storage.rows import from_blobs, fts_query, to_blob
from pixsearch.storage.schema import SCHEMA_VERSION, connect

__all__ = ["Catalog", "PathRow", "ImageRow", "CaptionRow", "SCHEMA_VERSION", "fts_query", "from_blobs"]
__all__ += ["to_blob"]


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


class Catalog(CaptionRows):
    """One SQLite file (WAL). Not shared across threads; open one per process/thread.

    The connection is private: callers ask for what they need by name, so the SQL (and which statements
    share a transaction) stays here.
    """

    def __init__(self, db: sqlite3.Connection, path: Path) -> None:
        self._db = db
        self.path = path
        self.enrichments = Enrichments(db)  # labels, policy flags, which enricher ran where
        self.photo_meta = PhotoMetaTable(db)  # capture time, camera, GPS, place (photo_meta.py)
        self.photo_texts = PhotoTextsTable(db)  # keywords, place names, OCR words + FTS5 (photo_texts.py)
        self.duplicates = DuplicateReads(db)  # files, sizes, thumbnails for the duplicate finder
        self._moved = False  # this transaction bumped vectors_gen (pause_point holds only such writes)
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
    def transaction(self) -> Iterator[None]:
        """One write transaction (BEGIN IMMEDIATE): every call made inside commits together or not at all.

        A full disk (at any statement or at COMMIT) rolls it back and is a StorageError: one line, the
        catalog as it was before the transaction."""
        try:
            self._db.execute("BEGIN IMMEDIATE")
            self._moved = False
            try:
                yield
                if self._moved:
                    pause_point("before-commit")
                self._db.execute("COMMIT")
            except BaseException:
                if self._db.in_transaction:  # SQLite may have rolled back already (SQLITE_FULL can)
                    with suppress(sqlite3.Error):
                        self._db.execute("ROLLBACK")
                raise
        except sqlite3.Error as exc:
            if disk_full(exc, self.path):
                # the file's name, not its path: the message may go out over HTTP (507)
                raise storage_error(f"the catalog {self.path.name}", exc, self.path) from exc
            raise
        if self._moved:
            pause_point("after-commit")

    # -- the file ---------------------------------------------------------------------------------
    def integrity_ok(self) -> bool:
        """SQLite's quick check of the file (``pixsearch doctor``)."""
        return bool(self._db.execute("PRAGMA quick_check").fetchone()[0] == "ok")

    def checkpoint(self, mode: Literal["PASSIVE", "TRUNCATE"] = "PASSIVE") -> None:
        """Fold the WAL into the database file (TRUNCATE also empties the WAL: a catalog about to be
        copied is then one file). Raises sqlite3.Error when readers keep it from finishing."""
        if mode not in ("PASSIVE", "TRUNCATE"):
            raise ValueError(f"checkpoint mode {mode!r}")
        self._db.execute(f"PRAGMA wal_checkpoint({mode})")

    def replace_content(self, source: Path) -> None:
        """Overwrite this catalog with the catalog file at ``source``, as one SQLite backup: readers see
        the old content or the new, never a mix (``reindex`` swaps its rebuilt catalog in this way).

        The roots stay this catalog's (copied into ``source`` first, ids kept): they are the user's
        folders, not content, and the rebuild indexed its paths one file at a time."""
        src = sqlite3.connect(str(source), isolation_level=None)
        try:
            src.execute("BEGIN IMMEDIATE")
            src.execute("DELETE FROM roots")
            roots = self._db.execute("SELECT id, path FROM roots").fetchall()
            src.executemany("INSERT INTO roots(id, path) VALUES (?, ?)", roots)
            src.execute("COMMIT")
            src.backup(self._db)
        finally:
            src.close()
        pause_point("after-swap")

    def connection_for_tests(self) -> sqlite3.Connection:
        """The raw connection, for tests and benchmarks that inspect or damage tables directly; the
        package itself goes through the named methods."""
        return self._db

    # -- meta -------------------------------------------------------------------------------------
    def get_meta(self, key: str) -> str | None:
        row = self._db.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return None if row is None else str(row[0])

    def meta_values(self, keys: Sequence[str]) -> dict[str, str]:
        """The recorded values of ``keys`` (absent keys left out), read in one statement."""
        q = ",".join("?" * len(keys))
        return dict(self._db.execute(f"SELECT key, value FROM meta WHERE key IN ({q})", tuple(keys)))

    def set_meta(self, key: str, value: str) -> None:
        self._db.execute("INSERT OR REPLACE INTO meta(key, value) VALUES (?, ?)", (key, value))

    def delete_meta(self, key: str) -> None:
        self._db.execute("DELETE FROM meta WHERE key = ?", (key,))

    @property
    def catalog_id(self) -> str:
        """Identity of this catalog's content lineage (changes when ``reindex`` swaps in a new one)."""
        return self.get_meta("catalog_id") or ""

    @contextmanager
    def snapshot(self) -> Iterator[None]:
        """Several SELECTs that must see one committed state (a writer may commit between them)."""
        if self._db.in_transaction:
            yield
            return
        self._db.execute("BEGIN")
        try:
            yield
        finally:
            self._db.execute("COMMIT")

    def bump_generation(self) -> int:
        """Called inside every write transaction that changes vectors; index files record the value."""
        gen = int(self.get_meta("vectors_gen") or 0) + 1
        self.set_meta("vectors_gen", str(gen))
        self._moved = True
        return gen

    # -- paths and images -------------------------------------------------------------------------
    # Paths go in through ``to_sql`` and come out through ``from_sql`` (``pathnames.py``): a name that is
    # not UTF-8 is a BLOB of its bytes, and Python gets back the exact str that names the file.
    def get_path(self, path: str) -> PathRow | None:
        row = self._db.execute(
            "SELECT path, image_id, size, mtime_ns FROM paths WHERE path = ?", (to_sql(path),)
        ).fetchone()
        return None if row is None else PathRow(from_sql(row[0]), *row[1:])

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
            return self.all_paths()
        return [p for p, _ in self._under(prefix)]

    def ids_under(self, prefix: str) -> set[int]:
        """Photos with a file below the folder ``prefix`` (ending in "/"), as ``paths_under`` finds them."""
        return {i for _, i in self._under(prefix)}

    def _under(self, prefix: str) -> list[tuple[str, int]]:
        out: list[tuple[str, int]] = []
        for low, high in prefix_ranges(prefix):  # the TEXT paths, then those stored as bytes
            sql, args = "SELECT path, image_id FROM paths WHERE path >= ?", [low]
            if high is not None:
                sql, args = sql + " AND path < ?", [low, high]
            rows = ((from_sql(p), int(i)) for p, i in self._db.execute(sql, args))
            out += [(p, i) for p, i in rows if p.startswith(prefix)]
        return out

    def image_id_for_hash(self, digest: str) -> int | None:
        row = self._db.execute("SELECT id FROM images WHERE hash = ?", (digest,)).fetchone()
        return None if row is None else int(row[0])

    def add_image(
        self, digest: str, width: int, height: int, thumbnail: bytes | None, vector: np.ndarray
    ) -> int:
        cur = self._db.execute(
            "INSERT INTO images(hash, width, height, added_at, thumbnail, vector) VALUES (?, ?, ?, ?, ?, ?)",
            (digest, width, height, time.time(), thumbnail, to_blob(vector)),
        )
        return int(cur.lastrowid or 0)

    def set_path(self, path: str, image_id: int, size: int, mtime_ns: int) -> None:
        self._db.execute(
            "INSERT OR REPLACE INTO paths(path, image_id, size, mtime_ns) VALUES (?, ?, ?, ?)",
            (to_sql(path), image_id, size, mtime_ns),
        )

    def remove_path(self, path: str) -> bool:
        return self._db.execute("DELETE FROM paths WHERE path = ?", (to_sql(path),)).rowcount > 0

    def delete_orphans(self) -> tuple[list[int], list[int]]:
        """Drop images no path points at; returns (image ids, caption ids) removed, for the indexes."""
        ids = [
            r[0]
            for r in self._db.execute("SELECT id FROM images WHERE id NOT IN (SELECT image_id FROM paths)")
        ]
        if not ids:
            return [], []
        cap = [r[0] for r in self._in("SELECT id FROM captions WHERE image_id IN ({})", ids)]
        for s in range(0, len(ids), 900):  # chunked: SQLite limits bound parameters per statement
            chunk = ids[s : s + 900]
            self._db.execute(f"DELETE FROM images WHERE id IN ({','.join('?' * len(chunk))})", chunk)
        return ids, cap

    def orphan_count(self) -> int:
        """Images no path points at: every write drops them in its own transaction (delete_orphans), so
        any found later is damage (doctor reports it)."""
        sql = "SELECT COUNT(*) FROM images WHERE id NOT IN (SELECT image_id FROM paths)"
        return int(self._db.execute(sql).fetchone()[0])

    def has_image(self, image_id: int) -> bool:
        return self._db.execute("SELECT 1 FROM images WHERE id = ?", (image_id,)).fetchone() is not None

    def added_at(self, image_id: int) -> float | None:
        """When the photo was first indexed (Unix time); None for an unknown id."""
        row = self._db.execute("SELECT added_at FROM images WHERE id = ?", (image_id,)).fetchone()
        return None if row is None else float(row[0])

    def thumbnails(self, image_ids: Sequence[int]) -> dict[int, bytes | None]:
        """Image id -> stored thumbnail (None when it has none) for the known ids among ``image_ids``."""
        rows = self._in("SELECT id, thumbnail FROM images WHERE id IN ({})", image_ids)
        return {int(i): t for i, t in rows}

    def image_paths(self, image_id: int) -> list[PathRow]:
        """Every path the photo is indexed under, by path."""
        rows = self._db.execute(
            "SELECT path, image_id, size, mtime_ns FROM paths WHERE image_id = ? ORDER BY path", (image_id,)
        )
        return [PathRow(from_sql(r[0]), *r[1:]) for r in rows]

    def first_paths(self, image_ids: Sequence[int]) -> dict[int, str]:
        """Image id -> its first path in path order (where to read the photo again), for indexed ids."""
        sql = "SELECT image_id, MIN(path) FROM paths WHERE image_id IN ({}) GROUP BY image_id"
        return {int(i): from_sql(p) for i, p in self._in(sql, image_ids)}

    def thumbnail(self, image_id: int) -> bytes | None:
        """The stored JPEG thumbnail (<= 256 px), for the REST API / web page and for ``reindex`` of
        photos whose file cannot be read any more; None for an unknown id."""
        row = self._db.execute("SELECT thumbnail FROM images WHERE id = ?", (image_id,)).fetchone()
        return None if row is None or row[0] is None else bytes(row[0])

    # -- bulk reads for the vector indexes --------------------------------------------------------
    def image_vectors(self, dim: int, ids: Sequence[int] | None = None) -> tuple[np.ndarray, np.ndarray]:
        if ids is None:
            rows = self._db.execute("SELECT id, vector FROM images ORDER BY id").fetchall()
        else:
            rows = self._in("SELECT id, vector FROM images WHERE id IN ({})", ids)
        return np.array([r[0] for r in rows], dtype=np.int64), from_blobs([r[1] for r in rows], dim)

    def image_ids(self) -> np.ndarray:
        return np.array([r[0] for r in self._db.execute("SELECT id FROM images")], dtype=np.int64)

    # -- reads for results ------------------------------------------------------------------------
    def images(self, ids: Sequence[int]) -> dict[int, ImageRow]:
        with self.snapshot():
            return self._images(ids)

    def _images(self, ids: Sequence[int]) -> dict[int, ImageRow]:
        base = {r[0]: r for r in self._in("SELECT id, hash, width, height FROM images WHERE id IN ({})", ids)}
        paths: dict[int, list[str]] = {i: [] for i in base}
        for p, i in self._in("SELECT path, image_id FROM paths WHERE image_id IN ({}) ORDER BY path", ids):
            paths[i].append(from_sql(p))
        caps: dict[int, list[CaptionRow]] = {i: [] for i in base}
        for c in self._in(
            "SELECT id, image_id, text, source FROM captions WHERE image_id IN ({}) ORDER BY id", ids
        ):
            caps[c[1]].append(CaptionRow(*c))
        return {i: ImageRow(i, r[1], r[2], r[3], tuple(paths[i]), tuple(caps[i])) for i, r in base.items()}

    def image_hash(self, image_id: int) -> str | None:
        """The content hash the photo was indexed with (``media.content_hash``); None for an unknown id."""
        row = self._db.execute("SELECT hash FROM images WHERE id = ?", (image_id,)).fetchone()
        return None if row is None else str(row[0])

    def human_captions_by_path(self) -> list[tuple[str, str, str]]:
        return [(from_sql(p), t, s) for p, t, s in super().human_captions_by_path()]

    # -- roots: the folders the user indexed ------------------------------------------------------
    def add_root(self, folder: str) -> int:
        """Record ``folder`` (absolute) as a folder the user indexed, once; returns its id. Kept for the
        REST API, which shows a path relative to its root and the root's id, never a server path."""
        self._db.execute("INSERT OR IGNORE INTO roots(path) VALUES (?)", (to_sql(folder),))
        row = self._db.execute("SELECT id FROM roots WHERE path = ?", (to_sql(folder),)).fetchone()
        return int(row[0])

    def roots(self) -> dict[int, str]:
        """Root id -> folder, for every folder ever indexed (ids are never reused)."""
        return {int(i): from_sql(p) for i, p in self._db.execute("SELECT id, path FROM roots ORDER BY id")}

    def image_for_path(self, path: str) -> int | None:
        row = self.get_path(path)
        return None if row is None else row.image_id

    def all_paths(self, ordered: bool = False) -> list[str]:
        """Every indexed path; ``ordered``: sorted as SQLite sorts them (byte order; names that are not
        UTF-8 after all others)."""
        sql = "SELECT path FROM paths ORDER BY path" if ordered else "SELECT path FROM paths"
        return [from_sql(r[0]) for r in self._db.execute(sql)]

    def image_ids_by_name(self) -> dict[str, list[int]]:
        """File base name -> image ids, for attaching a captions CSV that names files, not paths."""
        out: dict[str, list[int]] = {}
        for p, i in self._db.execute("SELECT path, image_id FROM paths"):
            out.setdefault(Path(from_sql(p)).name, []).append(int(i))
        return out

    def is_empty(self) -> bool:
        """Cheap (no COUNT over a big table): this runs on every open."""
        return self._db.execute("SELECT 1 FROM images LIMIT 1").fetchone() is None

    def counts(self) -> dict[str, int]:
        """Images, paths and captions by source, from one statement: one snapshot, so a batch committed
        meanwhile is counted whole or not at all (readers see whole batches only)."""
        row = self._db.execute(
            "SELECT (SELECT COUNT(*) FROM images), (SELECT COUNT(*) FROM paths),"
            " (SELECT COUNT(*) FROM captions),"
            " (SELECT COUNT(*) FROM captions WHERE source = 'human'),"
            " (SELECT COUNT(*) FROM captions WHERE source = 'generated')"
        ).fetchone()
        keys = ("images", "paths", "captions", "human_captions", "generated_captions")
        return {k: int(v) for k, v in zip(keys, row, strict=True)}
