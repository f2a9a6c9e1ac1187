"""A whole library on Milvus Lite: the same CLI commands and Library calls as on the default store.

The library is indexed by the CLI in a subprocess (Milvus Lite serves one process per file, so the commands
run first and this process opens the store only afterwards), from real gallery photos with the real models.
"""

from __future__ import annotations

import json
import os
import shutil
import sqlite3
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("pymilvus")
pytest.importorskip("milvus_lite")

pytestmark = pytest.mark.slow  # Milvus Lite server processes: ~60 s

from pixsearch import Library  # noqa: E402
from pixsearch.config import parse_store  # noqa: E402
from pixsearch.errors import ModelMismatchError  # noqa: E402
from pixsearch.storage.milvus import MilvusIndex, _client  # noqa: E402

PIX = [sys.executable, "-m", "pixsearch.cli"]
N = 16  # photos: enough for a top-10 that can differ, small enough for CI on 2 cores


def run(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "OMP_NUM_THREADS": "2", "PIXSEARCH_THREADS": "2"}
    p = subprocess.run([*PIX, *args], capture_output=True, text=True, env=env, timeout=600)
    if check and p.returncode != 0:
        raise AssertionError(f"exit {p.returncode}\nstdout: {p.stdout}\nstderr: {p.stderr}")
    return p


def _release(spec: str) -> None:
    """Close this process's client so that a CLI subprocess may open the Lite file."""
    from milvus_lite.server_manager import server_manager_instance

    s = parse_store(spec)
    _client(s.uri, s.token).close()
    _client.cache_clear()
    server_manager_instance.release_server(s.uri)  # the embedded server holds the file's lock


@pytest.fixture(scope="module")
def mlib(gallery_subset: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str, Path]:
    d = tmp_path_factory.mktemp("mlib")
    photos = d / "photos"
    photos.mkdir()
    for p in sorted((gallery_subset / "photos").glob("*.jpg"))[:N]:
        shutil.copy(p, photos / p.name)
    spec = f"milvus-lite:{d / 'vectors.db'}"
    lib = d / "lib"
    rep = json.loads(
        run("index", str(photos), "--captions", str(gallery_subset / "captions.csv"), "-L", str(lib),
            "--store", spec, "--no-caption", "--json").stdout
    )  # fmt: skip
    assert rep["added"] == N and not rep["failed"]
    return lib, spec, photos


def test_cli_commands_on_milvus_across_processes(mlib: tuple[Path, str, Path]) -> None:
    """Each command is a new process and none passes --store: the library's recorded store is used."""
    lib, spec, photos = mlib
    st = json.loads(run("stats", "-L", str(lib), "--json").stdout)
    assert st["store"] == spec and st["images"] == N
    assert sorted(f.name for f in lib.iterdir() if "milvus" in f.name) == [
        "caption_joint.milvus.json", "captions.milvus.json", "images.milvus.json"
    ]  # fmt: skip
    assert not list(lib.glob("*.usearch"))
    res = json.loads(run("search", "a dog", "-k", "5", "-L", str(lib), "--json").stdout)["results"]
    assert len(res) == 5 and all(Path(r["path"]).parent == photos for r in res)
    photo = sorted(photos.glob("*.jpg"))[3]
    sim = json.loads(run("similar", str(photo), "-k", "3", "-L", str(lib), "--json").stdout)["results"]
    assert len(sim) == 3 and str(photo) not in {r["path"] for r in sim}  # the photo itself is left out
    desc = json.loads(run("describe", str(photo), "-k", "3", "-L", str(lib), "--json").stdout)["results"]
    assert len(desc) == 3
    doc = json.loads(run("doctor", "-L", str(lib), "--store", spec, "--json").stdout)
    assert all(c["ok"] for c in doc) and any("vectors 'images'" in c["check"] for c in doc)


def test_another_store_than_the_recorded_one_is_refused(
    mlib: tuple[Path, str, Path], built_library: Path, tmp_path: Path
) -> None:
    lib, spec, _ = mlib
    p = run("search", "a dog", "-L", str(lib), "--store", f"milvus-lite:{tmp_path / 'other.db'}", check=False)
    assert p.returncode == 1 and "reindex --store" in p.stderr and len(p.stderr.strip().splitlines()) == 1
    p = run("stats", "-L", str(built_library), "--store", spec, check=False)  # vectors in its own files
    assert p.returncode == 1 and "usearch files" in p.stderr
    p = run("stats", "-L", str(lib), "--store", "redis://h/c", check=False)
    assert p.returncode == 1 and "expected milvus-lite:PATH.db" in p.stderr


def test_unreachable_milvus_is_one_line_error(gallery_subset: Path, tmp_path: Path) -> None:
    photo = sorted((gallery_subset / "photos").glob("*.jpg"))[0]
    p = run(
        "index", str(photo), "-L", str(tmp_path / "lib"), "--store", "milvus://127.0.0.1:9/x", check=False
    )
    lines = [ln for ln in p.stderr.splitlines() if not ln.startswith("INFO: ")]  # TFLite's own log line
    assert p.returncode == 1 and len(lines) == 1  # README, "Exit codes": 1 for an unreachable store
    assert "cannot reach Milvus at http://127.0.0.1:9" in lines[0]


def _default_copy(lib: Path, dst: Path) -> Path:
    """The same catalog, with the store forgotten: opens on the default (usearch) files, rebuilt from it."""
    shutil.copytree(lib, dst)
    for f in dst.glob("*.milvus.json"):
        f.unlink()
    with sqlite3.connect(dst / "catalog.db") as db:
        db.execute("DELETE FROM meta WHERE key = 'store'")
        db.execute("UPDATE meta SET value = 'copy' || value WHERE key = 'catalog_id'")  # its own lineage
    return dst


def test_same_results_as_the_default_store(mlib: tuple[Path, str, Path], tmp_path: Path) -> None:
    lib, spec, photos = mlib
    try:
        with Library.open(lib) as m, Library.open(_default_copy(lib, tmp_path / "d")) as d:
            assert m.settings.store == spec and d.settings.store is None
            assert type(m.vectors.get("images")).__name__ == "MilvusIndex"
            keys, vecs = m.catalog.image_vectors(m.encoder.dim, None)
            exact = vecs @ vecs.T
            found = m.vectors.get("images").search(vecs, 10)[0]
            truth = np.argsort(-exact, axis=1)[:, :10]
            recall = np.mean(
                [len(np.intersect1d(f, keys[t])) / 10 for f, t in zip(found, truth, strict=True)]
            )
            assert recall >= 0.98
            for q in ("a dog running on grass", "people in a city street", "a child"):
                assert [r.image_id for r in m.search(q, 10)] == [r.image_id for r in d.search(q, 10)]
            photo = sorted(photos.glob("*.jpg"))[5]
            assert [r.image_id for r in m.similar(photo, 5)] == [r.image_id for r in d.similar(photo, 5)]
            assert [r.caption for r in m.describe(photo, 5)] == [r.caption for r in d.describe(photo, 5)]
    finally:
        _release(spec)


def test_store_behind_the_catalog_is_repaired(mlib: tuple[Path, str, Path]) -> None:
    """As after a crash between the catalog commit and the Milvus write: rows gone behind the stamp."""
    lib, spec, _ = mlib
    try:
        with Library.open(lib) as first:
            cid, dim, fp = first.catalog.catalog_id, first.encoder.dim, first.encoder.fingerprint
            ids = first.catalog.image_ids()
        raw = MilvusIndex(parse_store(spec), f"images_{cid[:12]}", dim, fp)
        raw.remove(ids[:3])
        raw.save(lib)
        assert len(raw) == N - 3
        with Library.open(lib) as m:
            idx = m.vectors.get("images")
            assert "images" in m.vectors.repaired and len(idx) == N
            assert sorted(idx.keys().tolist()) == sorted(ids.tolist())
            assert m.vectors.consistent() == {"images": True, "captions": True, "caption_joint": True}
    finally:
        _release(spec)


def test_collection_of_another_model_is_refused(mlib: tuple[Path, str, Path], tmp_path: Path) -> None:
    lib, spec, _ = mlib
    try:
        with Library.open(lib) as m:
            s = replace(m.settings, library=tmp_path / "new")  # the store the library recorded
        with Library.open(settings=s) as other:  # a new library on the same store records it too
            assert other.catalog.get_meta("store") == spec
            cid, dim = other.catalog.catalog_id, other.encoder.dim
            MilvusIndex(parse_store(spec), f"images_{cid[:12]}", dim, "another-model|x")
            with pytest.raises(ModelMismatchError, match="another-model.*reindex"):
                other.search("a dog", 3)
    finally:
        _release(spec)


def test_remove_then_reindex_writes_fresh_collections(mlib: tuple[Path, str, Path]) -> None:
    """Last: changes the shared library. Removed photos leave Milvus; reindex moves to new collections."""
    lib, spec, photos = mlib
    gone = sorted(photos.glob("*.jpg"))[0]
    assert json.loads(run("remove", str(gone), "-L", str(lib), "--json").stdout)["removed"] == 1
    res = json.loads(run("search", "a dog", "-k", "20", "-L", str(lib), "--json").stdout)["results"]
    assert len(res) == N - 1 and str(gone) not in {r["path"] for r in res}
    with Library.open(lib) as m:
        old = m.catalog.catalog_id
        assert len(m.vectors.get("images")) == N - 1
    _release(spec)
    run("reindex", "-L", str(lib), "--json")
    try:
        with Library.open(lib) as m:
            new = m.catalog.catalog_id
            assert new != old and len(m.vectors.get("images")) == N - 1
            assert m.vectors.consistent()["images"]
        client = _client(parse_store(spec).uri, "")
        names = set(client.list_collections())
        assert f"pixsearch_images_{new[:12]}" in names and f"pixsearch_images_{old[:12]}" not in names
    finally:
        _release(spec)


def test_reindex_moves_a_library_from_its_files_to_milvus(built_library: Path, tmp_path: Path) -> None:
    lib = tmp_path / "lib"
    shutil.copytree(built_library, lib)
    spec = f"milvus-lite:{tmp_path / 'moved.db'}"
    q = ("search", "a dog in the water", "-k", "10", "-L", str(lib), "--json")
    before = [r["path"] for r in json.loads(run(*q).stdout)["results"]]
    assert run("search", "a dog", "-L", str(lib), "--store", spec, check=False).returncode == 1
    run("reindex", "-L", str(lib), "--store", spec, "--json")
    st = json.loads(run("stats", "-L", str(lib), "--json").stdout)
    assert st["store"] == spec and st["images"] == 24 and st["human_captions"] == 120
    assert not list(lib.glob("*.usearch")) and len(list(lib.glob("*.milvus.json"))) == 3
    assert [r["path"] for r in json.loads(run(*q).stdout)["results"]] == before  # same model, same ranking
    run("reindex", "-L", str(lib), "--store", "local", "--json")  # and back to its own files
    assert json.loads(run("stats", "-L", str(lib), "--json").stdout)["store"] == "local"
    assert len(list(lib.glob("*.usearch"))) == 3 and not list(lib.glob("*.milvus.json"))
    assert [r["path"] for r in json.loads(run(*q).stdout)["results"]] == before
    try:  # the Milvus collections went with the move
        assert _client(parse_store(spec).uri, "").list_collections() == []
    finally:
        _release(spec)
