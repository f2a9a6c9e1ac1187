"""Indexing photos/s: the local engine against `--engine ray` on the same real photos.

Both runs index the same N Flickr8k photos into fresh libraries (generated captions only with
``--caption``). Locally everything runs in one process; with Ray the workers decode, encode, caption and
run the photo policy's pixel checks, and the writer writes (labels and caption checks stay on it). Ray
runs on a local cluster started here unless ``--address`` names one. Prints one JSON object on stdout.

    python benchmarks/bench_ray.py --n 2000 --data ../shared/data/flickr8k
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

from pixsearch import Library
from pixsearch.indexing.ray_engine import RayEngine


def _run(lib_dir: Path, photos: list[Path], engine: RayEngine | None, caption: bool) -> dict[str, float]:
    with Library.open(lib_dir) as lib:
        t = time.perf_counter()
        rep = lib.add(photos, generate_captions=caption, engine=engine)
        wall = time.perf_counter() - t
    return {
        "added": rep.added,
        "failed": len(rep.failed),
        "wall_s": round(wall, 1),
        "photos_per_s": round(rep.added / wall, 2),
        "timings": {k: round(v, 1) for k, v in rep.timings.items()},
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=2000)
    ap.add_argument("--data", type=Path, default=Path(__file__).parents[2] / "shared/data/flickr8k")
    ap.add_argument("--address", default=None)
    ap.add_argument("--workers", type=int, default=None)
    ap.add_argument("--batch-size", type=int, default=32)
    ap.add_argument("--caption", action="store_true", help="generate captions at index time")
    args = ap.parse_args(argv)
    photos = sorted((args.data / "images").glob("*.jpg"))[: args.n]
    if len(photos) < args.n:
        print(f"only {len(photos)} photos under {args.data}/images", file=sys.stderr)
    out: dict = {
        "n": len(photos),
        "caption": args.caption,
        "cpus": os.cpu_count(),
        "load_avg_1m_start": round(os.getloadavg()[0], 2),
    }
    with tempfile.TemporaryDirectory() as tmp:
        out["local"] = _run(Path(tmp) / "local", photos, None, args.caption)
        eng = RayEngine(args.address, args.workers, 1, args.batch_size)
        out["ray"] = _run(Path(tmp) / "ray", photos, eng, args.caption)
    out["load_avg_1m_end"] = round(os.getloadavg()[0], 2)
    print(json.dumps(out))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
