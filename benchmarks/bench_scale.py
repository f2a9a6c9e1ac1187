"""Vector stores at scale: the default store (usearch f16 / i8) against Milvus Lite, at up to 1M vectors.

For each store: build time, on-disk size, memory (peak RSS growth of the process that holds the index; for
Milvus Lite that is its server process), warm single-query p50/p99 and recall@10 against an exact float32
scan. Data as in ``bench_vectors.py``: a seeded mixture of Gaussians on the unit sphere at the shipped
model's dimension (256). Each store runs in its own child process so memory figures do not mix. Prints one
JSON object on stdout.

    python benchmarks/bench_scale.py --n 1000000
    python benchmarks/bench_scale.py --n 20000 --stores usearch:f16 milvus-lite
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))
from _timing import index_search_ms, machine  # noqa: E402
from bench_vectors import centers_and_queries, ground_truth, mixture  # noqa: E402

STORES = ["usearch:f16", "usearch:i8", "milvus-lite"]


def _rss_mib(pid: int) -> float:
    """Resident memory of a process now (Linux /proc), in MiB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def _children_rss_mib() -> float:
    """RSS of this process's child processes (Milvus Lite runs its engine in one)."""
    total = 0.0
    me = str(os.getpid())
    for d in Path("/proc").iterdir():
        if not d.name.isdigit():
            continue
        try:
            stat = (d / "stat").read_text()
        except OSError:
            continue
        if stat.rsplit(")", 1)[1].split()[1] == me:
            total += _rss_mib(int(d.name))
    return total


def _data(args: argparse.Namespace) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    centers, queries = centers_and_queries(args.seed, args.clusters, args.dim, args.queries, args.spread)
    base = np.empty((args.n, args.dim), dtype=np.float32)
    step = 100_000
    for s in range(0, args.n, step):  # chunked: the generator's float64 scratch stays small
        m = min(step, args.n - s)
        base[s : s + m] = mixture(np.random.default_rng([args.seed, s]), centers, m, args.spread)
    truth = np.concatenate(
        [ground_truth(base, queries[i : i + 50], args.k) for i in range(0, len(queries), 50)]
    )
    return base, queries, truth


def run_one(store: str, args: argparse.Namespace) -> dict[str, Any]:
    base, queries, truth = _data(args)
    keys = np.arange(1, len(base) + 1, dtype=np.int64)
    truth = truth + 1  # keys start at 1 (0 is fine too; ids in a library start at 1)
    rss0 = _rss_mib(os.getpid())
    with tempfile.TemporaryDirectory(dir=args.tmp) as tmp:
        t0 = time.perf_counter()
        if store.startswith("usearch"):
            from pixsearch.storage.vectors import create_index

            index: Any = create_index("usearch", args.dim, store.split(":")[1])
            index.add(keys, base)
            build = time.perf_counter() - t0
            mem = _rss_mib(os.getpid()) - rss0  # the data was allocated before rss0: this is the index
            path = Path(tmp) / "images.usearch"
            index.save(path)
            disk = path.stat().st_size
            del base
        else:
            from pixsearch.config import parse_store
            from pixsearch.storage.milvus import MilvusIndex

            index = MilvusIndex(parse_store(f"milvus-lite:{tmp}/bench.db"), "images", args.dim, "bench|x")
            for s in range(0, len(base), 50_000):
                index.add(keys[s : s + 50_000], base[s : s + 50_000])
            index.save(Path(tmp))
            index.reload()  # as a fresh process opening the library would: searches hit the HNSW index
            build = time.perf_counter() - t0
            disk = sum(f.stat().st_size for f in Path(tmp).rglob("*") if f.is_file())
            # Milvus Lite runs in this process (and any child it starts): count both
            mem = _rss_mib(os.getpid()) + _children_rss_mib() - rss0
            del base
        res: dict[str, Any] = index_search_ms(index.search, queries, truth, args.k, args.warmup, digits=3)
        if store.startswith("usearch") and args.ef:  # the same graph searched with other beam widths
            res["ef_sweep"] = []
            for ef in args.ef:
                index._index.expansion_search = ef
                swept = index_search_ms(index.search, queries, truth, args.k, 0, digits=3)
                res["ef_sweep"].append({"expansion_search": ef, **swept})
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return {
        "store": store,
        "n": args.n,
        "build_s": round(build, 1),
        "disk_mib": round(disk / 2**20, 1),
        "index_rss_mib": round(mem, 1),
        "process_peak_rss_mib": round(peak, 1),
        **res,
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=1_000_000)
    ap.add_argument("--dim", type=int, default=256)
    ap.add_argument("--queries", type=int, default=300)
    ap.add_argument("--k", type=int, default=10)
    ap.add_argument("--clusters", type=int, default=1000)
    ap.add_argument("--spread", type=float, default=1.0)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--warmup", type=int, default=30)
    ap.add_argument("--stores", nargs="+", default=STORES)
    ap.add_argument("--ef", type=int, nargs="*", default=[], help="usearch: also search with these beams")
    ap.add_argument("--tmp", default=None, help="where index files go (default: the system temp dir)")
    ap.add_argument("--one", help=argparse.SUPPRESS)  # child mode: one store, JSON line out
    args = ap.parse_args(argv)
    if args.one:
        print(json.dumps(run_one(args.one, args)))
        return 0
    results = []
    for store in args.stores:
        cmd = [sys.executable, __file__, "--one", store] + [
            a
            for a in (argv if argv is not None else sys.argv[1:])
            if a not in args.stores and a != "--stores"
        ]
        t = time.perf_counter()
        p = subprocess.run(cmd, capture_output=True, text=True)
        if p.returncode != 0:
            results.append({"store": store, "error": p.stderr.strip().splitlines()[-1:]})
            continue
        row = json.loads(p.stdout.strip().splitlines()[-1])
        row["wall_s"] = round(time.perf_counter() - t, 1)
        results.append(row)
    report = {
        "n": args.n,
        "dim": args.dim,
        "k": args.k,
        "queries": args.queries,
        "env": machine(),
        "results": results,
    }
    print(json.dumps(report))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
