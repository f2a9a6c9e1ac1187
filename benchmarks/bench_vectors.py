"""Benchmark the vector backends: build time, warm single-query latency and recall@k.

Data is a seeded mixture of Gaussians on the unit sphere (photo embeddings cluster by subject, and uniform
random vectors make HNSW look worse than it is on real data). Queries come from the same mixture but are
not in the index. Ground truth is an exact float32 scan. Prints one JSON object on stdout.

    python benchmarks/bench_vectors.py --sizes 1000 100000
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
import time
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np

from pixsearch.index.vectors import UsearchParams, create_index

CONFIGS: list[tuple[str, str]] = [("usearch", "f16"), ("usearch", "i8"), ("exact", "f16")]


def mixture(rng: np.random.Generator, centers: np.ndarray, n: int, spread: float) -> np.ndarray:
    """``spread`` is the noise norm relative to the unit centre: 1.0 puts points ~45 degrees off it."""
    dim = centers.shape[1]
    x = centers[rng.integers(len(centers), size=n)] + rng.normal(size=(n, dim)) * (spread / np.sqrt(dim))
    return (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)


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
    for q in queries[:warmup]:
        index.search(q, k)
    lat, hits = [], 0
    for q, want in zip(queries, truth, strict=True):
        t = time.perf_counter_ns()
        got, _ = index.search(q, k)
        lat.append((time.perf_counter_ns() - t) / 1e6)
        hits += len(np.intersect1d(got[0], want))
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "index"
        index.save(path)
        size = path.stat().st_size
    return {
        "backend": backend,
        "dtype": dtype,
        "n": len(base),
        "build_s": round(build_s, 3),
        "p50_ms": round(float(np.percentile(lat, 50)), 4),
        "p99_ms": round(float(np.percentile(lat, 99)), 4),
        f"recall_at_{k}": round(hits / (len(queries) * k), 4),
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
    lat, hits = [], 0
    for q, want in zip(queries, truth, strict=True):
        t = time.perf_counter_ns()
        _, got = index.search(q[None].astype(np.float32), k)
        lat.append((time.perf_counter_ns() - t) / 1e6)
        hits += len(np.intersect1d(got[0], want))
    return {
        "backend": f"faiss-hnsw {faiss.__version__}",
        "dtype": "f32",
        "n": len(base),
        "build_s": round(build_s, 3),
        "p50_ms": round(float(np.percentile(lat, 50)), 4),
        "p99_ms": round(float(np.percentile(lat, 99)), 4),
        f"recall_at_{k}": round(hits / (len(queries) * k), 4),
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
    rng = np.random.default_rng(args.seed)
    centers = rng.normal(size=(args.clusters, args.dim))
    centers /= np.linalg.norm(centers, axis=1, keepdims=True)
    queries = mixture(rng, centers, args.queries, args.spread)
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
        "env": {
            "python": platform.python_version(),
            "numpy": np.__version__,
            "usearch": usearch.__version__,
            "cpus": os.cpu_count(),
            "load_avg_1m": round(os.getloadavg()[0], 2),
        },
        "results": results,
    }
    json.dump(report, sys.stdout)
    sys.stdout.write("\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
