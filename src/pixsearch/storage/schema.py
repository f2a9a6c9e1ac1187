"""The catalog's SQLite schema: the migration scripts, and opening a catalog file at the current version.

Why apart from ``catalog.py``: the scripts are history (append only, never edited: every released catalog
replays them from its version), the queries are not. Schema changes are one-step migrations keyed by
``PRAGMA user_version``; a catalog with a newer schema than ours is refused, never touched.
"""

from __future__ import annotations

import logging
import sqlite3
from collections.abc import Iterator
from pathlib import Path

from pixsearch.errors import CatalogError, SchemaVersionError
from pixsearch.storage.failures import disk_full, storage_error

__all__ = ["MIGRATIONS", "SCHEMA_VERSION", "connect"]

log = logging.getLogger("pixsearch.storage.schema")

_V1 = """
CREATE TABLE meta(key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE images(
    id INTEGER PRIMARY KEY,
    hash TEXT NOT NULL UNIQUE,
    width INTEGER NOT NULL,
    height INTEGER NOT NULL,
    added_at REAL NOT NULL,
    thumbnail BLOB,
    vector BLOB NOT NULL
);
CREATE TABLE paths(
    path TEXT PRIMARY KEY,
    image_id INTEGER NOT NULL REFERENCES images(id) ON DELETE CASCADE,
    size INTEGER NOT NULL,
    mtime_ns INTEGER NOT NULL
);
CREATE INDEX paths_image ON paths(image_id);
CREATE TABLE captions(
    id INTEGER PRIMARY KEY,
    image_id INTEGER NOT NULL REFERENCES images(id) ON DELETE CASCADE,
    text TEXT NOT NULL,
    source TEXT NOT NULL CHECK (source IN ('human', 'generated')),
    embedding BLOB NOT NULL,
    joint BLOB,
    UNIQUE(image_id, text)
);
CREATE INDEX captions_image ON captions(image_id);
CREATE VIRTUAL TABLE captions_fts USING fts5(
    text, content='captions', content_rowid='id', tokenize='porter unicode61'
);
CREATE TRIGGER captions_ai AFTER INSERT ON captions BEGIN
    INSERT INTO captions_fts(rowid, text) VALUES (new.id, new.text);
END;
CREATE TRIGGER captions_ad AFTER DELETE ON captions BEGIN
    INSERT INTO captions_fts(captions_fts, rowid, text) VALUES ('delete', old.id, old.text);
END;
"""

# v2: what photos get besides human captions. ``captions.model`` names the generator of a generated
# caption (regenerated when it changes); ``labels`` are ImageNet classes above a calibrated confidence;
# ``flags`` are the content policy's verdict per photo with its evidence (recomputed when ``policy``, the
# fingerprint of the policy and its models, changes).
_V2 = """
ALTER TABLE captions ADD COLUMN model TEXT;
CREATE TABLE labels(
    image_id INTEGER NOT NULL REFERENCES images(id) ON DELETE CASCADE,
    label TEXT NOT NULL,
    score REAL NOT NULL,
    model TEXT NOT NULL,
    PRIMARY KEY (image_id, label)
);
CREATE TABLE flags(
    image_id INTEGER PRIMARY KEY REFERENCES images(id) ON DELETE CASCADE,
    flagged INTEGER NOT NULL,
    evidence TEXT NOT NULL,
    policy TEXT NOT NULL
);
"""

# v3 (enrichers, enrich.py): ``labels`` gets a stable integer id and a ``words`` column (the class's names
# and hypernyms, e.g. "golden retriever dog") indexed by FTS5 so labels are searchable as words (v2's
# labels table was never written by a release, so it is recreated); ``enrichments`` records which
# enricher ran on which photo at which fingerprint (an image that got no label above the threshold is
# still done; a changed model makes it stale).
_V3 = """
DROP TABLE labels;
CREATE TABLE labels(
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    image_id INTEGER NOT NULL REFERENCES images(id) ON DELETE CASCADE,
    label TEXT NOT NULL,
    words TEXT NOT NULL,
    score REAL NOT NULL,
    model TEXT NOT NULL,
    UNIQUE(image_id, label)
);
CREATE INDEX labels_image ON labels(image_id);
CREATE VIRTUAL TABLE labels_fts USING fts5(
    words, content='labels', content_rowid='id', tokenize='porter unicode61'
);
CREATE TRIGGER labels_ai AFTER INSERT ON labels BEGIN
    INSERT INTO labels_fts(rowid, words) VALUES (new.id, new.words);
END;
CREATE TRIGGER labels_ad AFTER DELETE ON labels BEGIN
    INSERT INTO labels_fts(labels_fts, rowid, words) VALUES ('delete', old.id, old.words);
END;
CREATE TABLE enrichments(
    image_id INTEGER NOT NULL REFERENCES images(id) ON DELETE CASCADE,
    name TEXT NOT NULL,
    fingerprint TEXT NOT NULL,
    PRIMARY KEY (image_id, name)
) WITHOUT ROWID;
CREATE INDEX enrichments_name ON enrichments(name, fingerprint);
"""

# v4: ids are never reused. Without AUTOINCREMENT SQLite hands the highest id out again after it was
# deleted, but the vector index files (a cache keyed by id) assume a key always means the same content.
# The tables are rebuilt (SQLite cannot add AUTOINCREMENT in place) with foreign keys off (see _migrate),
# ids kept, so index files, FTS rowids and rows that point at images stay valid. ``catalog_id`` names this
# catalog's lifetime: ``reindex`` swaps in a new one, and vector files stamped with another id are rebuilt.
_V4 = """
CREATE TABLE images_v4(
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    hash TEXT NOT NULL UNIQUE,
    width INTEGER NOT NULL,
    height INTEGER NOT NULL,
    added_at REAL NOT NULL,
    thumbnail BLOB,
    vector BLOB NOT NULL
);
INSERT INTO images_v4(id, hash, width, height, added_at, thumbnail, vector)
    SELECT id, hash, width, height, added_at, thumbnail, vector FROM images;
DROP TABLE images;
ALTER TABLE images_v4 RENAME TO images;
CREATE TABLE captions_v4(
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    image_id INTEGER NOT NULL REFERENCES images(id) ON DELETE CASCADE,
    text TEXT NOT NULL,
    source TEXT NOT NULL CHECK (source IN ('human', 'generated')),
    embedding BLOB NOT NULL,
    joint BLOB,
    model TEXT,
    UNIQUE(image_id, text)
);
INSERT INTO captions_v4(id, image_id, text, source, embedding, joint, model)
    SELECT id, image_id, text, source, embedding, joint, model FROM captions;
DROP TABLE captions;
ALTER TABLE captions_v4 RENAME TO captions;
CREATE INDEX captions_image ON captions(image_id);
CREATE TRIGGER captions_ai AFTER INSERT ON captions BEGIN
    INSERT INTO captions_fts(rowid, text) VALUES (new.id, new.text);
END;
CREATE TRIGGER captions_ad AFTER DELETE ON captions BEGIN
    INSERT INTO captions_fts(captions_fts, rowid, text) VALUES ('delete', old.id, old.text);
END;
INSERT OR IGNORE INTO meta(key, value) VALUES ('catalog_id', lower(hex(randomblob(16))));
"""

# v5: ``roots`` are the folders the user indexed (a file given alone: its folder), so the REST API can show
# a path relative to its root plus the root's id, never a server path. Catalogs migrated from v4 start
# with none (their paths show as bare names over HTTP) until the next ``index`` records its roots. From
# v5 on, ``paths.path`` and ``roots.path`` hold a BLOB of the name's bytes when it is not UTF-8
# (``pathnames.py``): TEXT affinity keeps a BLOB as it is, so the column itself is unchanged.
_V5 = """
CREATE TABLE roots(
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    path TEXT NOT NULL UNIQUE
);
"""

# v6: what photographers search by besides the pixels. ``photo_meta`` holds one row per photo, read from its
# file at index time: capture time (``taken_at`` as written, ISO 8601 with its offset where the file gives
# one; ``taken_ts`` the same instant as UTC epoch seconds for filters and sort; ``taken_source`` says
# whether it came from EXIF or only from the file's modification time), camera, lens, GPS position and the
# offline place name, orientation. ``photo_texts`` holds words that belong to a photo but are not
# captions: text read in the photo (``kind`` 'ocr', with the recogniser's confidence) and keywords the
# user already wrote in IPTC/XMP (``kind`` 'keyword'), and the place name of the photo's GPS position
# (``kind`` 'place', beside ``photo_meta.place``: "paris" then finds it through the same BM25 path as a
# keyword); FTS5 makes them searchable as words. Catalogs
# migrated from v5 have no rows until the next ``index`` fills them (no re-encoding).
_V6 = """
CREATE TABLE photo_meta(
    image_id INTEGER PRIMARY KEY REFERENCES images(id) ON DELETE CASCADE,
    taken_at TEXT,
    taken_ts REAL,
    taken_source TEXT NOT NULL CHECK (taken_source IN ('exif', 'file', 'none')),
    camera_make TEXT,
    camera_model TEXT,
    lens TEXT,
    lat REAL,
    lon REAL,
    place TEXT,
    country TEXT,
    orientation INTEGER,
    extractor TEXT NOT NULL
);
CREATE INDEX photo_meta_taken ON photo_meta(taken_ts);
CREATE INDEX photo_meta_position ON photo_meta(lat, lon) WHERE lat IS NOT NULL;
CREATE TABLE photo_texts(
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    image_id INTEGER NOT NULL REFERENCES images(id) ON DELETE CASCADE,
    kind TEXT NOT NULL CHECK (kind IN ('ocr', 'keyword', 'place')),
    text TEXT NOT NULL,
    confidence REAL,
    UNIQUE(image_id, kind, text)
);
CREATE INDEX photo_texts_image ON photo_texts(image_id);
CREATE VIRTUAL TABLE photo_texts_fts USING fts5(
    text, content='photo_texts', content_rowid='id', tokenize='porter unicode61'
);
CREATE TRIGGER photo_texts_ai AFTER INSERT ON photo_texts BEGIN
    INSERT INTO photo_texts_fts(rowid, text) VALUES (new.id, new.text);
END;
CREATE TRIGGER photo_texts_ad AFTER DELETE ON photo_texts BEGIN
    INSERT INTO photo_texts_fts(photo_texts_fts, rowid, text) VALUES ('delete', old.id, old.text);
END;
"""

# MIGRATIONS[v] is the SQL script that upgrades a catalog at user_version v to v + 1. Append only.
MIGRATIONS: dict[int, str] = {0: _V1, 1: _V2, 2: _V3, 3: _V4, 4: _V5, 5: _V6}
SCHEMA_VERSION = len(MIGRATIONS)


def connect(path: Path, readonly: bool = False) -> sqlite3.Connection:
    """A connection to the catalog file at ``path``, migrated to ``SCHEMA_VERSION`` (created if missing,
    unless ``readonly``). A newer schema is a SchemaVersionError; an unreadable file a CatalogError; a
    disk too full to create the catalog a StorageError.

    On a full disk SQLite cannot make the WAL's shared-memory file, and every open fails with "disk I/O
    error"; reads must still work there, so an existing catalog is then opened in exclusive locking mode
    (the WAL index lives in this process's memory: other processes wait until it closes)."""
    try:
        try:
            db = _open(path, readonly)
        except sqlite3.OperationalError as exc:
            if readonly or not path.is_file() or not disk_full(exc, path):
                raise
            db = _open(path, readonly, exclusive=True)
            log.warning("warning: the disk is full; the catalog is open for this process alone")
        version = db.execute("PRAGMA user_version").fetchone()[0]
    except OSError as exc:  # making the library's folder
        raise storage_error(f"the library folder {path.parent}", exc, path.parent) from exc
    except sqlite3.DatabaseError as exc:
        if disk_full(exc, path):
            raise storage_error(f"the catalog {path}", exc, path) from exc
        raise CatalogError(f"{path}: not a pixsearch catalog or corrupt ({exc})") from exc
    try:
        if version > SCHEMA_VERSION:
            raise SchemaVersionError(
                f"{path} was written by a newer pixsearch (schema {version}, "
                f"this one knows {SCHEMA_VERSION}); "
                "upgrade pixsearch"
            )
        if version < SCHEMA_VERSION:
            if readonly:
                raise CatalogError(f"{path}: schema {version} needs migrating; open it writable once")
            _migrate(db, path, version)
    except BaseException:
        db.close()
        raise
    return db


def _open(path: Path, readonly: bool, exclusive: bool = False) -> sqlite3.Connection:
    if readonly:
        db = sqlite3.connect(f"file:{path}?mode=ro", uri=True, isolation_level=None)
    else:
        path.parent.mkdir(parents=True, exist_ok=True)
        db = sqlite3.connect(str(path), isolation_level=None, timeout=30)
    try:
        if exclusive:  # before the first read, or SQLite reaches for the shared-memory file anyway
            db.execute("PRAGMA locking_mode=EXCLUSIVE")
        if not readonly:
            db.execute("PRAGMA journal_mode=WAL")
            db.execute("PRAGMA synchronous=NORMAL")
        db.execute("PRAGMA foreign_keys=ON")
        db.execute("PRAGMA user_version").fetchone()
    except BaseException:
        db.close()
        raise
    return db


def _migrate(db: sqlite3.Connection, path: Path, version: int) -> None:
    # Each step is one BEGIN IMMEDIATE transaction run statement by statement (executescript would
    # commit early): a failed step rolls back whole and the catalog stays at the last good version, and
    # the version is re-read under the write lock, so two processes opening an old catalog at once
    # migrate it once. Foreign keys are off while tables are rebuilt (a DROP would cascade otherwise).
    db.execute("PRAGMA foreign_keys=OFF")
    try:
        while version < SCHEMA_VERSION:
            db.execute("BEGIN IMMEDIATE")
            try:
                version = int(db.execute("PRAGMA user_version").fetchone()[0])
                if version < SCHEMA_VERSION:
                    for stmt in _statements(MIGRATIONS[version]):
                        db.execute(stmt)
                    bad = db.execute("PRAGMA foreign_key_check").fetchone()
                    if bad is not None:
                        raise sqlite3.IntegrityError(f"foreign key check failed on {bad[0]}")
                    db.execute(f"PRAGMA user_version={version + 1}")
                    version += 1
                db.execute("COMMIT")
            except sqlite3.Error as exc:
                if db.in_transaction:
                    db.execute("ROLLBACK")
                if disk_full(exc, path):
                    raise storage_error(f"the catalog {path} (schema {version + 1})", exc, path) from exc
                why = f"migration to schema {version + 1} failed ({exc})"
                raise CatalogError(f"{path}: {why}") from exc
    finally:
        db.execute("PRAGMA foreign_keys=ON")


def _statements(script: str) -> Iterator[str]:
    """Split a migration script into statements (SQLite's own completeness test keeps triggers whole)."""
    buf = ""
    for line in script.splitlines(keepends=True):
        buf += line
        if sqlite3.complete_statement(buf):
            yield buf.strip()
            buf = ""
    if buf.strip():
        yield buf.strip()
