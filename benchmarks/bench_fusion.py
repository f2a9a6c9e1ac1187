"""Fusion on a library where only some photos have captions (issue #7 item 10b), before and after.

Flickr8k val: captions #0-2 of every other photo (or of all, ``--captioned all``) go in the library,
and captions #3-4 of every photo are the queries (2,000 by default). ``after`` is ``Library.search``
as shipped; ``before`` re-ranks the same candidates with the old fusion (weighted mean 0.5 dense +
1.0 caption + 0.4 bm25 over every signal of the library, a missing caption counted as 0). Also prints
warm search p50/p99 (ms) at this library size.

    python benchmarks/bench_fusion.py --data ../shared/data/flickr8k [--split val|test] [--base DIR]
        [--captioned half|all]

``--base`` is a library of the split already indexed from pixels (``bench_natural.py --keep W`` leaves a
val one at W/lib; without it the script indexes the split first, which takes minutes).

``--split val`` is in-sample: the fusion weights were chosen and the calibration (a, b) of each signal
fitted on exactly these val queries (docs/model.md). ``--split test`` (477 images, 954 queries) is held
out from both; its recalls are higher for the smaller gallery, not a better fusion. The output names
the split, the command and whether it is in-sample.
"""

from __future__ import annotations

import argparse
import csv
import json
import shutil
import sys
import tempfile
from pathlib import Path

from _timing import warm_search_ms

from pixsearch import Library
from pixsearch.config import FusionWeights, load_settings

OLD = {"dense": 0.5, "caption": 1.0, "bm25": 0.4}


def old_fuse(scores: dict[str, float]) -> float:
    return sum(w * scores.get(k, 0.0) for k, w in OLD.items()) / sum(OLD.values())


def recalls(ranks: list[int]) -> dict[str, float]:
    n = len(ranks)
    return {f"r@{k}": round(100 * sum(r < k for r in ranks) / n, 2) for k in (1, 5, 10)}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", type=Path, required=True)
    ap.add_argument("--base", type=Path, default=None)
    ap.add_argument("--captioned", choices=["half", "all"], default="half")
    ap.add_argument("--queries", type=int, default=2000)
    ap.add_argument("--split", choices=["val", "test"], default="val")
    ap.add_argument(
        "--labels",
        action="store_true",
        help="search with the shipped weights, labels included (default: labels and generated captions "
        "off, the set-up of docs/model.md's fusion tables)",
    )
    args = ap.parse_args()
    names = [ln.strip() for ln in (args.data / f"{args.split}.txt").read_text().splitlines() if ln.strip()]
    caps: dict[str, list[str]] = {}
    with open(args.data / "captions.csv", encoding="utf-8") as f:
        for row in csv.DictReader(f):
            caps.setdefault(row["image"], []).append(row["caption"])
    work = Path(tempfile.mkdtemp(prefix="bench_fusion_"))
    lib_dir = work / "lib"
    if args.base is not None:
        shutil.copytree(args.base, lib_dir)
        roots = sorted({str(Path(p).parent) for p in _paths(lib_dir)})
    else:
        (work / "photos").mkdir()
        for n in names:
            (work / "photos" / n).symlink_to((args.data / "images" / n).absolute())
        roots = [str(work / "photos")]
    captioned = names[::2] if args.captioned == "half" else names
    with open(work / "caps.csv", "w", encoding="utf-8", newline="") as f:
        w = csv.writer(f)
        w.writerow(["image", "caption"])
        for n in captioned:
            for c in caps[n][:3]:
                w.writerow([n, c])
    weights = load_settings().weights if args.labels else FusionWeights(generated=0.0, label=0.0)
    s = load_settings(library=lib_dir, weights=weights)
    with Library.open(lib_dir, settings=s) as lib:
        # the photos are links into the data set (outside the folder): follow them
        lib.add(
            [Path(r) for r in roots],
            captions_csv=work / "caps.csv",
            generate_captions=False,
            follow_links=True,
        )
        queries = [(c, n) for n in names for c in caps[n][3:5]][: args.queries]
        with_caps = set(captioned)
        before, after, groups = [], [], []
        for q, n in queries:
            res = lib.search(q, k=len(names))
            want = next(i for i, r in enumerate(res) if Path(r.path).name == n)
            after.append(want)
            old = sorted(res, key=lambda r: (-old_fuse(r.scores), r.image_id))
            before.append(next(i for i, r in enumerate(old) if Path(r.path).name == n))
            groups.append(n in with_caps)
        lib.search(queries[0][0])
        timing = warm_search_ms(lib, [q for q, _ in queries[:200]])
    out = {
        "split": args.split,
        "in_sample": args.split == "val",  # fusion weights and calibration were fitted on val queries
        "command": " ".join(["python benchmarks/bench_fusion.py", *sys.argv[1:]]),
        "weights": {k: getattr(weights, k) for k in ("dense", "caption", "bm25", "generated", "label")},
        "images": len(names),
        "captioned_images": len(captioned),
        "queries": len(queries),
        "before": recalls(before),
        "after": recalls(after),
        "before_by_group": {
            "captioned": recalls([r for r, g in zip(before, groups, strict=True) if g]),
            "uncaptioned": recalls([r for r, g in zip(before, groups, strict=True) if not g] or [10**9]),
        },
        "after_by_group": {
            "captioned": recalls([r for r, g in zip(after, groups, strict=True) if g]),
            "uncaptioned": recalls([r for r, g in zip(after, groups, strict=True) if not g] or [10**9]),
        },
        "warm_search_ms": timing,
    }
    print(json.dumps(out, indent=1))
    shutil.rmtree(work, ignore_errors=True)


def _paths(lib_dir: Path) -> list[str]:
    import sqlite3

    db = sqlite3.connect(lib_dir / "catalog.db")
    try:
        return [r[0] for r in db.execute("SELECT path FROM paths")]
    finally:
        db.close()


if __name__ == "__main__":
    main()
