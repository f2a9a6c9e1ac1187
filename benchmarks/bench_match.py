"""Warm search cost of the match score (#9): fused ranking alone vs Library.search with match on the page.

Usage: python benchmarks/bench_match.py [LIBRARY_DIR] [--queries N]; indexes examples/gallery into a
temporary library when no library is given. Prints JSON (median milliseconds per query).
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from pathlib import Path

from pixsearch import Library
from pixsearch.search.text import TextSearch

QUERIES = [
    "a dog running on the grass",
    "two children playing in the water",
    "a man riding a bike on a dirt road",
    "people walking down a busy street",
    "a red car parked in front of a building",
]


def _ms(fn, n: int, offset: int = 0) -> float:
    """Distinct queries per call (the matcher memoises a query's text vectors: paging is free)."""
    times = []
    for i in range(n):
        q = QUERIES[i % len(QUERIES)] + ("" if i < len(QUERIES) else f" number {offset + i}")
        t = time.perf_counter()
        fn(q)
        times.append((time.perf_counter() - t) * 1000)
    return round(statistics.median(times), 2)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("library", nargs="?")
    ap.add_argument("--queries", type=int, default=30)
    a = ap.parse_args()
    tmp = None
    if a.library is None:
        tmp = tempfile.TemporaryDirectory()
        gallery = Path(__file__).resolve().parents[1] / "examples" / "gallery"
        with Library.open(tmp.name, create=True) as lib:
            lib.add([gallery / "images"], captions_csv=gallery / "captions.csv", generate_captions=False)
    with Library.open(a.library or tmp.name) as lib:

        def fused(q: str) -> None:
            ts = TextSearch(
                lib.catalog,
                lib.encoder,
                lib.vectors.view("images"),
                lib.vectors.view("captions"),
                lib.settings.weights,
            )
            ts.run(q, 10, 0, None)

        lib.search(QUERIES[0])  # warm up models and the scorer
        res = {
            "images": lib.stats()["images"],
            "fused_only_ms": _ms(fused, a.queries),
            "search_with_match_ms": _ms(lambda q: lib.search(q, 10), a.queries, 1000),
            "search_threshold_0.5_ms": _ms(lambda q: lib.search(q, 10, threshold=0.5), a.queries, 2000),
            "load_avg": round(__import__("os").getloadavg()[0], 1),
        }
    print(json.dumps(res))


if __name__ == "__main__":
    main()
