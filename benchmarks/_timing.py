"""Shared by the benchmark scripts: warm search latency through ``Library.search``."""

from __future__ import annotations

import statistics
import time
from typing import Any


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
