"""Indexing throughput on real Flickr8k photos, then cold and warm search on the library it built.

Prints one JSON object. Usage:
  python benchmarks/bench_index.py [--n 1000] [--data ../shared/data/flickr8k] [--captions] [--no-generate]
  python benchmarks/bench_index.py --cold [--n 523] [--runs 3] [--against /tmp/wt-old/src] [--models A,B]
``--no-generate`` skips generated captions (the captioner enricher), i.e. measures decode + encode + store.
Rates divide by the photos actually added (``images``), not by ``--n`` (``images_requested``).
The load average is reported because the target machine's 2 cores may be shared.

``--cold``: ``pixsearch index PHOTOS --json`` in a fresh process per run, a fresh library each time, timed
from process start to exit (what a user waits for on a first command): photos/s, CPU seconds, and the
per-stage table (ms a photo) from the run's own report. N = 523 is the 477 test photos + 46 val photos.
Stages that overlap (the local engine decodes, encodes and checks photos on separate threads) each
count their own busy seconds, so the table can sum to more than the wall time. ``--against SRC`` also
runs another checkout's ``src`` (e.g. a ``git worktree`` of the old code), alternating with this one, so
both see the same load on a shared machine. Each tree gets one untimed warm-up run first, with bytecode
caching on: "cold" is a fresh process of an installed package, not a first import ever.
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
    ap.add_argument("--cold", action="store_true", help="time `pixsearch index` start to exit, per stage")
    ap.add_argument("--runs", type=int, default=3, help="--cold: timed runs per source tree")
    ap.add_argument("--against", type=Path, help="--cold: another checkout's src/ to time, interleaved")
    ap.add_argument("--models", default="", help="--cold: comma-separated models to time, interleaved")
    args = ap.parse_args()
    if args.cold:
        cold_index(args)
        return
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


# The indexer's report names, in the order of the per-stage table (``store`` is the catalog's transaction,
# ``vectors`` the vector index: older code counted both as ``store``).
STAGES = {
    "decode": "decode",
    "encode": "encode",
    "labels": "labels",
    "policy": "policy",
    "captions": "captions",
    "metadata": "metadata",
    "store": "catalog_write",
    "vectors": "vector_index_write",
}


def _cold_run(src: Path, photos: Path, lib: Path, model: str = "") -> dict:
    """One ``pixsearch index`` process: ``photos`` into a new library ``lib``, ``src`` first on the path
    (``model``: that model instead of the default, through ``PIXSEARCH_MODEL``)."""
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    env["PYTHONPATH"] = str(src)
    if model:
        env["PIXSEARCH_MODEL"] = model
    cmd = [sys.executable, "-m", "pixsearch.cli", "index", str(photos), "--follow-links", "-L", str(lib)]
    cmd.append("--json")
    shutil.rmtree(lib, ignore_errors=True)
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    r = subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=tempfile.gettempdir())
    wall = time.perf_counter() - t0
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if r.returncode != 0:
        raise SystemExit(f"{src}: exit {r.returncode}: {(r.stderr.strip().splitlines() or [''])[-1]}")
    rep = json.loads(r.stdout)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    n = rep["added"]
    return {
        "seconds": round(wall, 3),
        "photos_per_second": round(n / wall, 1),
        "cpu_ms_per_photo": round(cpu / n * 1000, 2),
        "cores_busy": round(cpu / wall, 2),  # CPU s / wall s: how well the run kept the cores it got busy
        "added": n,
        "failed": len(rep["failed"]),
        "ms_per_photo": {STAGES.get(k, k): round(v / n * 1000, 2) for k, v in rep["timings"].items()},
        "load_1m": round(os.getloadavg()[0], 2),
    }


def _summary(runs: list[dict]) -> dict:
    stages = dict.fromkeys(k for r in runs for k in r["ms_per_photo"])
    return {
        "photos_per_second_median": statistics.median(r["photos_per_second"] for r in runs),
        "seconds_median": statistics.median(r["seconds"] for r in runs),
        "cpu_ms_per_photo_median": statistics.median(r["cpu_ms_per_photo"] for r in runs),
        "ms_per_photo_median": {
            k: round(statistics.median(r["ms_per_photo"].get(k, 0.0) for r in runs), 2) for k in stages
        },
    }


def cold_index(args: argparse.Namespace) -> None:
    """``--cold``: see the module docstring."""
    names = (args.data / "test.txt").read_text().split() + (args.data / "val.txt").read_text().split()
    names = names[: args.n if args.n != 1000 else 523]  # --n's default belongs to the in-process mode
    tmp = Path(tempfile.mkdtemp(prefix="pixbench-cold-"))
    photos = tmp / "photos"
    photos.mkdir()
    for n in names:
        os.symlink((args.data / "images" / n).absolute(), photos / n)
    trees = {"this": ROOT / "src"}
    if args.against:
        trees["against"] = args.against.absolute()
    models = [m for m in args.models.split(",") if m] or [""]
    variants = {f"{t}{'/' + m if m else ''}": (src, m) for t, src in trees.items() for m in models}
    load_before = os.getloadavg()[0]
    runs: dict[str, list[dict]] = {k: [] for k in variants}
    try:
        for i, (src, m) in enumerate(variants.values()):  # warm-up: bytecode, page cache, for all alike
            _cold_run(src, photos, tmp / f"lib-{i}", m)
        for _ in range(args.runs):
            for i, (name, (src, m)) in enumerate(variants.items()):
                runs[name].append(_cold_run(src, photos, tmp / f"lib-{i}", m))
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    print(
        json.dumps(
            {
                "photos": len(names),
                "what": "pixsearch index PHOTOS --json, process start to exit, fresh library each run",
                "threads": os.environ.get("PIXSEARCH_THREADS", "all cores"),
                "cpus": os.cpu_count(),
                "load_average_before_after": [round(load_before, 2), round(os.getloadavg()[0], 2)],
                "trees": {k: str(v) for k, v in trees.items()},
                "summary": {k: _summary(v) for k, v in runs.items()},
                "runs": runs,
            }
        )
    )


if __name__ == "__main__":
    main()
