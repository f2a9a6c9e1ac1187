"""A whole library on the default store against Milvus Lite: indexing and warm search through the CLI/Library.

Why: ``bench_scale.py`` measures the vector stores alone at 1M synthetic vectors; this measures what a user
of a small library pays for ``--store milvus-lite:...`` end to end (the ``store`` step of indexing, the
per-query ANN call, ``Library.search`` with fusion), on the 100 real gallery photos. Each step runs in its
own process. Prints one JSON object.

    python benchmarks/bench_store_library.py [--work /tmp/bench-store]
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import time
from pathlib import Path

GALLERY = Path(__file__).resolve().parents[1] / "examples" / "gallery"

_PROBE = """
import json, sys, time
import numpy as np
from pixsearch import Library
lib = Library.open(sys.argv[1])
qs = ["a dog running", "children playing", "a man on a bike", "people at the beach", "a red car"] * 8
lib.search(qs[0], 10)
ts = []
for q in qs:
    t = time.perf_counter(); lib.search(q, 10); ts.append((time.perf_counter() - t) * 1000)
idx = lib.vectors.get("images")
_, vecs = lib.catalog.image_vectors(lib.encoder.dim, None)
ann = []
for x in vecs[:50]:
    t = time.perf_counter(); idx.search(x, 10); ann.append((time.perf_counter() - t) * 1000)
p = lambda a, q: round(float(np.percentile(a, q)), 2)
print(json.dumps({"search_p50_ms": p(ts, 50), "search_p99_ms": p(ts, 99),
                  "ann_p50_ms": p(ann, 50), "ann_p99_ms": p(ann, 99)}))
"""


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--work", type=Path, default=Path("/tmp/bench-store-library"))
    args = ap.parse_args()
    shutil.rmtree(args.work, ignore_errors=True)
    args.work.mkdir(parents=True)
    out: dict[str, object] = {}
    for name, store in (("local", None), ("milvus-lite", f"milvus-lite:{args.work / 'vectors.db'}")):
        lib = args.work / f"lib-{name}"
        cmd = [sys.executable, "-m", "pixsearch.cli", "index", str(GALLERY / "images")]
        cmd += ["--captions", str(GALLERY / "captions.csv"), "-L", str(lib), "--json"]
        cmd += ["--store", store] if store else []
        t = time.perf_counter()
        rep = json.loads(subprocess.run(cmd, capture_output=True, text=True, check=True).stdout)
        wall = time.perf_counter() - t
        probe = subprocess.run(
            [sys.executable, "-c", _PROBE, str(lib)], capture_output=True, text=True, check=True
        )
        out[name] = {
            "index_wall_s": round(wall, 1),
            "added": rep["added"],
            "timings": rep["timings"],
            **json.loads(probe.stdout.strip().splitlines()[-1]),
        }
    print(json.dumps(out))


if __name__ == "__main__":
    main()
