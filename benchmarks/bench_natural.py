"""Natural queries over a library indexed from pixels only: mean P@10 and mAP@10, before and after.

``before``: search sees only the image vectors (no generated captions, no labels: the library as it
was before issue #8). ``after``: the same photos with generated captions and labels (enrichers at
index time). Queries are photographer-style (tests/data/natural_queries.json); a photo is relevant to a
query when the query's regex matches at least one of its five human captions (never shown to search).

    python benchmarks/bench_natural.py --data ../shared/data/flickr8k [--split val] [--keep DIR]
    python benchmarks/bench_natural.py --data ../shared/data/flickr8k --lang zh,es,de --no-generate

Prints one JSON object. ``--keep DIR`` keeps (and reuses) the two libraries under DIR.

``--lang`` runs the same queries written in other languages (tests/data/natural_queries_LANG.json,
translated by hand; relevance still comes from the English regexes on the English captions), each
language on the same library, and ``en`` is the original set. ``--english-only`` turns the multilingual
query tower off (``PIXSEARCH_MULTILINGUAL=off``): the figures search gave before it. ``--no-generate``
skips the generated-captions stage (it re-indexes every photo). ``--dense`` scores the queries of
each language against the split's stored photo vectors alone (no library, no match scorer: the dense
signal, docs/model.md "Multilingual queries"); ``--model`` picks the joint model (default: shipped).

    python benchmarks/bench_natural.py --data ../shared/data/flickr8k --split test --lang en,zh --dense
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import shutil
import tempfile
import time
from dataclasses import replace
from pathlib import Path

from pixsearch import Library
from pixsearch.config import FusionWeights, load_settings
from pixsearch.evaluation.natural_queries import load_queries, natural_query_metrics, relevant_sets

QUERIES = Path(__file__).resolve().parents[1] / "tests" / "data" / "natural_queries.json"


def query_file(lang: str) -> Path:
    """The query set of a language: ``en`` is the original, others its hand translations."""
    return QUERIES if lang == "en" else QUERIES.with_name(f"natural_queries_{lang}.json")


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
    ap.add_argument("--lang", default=None, help="languages, comma-separated: en,zh,es,...")
    ap.add_argument("--english-only", action="store_true", help="multilingual query tower off")
    ap.add_argument("--no-generate", action="store_true", help="skip the generated-captions stage")
    ap.add_argument("--dense", action="store_true", help="--lang on stored photo vectors alone, no library")
    ap.add_argument("--model", default=None, help="joint model for --dense (default: the shipped one)")
    args = ap.parse_args()
    if args.english_only:
        os.environ["PIXSEARCH_MULTILINGUAL"] = "off"
    if args.dense:
        dense(args)
        return
    if args.lang:
        multi(args)
        return
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


def multi(args: argparse.Namespace) -> None:
    """``--lang``: one library, the query set in each language, the pixels-only and labels stages (and
    the generated-captions one unless ``--no-generate``); P@10 per language and its ratio to English."""
    names = [ln.strip() for ln in (args.data / f"{args.split}.txt").read_text().splitlines() if ln.strip()]
    langs = [x.strip() for x in args.lang.split(",") if x.strip()]
    sets = {lang: load_queries(query_file(lang)) for lang in langs}
    work = args.keep or Path(tempfile.mkdtemp(prefix="bench_natural_"))
    photos = work / "photos"
    if not photos.is_dir():
        photos.mkdir(parents=True)
        for n in names:
            (photos / n).symlink_to((args.data / "images" / n).absolute())
    out: dict = {"split": args.split, "images": len(names), "english_only": args.english_only, "langs": {}}
    lib_dir = work / "lib"
    if not (lib_dir / "catalog.db").is_file():
        out["index_pixels_labels"] = build(lib_dir, photos, False, args.captioner)
    stages: dict[str, FusionWeights | None] = {
        "before": FusionWeights(generated=0.0, label=0.0),
        "labels": FusionWeights(generated=0.0),
    }
    results: dict[str, dict[str, list[list[str]]]] = {lang: {} for lang in langs}
    for tag, w in stages.items():
        for lang in langs:
            t = time.perf_counter()
            results[lang][tag] = run_queries(lib_dir, sets[lang], w)
            out.setdefault("seconds", {})[f"{lang}/{tag}"] = round(time.perf_counter() - t, 1)
    if not args.no_generate:
        out["index_captions"] = build(lib_dir, photos, True, args.captioner)
        for lang in langs:
            results[lang]["after"] = run_queries(lib_dir, sets[lang])
    for lang in langs:
        rel = relevance(args.data, names, sets[lang])
        row: dict = {}
        for tag, res in results[lang].items():
            m = natural_query_metrics(res, rel, k=10)
            row[tag] = {"p_at_10": m["p_at_10"], "map_at_10": m["map_at_10"]}
            if args.per_query:
                row[f"{tag}_per_query"] = {
                    q["query"]: round(p, 2)
                    for q, p in zip(sets[lang], m["per_query_p"], strict=True)  # type: ignore[arg-type]
                }
        out["langs"][lang] = row
    if "en" in out["langs"]:
        en = out["langs"]["en"]
        for row in out["langs"].values():
            for tag in row:
                if tag in en and "p_at_10" in row[tag] and en[tag]["p_at_10"]:
                    row[tag]["vs_en"] = round(row[tag]["p_at_10"] / en[tag]["p_at_10"], 3)
    print(json.dumps(out, indent=1, ensure_ascii=False))
    if args.keep is None:
        shutil.rmtree(work, ignore_errors=True)


def dense(args: argparse.Namespace) -> None:
    """``--dense``: P@10 per language from the query's joint vector against the split's stored photo
    vectors (the encoder's feature cache), with routing as search does it; ratio to English."""
    import numpy as np

    from pixsearch.corpus.features import FeatureCache
    from pixsearch.models.encoder import create_encoder

    enc = create_encoder(args.model)
    names = [ln.strip() for ln in (args.data / f"{args.split}.txt").read_text().splitlines() if ln.strip()]
    f = FeatureCache().encoder_features(enc, [args.data / "images" / n for n in names], "embedding")
    keep = np.flatnonzero(f.ok)
    names = [names[i] for i in keep]
    img = f.arrays["embedding"][keep].astype(np.float32)
    langs = [x.strip() for x in (args.lang or "en").split(",") if x.strip()]
    out: dict = {"split": args.split, "images": len(names), "model": enc.name, "dense": True}
    out.update(english_only=args.english_only, langs={})
    for lang in langs:
        queries = load_queries(query_file(lang))
        top = np.argsort(-(enc.encode_text([q["query"] for q in queries]) @ img.T), axis=1)[:, :10]
        ranked = [[names[i] for i in row] for row in top]
        m = natural_query_metrics(ranked, relevance(args.data, names, queries))
        out["langs"][lang] = {"p_at_10": m["p_at_10"], "map_at_10": m["map_at_10"]}
    en = out["langs"].get("en", {}).get("p_at_10")
    for row in out["langs"].values():
        if en:
            row["vs_en"] = round(row["p_at_10"] / en, 3)
    print(json.dumps(out, indent=1, ensure_ascii=False))


if __name__ == "__main__":
    main()
