"""Warm search latency through the whole ``Library.search`` pipeline at scale: real photos or synthetic rows.

Real (``--data``): the first ``--n`` photos of a Flickr8k-layout folder (all of them by default: 7,568 here)
indexed with their human captions (no generated captions), built once and cached under
``~/.cache/pixsearch/bench`` (``--cache``), never in the repository. Queries are the natural queries of
``tests/data/natural_queries.json`` plus library captions, shuffled with a fixed seed.

Synthetic (no ``--data``): ``--n`` images with clustered random unit vectors and one caption each, a real
caption text (so BM25 has real words) with a random embedding; cached the same way.

    python benchmarks/bench_search_scale.py --data ../shared/data/flickr8k [--n 1000] [--model M]
    python benchmarks/bench_search_scale.py [--n 100000] [--queries 200] [--profile 60] [--filtered]

Prints one JSON object (p50/p99 in ms); ``--profile N`` adds the top functions of a cProfile run over N
queries (ms per query, cumulative) to it. ``--fresh`` rebuilds the cached library. ``--filtered`` also
times filtered searches (a capture year: ~10 % of the photos; a camera: ~10 %; both: ~1 %) and a browse
of one year by date; the first run gives every photo a synthetic capture time (2015-2024) and one of ten
cameras, through the catalog's own metadata rows.
"""

from __future__ import annotations

import argparse
import cProfile
import csv
import json
import os
import pstats
import re
import shutil
import time
from pathlib import Path
from typing import Any

import numpy as np
from _timing import machine, warm_search_ms

ROOT = Path(__file__).resolve().parents[1]
NATURAL = ROOT / "tests" / "data" / "natural_queries.json"
CACHE = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "pixsearch" / "bench"


def unit(rng: np.random.Generator, n: int, d: int, centers: np.ndarray) -> np.ndarray:
    x = centers[rng.integers(0, len(centers), n)] + 0.7 * rng.normal(size=(n, d)).astype(np.float32)
    return (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)


def read_captions(data: Path) -> dict[str, list[str]]:
    caps: dict[str, list[str]] = {}
    with open(data / "captions.csv", encoding="utf-8") as f:
        for row in csv.DictReader(f):
            caps.setdefault(row["image"], []).append(row["caption"])
    return caps


def build_real(data: Path, n: int | None, work: Path) -> dict[str, Any]:
    """The first ``n`` photos of ``data`` (sorted names; links) with their captions, indexed into work/lib."""
    from pixsearch import Library

    names = sorted(p.name for p in (data / "images").iterdir() if p.suffix.lower() in {".jpg", ".jpeg"})
    names = names[:n] if n else names
    caps = read_captions(data)
    photos = work / "photos"
    photos.mkdir(parents=True)
    for name in names:
        (photos / name).symlink_to((data / "images" / name).absolute())
    with open(work / "captions.csv", "w", encoding="utf-8", newline="") as f:
        w = csv.writer(f)
        w.writerow(["image", "caption"])
        for name in names:
            for c in caps.get(name, []):
                w.writerow([name, c])
    t = time.perf_counter()
    with Library.open(work / "lib") as lib:
        caps_csv = work / "captions.csv"
        rep = lib.add([photos], captions_csv=caps_csv, generate_captions=False, follow_links=True)
    return {"photos": len(names), "added": rep.added, "index_seconds": round(time.perf_counter() - t, 1)}


def build_synthetic(n: int, work: Path) -> dict[str, Any]:
    """``n`` synthetic rows straight into a new library's catalog; the first open builds the indexes."""
    from pixsearch import Library

    rng = np.random.default_rng(0)
    lines = (ROOT / "examples/gallery/captions.csv").read_text().splitlines()[1:]
    texts = [t.split(",", 1)[1] for t in lines]
    filling = Library.open(work / "lib")
    enc, cat = filling.encoder, filling.catalog
    t0 = time.perf_counter()
    img_c = rng.normal(size=(200, enc.dim)).astype(np.float32)
    cap_c = rng.normal(size=(200, enc.caption_dim)).astype(np.float32)
    step = 10_000
    with cat.transaction():
        for s in range(0, n, step):
            m = min(step, n - s)
            iv = unit(rng, m, enc.dim, img_c)
            cv = unit(rng, m, enc.caption_dim, cap_c)
            jv = unit(rng, m, enc.dim, img_c) if enc.cross_modal else None
            for j in range(m):
                i = cat.add_image(f"h{s + j}", 500, 375, None, iv[j])
                cat.set_path(f"/synthetic/{s + j}.jpg", i, 1, 1)
                text = f"{texts[(s + j) % len(texts)]} #{s + j}"
                cat.add_captions(i, [(text, "human", cv[j], None if jv is None else jv[j])])
        cat.bump_generation()
    filling.close()
    return {"photos": n, "fill_catalog_seconds": round(time.perf_counter() - t0, 1)}


def cached_library(args: argparse.Namespace) -> tuple[Path, dict[str, Any]]:
    """The benchmark library (built on first use, then reused), and what building it took."""
    from pixsearch.models.encoder import default_encoder_name

    model = args.model or default_encoder_name()  # a library keeps its model: one cached library each
    tag = f"flickr8k-{args.n or 'all'}-{model}" if args.data else f"synthetic-{args.n}-{model}"
    work = args.cache / tag
    if args.fresh:
        shutil.rmtree(work, ignore_errors=True)
    done = work / "built.json"
    if not done.is_file():
        shutil.rmtree(work, ignore_errors=True)
        work.mkdir(parents=True)
        info = build_real(args.data, args.n, work) if args.data else build_synthetic(args.n, work)
        done.write_text(json.dumps(info))
    return work / "lib", json.loads(done.read_text())


def query_set(args: argparse.Namespace, rng: np.random.Generator, n: int) -> list[str]:
    """``n`` distinct queries: the natural queries first, then library captions (or gallery captions for
    a synthetic library), shuffled. Distinct, because a repeated query reuses its memoised vectors."""
    natural = [q["query"] for q in json.loads(NATURAL.read_text())]
    if args.data:
        pool = [c for cs in read_captions(args.data).values() for c in cs]
    else:
        lines = (ROOT / "examples/gallery/captions.csv").read_text().splitlines()[1:]
        pool = [t.split(",", 1)[1] for t in lines]
    pool = sorted(set(pool) - set(natural))
    picked = [pool[i] for i in rng.choice(len(pool), min(len(pool), max(0, n - len(natural))), replace=False)]
    qs = natural + picked
    rng.shuffle(qs)
    return qs[:n]


CAMERAS = [("Canon", f"EOS {m}") for m in ("5D", "6D", "R5", "R6", "90D")] + [
    ("NIKON", f"D{m}") for m in ("750", "850", "7500", "5600", "3500")
]


def ensure_meta(lib: Any) -> int:
    """Synthetic capture times and cameras for every photo without a metadata row (seeded)."""
    from pixsearch.storage.photo_meta import MetaRow, MetaRows

    have = set(lib.catalog.photo_meta.meta_for(lib.catalog.image_ids().tolist()))
    todo = [int(i) for i in lib.catalog.image_ids() if int(i) not in have]
    rng = np.random.default_rng(1)
    start, span = 1420070400.0, 10 * 365.25 * 86400  # 2015-01-01, ten years
    for s in range(0, len(todo), 20_000):
        ids = todo[s : s + 20_000]
        rows = []
        for i in ids:
            ts = start + float(rng.random()) * span
            make, model = CAMERAS[int(rng.integers(len(CAMERAS)))]
            at = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(ts))
            rows.append(MetaRow(i, at, ts, "exif", make, model))
        with lib.catalog.transaction():
            lib.catalog.enrichments.save("metadata", "bench-synthetic", ids, MetaRows(rows))
    return len(todo)


def filtered_ms(lib: Any, queries: list[str]) -> dict[str, Any]:
    """p50/p99 of searches under each filter, and of a one-year browse page (newest first)."""
    from pixsearch.search.filters import Filters

    cases = {
        "year": Filters.parse(after="2019", before="2020"),
        "camera": Filters.parse(camera="eos 5d"),
        "year_and_camera": Filters.parse(after="2019", before="2020", camera="eos 5d"),
    }
    out: dict[str, Any] = {}
    for name, f in cases.items():
        lat = []
        for q in queries:
            t = time.perf_counter()
            res = lib.search(q, k=10, filters=f)
            lat.append((time.perf_counter() - t) * 1000)
            assert len(res) == 10, (name, q, len(res))  # k results whenever k photos pass
        lat.sort()
        allowed = f.allowed(lib.catalog)
        out[name] = {
            "photos_allowed": len(allowed or ()),
            "p50": round(float(np.median(lat)), 2),
            "p99": round(lat[int(0.99 * (len(lat) - 1))], 2),
        }
    lat = []
    for _ in range(20):
        t = time.perf_counter()
        lib.browse(cases["year"], "-date", k=24)
        lat.append((time.perf_counter() - t) * 1000)
    out["browse_year_page"] = {"p50": round(float(np.median(lat)), 2), "max": round(max(lat), 2)}
    return out


def profile(lib: Any, queries: list[str], top: int = 25) -> list[list[Any]]:
    """cProfile over ``queries``: the ``top`` functions by cumulative time, as [ms, calls] per query and
    the function (the policy's semantic check runs on a thread beside the search: its time is not here)."""
    prof = cProfile.Profile()
    prof.enable()
    for q in queries:
        lib.search(q, k=10)
    prof.disable()
    st = pstats.Stats(prof)
    rows = []
    for (file, line, fn), (_cc, nc, _tt, ct, _callers) in st.stats.items():  # type: ignore[attr-defined]
        where = f"{Path(file).parent.name}/{Path(file).name}:{line}" if line else file
        rows.append([round(1000 * ct / len(queries), 2), round(nc / len(queries), 1), f"{where}({fn})"])
    rows.sort(key=lambda r: -r[0])
    return rows[:top]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", type=Path, default=None, help="a Flickr8k-layout folder (default: synthetic)")
    ap.add_argument("--n", type=int, default=None, help="photos (default: all real ones; 100,000 synthetic)")
    ap.add_argument("--queries", type=int, default=200)
    ap.add_argument("--backend", default="usearch", choices=["usearch", "exact"])
    ap.add_argument("--cache", type=Path, default=CACHE, help="where benchmark libraries are kept")
    ap.add_argument("--fresh", action="store_true", help="rebuild the cached library")
    ap.add_argument("--model", default="", help="build and search with this model (default: the default)")
    ap.add_argument("--profile", type=int, default=0, help="also profile this many queries")
    ap.add_argument("--filtered", action="store_true", help="also time filtered searches (see the doc)")
    args = ap.parse_args()
    if args.model:  # Settings read it: every Library.open below builds or opens with that model
        os.environ["PIXSEARCH_MODEL"] = args.model
    if args.data is None and args.n is None:
        args.n = 100_000

    from pixsearch import Library
    from pixsearch.config import load_settings

    lib_dir, built = cached_library(args)
    settings = load_settings(library=lib_dir, vector_backend=args.backend)
    warmup = 20
    queries = query_set(args, np.random.default_rng(0), warmup + args.queries + args.profile)
    t1 = time.perf_counter()
    with Library.open(settings=settings) as lib:
        lib.search("warm up")  # loads the models, builds (once) or loads the ANN indexes
        t_open = time.perf_counter() - t1
        for q in queries[:warmup]:  # the models' first calls allocate; time the steady state
            lib.search(q)
        stats = lib.stats()
        timed = queries[warmup : warmup + args.queries]
        cpu = time.process_time()
        warm = warm_search_ms(lib, timed)
        warm["cpu_ms_per_query"] = round(1000 * (time.process_time() - cpu) / len(timed), 2)
        prof = profile(lib, queries[warmup + args.queries :]) if args.profile else None
        filt = None
        if args.filtered:
            added = ensure_meta(lib)
            filt = {"metadata_rows_added": added, **filtered_ms(lib, timed[: min(100, len(timed))])}
    t2 = time.perf_counter()
    with Library.open(settings=settings) as lib2:
        lib2.search(queries[0])
    out = {
        "library": "flickr8k" if args.data else "synthetic",
        "images": stats["images"],
        "captions": stats["captions"],
        "backend": args.backend,
        "model": stats.get("model"),
        "built": built,
        "open_and_first_search_seconds": round(t_open, 2),
        "reopen_and_first_search_seconds": round(time.perf_counter() - t2, 3),
        "warm_search_ms": warm,
        "disk_mib": round(sum(f.stat().st_size for f in lib_dir.iterdir() if f.is_file()) / 2**20, 1),
        "machine": machine(),
    }
    if filt is not None:
        out["filtered_ms"] = filt
    if prof is not None:
        out["profile_ms_calls_per_query"] = prof
    text = json.dumps(out, indent=1)
    print(re.sub(r"\[\s+([-\d.]+),\s+([-\d.]+),\s+(\"[^\"]*\")\s+\]", r"[\1, \2, \3]", text))


if __name__ == "__main__":
    main()
