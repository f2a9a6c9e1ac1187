"""Benchmark the vector backends: build time, warm single-query latency and recall@k.

Data is a seeded mixture of Gaussians on the unit sphere (photo embeddings cluster by subject, and uniform
random vectors make HNSW look worse than it is on real data). Queries come from the same mixture but are
not in the index. Ground truth is an exact float32 scan. Prints one JSON object on stdout.

    python benchmarks/bench_vectors.py --sizes 1000 100000
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np
from _timing import index_search_ms, machine

from pixsearch.storage.vectors import UsearchParams, create_index

CONFIGS: list[tuple[str, str]] = [("usearch", "f16"), ("usearch", "i8"), ("exact", "f16")]


def mixture(rng: np.random.Generator, centers: np.ndarray, n: int, spread: float) -> np.ndarray:
    """``spread`` is the noise norm relative to the unit centre: 1.0 puts points ~45 degrees off it."""
    dim = centers.shape[1]
    x = centers[rng.integers(len(centers), size=n)] + rng.normal(size=(n, dim)) * (spread / np.sqrt(dim))
    return (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)


def centers_and_queries(
    seed: int, clusters: int, dim: int, n_queries: int, spread: float
) -> tuple[np.ndarray, np.ndarray]:
    """The mixture's unit centres and the queries drawn from it: a pure function of ``seed``, so every
    size (and every script that uses this data) searches with the same queries."""
    rng = np.random.default_rng(seed)
    centers = rng.normal(size=(clusters, dim))
    centers /= np.linalg.norm(centers, axis=1, keepdims=True)
    return centers, mixture(rng, centers, n_queries, spread)


def ground_truth(base: np.ndarray, queries: np.ndarray, k: int) -> np.ndarray:
    scores = queries @ base.T
    part = np.argpartition(-scores, k - 1, axis=1)[:, :k]
    return part  # row ids == keys: the benchmark uses keys 0..n-1


def bench_one(
    backend: str,
    dtype: str,
    base: np.ndarray,
    queries: np.ndarray,
    truth: np.ndarray,
    k: int,
    params: UsearchParams,
    warmup: int,
) -> dict[str, Any]:
    t0 = time.perf_counter()
    index = create_index(backend, base.shape[1], dtype, params=params)
    index.add(np.arange(len(base), dtype=np.int64), base)
    build_s = time.perf_counter() - t0
    measured = index_search_ms(index.search, queries, truth, k, warmup, digits=4)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "index"
        index.save(path)
        size = path.stat().st_size
    return {
        "backend": backend,
        "dtype": dtype,
        "n": len(base),
        "build_s": round(build_s, 3),
        **measured,
        "file_mib": round(size / 2**20, 2),
    }


def bench_faiss(
    base: np.ndarray, queries: np.ndarray, truth: np.ndarray, k: int, params: UsearchParams
) -> dict:
    """faiss HNSW (float32, inner product) with the same graph settings, for the usearch-vs-faiss choice.

    faiss is not a pixsearch dependency: ``pip install faiss-cpu`` to include it (``--faiss``).
    """
    import faiss  # type: ignore[import-not-found]

    t0 = time.perf_counter()
    index = faiss.IndexHNSWFlat(base.shape[1], params.connectivity, faiss.METRIC_INNER_PRODUCT)
    index.hnsw.efConstruction = params.expansion_add
    index.add(base.astype(np.float32))
    build_s = time.perf_counter() - t0
    index.hnsw.efSearch = params.expansion_search
    rows = queries[:, None].astype(np.float32)  # faiss searches (1, dim) float32 rows
    return {
        "backend": f"faiss-hnsw {faiss.__version__}",
        "dtype": "f32",
        "n": len(base),
        "build_s": round(build_s, 3),
        **index_search_ms(index.search, rows, truth, k, warmup=0, digits=4, ids_at=1),
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", type=int, nargs="+", default=[1_000, 100_000])
    ap.add_argument("--dim", type=int, default=256)
    ap.add_argument("--queries", type=int, default=200)
    ap.add_argument("--k", type=int, default=10)
    ap.add_argument("--clusters", type=int, default=100)
    ap.add_argument("--spread", type=float, default=1.0)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--warmup", type=int, default=20)
    defaults = UsearchParams()
    ap.add_argument("--connectivity", type=int, default=defaults.connectivity)
    ap.add_argument("--expansion-add", type=int, default=defaults.expansion_add)
    ap.add_argument("--expansion-search", type=int, default=defaults.expansion_search)
    ap.add_argument("--faiss", action="store_true", help="also measure faiss HNSW (needs faiss-cpu)")
    ap.add_argument("--configs", nargs="+", default=[f"{b}:{d}" for b, d in CONFIGS], help="backend:dtype")
    args = ap.parse_args(argv)

    params = UsearchParams(args.connectivity, args.expansion_add, args.expansion_search)
    configs = [(c.split(":")[0], c.split(":")[-1]) for c in args.configs]
    centers, queries = centers_and_queries(args.seed, args.clusters, args.dim, args.queries, args.spread)
    results = []
    for n in args.sizes:
        base = mixture(np.random.default_rng([args.seed, n]), centers, n, args.spread)
        truth = ground_truth(base, queries, args.k)
        for backend, dtype in configs:
            results.append(bench_one(backend, dtype, base, queries, truth, args.k, params, args.warmup))
        if args.faiss:
            results.append(bench_faiss(base, queries, truth, args.k, params))

    import usearch

    report = {
        "dim": args.dim,
        "k": args.k,
        "queries": args.queries,
        "clusters": args.clusters,
        "spread": args.spread,
        "seed": args.seed,
        "usearch_params": asdict(params),
        "env": machine(numpy=np.__version__, usearch=usearch.__version__),
        "results": results,
    }
    json.dump(report, sys.stdout)
    sys.stdout.write("\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
