"""The catalog's schema: a new file is current, every older version migrates without losing a row, a newer
one is refused untouched. Old catalogs are built with the DDL in ``MIGRATIONS`` itself (append only: the
scripts up to version ``v`` are exactly what a release at ``v`` wrote)."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from pixsearch.errors import CatalogError, SchemaVersionError, StorageError
from pixsearch.storage.schema import MIGRATIONS, SCHEMA_VERSION, connect

OLD_VERSIONS = list(range(1, SCHEMA_VERSION))


def _old_catalog(path: Path, version: int) -> None:
    """A catalog as a release at ``version`` left it, with rows in every table that version has."""
    db = sqlite3.connect(path)
    for v in range(version):
        db.executescript(MIGRATIONS[v])
    db.execute(f"PRAGMA user_version={version}")
    with db:
        db.execute("INSERT INTO meta(key, value) VALUES ('encoder', 'lite0-minilm-v1')")
        for i in (1, 2, 3):
            db.execute(
                "INSERT INTO images(id, hash, width, height, added_at, thumbnail, vector) "
                "VALUES (?, ?, 640, 480, 1.5, ?, ?)",
                (i, f"h{i}", b"thumb%d" % i, bytes([i]) * 8),
            )
            db.execute("INSERT INTO paths VALUES (?, ?, 100, 7)", (f"/p/{i}.jpg", i))
        caps = [(1, "a dog runs on the grass", "human"), (2, "two children in the water", "human")]
        caps += [(3, "a red car", "generated")]
        for n, (iid, text, source) in enumerate(caps, start=1):
            db.execute(
                "INSERT INTO captions(id, image_id, text, source, embedding, joint) "
                "VALUES (?, ?, ?, ?, ?, ?)",
                (n, iid, text, source, b"e" * 4, b"j" * 4 if iid != 3 else None),
            )
        if version >= 2:
            db.execute("UPDATE captions SET model = 'lite0-cap-v1' WHERE source = 'generated'")
            db.execute("INSERT INTO flags VALUES (2, 1, '{\"faces\": 1}', 'policy-x')")
        if version >= 3:
            db.execute(
                "INSERT INTO labels(image_id, label, words, score, model) "
                "VALUES (1, 'n02099601', 'golden retriever dog', 0.9, 'labels-v1')"
            )
            db.execute("INSERT INTO enrichments VALUES (1, 'labels', 'fp1')")
    db.close()


def _rows(db: sqlite3.Connection, version: int) -> dict[str, list[tuple]]:
    out = {
        "meta": db.execute("SELECT key, value FROM meta WHERE key != 'catalog_id' ORDER BY key").fetchall(),
        "images": db.execute(
            "SELECT id, hash, width, height, added_at, thumbnail, vector FROM images"
        ).fetchall(),
        "paths": db.execute("SELECT path, image_id, size, mtime_ns FROM paths ORDER BY path").fetchall(),
        "captions": db.execute(
            "SELECT id, image_id, text, source, embedding, joint FROM captions ORDER BY id"
        ).fetchall(),
    }
    if version >= 2:
        out["flags"] = db.execute("SELECT * FROM flags").fetchall()
        out["caption_models"] = db.execute("SELECT id, model FROM captions ORDER BY id").fetchall()
    if version >= 3:
        out["labels"] = db.execute("SELECT image_id, label, words, score, model FROM labels").fetchall()
        out["enrichments"] = db.execute("SELECT * FROM enrichments").fetchall()
    return out


def _version(path: Path) -> int:
    db = sqlite3.connect(path)
    try:
        return int(db.execute("PRAGMA user_version").fetchone()[0])
    finally:
        db.close()


def test_migrations_are_one_step_each_from_zero() -> None:
    assert sorted(MIGRATIONS) == list(range(SCHEMA_VERSION)) and SCHEMA_VERSION >= 4


def test_a_new_catalog_is_current(tmp_path: Path) -> None:
    db = connect(tmp_path / "sub" / "catalog.db")  # the folder is created
    try:
        assert db.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
        assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        assert db.execute("PRAGMA foreign_keys").fetchone()[0] == 1
        tables = {r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
        want = {"meta", "images", "paths", "captions", "captions_fts", "labels", "flags", "enrichments"}
        assert want <= tables
        assert len(db.execute("SELECT value FROM meta WHERE key = 'catalog_id'").fetchone()[0]) == 32
    finally:
        db.close()


def test_a_new_catalog_twice_is_the_same_catalog(tmp_path: Path) -> None:
    path = tmp_path / "catalog.db"
    first = connect(path)
    cid = first.execute("SELECT value FROM meta WHERE key = 'catalog_id'").fetchone()[0]
    first.close()
    again = connect(path)
    try:
        assert again.execute("SELECT value FROM meta WHERE key = 'catalog_id'").fetchone()[0] == cid
    finally:
        again.close()


@pytest.mark.parametrize("version", OLD_VERSIONS)
def test_an_old_catalog_migrates_and_keeps_its_rows(tmp_path: Path, version: int) -> None:
    path = tmp_path / "catalog.db"
    _old_catalog(path, version)
    before = sqlite3.connect(path)
    want = _rows(before, version)
    before.close()
    db = connect(path)
    try:
        assert db.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
        assert _rows(db, version) == want
        assert db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        assert db.execute("PRAGMA foreign_key_check").fetchall() == []
        hits = db.execute("SELECT rowid FROM captions_fts WHERE captions_fts MATCH 'children'").fetchall()
        assert hits == [(2,)]  # the full-text index still points at the same caption ids
        assert db.execute("SELECT value FROM meta WHERE key = 'catalog_id'").fetchone() is not None
    finally:
        db.close()


@pytest.mark.parametrize("version", OLD_VERSIONS)
def test_migrated_catalog_never_reuses_a_deleted_id(tmp_path: Path, version: int) -> None:
    """Vector index files are keyed by id: after migrating, a deleted highest id stays retired."""
    path = tmp_path / "catalog.db"
    _old_catalog(path, version)
    db = connect(path)
    try:
        db.execute("DELETE FROM images WHERE id = 3")
        assert db.execute("SELECT COUNT(*) FROM paths").fetchone()[0] == 2  # cascades still work
        db.execute("INSERT INTO images(hash, width, height, added_at, vector) VALUES ('new', 1, 1, 0, x'00')")
        assert db.execute("SELECT id FROM images WHERE hash = 'new'").fetchone()[0] == 4
        db.execute("DELETE FROM captions WHERE id = 3")
        db.execute("INSERT INTO captions(image_id, text, source, embedding) VALUES (1, 'x', 'human', x'00')")
        assert db.execute("SELECT id FROM captions WHERE text = 'x'").fetchone()[0] == 4
    finally:
        db.close()


def test_a_failed_migration_rolls_back_to_the_last_good_version(tmp_path: Path) -> None:
    path = tmp_path / "catalog.db"
    _old_catalog(path, SCHEMA_VERSION - 1)
    raw = sqlite3.connect(path)  # a caption whose image is gone: the rebuilt tables fail the key check
    raw.execute(
        "INSERT INTO captions(image_id, text, source, embedding) VALUES (99, 'orphan', 'human', x'00')"
    )
    raw.commit()
    raw.close()
    with pytest.raises(CatalogError, match=f"migration to schema {SCHEMA_VERSION} failed") as exc:
        connect(path)
    assert "\n" not in str(exc.value)
    assert _version(path) == SCHEMA_VERSION - 1
    raw = sqlite3.connect(path)
    try:
        assert raw.execute("SELECT COUNT(*) FROM captions").fetchone()[0] == 4  # nothing half-migrated
    finally:
        raw.close()


def test_a_newer_catalog_is_refused_untouched(tmp_path: Path) -> None:
    path = tmp_path / "catalog.db"
    connect(path).close()
    raw = sqlite3.connect(path)
    raw.execute(f"PRAGMA user_version={SCHEMA_VERSION + 1}")
    raw.execute("INSERT INTO meta(key, value) VALUES ('from', 'the future')")
    raw.commit()
    raw.close()
    for readonly in (False, True):
        with pytest.raises(SchemaVersionError) as exc:
            connect(path, readonly=readonly)
        msg = str(exc.value)
        assert f"schema {SCHEMA_VERSION + 1}" in msg and f"knows {SCHEMA_VERSION}" in msg
        assert "upgrade pixsearch" in msg and "\n" not in msg
    assert _version(path) == SCHEMA_VERSION + 1
    raw = sqlite3.connect(path)
    try:
        assert raw.execute("SELECT value FROM meta WHERE key = 'from'").fetchone() == ("the future",)
    finally:
        raw.close()


def test_readonly_open_neither_creates_nor_migrates(tmp_path: Path) -> None:
    with pytest.raises(CatalogError):
        connect(tmp_path / "missing.db", readonly=True)
    assert not (tmp_path / "missing.db").exists()
    path = tmp_path / "catalog.db"
    _old_catalog(path, 2)
    with pytest.raises(CatalogError, match="schema 2 needs migrating; open it writable once"):
        connect(path, readonly=True)
    assert _version(path) == 2


def test_a_file_that_is_not_a_catalog_is_a_catalog_error(tmp_path: Path) -> None:
    path = tmp_path / "catalog.db"
    path.write_bytes(b"this is not an SQLite file at all, just some text" * 100)
    with pytest.raises(CatalogError, match="not a pixsearch catalog or corrupt"):
        connect(path)


def test_v5_adds_roots_and_keeps_paths_as_they_were(tmp_path: Path) -> None:
    path = tmp_path / "catalog.db"
    _old_catalog(path, 4)
    db = connect(path)
    try:
        assert db.execute("SELECT COUNT(*) FROM roots").fetchone()[0] == 0  # learnt at the next index
        kinds = {r[0] for r in db.execute("SELECT typeof(path) FROM paths")}
        assert kinds == {"text"}
        db.execute("INSERT INTO roots(path) VALUES (?)", (b"/caf\xe9",))  # a name that is not UTF-8
        assert db.execute("SELECT typeof(path) FROM roots").fetchone()[0] == "blob"
    finally:
        db.close()


def test_v6_adds_photo_meta_and_texts_empty_until_the_next_index(tmp_path: Path) -> None:
    path = tmp_path / "catalog.db"
    _old_catalog(path, 5)
    db = connect(path)
    try:
        assert db.execute("SELECT COUNT(*) FROM photo_meta").fetchone()[0] == 0  # filled by the next index
        assert db.execute("SELECT COUNT(*) FROM photo_texts").fetchone()[0] == 0
        plan = db.execute(
            "EXPLAIN QUERY PLAN SELECT image_id FROM photo_meta WHERE lat BETWEEN 1 AND 2"
        ).fetchall()
        assert "photo_meta_position" in str(plan)  # the bounding box of ids_near uses an index
        for kind in ("keyword", "place", "ocr"):
            db.execute("INSERT INTO photo_texts(image_id, kind, text) VALUES (1, ?, 'Paris')", (kind,))
        with pytest.raises(sqlite3.IntegrityError):
            db.execute("INSERT INTO photo_texts(image_id, kind, text) VALUES (1, 'tag', 'x')")
        hits = db.execute(
            "SELECT COUNT(*) FROM photo_texts_fts WHERE photo_texts_fts MATCH 'paris'"
        ).fetchone()
        assert hits[0] == 3
    finally:
        db.close()


def test_a_full_disk_opens_an_existing_catalog_for_this_process_alone(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """With no room for the WAL's shared-memory file SQLite fails every open ("disk I/O error"): a read
    must still work, in exclusive locking mode; a catalog that does not exist yet is a StorageError."""
    import pixsearch.storage.failures as failures
    import pixsearch.storage.schema as schema

    path = tmp_path / "catalog.db"
    connect(path).close()
    real_open = schema._open
    calls: list[bool] = []

    def full_disk_open(p: Path, readonly: bool, exclusive: bool = False) -> sqlite3.Connection:
        calls.append(exclusive)
        if not exclusive:
            raise sqlite3.OperationalError("disk I/O error")
        return real_open(p, readonly, exclusive)

    monkeypatch.setattr(schema, "_open", full_disk_open)
    monkeypatch.setattr(failures, "no_space_on", lambda where, need=0: True)
    with caplog.at_level("WARNING"):
        db = connect(path)
    try:
        assert calls == [False, True]
        assert db.execute("PRAGMA locking_mode").fetchone()[0] == "exclusive"
        assert db.execute("SELECT COUNT(*) FROM images").fetchone()[0] == 0
    finally:
        db.close()
    assert "the disk is full; the catalog is open for this process alone" in caplog.text
    with pytest.raises(StorageError, match="No space left on device") as exc:
        connect(tmp_path / "new" / "catalog.db")
    assert "\n" not in str(exc.value)
