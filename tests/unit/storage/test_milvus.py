"""Milvus Lite (the real engine, embedded) behind the VectorIndex protocol."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("pymilvus")
pytest.importorskip("milvus_lite")

pytestmark = pytest.mark.slow  # Milvus Lite server processes

from pixsearch.config import parse_store  # noqa: E402
from pixsearch.errors import CatalogError, ConfigError, ModelMismatchError  # noqa: E402
from pixsearch.storage.milvus import MilvusIndex  # noqa: E402
from pixsearch.storage.vectors import create_index  # noqa: E402


def _unit(rng: np.random.Generator, n: int, dim: int) -> np.ndarray:
    x = rng.normal(size=(n, dim)).astype(np.float32)
    return x / np.linalg.norm(x, axis=1, keepdims=True)


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory):
    return parse_store(f"milvus-lite:{tmp_path_factory.mktemp('milvus')}/lib.db")


def test_parse_store() -> None:
    s = parse_store("milvus://db.example:19531/photos", env={"PIXSEARCH_MILVUS_TOKEN": "t"})
    assert (s.uri, s.collection, s.lite, s.token) == ("http://db.example:19531", "photos", False, "t")
    assert parse_store("milvus+https://h/c", env={}).uri == "https://h:19530"
    for bad in ("milvus://host", "milvus-lite:/tmp/x.sqlite", "redis://h/c", "milvus://h/bad-name"):
        with pytest.raises(ConfigError):
            parse_store(bad, env={})


def test_add_search_remove_get_and_filter(store) -> None:
    rng = np.random.default_rng(0)
    v = _unit(rng, 300, 32)
    idx = MilvusIndex(store, "t1", 32, "model-a|x")
    idx.add(np.arange(1, 301), v)
    idx.save(Path("."))
    assert len(idx) == 300 and 7 in idx and 999 not in idx
    keys, sims = idx.search(v[9], 5)
    assert keys[0, 0] == 10 and sims[0, 0] == pytest.approx(1.0, abs=1e-4)
    keys, _ = idx.search(v[9], 5, exclude=[10, 11])
    assert 10 not in keys[0] and 11 not in keys[0] and keys.shape == (1, 5)
    np.testing.assert_allclose(idx.get(np.array([3, 4])), v[2:4], atol=1e-6)
    idx.remove(np.array([10]))
    assert 10 not in idx and len(idx) == 299
    assert sorted(idx.keys().tolist()) == [i for i in range(1, 301) if i != 10]
    with pytest.raises(KeyError):
        idx.get(np.array([10]))
    k, s = idx.search(v[0], 0)
    assert k.shape == (1, 0)


def test_same_results_as_exact(store) -> None:
    """Recall@10 against the exact store on the same vectors: HNSW in Milvus must find the true neighbours."""
    rng = np.random.default_rng(1)
    v, q = _unit(rng, 2000, 64), _unit(rng, 50, 64)
    keys = np.arange(1, 2001)
    m = MilvusIndex(store, "t2", 64, "model-a|x")
    m.add(keys, v)
    m.save(Path("."))
    m.reload()
    ex = create_index("exact", 64, "f32")
    ex.add(keys, v)
    hits = sum(len(np.intersect1d(m.search(x, 10)[0], ex.search(x, 10)[0])) for x in q)
    assert hits / (len(q) * 10) >= 0.98


def test_fingerprint_and_dimension_checks(store) -> None:
    MilvusIndex(store, "t3", 16, "model-a|x").add(np.array([1]), np.ones((1, 16), np.float32))
    with pytest.raises(ModelMismatchError, match="reindex"):
        MilvusIndex(store, "t3", 16, "model-b|x")
    with pytest.raises(ConfigError, match="16-d"):
        MilvusIndex(store, "t3", 32, "model-a|x")


def test_persists_across_processes(tmp_path: Path) -> None:
    db = tmp_path / "p.db"
    code = (
        "import numpy as np, sys\n"
        "from pixsearch.config import parse_store\nfrom pixsearch.storage.milvus import MilvusIndex\n"
        f"i = MilvusIndex(parse_store('milvus-lite:{db}'), 'images', 8, 'fp|x')\n"
        "if sys.argv[1] == 'w':\n"
        "    i.add(np.arange(1, 51), np.eye(8, dtype=np.float32)[np.arange(50) % 8] + 0.01); i.save(None)\n"
        "else:\n"
        "    print(len(i), int(i.search(np.eye(8, dtype=np.float32)[3], 1)[0][0, 0]) % 8)\n"
    )
    subprocess.run([sys.executable, "-c", code, "w"], check=True, timeout=120)
    out = subprocess.run(
        [sys.executable, "-c", code, "r"], check=True, capture_output=True, text=True, timeout=120
    )
    n, hit = out.stdout.split()
    assert n == "50" and int(hit) == 4  # key k holds eye[(k-1) % 8]: row 3 is keys 4, 12, ...


def test_unreachable_server_is_one_line_error() -> None:
    with pytest.raises(CatalogError, match="cannot reach Milvus at http://127.0.0.1:9"):
        MilvusIndex(parse_store("milvus://127.0.0.1:9/photos", env={}), "images", 8, "fp")
