"""Indexing throughput on real Flickr8k photos, then cold and warm search on the library it built.

Prints one JSON object. Usage: python benchmarks/bench_index.py [--n 1000] [--data ../shared/data/flickr8k]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from _timing import warm_search_ms

ROOT = Path(__file__).resolve().parents[1]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=1000)
    ap.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "data" / "flickr8k")
    ap.add_argument("--captions", action="store_true", help="also index the photos' 5 captions each")
    ap.add_argument("--queries", type=int, default=100)
    args = ap.parse_args()

    from pixsearch import Library

    names = ((args.data / "test.txt").read_text().split() + (args.data / "val.txt").read_text().split())[
        : args.n
    ]
    tmp = Path(tempfile.mkdtemp(prefix="pixbench-"))
    photos = tmp / "photos"
    photos.mkdir()
    for n in names:
        os.symlink(args.data / "images" / n, photos / n)
    caps_csv = None
    lines = (args.data / "captions.csv").read_text().splitlines()
    keep = set(names)
    caps = [ln for ln in lines[1:] if ln.split(",", 1)[0] in keep]
    if args.captions:
        caps_csv = tmp / "captions.csv"
        caps_csv.write_text("\n".join([lines[0], *caps]) + "\n")

    lib_dir = tmp / "lib"
    t0 = time.perf_counter()
    with Library.open(lib_dir) as lib:
        t_open = time.perf_counter() - t0
        t1 = time.perf_counter()
        rep = lib.add([photos], captions_csv=caps_csv)
        t_index = time.perf_counter() - t1
        model = lib.encoder.name
        queries = [ln.split(",", 1)[1] for ln in caps[:: max(1, len(caps) // args.queries)]][: args.queries]
        lib.search(queries[0])  # warm up: load text model and indexes
        warm = warm_search_ms(lib, queries)

    cold = []
    env = os.environ.copy()
    for q in queries[:5]:
        s = time.perf_counter()
        subprocess.run(
            [sys.executable, "-m", "pixsearch.cli", "search", q, "-L", str(lib_dir), "--json"],
            check=True,
            capture_output=True,
            env=env,
        )
        cold.append(time.perf_counter() - s)

    print(
        json.dumps(
            {
                "images": args.n,
                "captions_indexed": rep.captions_added,
                "model": model,
                "cpus": os.cpu_count(),
                "index_seconds": round(t_index, 2),
                "images_per_second": round(args.n / t_index, 2),
                "split_seconds": {k: round(v, 2) for k, v in rep.timings.items()},
                "library_open_seconds": round(t_open, 3),
                "warm_search_ms": warm,
                "cold_search_seconds": {
                    "median": round(statistics.median(cold), 3),
                    "max": round(max(cold), 3),
                    "runs": len(cold),
                    "what": "python -m pixsearch.cli search ... (process start to exit)",
                },
                "failed": len(rep.failed),
            }
        )
    )
    shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
