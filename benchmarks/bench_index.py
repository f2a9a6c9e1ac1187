"""Indexing throughput on real Flickr8k photos, then cold and warm search on the library it built.

Prints one JSON object. Usage:
  python benchmarks/bench_index.py [--n 1000] [--data ../shared/data/flickr8k] [--captions] [--no-generate]
``--no-generate`` skips generated captions (the captioner enricher), i.e. measures decode + encode + store.
Rates divide by the photos actually added (``images``), not by ``--n`` (``images_requested``).
The load average is reported because the target machine's 2 cores may be shared.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
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
    ap.add_argument("--no-generate", action="store_true", help="no generated captions (captioner off)")
    ap.add_argument("--cold-runs", type=int, default=5)
    ap.add_argument("--keep", action="store_true", help="keep the library (for more cold-search timing)")
    args = ap.parse_args()
    load_before = os.getloadavg()

    from pixsearch import Library, PixsearchError

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
        ru0 = resource.getrusage(resource.RUSAGE_SELF)
        rep = lib.add(
            [photos], captions_csv=caps_csv, generate_captions=not args.no_generate, follow_links=True
        )  # the photos are links into the data set, outside the folder: follow them
        t_index = time.perf_counter() - t1
        ru1 = resource.getrusage(resource.RUSAGE_SELF)
        cpu_s = (ru1.ru_utime - ru0.ru_utime) + (ru1.ru_stime - ru0.ru_stime)
        model = lib.encoder.name
        queries = [ln.split(",", 1)[1] for ln in caps[:: max(1, len(caps) // args.queries)]][: args.queries]
        print(  # the indexing figures first, in case a search below fails
            json.dumps({"index_seconds": round(t_index, 2), "timings": rep.timings}), file=sys.stderr
        )
        warm: object
        try:
            lib.search(queries[0])  # warm up: load text model and indexes
            warm = warm_search_ms(lib, queries)
        except PixsearchError as exc:
            warm = {"error": str(exc)}

    cold: list[float] = []
    cold_error = None
    env = os.environ.copy()
    for q in queries[: args.cold_runs]:
        s = time.perf_counter()
        r = subprocess.run(
            [sys.executable, "-m", "pixsearch.cli", "search", q, "-L", str(lib_dir), "--json"],
            capture_output=True,
            text=True,
            env=env,
        )
        if r.returncode != 0:  # report it with the indexing figures instead of losing them
            cold_error = (r.stderr.strip().splitlines() or [f"exit {r.returncode}"])[-1]
            break
        cold.append(time.perf_counter() - s)

    # Rates per photo actually indexed, not per photo asked for: a failed, duplicate or skipped photo
    # (or a short data set) costs time but adds nothing, and --n would hide that.
    done = rep.added
    print(
        json.dumps(
            {
                "images_requested": args.n,
                "images_found": len(names),
                "images": done,  # added: what the rates below divide by
                "duplicates": rep.duplicates,
                "captions_indexed": rep.captions_added,
                "model": model,
                "cpus": os.cpu_count(),
                "index_seconds": round(t_index, 2),
                "images_per_second": round(done / t_index, 2) if done else None,
                "split_seconds": {k: round(v, 2) for k, v in rep.timings.items()},
                # CPU seconds the indexing used: on a shared machine, wall time measures the neighbours too.
                # cores / (CPU s per photo) is what the same work gives when the cores are ours alone.
                "cpu_seconds_per_photo": round(cpu_s / done, 4) if done else None,
                "photos_per_second_if_cores_free": (
                    round((os.cpu_count() or 1) / (cpu_s / done), 1) if done and cpu_s else None
                ),
                "library_open_seconds": round(t_open, 3),
                "warm_search_ms": warm,
                "cold_search_seconds": {
                    "median": round(statistics.median(cold), 3) if cold else None,
                    "max": round(max(cold), 3) if cold else None,
                    "runs": len(cold),
                    "error": cold_error,
                    "what": "python -m pixsearch.cli search ... (process start to exit)",
                },
                "failed": len(rep.failed),
                "generated_captions": not args.no_generate,
                "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
                "threads": os.environ.get("PIXSEARCH_THREADS", "all cores"),
                "load_average_before_after": [round(load_before[0], 2), round(os.getloadavg()[0], 2)],
            }
        )
    )
    if args.keep:
        print(f"library kept at {lib_dir}", file=sys.stderr)
    else:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
