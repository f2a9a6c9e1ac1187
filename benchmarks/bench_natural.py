"""Natural queries over a library indexed from pixels only: mean P@10 and mAP@10, before and after.

``before``: search sees only the image vectors (no generated captions, no labels: the library as it
was before issue #8). ``after``: the same photos with generated captions and labels (enrichers at
index time). Queries are photographer-style (tests/data/natural_queries.json); a photo is relevant to a
query when the query's regex matches at least one of its five human captions (never shown to search).

    python benchmarks/bench_natural.py --data ../shared/data/flickr8k [--split val] [--keep DIR]

Prints one JSON object. ``--keep DIR`` keeps (and reuses) the two libraries under DIR.
"""

from __future__ import annotations

import argparse
import csv
import json
import shutil
import tempfile
import time
from dataclasses import replace
from pathlib import Path

from pixsearch import Library
from pixsearch.config import FusionWeights, load_settings
from pixsearch.evaluation.natural_queries import load_queries, natural_query_metrics, relevant_sets

QUERIES = Path(__file__).resolve().parents[1] / "tests" / "data" / "natural_queries.json"


def relevance(data: Path, names: list[str], queries: list[dict]) -> list[set[str]]:
    caps: dict[str, list[str]] = {n: [] for n in names}
    with open(data / "captions.csv", encoding="utf-8") as f:
        for row in csv.DictReader(f):
            if row["image"] in caps:
                caps[row["image"]].append(row["caption"])
    return relevant_sets(queries, caps)


def build(lib_dir: Path, photos: Path, generate: bool, captioner: str | None) -> dict:
    s = load_settings(library=lib_dir, captioner=captioner)
    with Library.open(lib_dir, settings=s) as lib:
        t = time.perf_counter()
        rep = lib.add([photos], generate_captions=generate, follow_links=True)  # links into the data set
        secs = time.perf_counter() - t
        n = lib.stats()["images"]
    done = rep.added or rep.enriched.get("captions", 0)
    return {
        "seconds": round(secs, 1),
        "photos_per_s": round(done / secs, 2) if done else None,
        "enriched": rep.enriched,
        "captions_generated": rep.captions_generated,
        "timings": rep.to_dict()["timings"],
        "images": n,
    }


def run_queries(lib_dir: Path, queries: list[dict], weights: FusionWeights | None = None) -> list[list[str]]:
    s = load_settings(library=lib_dir)
    if weights is not None:
        s = replace(s, weights=weights)
    with Library.open(lib_dir, settings=s) as lib:
        return [[Path(r.path).name for r in lib.search(q["query"], k=10)] for q in queries]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", type=Path, required=True)
    ap.add_argument("--split", default="val")
    ap.add_argument("--queries", type=Path, default=QUERIES)
    ap.add_argument("--keep", type=Path, default=None)
    ap.add_argument("--per-query", action="store_true")
    ap.add_argument("--captioner", default=None, help="captioner name or folder (default: the shipped one)")
    args = ap.parse_args()
    names = [ln.strip() for ln in (args.data / f"{args.split}.txt").read_text().splitlines() if ln.strip()]
    queries = load_queries(args.queries)
    rel = relevance(args.data, names, queries)
    work = args.keep or Path(tempfile.mkdtemp(prefix="bench_natural_"))
    photos = work / "photos"
    if not photos.is_dir():
        photos.mkdir(parents=True)
        for n in names:  # links: the library indexes exactly this split
            (photos / n).symlink_to((args.data / "images" / n).absolute())
    out: dict = {"split": args.split, "images": len(names), "queries": len(queries)}
    lib_dir = work / "lib"
    if not (lib_dir / "catalog.db").is_file():
        out["index_pixels_labels"] = build(lib_dir, photos, False, args.captioner)
    stages = {
        "before": FusionWeights(generated=0.0, label=0.0),  # pixels only: the dense signal alone
        "labels": FusionWeights(generated=0.0),  # + labels, generated captions ignored
    }
    results = {tag: run_queries(lib_dir, queries, w) for tag, w in stages.items()}
    out["index_captions"] = build(lib_dir, photos, True, args.captioner)  # redo: generated captions only
    results["after"] = run_queries(lib_dir, queries)  # + generated captions + labels
    for tag, res in results.items():
        m = natural_query_metrics(res, rel, k=10)
        out[tag] = {"p_at_10": m["p_at_10"], "map_at_10": m["map_at_10"]}
        if args.per_query:
            out[f"{tag}_per_query"] = {
                q["query"]: round(p, 2)
                for q, p in zip(queries, m["per_query_p"], strict=True)  # type: ignore[arg-type]
            }
    first, caps = out.get("index_pixels_labels"), out["index_captions"]
    if first and caps["captions_generated"]:
        per = caps["timings"].get("captions", 0.0) / caps["captions_generated"]
        out["indexing_photos_per_s"] = {
            "without_captions": first["photos_per_s"],
            "with_captions": round(1 / (1 / first["photos_per_s"] + per), 2),
            "caption_s_per_photo": round(per, 3),
        }
    with Library.open(lib_dir) as lib:
        out["library"] = {k: v for k, v in lib.stats().items() if k.endswith("captions") or k == "images"}
    print(json.dumps(out, indent=1))
    if args.keep is None:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
