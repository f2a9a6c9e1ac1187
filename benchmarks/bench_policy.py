"""Benchmark: what the content policy's query check adds to a warm query (prints JSON).

For every query of a labelled CSV (default tests/data/policy_queries.csv), in the restricted region,
after ``Policy.warm()`` (models and prototypes loaded, as in a running server):

* ``first``: the check of a query seen for the first time (rules, then the semantic model when the
  rules do not block): wall and CPU ms, p50/p99/mean;
* ``repeat``: the same query again (the verdict cache: paging, refresh);
* ``rules_only``: normalisation + lexicon + ages alone;
* ``default_region``: the unrestricted region (no check at all);
* with ``--library DIR``: warm ``Library.search`` in the default and the restricted region, to show
  the added time next to a real query.

CPU ms (``time.process_time``) are reported beside wall ms because this machine's 2 cores are shared:
wall time there includes waiting for other processes. One BLAS thread (set before numpy loads).

    python benchmarks/bench_policy.py [--queries FILE.csv] [--library DIR] [--repeat 3]
"""

from __future__ import annotations

import os

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

# onnxruntime before usearch: loading them the other way round segfaults in this environment (seen with
# onnxruntime 1.30 + usearch's numkong); the search path below loads both.
import argparse  # noqa: E402
import json  # noqa: E402
import time  # noqa: E402
from collections.abc import Callable  # noqa: E402

import numpy as np  # noqa: E402
import onnxruntime  # noqa: E402, F401

from pixsearch.evaluation.policy_queries import read_queries  # noqa: E402
from pixsearch.policy.rules import MINORS, load_policy  # noqa: E402


def timed(fn: Callable[[str], object], queries: list[str], repeat: int = 1) -> dict[str, float]:
    wall, cpu = [], []
    for _ in range(repeat):
        for q in queries:
            t, c = time.perf_counter(), time.process_time()
            fn(q)
            cpu.append(time.process_time() - c)
            wall.append(time.perf_counter() - t)
    w, c = np.array(wall) * 1e3, np.array(cpu) * 1e3
    return {
        "n": len(w),
        "wall_p50_ms": round(float(np.percentile(w, 50)), 3),
        "wall_p99_ms": round(float(np.percentile(w, 99)), 3),
        "wall_mean_ms": round(float(w.mean()), 3),
        "cpu_p50_ms": round(float(np.percentile(c, 50)), 3),
        "cpu_p99_ms": round(float(np.percentile(c, 99)), 3),
        "cpu_mean_ms": round(float(c.mean()), 3),
    }


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--queries", default="tests/data/policy_queries.csv")
    ap.add_argument("--library", default=None, help="an indexed library: also time warm Library.search")
    ap.add_argument("--repeat", type=int, default=3)
    a = ap.parse_args()
    queries = [r.query for r in read_queries(a.queries)]
    out: dict[str, object] = {"queries": len(queries)}

    t = time.perf_counter()
    pol = load_policy(region="restricted")
    out["load_policy_ms"] = round((time.perf_counter() - t) * 1e3, 1)
    t = time.perf_counter()
    pol.warm()
    out["warm_s"] = round(time.perf_counter() - t, 3)
    checker = pol.checker(MINORS)
    sem = checker.semantic

    # first sight: a fresh cache for every pass
    passes = []
    for _ in range(a.repeat):
        if sem is not None:
            sem._cache.clear()
        passes.append(timed(pol.check_query, queries))
    out["first"] = {k: round(float(np.median([p[k] for p in passes])), 3) for k in passes[0]}
    out["first"]["n"] = len(queries)
    out["repeat"] = timed(pol.check_query, queries, a.repeat)
    out["rules_only"] = timed(checker.rule_verdict, queries, a.repeat)
    out["default_region"] = timed(pol.with_region("default").check_query, queries, a.repeat)
    blocked_by_rules = sum(checker.rule_verdict(q) is not None for q in queries)
    out["share_reaching_semantic"] = round(1 - blocked_by_rules / len(queries), 3)

    if a.library:
        from pixsearch import Library
        from pixsearch.config import load_settings
        from pixsearch.errors import BlockedError

        allowed = [q for q in queries if not pol.check_query(q).blocked][:60]
        res: dict[str, object] = {"queries": len(allowed)}
        for region in ("default", "restricted"):
            lib = Library.open(settings=load_settings(library=a.library, region=region))
            lib.policy.warm()
            for q in allowed[:5]:
                lib.search(q)  # warm the encoder and indexes

            def search(q: str, lib: Library = lib) -> None:
                try:
                    lib.search(q, k=10)
                except BlockedError:
                    pass

            if lib.policy.restricted and lib.policy.checker(MINORS).semantic is not None:
                lib.policy.checker(MINORS).semantic._cache.clear()  # type: ignore[union-attr]
            res[region] = timed(search, allowed, 1)
            lib.close()
        out["library_search"] = res
    print(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()
