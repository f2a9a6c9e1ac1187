"""Milvus as the vector store, behind the same ``VectorIndex`` protocol as usearch and exact.

Why Milvus rather than a home-made cluster: past one machine's memory a library needs sharded, replicated
ANN with deletes and filters, which Milvus already runs (and Milvus Lite runs the same client API embedded in
one file, so CI tests the real code path). The catalog stays the source of truth: a collection is a derived
copy, stamped and repaired from the catalog exactly like the usearch files (see ``vectorset.py``).

Store strings (``--store``): ``milvus-lite:PATH.db`` (embedded; one process at a time) or
``milvus://HOST:PORT/COLLECTION`` (a server or cluster; ``milvus+https://`` for TLS, token from
``PIXSEARCH_MILVUS_TOKEN``). Each named index of a library is one collection ``<COLLECTION>_<name>``, which
records the library's model fingerprint and dimension; another model's collection is refused, never mixed.
Store strings are parsed with the other settings (``config.parse_store``).
"""

from __future__ import annotations

import threading
from collections.abc import Iterator, Sequence
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np

from pixsearch.config import MilvusStore
from pixsearch.errors import CatalogError, ConfigError, ModelMismatchError
from pixsearch.storage.vectors import RESERVED_KEY, _empty, _prepare_add, _queries

__all__ = ["MilvusIndex", "HNSW_PARAMS"]

_FP = "pixsearch.fingerprint"
_DIM = "pixsearch.dim"
_BATCH = 4096  # rows per insert/delete request: well under Milvus's 64 MiB gRPC message limit at dim 384
# Measured on 1M x 256-d synthetic vectors (benchmarks/bench_scale.py): ef 128 gives recall@10 >= 0.98.
HNSW_PARAMS: dict[str, Any] = {"M": 16, "efConstruction": 128}
SEARCH_EF = 128
_clients_lock = threading.Lock()


@lru_cache(maxsize=8)
def _client(uri: str, token: str) -> Any:
    """One client per store per process (Milvus Lite allows one process per file, and one server each)."""
    try:
        from pymilvus import MilvusClient
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise ConfigError("the Milvus store needs pymilvus: pip install 'pixsearch[milvus]'") from exc
    try:
        return MilvusClient(uri=uri, token=token, timeout=10)
    except Exception as exc:  # pymilvus raises its own MilvusException and plain connection errors
        raise CatalogError(f"cannot reach Milvus at {uri}: {_one_line(exc)}") from exc


def _one_line(exc: BaseException) -> str:
    return " ".join(str(exc).split())[:300]


class MilvusIndex:
    """One collection: int64 primary key ``id`` and a FLOAT_VECTOR ``vec``; inner product on unit vectors."""

    def __init__(self, store: MilvusStore, name: str, dim: int, fingerprint: str) -> None:
        self.dim = dim
        self.store = store
        self.collection = f"{store.collection}_{name}"
        self._n: int | None = None  # row count, cached: a stats call costs a few ms per search
        with _clients_lock:
            self._c = _client(store.uri, store.token)
        self._call(self._ensure, fingerprint)

    def _call(self, fn: Any, *a: Any, **kw: Any) -> Any:
        """Every client call: our own errors pass through, Milvus's become one-line CatalogErrors."""
        try:
            return fn(*a, **kw)
        except (CatalogError, ConfigError, ModelMismatchError):
            raise
        except Exception as exc:
            raise CatalogError(f"Milvus {self.store}: {self.collection}: {_one_line(exc)}") from exc

    def _ensure(self, fingerprint: str) -> None:
        c = self._c
        if c.has_collection(self.collection):
            props = c.describe_collection(self.collection).get("properties", {}) or {}
            have_dim, have_fp = str(props.get(_DIM, "")), str(props.get(_FP, ""))
            if have_dim and have_dim != str(self.dim):
                raise ConfigError(
                    f"Milvus collection {self.collection} holds {have_dim}-d vectors, this library "
                    f"needs {self.dim}-d; use another collection or drop it"
                )
            if have_fp and have_fp != fingerprint:
                raise ModelMismatchError(
                    f"Milvus collection {self.collection} was built with model {have_fp.split('|')[0]}, "
                    f"not {fingerprint.split('|')[0]}; use another collection or run `pixsearch reindex`"
                )
            c.load_collection(self.collection)
            return
        from pymilvus import DataType, MilvusClient

        schema = MilvusClient.create_schema(auto_id=False, enable_dynamic_field=False)
        schema.add_field("id", DataType.INT64, is_primary=True)
        schema.add_field("vec", DataType.FLOAT_VECTOR, dim=self.dim)
        ip = c.prepare_index_params()
        ip.add_index(field_name="vec", index_type="HNSW", metric_type="IP", params=HNSW_PARAMS)
        c.create_collection(
            self.collection,
            schema=schema,
            index_params=ip,
            properties={_FP: fingerprint, _DIM: str(self.dim)},
        )

    # -- VectorIndex -------------------------------------------------------------------------------
    def add(self, keys: np.ndarray, vectors: np.ndarray) -> None:
        k, v = _prepare_add(keys, vectors, self.dim)
        self._n = None
        for s in range(0, len(k), _BATCH):
            rows = [
                {"id": int(i), "vec": x} for i, x in zip(k[s : s + _BATCH], v[s : s + _BATCH], strict=True)
            ]
            self._call(self._c.upsert, self.collection, rows)

    def remove(self, keys: np.ndarray) -> None:
        ks = [int(x) for x in np.asarray(keys, dtype=np.int64).reshape(-1)]
        self._n = None
        for s in range(0, len(ks), _BATCH):
            self._call(self._c.delete, self.collection, ids=ks[s : s + _BATCH])

    def search(
        self, query: np.ndarray, k: int, exclude: Sequence[int] | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        """Top-k by inner product; ``exclude`` keys are filtered inside Milvus (e.g. flagged photos)."""
        q, kk = _queries(query, k, self.dim, len(self))
        if kk == 0:
            return _empty(len(q))
        flt = f"id not in [{','.join(str(int(i)) for i in exclude)}]" if exclude else ""
        res = self._call(
            self._c.search,
            self.collection,
            data=[row for row in q],
            limit=kk,
            filter=flt,
            search_params={"metric_type": "IP", "params": {"ef": max(SEARCH_EF, kk)}},
        )
        keys = np.full((len(q), kk), RESERVED_KEY, dtype=np.int64)
        sims = np.full((len(q), kk), -np.inf, dtype=np.float32)
        for r, hits in enumerate(res):
            for j, h in enumerate(hits[:kk]):
                keys[r, j], sims[r, j] = int(h["id"]), float(h["distance"])
        width = int((keys != RESERVED_KEY).sum(axis=1).max()) if len(keys) else 0
        return keys[:, :width], sims[:, :width]

    def get(self, keys: np.ndarray) -> np.ndarray:
        ks = [int(x) for x in np.asarray(keys, dtype=np.int64).reshape(-1)]
        found: dict[int, np.ndarray] = {}
        for s in range(0, len(ks), _BATCH):
            for row in self._call(
                self._c.get, self.collection, ids=ks[s : s + _BATCH], output_fields=["vec"]
            ):
                found[int(row["id"])] = np.asarray(row["vec"], dtype=np.float32)
        missing = [k for k in ks if k not in found]
        if missing:
            raise KeyError(f"keys not in {self.collection}: {missing[:5]}")
        return np.stack([found[k] for k in ks]) if ks else np.zeros((0, self.dim), np.float32)

    def __len__(self) -> int:
        if self._n is None:
            stats = self._call(self._c.get_collection_stats, self.collection)
            self._n = int(stats.get("row_count", 0))
        return self._n

    def __contains__(self, key: int) -> bool:
        return bool(self._call(self._c.get, self.collection, ids=[int(key)], output_fields=["id"]))

    def _iter_keys(self) -> Iterator[int]:
        it = self._c.query_iterator(self.collection, batch_size=16_384, filter="", output_fields=["id"])
        try:
            while batch := it.next():
                yield from (int(r["id"]) for r in batch)
        finally:
            it.close()

    def keys(self) -> np.ndarray:
        return np.fromiter(self._call(lambda: list(self._iter_keys())), dtype=np.int64)

    def save(self, path: Path) -> None:
        """Nothing to write beside the library: make what was added durable in Milvus instead."""
        self._call(self._c.flush, self.collection)

    def reload(self) -> None:
        """Serve searches from the sealed, HNSW-indexed segments: rows still in a growing segment are
        scanned by brute force (20k rows: 190 ms a query before, 11 ms after). A new process gets this on
        open; a long-lived writer calls it after a large batch."""
        self._call(self._c.release_collection, self.collection)
        self._call(self._c.load_collection, self.collection)

    def drop(self) -> None:
        """For ``reindex``: a new model's vectors go to a fresh collection."""
        self._call(self._c.drop_collection, self.collection)
