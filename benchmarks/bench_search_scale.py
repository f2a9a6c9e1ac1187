"""Warm search latency through the whole Library pipeline at scale, on a synthetic library.

Images get clustered random unit vectors, captions are real Flickr8k sentences (so BM25 has real text)
with random unit embeddings. Prints one JSON object. Usage:
    python benchmarks/bench_search_scale.py [--n 100000] [--queries 200]
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from _timing import warm_search_ms

ROOT = Path(__file__).resolve().parents[1]


def unit(rng: np.random.Generator, n: int, d: int, centers: np.ndarray) -> np.ndarray:
    x = centers[rng.integers(0, len(centers), n)] + 0.7 * rng.normal(size=(n, d)).astype(np.float32)
    return (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=100_000)
    ap.add_argument("--queries", type=int, default=200)
    ap.add_argument("--backend", default="usearch", choices=["usearch", "exact"])
    ap.add_argument("--keep", action="store_true", help="keep the synthetic library (path on stderr)")
    args = ap.parse_args()

    from pixsearch import Library
    from pixsearch.config import load_settings

    rng = np.random.default_rng(0)
    texts = (ROOT / "examples" / "gallery" / "captions.csv").read_text().splitlines()[1:]
    texts = [t.split(",", 1)[1] for t in texts]
    lib_dir = Path(tempfile.mkdtemp(prefix="pixscale-"))
    # A new library records the default model; synthetic rows go straight into its catalog and the
    # timed open below builds the vector indexes from it.
    filling = Library.open(lib_dir)
    enc, cat = filling.encoder, filling.catalog
    t0 = time.perf_counter()
    img_c = rng.normal(size=(200, enc.dim)).astype(np.float32)
    cap_c = rng.normal(size=(200, enc.caption_dim)).astype(np.float32)
    step = 10_000
    with cat.transaction():
        for s in range(0, args.n, step):
            m = min(step, args.n - s)
            iv = unit(rng, m, enc.dim, img_c)
            cv = unit(rng, m, enc.caption_dim, cap_c)
            jv = unit(rng, m, enc.dim, img_c) if enc.cross_modal else None
            for j in range(m):
                i = cat.add_image(f"h{s + j}", 500, 375, None, iv[j])
                cat.set_path(f"/synthetic/{s + j}.jpg", i, 1, 1)
                cat.add_captions(
                    i,
                    [
                        (
                            f"{texts[(s + j) % len(texts)]} #{s + j}",
                            "human",
                            cv[j],
                            None if jv is None else jv[j],
                        )
                    ],
                )
        cat.bump_generation()
    filling.close()
    t_fill = time.perf_counter() - t0

    settings = load_settings(library=lib_dir, vector_backend=args.backend)
    t1 = time.perf_counter()
    lib = Library.open(settings=settings)
    lib.search("warm up")  # builds the ANN indexes from the catalog once
    t_build = time.perf_counter() - t1
    queries = [texts[i] for i in rng.integers(0, len(texts), args.queries)]
    warm = warm_search_ms(lib, queries)
    t2 = time.perf_counter()
    lib2 = Library.open(settings=settings)
    lib2.search(queries[0])
    t_reopen = time.perf_counter() - t2
    print(
        json.dumps(
            {
                "images": args.n,
                "captions": args.n,
                "backend": args.backend,
                "model": enc.name,
                "fill_catalog_seconds": round(t_fill, 1),
                "build_indexes_seconds": round(t_build, 1),
                "reopen_and_first_search_seconds": round(t_reopen, 3),
                "warm_search_ms": warm,
                "disk_mib": round(sum(f.stat().st_size for f in lib_dir.iterdir()) / 2**20, 1),
            }
        )
    )
    lib.close()
    lib2.close()
    if not args.keep:
        shutil.rmtree(lib_dir, ignore_errors=True)
    else:
        print(lib_dir, file=sys.stderr)


if __name__ == "__main__":
    main()
