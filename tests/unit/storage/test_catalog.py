"""Catalog schema/migrations/FTS, paths that are not UTF-8, roots, a full disk, and settings parsing."""

from __future__ import annotations

import os
import sqlite3
from pathlib import Path

import numpy as np
import pytest

from pixsearch.config import FusionWeights, load_settings
from pixsearch.errors import CatalogError, ConfigError, SchemaVersionError, StorageError
from pixsearch.storage.catalog import SCHEMA_VERSION, Catalog, PathRow, fts_query


def _cat(tmp_path: Path) -> Catalog:
    return Catalog.open(tmp_path / "c.db")


def test_new_catalog_is_current_and_wal(tmp_path: Path) -> None:
    c = _cat(tmp_path)
    assert c.connection_for_tests().execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
    assert c.connection_for_tests().execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    c.close()
    c = _cat(tmp_path)  # reopening migrates nothing and keeps data
    assert c.counts()["images"] == 0


def test_newer_schema_and_garbage_are_refused(tmp_path: Path) -> None:
    db = sqlite3.connect(tmp_path / "c.db")
    db.execute(f"PRAGMA user_version={SCHEMA_VERSION + 1}")
    db.commit()
    db.close()
    with pytest.raises(SchemaVersionError, match="newer pixsearch"):
        _cat(tmp_path)
    (tmp_path / "g.db").write_bytes(b"this is not sqlite" * 100)
    with pytest.raises(CatalogError):
        Catalog.open(tmp_path / "g.db")


def test_images_paths_captions_fts_and_orphans(tmp_path: Path) -> None:
    c = _cat(tmp_path)
    v = np.ones(4, dtype=np.float32) / 2
    with c.transaction():
        a = c.add_image("h1", 10, 20, None, v)
        b = c.add_image("h2", 10, 20, None, v)
        c.set_path("/x/a.jpg", a, 1, 1)
        c.set_path("/x/b.jpg", b, 1, 1)
        e = np.zeros(3, dtype=np.float32)
        new = c.add_captions(
            a, [("Two dogs pull a sled", "human", e, None), ("Two dogs pull a sled", "human", e, None)]
        )
        assert len(new) == 1  # duplicate caption of the same image skipped
        c.add_captions(b, [("A cat sleeping", "generated", e, None)])
    hits = c.fts_search("dogs sled", 5)
    assert [h[1] for h in hits] == [a] and hits[0][2] > 0
    assert c.fts_search("dog", 5)[0][1] == a  # porter stemming
    assert c.fts_search('"); DROP TABLE images; --', 5) == []  # quoted, parameterised
    assert c.counts()["generated_captions"] == 1
    with c.transaction():
        c.remove_path("/x/a.jpg")
        imgs, caps = c.delete_orphans()
    assert imgs == [a] and len(caps) == 1
    assert c.fts_search("sled", 5) == []  # FTS follows deletes
    ids, vecs = c.image_vectors(4)
    assert ids.tolist() == [b] and np.allclose(vecs, v, atol=1e-3)


def test_transaction_rolls_back_on_error(tmp_path: Path) -> None:
    c = _cat(tmp_path)
    with pytest.raises(RuntimeError), c.transaction():
        c.add_image("h1", 1, 1, None, np.zeros(2))
        raise RuntimeError
    assert c.counts()["images"] == 0


def test_fts_query_quotes_words() -> None:
    assert fts_query('dog "AND" cat-NEAR') == '"dog" OR "cat" OR "near"'  # "and" is a stopword
    assert fts_query("  !!  ") == ""
    assert fts_query("The A") == '"the" OR "a"'  # only stopwords: keep them rather than match nothing


def test_settings_precedence(tmp_path: Path) -> None:
    cfg = tmp_path / "config.toml"
    cfg.write_text('threshold = 0.2\nmodel = "from-file"\n[weights]\ndense = 2.0\n')
    env = {
        "PIXSEARCH_CONFIG": str(cfg),
        "PIXSEARCH_MODEL": "from-env",
        "PIXSEARCH_LIBRARY": str(tmp_path / "L"),
    }
    s = load_settings(env)
    assert s.model == "from-env" and s.threshold == 0.2 and s.library == tmp_path / "L"
    assert s.weights == FusionWeights(dense=2.0)
    assert load_settings(env, model="flag", threshold=None).model == "flag"
    assert load_settings({}).library.name == "library"


@pytest.mark.parametrize(
    "toml", ["nonsense = 1", 'threshold = "high"', "[weights]\nbogus = 1", "[weights]\ndense = -1", "x = ["]
)
def test_bad_settings_are_config_errors(tmp_path: Path, toml: str) -> None:
    cfg = tmp_path / "config.toml"
    cfg.write_text(toml)
    with pytest.raises(ConfigError):
        load_settings({"PIXSEARCH_CONFIG": str(cfg)})


# -- names that are not UTF-8 -----------------------------------------------------------------------------
LATIN1 = os.fsdecode("/p/café/".encode("latin-1")) + os.fsdecode(b"caf\xe9.jpg")
SJIS = "/p/" + os.fsdecode("写真".encode("shift_jis") + b".jpg")
GARBAGE = "/p/" + os.fsdecode(b"\xff\xfe.jpg")
UTF8 = "/p/ok.jpg"


def test_paths_that_are_not_utf8_round_trip_exactly(tmp_path: Path) -> None:
    c = _cat(tmp_path)
    v = np.ones(4, dtype=np.float32) / 2
    with c.transaction():
        ids = {p: c.add_image(f"h{i}", 1, 1, None, v) for i, p in enumerate([LATIN1, SJIS, GARBAGE, UTF8])}
        for p, i in ids.items():
            c.set_path(p, i, 10, 20)
    assert sorted(c.all_paths()) == sorted(ids)  # the very str Python names the file with
    for p, i in ids.items():
        assert c.get_path(p) == PathRow(p, i, 10, 20) and c.image_for_path(p) == i
        assert [r.path for r in c.image_paths(i)] == [p] and c.first_paths([i]) == {i: p}
        assert c.images([i])[i].paths == (p,)
    assert sorted(c.paths_under("/p/")) == sorted(ids)  # TEXT and BLOB rows under one folder
    folder = LATIN1.rsplit("/", 1)[0]  # a folder whose own name is not UTF-8
    assert c.paths_at(folder) == [LATIN1] and c.paths_under(folder + "/") == [LATIN1]
    assert c.paths_at("/p/caf") == []  # a prefix is not a folder
    assert c.image_ids_by_name()[os.fsdecode(b"\xff\xfe.jpg")] == [ids[GARBAGE]]
    with c.transaction():
        assert c.remove_path(GARBAGE) and not c.remove_path(GARBAGE)
    assert c.get_path(GARBAGE) is None and len(c.all_paths()) == 3
    raw = c.connection_for_tests().execute("SELECT typeof(path) FROM paths WHERE path = ?", (UTF8,))
    assert raw.fetchone()[0] == "text"  # UTF-8 names are stored as they always were


# -- roots ------------------------------------------------------------------------------------------------
def test_roots_are_recorded_once_and_survive_a_content_swap(tmp_path: Path) -> None:
    c = _cat(tmp_path)
    with c.transaction():
        a = c.add_root("/photos")
        assert c.add_root("/photos") == a
        b = c.add_root(os.fsdecode(b"/d\xe9j\xe0"))
    assert c.roots() == {a: "/photos", b: os.fsdecode(b"/d\xe9j\xe0")}
    other = Catalog.open(tmp_path / "other.db")  # what reindex builds: its own, per-file roots
    with other.transaction():
        other.add_root("/photos/2019")
    other.close()
    c.replace_content(tmp_path / "other.db")
    assert c.roots() == {a: "/photos", b: os.fsdecode(b"/d\xe9j\xe0")}


# -- a full disk ------------------------------------------------------------------------------------------
def test_a_full_disk_is_a_storage_error_and_rolls_back(tmp_path: Path) -> None:
    c = _cat(tmp_path)
    db = c.connection_for_tests()
    with c.transaction():
        c.add_image("h0", 1, 1, None, np.ones(4, dtype=np.float32))
    pages = db.execute("PRAGMA page_count").fetchone()[0]
    db.execute(f"PRAGMA max_page_count={pages}")  # SQLite's own SQLITE_FULL, as on a full disk
    with pytest.raises(StorageError) as exc, c.transaction():
        for i in range(1, 200):
            c.add_image(f"h{i}", 1, 1, b"t" * 4096, np.ones(4, dtype=np.float32))
    msg = str(exc.value)
    assert msg.startswith("could not write the catalog c.db: No space left on device")
    assert "\n" not in msg and exc.value.exit_code == 1 and exc.value.http_status == 507
    assert not db.in_transaction and c.counts()["images"] == 1  # rolled back whole
    db.execute(f"PRAGMA max_page_count={pages * 100}")  # space freed: writes work again
    with c.transaction():
        c.add_image("h1", 1, 1, None, np.ones(4, dtype=np.float32))
    assert c.counts()["images"] == 2
