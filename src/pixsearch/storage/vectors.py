"""Vector index seam: one small Protocol, two backends, chosen by name from config.

``exact`` is NumPy brute force: no extra dependency, exact answers, fine up to ~100k photos, and the ground
truth the approximate backend is measured against. ``usearch`` is HNSW for libraries where a linear scan per
query gets slow. Both store unit vectors, so similarity is the inner product (cosine). Key ``-1`` is reserved:
usearch uses its unsigned twin as the "empty slot" marker, and callers use it as "no result".
"""

from __future__ import annotations

import errno
import importlib.util
import os
import tempfile
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np

from pixsearch.errors import CatalogError, ConfigError, QueryError
from pixsearch.storage.failures import storage_error
from pixsearch.storage.native import interruptible as _interruptible

if TYPE_CHECKING:
    from usearch.index import Index

__all__ = ["VectorIndex", "UsearchParams", "ExactIndex", "UsearchIndex", "DTYPES"]
__all__ += ["create_index", "load_index", "available_backends"]

DTYPES: tuple[str, ...] = ("f32", "f16", "i8")
_NP_DTYPES: dict[str, type[np.generic]] = {"f32": np.float32, "f16": np.float16, "i8": np.int8}
_I8_SCALE = 127.0
_FORMAT = "pixsearch.vectors/1"
_CHUNK = 32_768  # rows upcast to float32 at a time: bounds the scan's scratch memory to ~32 MiB at dim 256
RESERVED_KEY = -1


class VectorIndex(Protocol):
    dim: int

    def add(self, keys: np.ndarray, vectors: np.ndarray) -> None: ...
    def remove(self, keys: np.ndarray) -> None: ...
    def search(self, query: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]: ...
    def get(self, keys: np.ndarray) -> np.ndarray: ...
    def __len__(self) -> int: ...
    def __contains__(self, key: int) -> bool: ...
    def keys(self) -> np.ndarray: ...
    def save(self, path: Path) -> None: ...


@dataclass(frozen=True)
class UsearchParams:
    """HNSW knobs, measured on 100k clustered 256-d f16 vectors (benchmarks/bench_vectors.py).

    usearch's own search default (64) gave recall@10 0.977 there; 128 gives 0.9975 for ~0.1 ms more per
    query, noise next to encoding the text. Connectivity 8 / expansion_add 64 built 2.5x faster but only
    reached 0.88 even at expansion_search 128. At 1M vectors (1,000 clusters) 128 fell to 0.947-0.961 and
    256 gives 0.996 at 1.34 / 2.9 ms p50 / p99 (512: 0.9963), so 256 it is (docs/scaling.md).
    """

    connectivity: int = 16  # graph degree: memory and build time grow with it, recall too
    expansion_add: int = 128  # beam width while building: build time for graph quality
    expansion_search: int = 256  # beam width per query (usearch widens it to k if k is larger)

    def __post_init__(self) -> None:
        for name in ("connectivity", "expansion_add", "expansion_search"):
            if getattr(self, name) < 1:
                raise ConfigError(f"usearch {name} must be a positive integer, got {getattr(self, name)}")


def _check_dtype(dtype: str) -> str:
    if dtype not in _NP_DTYPES:
        raise ConfigError(f"unknown vector dtype {dtype!r}; choose one of {', '.join(DTYPES)}")
    return dtype


def _unit_rows(x: np.ndarray, dim: int, what: str, err: type[Exception]) -> np.ndarray:
    """Normalise here so a caller's slightly-off norm cannot turn inner product into something else."""
    x = np.asarray(x, dtype=np.float32)
    x = x.reshape(1, -1) if x.ndim == 1 else x
    if x.ndim != 2 or x.shape[1] != dim:
        raise err(f"{what} must have shape (N, {dim}), got {np.shape(x)}")
    norms = np.linalg.norm(x, axis=1, keepdims=True)
    if not np.all(np.isfinite(norms)) or np.any(norms == 0):
        raise err(f"{what} contain a zero or non-finite vector")
    return x / norms


def _prepare_add(keys: np.ndarray, vectors: np.ndarray, dim: int) -> tuple[np.ndarray, np.ndarray]:
    """Validate and keep the last of duplicate keys, as if the batch were added one by one."""
    keys = np.asarray(keys, dtype=np.int64).reshape(-1)
    vecs = _unit_rows(vectors, dim, "vectors", ValueError)
    if len(keys) != len(vecs):
        raise ValueError(f"{len(keys)} keys for {len(vecs)} vectors")
    if np.any(keys == RESERVED_KEY):
        raise ValueError("key -1 is reserved")
    _, last = np.unique(keys[::-1], return_index=True)
    if len(last) != len(keys):
        keep = np.sort(len(keys) - 1 - last)
        keys, vecs = keys[keep], vecs[keep]
    return keys, vecs


def _queries(query: np.ndarray, k: int, dim: int, n: int) -> tuple[np.ndarray, int]:
    """Shared by both backends so validation and the k' = min(k, len) rule cannot drift apart."""
    if k < 0:
        raise QueryError(f"k must be >= 0, got {k}")
    return _unit_rows(query, dim, "query", QueryError), min(k, n)


def _empty(q: int) -> tuple[np.ndarray, np.ndarray]:
    return np.empty((q, 0), np.int64), np.empty((q, 0), np.float32)


def _atomic_write(path: Path, write: Callable[[Path], object], size: int | None = None) -> None:
    """A crash mid-save must leave the previous index intact, never a half-written one; a full disk is a
    StorageError (``storage/failures.py``), whatever the writer raised. ``size``: the bytes the file must
    come out with (usearch reports success for a file the disk cut short)."""
    path = Path(path)
    tmp: Path | None = None
    try:
        fd, name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
        os.close(fd)
        tmp = Path(name)
        write(tmp)
        with open(tmp, "rb+") as f:
            os.fsync(f.fileno())
        if size is not None and (got := tmp.stat().st_size) != size:
            raise OSError(errno.EIO, f"wrote {got} of {size} bytes")
        os.replace(tmp, path)
    except BaseException as exc:
        if tmp is not None:
            tmp.unlink(missing_ok=True)
        if isinstance(exc, (OSError, RuntimeError)):  # usearch's RuntimeError: it could not write
            raise storage_error(f"the vector index {path.name}", exc, path.parent, size or 0) from exc
        raise
    dir_fd = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(dir_fd)  # make the rename itself durable
    finally:
        os.close(dir_fd)


def _corrupt(path: Path, why: object) -> CatalogError:
    return CatalogError(f"vector index {path} is unreadable ({why}); delete it and re-index the library")


def _top_k(scores: np.ndarray, rows: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    if scores.shape[1] <= k:
        return scores, rows
    part = np.argpartition(-scores, k - 1, axis=1)[:, :k]
    return np.take_along_axis(scores, part, 1), np.take_along_axis(rows, part, 1)


class ExactIndex:
    """Brute force over a compact, swap-deleted row array; the dict makes replace/remove O(1) per key."""

    def __init__(self, dim: int, dtype: str = "f16") -> None:
        self.dim = dim
        self.dtype = _check_dtype(dtype)
        self._n = 0
        self._keys = np.empty(0, np.int64)
        self._vecs = np.empty((0, dim), _NP_DTYPES[dtype])
        self._row: dict[int, int] = {}

    def _encode(self, v: np.ndarray) -> np.ndarray:
        if self.dtype == "i8":
            return np.clip(np.rint(v * _I8_SCALE), -127, 127).astype(np.int8)
        return v.astype(_NP_DTYPES[self.dtype])

    def _decode(self, v: np.ndarray) -> np.ndarray:
        out = v.astype(np.float32)
        return out / np.float32(_I8_SCALE) if self.dtype == "i8" else out

    def _reserve(self, n: int) -> None:
        if n > len(self._keys):  # geometric growth keeps a stream of small adds amortised O(1)
            cap = max(n, 2 * len(self._keys), 1024)
            self._keys = np.resize(self._keys, cap)
            grown = np.empty((cap, self.dim), self._vecs.dtype)
            grown[: len(self._vecs)] = self._vecs
            self._vecs = grown

    def add(self, keys: np.ndarray, vectors: np.ndarray) -> None:
        keys, vecs = _prepare_add(keys, vectors, self.dim)
        stored = self._encode(vecs)
        rows = np.fromiter((self._row.get(k, -1) for k in keys.tolist()), np.int64, len(keys))
        old = rows >= 0
        self._vecs[rows[old]] = stored[old]
        new_keys, m = keys[~old], int((~old).sum())
        self._reserve(self._n + m)
        self._keys[self._n : self._n + m] = new_keys
        self._vecs[self._n : self._n + m] = stored[~old]
        self._row.update(zip(new_keys.tolist(), range(self._n, self._n + m), strict=True))
        self._n += m

    def remove(self, keys: np.ndarray) -> None:
        for key in np.asarray(keys, dtype=np.int64).reshape(-1).tolist():
            row = self._row.pop(key, None)
            if row is None:
                continue
            last = self._n - 1
            if row != last:
                moved = int(self._keys[last])
                self._keys[row], self._vecs[row] = moved, self._vecs[last]
                self._row[moved] = row
            self._n = last

    def search(self, query: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        q, k = _queries(query, k, self.dim, self._n)
        if k == 0:
            return _empty(len(q))
        best_s, best_r = np.empty((len(q), 0), np.float32), np.empty((len(q), 0), np.int64)
        for start in range(0, self._n, _CHUNK):
            stop = min(start + _CHUNK, self._n)
            s = q @ self._decode(self._vecs[start:stop]).T
            s, r = _top_k(s, np.broadcast_to(np.arange(start, stop), s.shape), k)
            best_s, best_r = _top_k(np.concatenate([best_s, s], 1), np.concatenate([best_r, r], 1), k)
        order = np.argsort(-best_s, axis=1, kind="stable")
        sims = np.clip(np.take_along_axis(best_s, order, 1), -1.0, 1.0).astype(np.float32)
        return self._keys[np.take_along_axis(best_r, order, 1)], sims

    def get(self, keys: np.ndarray) -> np.ndarray:
        want = np.asarray(keys, dtype=np.int64).reshape(-1).tolist()
        missing = [k for k in want if k not in self._row]
        if missing:
            raise KeyError(missing[0])
        return self._decode(self._vecs[[self._row[k] for k in want]]).reshape(len(want), self.dim)

    def __len__(self) -> int:
        return self._n

    def __contains__(self, key: int) -> bool:
        return int(key) in self._row

    def keys(self) -> np.ndarray:
        return self._keys[: self._n].copy()

    def save(self, path: Path) -> None:
        from safetensors.numpy import save_file

        data = {"keys": self.keys(), "vectors": np.ascontiguousarray(self._vecs[: self._n])}
        meta = {"format": _FORMAT, "dtype": self.dtype, "dim": str(self.dim)}
        _atomic_write(Path(path), lambda tmp: save_file(data, str(tmp), metadata=meta))

    @classmethod
    def load(cls, path: Path, dim: int, dtype: str = "f16") -> ExactIndex:
        """The file's dtype wins over ``dtype``: changing precision means re-indexing, not a silent cast."""
        from safetensors import safe_open

        _check_dtype(dtype)
        try:
            with safe_open(str(path), framework="np") as f:
                meta = f.metadata() or {}
                keys, vecs = (f.get_tensor(n) if n in f.keys() else None for n in ("keys", "vectors"))
        except Exception as e:  # any failure of a foreign decoder means the same thing: the file is bad
            raise _corrupt(path, e) from e
        if meta.get("format") != _FORMAT or keys is None or vecs is None:
            raise _corrupt(path, "not a pixsearch vector file")
        stored = meta.get("dtype", "")
        if stored not in _NP_DTYPES or vecs.dtype != _NP_DTYPES[stored] or keys.dtype != np.int64:
            raise _corrupt(path, f"unexpected dtypes {keys.dtype}/{vecs.dtype}")
        if vecs.ndim != 2 or vecs.shape[1] != dim:
            raise _corrupt(path, f"vectors have shape {vecs.shape}, expected (N, {dim}); wrong model?")
        if keys.shape != (len(vecs),) or len(np.unique(keys)) != len(keys):
            raise _corrupt(path, "keys do not match vectors")
        index = cls(dim, stored)
        index._keys, index._vecs, index._n = keys.copy(), vecs.copy(), len(keys)
        index._row = dict(zip(keys.tolist(), range(len(keys)), strict=True))
        return index


class UsearchIndex:
    """HNSW via usearch. Keys are int64 viewed as usearch's uint64, so negative keys survive the trip."""

    def __init__(self, dim: int, dtype: str = "f16", params: UsearchParams | None = None) -> None:
        from usearch.index import Index

        self.dim = dim
        self.dtype = _check_dtype(dtype)
        self.params = params or UsearchParams()  # field names are usearch's own keyword arguments
        self._index: Index = Index(ndim=dim, metric="cos", dtype=dtype, **asdict(self.params))

    def add(self, keys: np.ndarray, vectors: np.ndarray) -> None:
        keys, vecs = _prepare_add(keys, vectors, self.dim)
        u = keys.view(np.uint64)
        present = np.asarray(self._index.contains(u), dtype=bool).reshape(-1)
        if present.any():  # usearch refuses duplicate keys; replace = remove + add
            self._index.remove(u[present])
        _interruptible(lambda: self._index.add(u, vecs))

    def remove(self, keys: np.ndarray) -> None:
        u = np.asarray(keys, dtype=np.int64).reshape(-1).view(np.uint64)
        if len(u):
            self._index.remove(u)  # unknown keys: usearch counts 0 removed and moves on

    def search(self, query: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        q, k = _queries(query, k, self.dim, len(self))
        if k == 0:
            return _empty(len(q))
        m: Any = _interruptible(lambda: self._index.search(q, k, exact=False))
        if np.any(np.atleast_1d(getattr(m, "counts", len(m.keys))) < k):
            m = _interruptible(lambda: self._index.search(q, k, exact=True))  # tombstones stranded a beam
        keys = np.asarray(m.keys, np.uint64).reshape(len(q), -1)[:, :k].view(np.int64)
        sims = 1.0 - np.asarray(m.distances, np.float32).reshape(len(q), -1)[:, :k]
        return keys, np.clip(sims, -1.0, 1.0).astype(np.float32)

    def get(self, keys: np.ndarray) -> np.ndarray:
        want = np.asarray(keys, dtype=np.int64).reshape(-1)
        found = np.asarray(self._index.contains(want.view(np.uint64)), dtype=bool).reshape(-1)
        if not found.all():
            raise KeyError(int(want[~found][0]))
        if not len(want):
            return np.empty((0, self.dim), np.float32)
        got: Any = self._index.get(want.view(np.uint64), dtype="f32")
        return np.vstack(got if isinstance(got, tuple) else [got]).astype(np.float32).reshape(-1, self.dim)

    def __len__(self) -> int:
        return len(self._index)

    def __contains__(self, key: int) -> bool:
        return bool(
            np.asarray(self._index.contains(np.array([key], np.int64).view(np.uint64))).reshape(-1)[0]
        )

    def keys(self) -> np.ndarray:
        return np.asarray(self._index.keys, dtype=np.uint64).view(np.int64).copy()

    def save(self, path: Path) -> None:
        size = int(self._index.serialized_length)
        _atomic_write(Path(path), lambda tmp: self._index.save(str(tmp)), size)

    @classmethod
    def load(
        cls, path: Path, dim: int, dtype: str = "f16", params: UsearchParams | None = None
    ) -> UsearchIndex:
        """Check the header first: usearch would otherwise silently adopt the file's dimension."""
        from usearch.index import Index

        try:
            meta = Index.metadata(str(path))
        except Exception as e:
            raise _corrupt(path, e) from e
        if not meta:
            raise _corrupt(path, "no usearch header")
        metric, stored = meta["kind_metric"].name.lower(), meta["kind_scalar"].name.lower()
        if metric != "cos" or stored not in _NP_DTYPES:
            raise _corrupt(path, f"metric/dtype {metric}/{stored}, expected cos/{'|'.join(DTYPES)}")
        if meta["dimensions"] != dim:
            raise _corrupt(path, f"built for dim {meta['dimensions']}, expected {dim}; wrong model?")
        _check_dtype(dtype)
        index = cls(dim, stored, params)
        try:
            index._index.load(str(path))
        except Exception as e:
            raise _corrupt(path, e) from e
        index._index.expansion_search = index.params.expansion_search  # type: ignore[misc]  # has a setter
        return index


def _registry() -> dict[str, Any]:
    """Built on demand so importing this module never probes (or imports) optional backends."""
    backends: dict[str, Any] = {"exact": ExactIndex}
    if importlib.util.find_spec("usearch") is not None:
        backends["usearch"] = UsearchIndex
    return backends


def available_backends() -> list[str]:
    return sorted(_registry())


def _backend(name: str) -> Any:
    if name not in (backends := _registry()):
        raise ConfigError(
            f"unknown or unavailable vector backend {name!r}; use one of {', '.join(sorted(backends))}"
        )
    return backends[name]


def create_index(
    backend: str, dim: int, dtype: str = "f16", *, params: UsearchParams | None = None
) -> VectorIndex:
    """``params`` tunes the usearch backend and is ignored by ``exact``."""
    cls = _backend(backend)
    return cls(dim, _check_dtype(dtype), params) if cls is UsearchIndex else cls(dim, _check_dtype(dtype))


def load_index(
    backend: str, path: Path, dim: int, dtype: str = "f16", *, params: UsearchParams | None = None
) -> VectorIndex:
    """A missing file is a library not indexed yet, not an error; ``dtype`` only applies to that case."""
    cls, path = _backend(backend), Path(path)
    if not path.exists():
        return create_index(backend, dim, dtype, params=params)
    return cls.load(path, dim, dtype, params) if cls is UsearchIndex else cls.load(path, dim, dtype)
