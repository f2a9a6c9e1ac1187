"""Where a library's vectors live: store specs, their one canonical spelling, the opener a setting picks,
and which store a command may use on a library that recorded one. Nothing here talks to a Milvus server:
the store tests that do are tests/unit/storage/test_milvus.py and tests/e2e/test_milvus.py."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from pixsearch.config import LOCAL, Settings, canonical_store, load_settings
from pixsearch.errors import ConfigError
from pixsearch.storage.catalog import Catalog
from pixsearch.storage.store import FileOpener, MilvusOpener, opener_for, resolve_store

FP = "lite0-minilm-v1:abc|lite0:def|minilm:ghi"


def _settings(tmp_path: Path, env_store: str | None = None, **overrides: Any) -> Settings:
    """Settings for a library in ``tmp_path`` from a clean environment (no user config file)."""
    env = {"XDG_CONFIG_HOME": str(tmp_path / "config")}
    if env_store:
        env["PIXSEARCH_STORE"] = env_store
    return load_settings(env=env, library=tmp_path, **overrides)


# -- canonical_store ----------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("spec", "canonical"),
    [
        ("local", "local"),
        ("  local ", "local"),
        ("milvus://db.example/photos", "milvus://db.example:19530/photos"),
        ("milvus://db.example:19531/photos", "milvus://db.example:19531/photos"),
        (" milvus://h:1/c ", "milvus://h:1/c"),
        ("milvus+https://db.example/photos", "milvus+https://db.example:19530/photos"),
        ("milvus+https://db.example:443/p_2", "milvus+https://db.example:443/p_2"),
    ],
)
def test_canonical_spelling(spec: str, canonical: str) -> None:
    assert canonical_store(spec) == canonical
    assert canonical_store(canonical) == canonical  # idempotent: a recorded store compares equal


def test_milvus_lite_paths_become_absolute(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    assert canonical_store("milvus-lite:v.db") == f"milvus-lite:{tmp_path / 'v.db'}"
    assert canonical_store(f"milvus-lite:{tmp_path}/sub/../v.db").startswith("milvus-lite:/")
    monkeypatch.setenv("HOME", str(tmp_path))
    assert canonical_store("milvus-lite:~/v.db") == f"milvus-lite:{tmp_path / 'v.db'}"


def test_the_token_never_enters_the_canonical_spelling(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PIXSEARCH_MILVUS_TOKEN", "secret")
    assert "secret" not in canonical_store("milvus://h/c")


@pytest.mark.parametrize(
    ("spec", "says"),
    [
        ("", "expected milvus-lite:PATH.db or milvus://HOST:PORT/COLLECTION"),
        ("locale", "expected milvus-lite:PATH.db or milvus://HOST:PORT/COLLECTION"),
        ("redis://h/c", "expected milvus-lite:PATH.db or milvus://HOST:PORT/COLLECTION"),
        ("milvus://host", "expected milvus-lite:PATH.db or milvus://HOST:PORT/COLLECTION"),
        ("milvus://host:port/c", "expected milvus-lite:PATH.db or milvus://HOST:PORT/COLLECTION"),
        ("milvus://h/c/d", "expected milvus-lite:PATH.db or milvus://HOST:PORT/COLLECTION"),
        ("milvus://h/bad-name", "collection names are letters, digits and _"),
        ("milvus-lite:/tmp/x.sqlite", "Milvus Lite needs a file name ending in .db"),
        ("milvus-lite:", "Milvus Lite needs a file name ending in .db"),
    ],
)
def test_bad_specs_are_one_line_config_errors(spec: str, says: str) -> None:
    with pytest.raises(ConfigError) as exc:
        canonical_store(spec)
    msg = str(exc.value)
    assert says in msg and msg.startswith("--store ") and "\n" not in msg


def test_settings_canonicalise_the_store_and_reject_typos(tmp_path: Path) -> None:
    s = _settings(tmp_path, store="milvus://h/c")
    assert s.store == "milvus://h:19530/c"
    s = _settings(tmp_path, env_store="milvus-lite:v.db")
    assert s.store is not None and s.store.startswith("milvus-lite:/") and s.store.endswith("/v.db")
    with pytest.raises(ConfigError, match="expected milvus-lite"):
        _settings(tmp_path, store="milvus:/h/c")


# -- opener_for ---------------------------------------------------------------------------------------
def test_local_and_unset_stores_open_the_library_files(tmp_path: Path) -> None:
    for store in (None, LOCAL):
        s = replace(_settings(tmp_path, vector_backend="exact"), store=store)
        op = opener_for(s, FP)
        assert op == FileOpener("exact", "f16") and op.suffix == "exact" and not op.external


def test_a_milvus_store_opens_collections(tmp_path: Path) -> None:
    s = _settings(tmp_path, store="milvus://h/c")
    op = opener_for(s, FP)
    assert op == MilvusOpener("milvus://h:19530/c", FP)
    assert op.suffix == "milvus" and op.external  # other clients can change it: counts are checked


def test_file_opener_treats_missing_and_corrupt_files_as_rebuildable(tmp_path: Path) -> None:
    op = FileOpener("usearch", "f16")
    assert op.load("images", 8, tmp_path / "images.usearch", "cid") is None
    (tmp_path / "images.usearch").write_bytes(b"torn write")
    assert op.load("images", 8, tmp_path / "images.usearch", "cid") is None
    idx = op.create("images", 8, "cid")
    idx.add(np.array([1, 2]), np.eye(2, 8, dtype=np.float32))
    idx.save(tmp_path / "images.usearch")
    back = op.load("images", 8, tmp_path / "images.usearch", "cid")
    assert back is not None and sorted(back.keys().tolist()) == [1, 2]
    op.discard("images", 8, "cid")  # the library's own files: reindex moves and deletes them itself
    assert (tmp_path / "images.usearch").is_file()


# -- resolve_store ------------------------------------------------------------------------------------
@pytest.fixture
def catalogs(built_library: Path, tmp_path: Path) -> Iterator[dict[str, Catalog]]:
    """An empty catalog, the 24-photo gallery library's (no store recorded: its own files) and a copy of it
    that recorded a Milvus Lite store."""
    recorded = tmp_path / "recorded"
    shutil.copytree(built_library, recorded)
    cats = {
        "empty": Catalog.open(tmp_path / "empty" / "catalog.db"),
        "files": Catalog.open(built_library / "catalog.db", readonly=True),
        "recorded": Catalog.open(recorded / "catalog.db"),
    }
    with cats["recorded"].transaction():
        cats["recorded"].set_meta("store", canonical_store(f"milvus-lite:{tmp_path / 'v.db'}"))
    yield cats
    for c in cats.values():
        c.close()


def test_no_store_asked_uses_the_recorded_one(catalogs: dict[str, Catalog], tmp_path: Path) -> None:
    s = _settings(tmp_path)
    assert resolve_store(s, catalogs["empty"]).store is None
    assert resolve_store(s, catalogs["files"]).store is None
    assert resolve_store(s, catalogs["recorded"]).store == f"milvus-lite:{tmp_path / 'v.db'}"


def test_asking_for_the_recorded_store_is_fine(catalogs: dict[str, Catalog], tmp_path: Path) -> None:
    s = _settings(tmp_path, store=f"milvus-lite:{tmp_path / 'v.db'}")
    assert resolve_store(s, catalogs["recorded"]) == s
    local = _settings(tmp_path, store="local")
    assert resolve_store(local, catalogs["files"]) == local


def test_a_new_library_takes_the_store_asked_for(catalogs: dict[str, Catalog], tmp_path: Path) -> None:
    s = _settings(tmp_path, store="milvus://h/c")
    assert resolve_store(s, catalogs["empty"]) == s


def test_another_store_is_refused_unless_moving(catalogs: dict[str, Catalog], tmp_path: Path) -> None:
    other = _settings(tmp_path, store="milvus://h/c")
    with pytest.raises(ConfigError) as exc:
        resolve_store(other, catalogs["files"])
    msg = str(exc.value)
    assert f"keeps its vectors in its own usearch files, not {other.store}" in msg
    assert f"`pixsearch reindex --store {other.store}`" in msg and "\n" not in msg
    with pytest.raises(ConfigError, match=f"keeps its vectors in milvus-lite:{tmp_path / 'v.db'}, not local"):
        resolve_store(_settings(tmp_path, store="local"), catalogs["recorded"])
    assert resolve_store(other, catalogs["files"], moving=True) == other  # reindex --store moves them
