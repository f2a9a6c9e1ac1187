"""Shared by the benchmark scripts: warm search latency (through ``Library.search`` or a bare vector index)
and the machine a figure was measured on, so every script measures and reports them the same way."""

from __future__ import annotations

import os
import platform
import statistics
import time
from collections.abc import Callable
from typing import Any

import numpy as np


def warm_search_ms(lib: Any, queries: list[str], k: int = 10) -> dict[str, float]:
    """p50/p99 in milliseconds over ``queries`` (call once beforehand to warm models and indexes)."""
    lat = []
    for q in queries:
        s = time.perf_counter()
        lib.search(q, k=k)
        lat.append((time.perf_counter() - s) * 1000)
    lat.sort()
    return {
        "p50": round(statistics.median(lat), 2),
        "p99": round(lat[int(0.99 * (len(lat) - 1))], 2),
        "queries": len(lat),
    }


def index_search_ms(
    search: Callable[[Any, int], Any],
    queries: np.ndarray,
    truth: np.ndarray,
    k: int,
    warmup: int,
    digits: int,
    ids_at: int = 0,
) -> dict[str, float]:
    """Warm single-query p50/p99 (ms, rounded to ``digits``) and recall@k of a vector index's ``search``.

    ``search(q, k)`` returns a tuple whose item ``ids_at`` holds the ids found (a row per query: pixsearch
    indexes return (keys, distances), faiss (distances, ids)); ``truth`` holds the ``k`` exact ids per query.
    Only the call itself is timed. The first ``warmup`` queries run once untimed beforehand.
    """
    for q in queries[:warmup]:
        search(q, k)
    lat, hits = [], 0
    for q, want in zip(queries, truth, strict=True):
        t = time.perf_counter_ns()
        found = search(q, k)
        lat.append((time.perf_counter_ns() - t) / 1e6)
        hits += len(np.intersect1d(found[ids_at][0], want))
    return {
        "p50_ms": round(float(np.percentile(lat, 50)), digits),
        "p99_ms": round(float(np.percentile(lat, 99)), digits),
        f"recall_at_{k}": round(hits / (len(queries) * k), 4),
    }


def machine(**versions: str) -> dict[str, Any]:
    """Python (and the given library versions), CPU count and load: a figure means little without them."""
    return {
        "python": platform.python_version(),
        **versions,
        "cpus": os.cpu_count(),
        "load_avg_1m": round(os.getloadavg()[0], 2),
    }
