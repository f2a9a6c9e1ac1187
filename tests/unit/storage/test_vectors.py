"""Contract tests for both vector backends: every caller relies on these behaviours, not on a backend."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from pixsearch.errors import CatalogError, ConfigError, QueryError, StorageError
from pixsearch.storage.vectors import (
    ExactIndex,
    UsearchIndex,
    UsearchParams,
    VectorIndex,
    _atomic_write,
    available_backends,
    create_index,
    load_index,
)

DIM = 32
N = 300
BACKENDS = ["exact", "usearch"]
DTYPES = ["f32", "f16", "i8"]
# Quantisation error bound on a cosine: f16 keeps ~3 digits, i8 ~2 (per-component step 1/127).
TOL = {"f32": 1e-5, "f16": 2e-3, "i8": 3e-2}


def unit(rng: np.random.Generator, n: int, dim: int = DIM) -> np.ndarray:
    x = rng.normal(size=(n, dim)).astype(np.float32)
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def brute(vecs: np.ndarray, keys: np.ndarray, q: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    s = q @ vecs.T
    order = np.argsort(-s, axis=1)[:, :k]
    return keys[order], np.take_along_axis(s, order, 1)


@pytest.fixture(params=[(b, d) for b in BACKENDS for d in DTYPES], ids=lambda p: f"{p[0]}-{p[1]}")
def spec(request: pytest.FixtureRequest) -> tuple[str, str]:
    return request.param


@pytest.fixture
def data() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(7)
    keys = rng.choice(10**12, size=N, replace=False).astype(np.int64) - 5 * 10**11  # negatives included
    return keys, unit(rng, N), unit(rng, 20)


def filled(spec: tuple[str, str], keys: np.ndarray, vecs: np.ndarray) -> VectorIndex:
    index = create_index(spec[0], DIM, spec[1])
    index.add(keys, vecs)
    return index


def test_search_finds_exact_nearest(spec: tuple[str, str], data: tuple[np.ndarray, ...]) -> None:
    keys, vecs, q = data
    index = filled(spec, keys, vecs)
    got_k, got_s = index.search(q, 10)
    want_k, want_s = brute(vecs, keys, q, 10)
    assert got_k.shape == got_s.shape == (20, 10)
    assert got_k.dtype == np.int64 and got_s.dtype == np.float32
    assert np.all(np.diff(got_s, axis=1) <= 1e-6), "similarities must be descending"
    # Quantised dtypes may swap near-ties, and usearch is approximate (its multi-threaded build is not
    # deterministic), so: exact search must be exact; the others must be close, and every similarity
    # returned must be the true one for the key returned.
    recall = np.mean([len(set(a) & set(b)) / 10 for a, b in zip(got_k, want_k, strict=True)])
    approx = spec[0] == "usearch" or spec[1] == "i8"
    # 20 uniform-random queries: a threaded HNSW build scored 0.94-1.0 across CI runs; a broken one scores ~0
    assert recall >= (0.9 if approx else 1.0)
    row = {int(k): i for i, k in enumerate(keys)}
    true = np.stack([vecs[[row[int(k)] for k in ks]] @ qq for ks, qq in zip(got_k, q, strict=True)])
    assert np.allclose(got_s, true, atol=TOL[spec[1]] * 2)
    top1 = np.mean(got_k[:, 0] == want_k[:, 0])
    assert top1 >= (0.85 if approx else 1.0)
    own_k, own_s = index.search(vecs[:5], 1)  # each stored vector is its own nearest neighbour
    assert np.array_equal(own_k[:, 0], keys[:5])
    assert np.allclose(own_s[:, 0], 1.0, atol=TOL[spec[1]])


def test_single_query_and_k_larger_than_len(spec: tuple[str, str], data: tuple[np.ndarray, ...]) -> None:
    keys, vecs, _ = data
    index = filled(spec, keys[:7], vecs[:7])
    k, s = index.search(vecs[3], 50)
    assert k.shape == s.shape == (1, 7)
    assert k[0, 0] == keys[3] and set(k[0].tolist()) == set(keys[:7].tolist())


def test_readd_replaces(spec: tuple[str, str], data: tuple[np.ndarray, ...]) -> None:
    keys, vecs, q = data
    index = filled(spec, keys, vecs)
    index.add(keys[:1], q[:1])
    assert len(index) == N
    assert np.allclose(index.get(keys[:1]), q[:1], atol=TOL[spec[1]] * 2)
    k, s = index.search(q[0], 1)
    assert k[0, 0] == keys[0] and s[0, 0] == pytest.approx(1.0, abs=TOL[spec[1]])
    index.add(np.array([5, 5]), q[1:3])  # duplicates within a batch: the last one wins
    assert len(index) == N + 1
    assert np.allclose(index.get(np.array([5])), q[2:3], atol=TOL[spec[1]] * 2)


def test_remove(spec: tuple[str, str], data: tuple[np.ndarray, ...]) -> None:
    keys, vecs, _ = data
    index = filled(spec, keys, vecs)
    index.remove(np.concatenate([keys[:100], [123, 456]]))  # unknown keys are ignored
    assert len(index) == N - 100
    assert keys[0] not in index and keys[100] in index
    assert set(index.keys().tolist()) == set(keys[100:].tolist())
    got, _ = index.search(vecs[:100], 5)
    assert not np.isin(got, keys[:100]).any()
    assert np.array_equal(index.search(vecs[100:110], 1)[0][:, 0], keys[100:110])
    with pytest.raises(KeyError, match=str(keys[0])):
        index.get(keys[:1])
    index.remove(keys[100:])
    assert len(index) == 0 and index.search(vecs[0], 3)[0].shape == (1, 0)


def test_get(spec: tuple[str, str], data: tuple[np.ndarray, ...]) -> None:
    keys, vecs, _ = data
    index = filled(spec, keys, vecs)
    got = index.get(keys[[10, 3, 10]])
    assert got.dtype == np.float32 and got.shape == (3, DIM)
    assert np.allclose(got, vecs[[10, 3, 10]], atol=TOL[spec[1]] * 2)
    with pytest.raises(KeyError, match="424242"):
        index.get(np.array([keys[0], 424242]))


def test_save_load_round_trip(spec: tuple[str, str], data: tuple[np.ndarray, ...], tmp_path: Path) -> None:
    keys, vecs, q = data
    index = filled(spec, keys, vecs)
    index.remove(keys[:10])
    path = tmp_path / "vectors.bin"
    index.save(path)
    assert [p.name for p in tmp_path.iterdir()] == ["vectors.bin"], "temp file left behind"
    back = load_index(spec[0], path, DIM, "f32" if spec[1] != "f32" else "f16")  # the file's dtype wins
    assert isinstance(back, ExactIndex | UsearchIndex) and back.dtype == spec[1]
    assert len(back) == N - 10
    assert set(back.keys().tolist()) == set(keys[10:].tolist())
    for a, b in zip(index.search(q, 10), back.search(q, 10), strict=True):
        assert np.array_equal(a, b)
    assert np.array_equal(index.get(keys[10:20]), back.get(keys[10:20]))


def test_save_replaces_existing_file(
    spec: tuple[str, str], data: tuple[np.ndarray, ...], tmp_path: Path
) -> None:
    keys, vecs, _ = data
    path = tmp_path / "v.idx"
    filled(spec, keys, vecs).save(path)
    filled(spec, keys[:3], vecs[:3]).save(path)
    assert len(load_index(spec[0], path, DIM, spec[1])) == 3


@pytest.mark.parametrize("backend", BACKENDS)
def test_missing_file_is_empty_index(backend: str, tmp_path: Path) -> None:
    index = load_index(backend, tmp_path / "nope", DIM, "i8")
    assert len(index) == 0 and index.dim == DIM and index.keys().shape == (0,)
    k, s = index.search(np.ones((3, DIM), np.float32), 5)
    assert k.shape == s.shape == (3, 0) and k.dtype == np.int64 and s.dtype == np.float32


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("content", [b"", b"garbage" * 100, bytes(range(256)) * 8])
def test_corrupt_file_raises_catalog_error(backend: str, content: bytes, tmp_path: Path) -> None:
    path = tmp_path / "bad.idx"
    path.write_bytes(content)
    with pytest.raises(CatalogError, match="unreadable"):
        load_index(backend, path, DIM)


@pytest.mark.parametrize("backend", BACKENDS)
def test_truncated_file_raises_catalog_error(backend: str, tmp_path: Path) -> None:
    rng = np.random.default_rng(1)
    path = tmp_path / "v.idx"
    index = create_index(backend, DIM)
    index.add(np.arange(50), unit(rng, 50))
    index.save(path)
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    with pytest.raises(CatalogError):
        load_index(backend, path, DIM)


@pytest.mark.parametrize("backend", BACKENDS)
def test_other_dimension_raises_catalog_error(backend: str, tmp_path: Path) -> None:
    path = tmp_path / "v.idx"
    index = create_index(backend, DIM)
    index.add(np.arange(3), unit(np.random.default_rng(2), 3))
    index.save(path)
    with pytest.raises(CatalogError, match="wrong model"):
        load_index(backend, path, DIM * 2)


@pytest.mark.parametrize("other", ["exact", "usearch"])
def test_file_of_the_other_backend_raises_catalog_error(other: str, tmp_path: Path) -> None:
    path = tmp_path / "v.idx"
    index = create_index(other, DIM)
    index.add(np.arange(3), unit(np.random.default_rng(3), 3))
    index.save(path)
    with pytest.raises(CatalogError):
        load_index("usearch" if other == "exact" else "exact", path, DIM)


def test_config_errors() -> None:
    with pytest.raises(ConfigError, match="faiss"):
        create_index("faiss", DIM)
    with pytest.raises(ConfigError, match="faiss"):
        load_index("faiss", Path("/nonexistent"), DIM)
    with pytest.raises(ConfigError, match="bf16"):
        create_index("exact", DIM, "bf16")
    with pytest.raises(ConfigError, match="bf16"):
        create_index("usearch", DIM, "bf16")
    with pytest.raises(ConfigError):
        UsearchParams(connectivity=0)
    assert available_backends() == ["exact", "usearch"]


@pytest.mark.parametrize("backend", BACKENDS)
def test_bad_inputs(backend: str) -> None:
    index = create_index(backend, DIM)
    index.add(np.arange(2), unit(np.random.default_rng(4), 2))
    with pytest.raises(QueryError):
        index.search(np.ones(DIM + 1, np.float32), 1)
    with pytest.raises(QueryError):
        index.search(np.zeros(DIM, np.float32), 1)
    with pytest.raises(QueryError):
        index.search(np.ones(DIM, np.float32), -1)
    assert index.search(np.ones(DIM, np.float32), 0)[0].shape == (1, 0)
    with pytest.raises(ValueError, match="reserved"):
        index.add(np.array([-1]), np.ones((1, DIM), np.float32))
    with pytest.raises(ValueError):
        index.add(np.arange(3), np.ones((2, DIM), np.float32))


def test_usearch_params_apply_and_survive_load(tmp_path: Path) -> None:
    params = UsearchParams(connectivity=8, expansion_add=40, expansion_search=20)
    index = create_index("usearch", DIM, params=params)
    assert isinstance(index, UsearchIndex) and isinstance(create_index("exact", DIM), ExactIndex)
    assert (index._index.connectivity, index._index.expansion_add, index._index.expansion_search) == (
        8,
        40,
        20,
    )
    index.add(np.arange(3), unit(np.random.default_rng(6), 3))
    index.save(tmp_path / "u")
    back = load_index("usearch", tmp_path / "u", DIM, params=UsearchParams(expansion_search=33))
    assert isinstance(back, UsearchIndex) and back._index.expansion_search == 33


def test_failed_save_keeps_previous_file(tmp_path: Path) -> None:
    path = tmp_path / "v.idx"
    path.write_bytes(b"previous")

    def half_write(tmp: Path) -> None:
        tmp.write_bytes(b"half")
        raise OSError("disk full")

    with pytest.raises(StorageError, match="could not write the vector index v.idx: disk full"):
        _atomic_write(path, half_write)
    assert path.read_bytes() == b"previous" and [p.name for p in tmp_path.iterdir()] == ["v.idx"]


@pytest.mark.parametrize("how", ["raises", "short"])
def test_usearch_save_on_a_full_disk_is_a_storage_error(
    how: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, data: tuple[np.ndarray, ...]
) -> None:
    """usearch raises RuntimeError("Failed to serialize into stream") when the disk fills up, or, when
    only its last buffer does not fit, writes a short file and returns: both are one StorageError, and
    the previous file stays."""
    from usearch.index import Index

    import pixsearch.storage.failures as failures

    keys, vecs, _ = data
    index = create_index("usearch", DIM)
    index.add(keys, vecs)
    path = tmp_path / "images.usearch"
    path.write_bytes(b"previous")
    real_save = Index.save

    def full_disk(self: Index, p: str, *args: object, **kw: object) -> None:
        if how == "raises":
            raise RuntimeError("Failed to serialize into stream")
        real_save(self, p, *args, **kw)
        with open(p, "r+b") as f:  # what the disk let through
            f.truncate(100)

    monkeypatch.setattr(Index, "save", full_disk)
    monkeypatch.setattr(failures, "no_space_on", lambda where, need=0: True)
    with pytest.raises(StorageError) as exc:
        index.save(path)
    assert str(exc.value) == (
        "could not write the vector index images.usearch: No space left on device; "
        "free some space and run the command again"
    )
    assert exc.value.reason == "No space left on device"
    assert path.read_bytes() == b"previous" and [p.name for p in tmp_path.iterdir()] == [path.name]


def test_import_is_cheap() -> None:
    code = "import sys, pixsearch.storage.vectors; print('usearch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "False"


def test_exact_search_spans_chunks(monkeypatch: pytest.MonkeyPatch) -> None:
    """The chunked top-k merge must agree with a one-shot scan, ties across chunk borders included."""
    import pixsearch.storage.vectors as mod

    monkeypatch.setattr(mod, "_CHUNK", 64)
    rng = np.random.default_rng(5)
    keys, vecs, q = np.arange(N) * 3, unit(rng, N), unit(rng, 4)
    index = ExactIndex(DIM, "f32")
    index.add(keys, vecs)
    got_k, got_s = index.search(q, 25)
    want_k, want_s = brute(vecs, keys, q, 25)
    assert np.array_equal(got_k, want_k) and np.allclose(got_s, want_s, atol=1e-5)
