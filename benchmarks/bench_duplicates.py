"""Duplicate finder: precision and recall on held-out photos, and the time of a duplicates pass (prints JSON).

The set (built once under ``~/.cache/pixsearch/bench-dups``, then reused):

* positives: ``--edited`` photos of the Flickr8k test split (aspect kept, never trained on), each with the
  seven copies of ``evaluation/duplicates.py`` (halved, JPEG quality 40, both, 5-10% crop, tone edit,
  1-3 degree straighten, watermark); every pair within a family (original and copies) is a positive;
* negatives: every other pair of photos in the library: the rest of the test split, the val and train
  splits (train and most of val are 224x224, so they also test square look-alikes), among them two kinds
  of hard negatives reported apart: consecutive shots (Flickr ids at most 10 apart: the same uploader's
  next photo of the same scene) and joint-space look-alikes (different photos at cosine > 0.9).

``--one-edit`` gives each picked photo one of the edits in turn (families of two): a copy cannot reach its
original through another copy, so per-copy recall gets no help. The default threshold was chosen on a
development set built from the 100 val photos whose aspect is kept, not these:
``--edit-from val --edited 100 --splits test,val --seed 0``. A pass is timed on the whole library.

Usage: python benchmarks/bench_duplicates.py [--data DIR] [--edited 200] [--thresholds 0.45,0.5,...]
       [--splits test,val,train] [--one-edit] [--edit-from test|val] [--seed 1] [--rebuild]
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import random
import shutil
import time
from collections import Counter
from pathlib import Path
from typing import Any

from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
WORK = Path.home() / ".cache" / "pixsearch" / "bench-dups"
LOOKALIKE = 0.9  # joint-space cosine from which two different photos count as look-alikes
CONSECUTIVE = 10  # Flickr photo ids at most this far apart: the same uploader's consecutive shots


def build(data: Path, work: Path, p: dict[str, Any]) -> dict[str, Any]:
    """Copy the photos and write the copies; returns the labels (also saved as labels.json). ``p``:
    ``splits`` in the library, ``edit_from`` (the split whose photos get copies: only those that keep
    their aspect), ``edited`` photos picked with ``seed``; with ``one_edit`` each gets one edit (in turn),
    so no copy can reach its original through another copy of it: per-copy recall without help."""
    from pixsearch.evaluation.duplicates import EDITS, edited_copy

    photos = work / "photos"
    shutil.rmtree(work, ignore_errors=True)
    photos.mkdir(parents=True)
    split = {
        s: (data / f"{s}.txt").read_text().split()
        for s in ("train", "val", "test")
        if (data / f"{s}.txt").is_file()
    }
    everyone = [n for s in p["splits"] for n in split.get(s, [])]
    # consecutive shots come from every split, so a library of some splits still holds all of them
    ids = sorted(
        {(int(n.split("_")[0]), n) for ns in split.values() for n in ns if n.split("_")[0].isdigit()}
    )
    consecutive = [(a, b) for (x, a), (y, b) in zip(ids, ids[1:], strict=False) if y - x <= CONSECUTIVE]
    source = {n: n for n in everyone + [n for pair in consecutive for n in pair]}
    for n in source:
        shutil.copy(data / "images" / n, photos / n)
    kept = _aspect_kept(data)
    pool = [n for n in split.get(p["edit_from"], []) if kept is None or n in kept]
    picked = random.Random(p["seed"]).sample(pool, min(p["edited"], len(pool)))
    edit: dict[str, str] = {}
    for i, n in enumerate(picked):
        source.setdefault(n, n)
        if not (photos / n).exists():
            shutil.copy(data / "images" / n, photos / n)
        with Image.open(data / "images" / n) as img:
            img.load()
            for j, e in enumerate(EDITS):
                if p["one_edit"] and j != i % len(EDITS):
                    continue
                copy, quality = edited_copy(img, e, seed=p["seed"] * 1_000_003 + i * 100 + j)
                name = f"{Path(n).stem}__{e}.jpg"
                copy.save(photos / name, quality=quality)
                source[name], edit[name] = n, e
    labels = {"params": p, "source": source, "edit": edit, "consecutive": consecutive}
    (work / "labels.json").write_text(json.dumps(labels))
    return labels


def _aspect_kept(data: Path) -> set[str] | None:
    """Photos whose aspect ratio the data set kept (``image_provenance.csv``); None: no such file."""
    f = data / "image_provenance.csv"
    if not f.is_file():
        return None
    with f.open(newline="") as fh:
        return {r["image"] for r in csv.DictReader(fh) if r.get("aspect_preserved") == "yes"}


def lookalikes(lib: Any, source: dict[str, str]) -> list[tuple[str, str]]:
    """Pairs of different original photos at joint-space cosine > LOOKALIKE (what a finder built on the
    joint space alone would call duplicates)."""
    import numpy as np

    name = {f.image_id: Path(f.path).name for f in lib.catalog.duplicates.files()}
    ids = np.array(sorted(i for i, n in name.items() if source.get(n) == n), dtype=np.int64)
    index = lib.vectors.view("images")
    out = set()
    for s in range(0, len(ids), 1024):
        q = ids[s : s + 1024]
        keys, sims = index.search(index.get(q), 11)
        for a, row, cos in zip(q.tolist(), keys.tolist(), sims.tolist(), strict=True):
            for b, c in zip(row, cos, strict=True):
                nb = name.get(b)
                if b != a and c > LOOKALIKE and nb is not None and source.get(nb) == nb:
                    out.add(tuple(sorted((name[a], nb))))
    return sorted(out)  # type: ignore[arg-type]


def false_pairs(groups: list[list[str]], source: dict[str, str], most: int = 10) -> list[list[str]]:
    """Pairs of different photos grouped together, to look at (Flickr8k itself holds a few real
    duplicates: those count as false here)."""
    out = []
    for g in groups:
        out += [[a, b] for i, a in enumerate(g) for b in g[i + 1 :] if source.get(a, a) != source.get(b, b)]
    return out[:most]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "data" / "flickr8k")
    ap.add_argument("--edited", type=int, default=200, help="test photos that get the seven copies")
    ap.add_argument("--splits", default="test,val,train", help="splits whose photos are in the library")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--thresholds", default="", help="comma-separated; default: the library's default")
    ap.add_argument("--one-edit", action="store_true", help="one edit per photo (in turn), not all seven")
    ap.add_argument("--edit-from", default="test", help="split whose photos get copies (val: the dev set)")
    ap.add_argument("--rebuild", action="store_true")
    ap.add_argument("--work", type=Path, default=None, help=f"default {WORK}[-one][-SPLIT]")
    a = ap.parse_args()
    suffix = ("-one" if a.one_edit else "") + ("" if a.edit_from == "test" else f"-{a.edit_from}")
    a.work = a.work or WORK.with_name(WORK.name + suffix)
    load_before = os.getloadavg()

    from pixsearch import Library
    from pixsearch.evaluation.duplicates import copies_grouped, pair_scores
    from pixsearch.library.duplicates import DEFAULT_THRESHOLD

    params = {"splits": a.splits.split(","), "edited": a.edited, "seed": a.seed, "one_edit": a.one_edit}
    params["edit_from"] = a.edit_from
    saved = a.work / "labels.json"
    labels = json.loads(saved.read_text()) if saved.is_file() and not a.rebuild else None
    index_s = None
    if labels is None or labels["params"] != params or not (a.work / "lib").is_dir():
        labels = build(a.data, a.work, params)
        t = time.perf_counter()
        with Library.open(a.work / "lib") as lib:
            rep = lib.add([a.work / "photos"], generate_captions=False)
        index_s = round(time.perf_counter() - t, 1)
        if rep.failed:
            raise SystemExit(f"{len(rep.failed)} photos failed to index: {rep.failed[:3]}")
    source, edit = labels["source"], labels["edit"]
    thresholds = [float(x) for x in a.thresholds.split(",") if x] or [DEFAULT_THRESHOLD]
    results = []
    with Library.open(a.work / "lib") as lib:
        look = lookalikes(lib, source)
        hard = [tuple(p) for p in labels["consecutive"]] + look
        lib.duplicates(threshold=thresholds[0])  # warm: the vector index loaded, thumbnails in the OS cache
        for th in thresholds:
            d = lib.duplicates(threshold=th)
            groups = [[Path(p.path).name for p in g.photos] for g in d.groups]
            scores = pair_scores(groups, source, hard)
            results.append(
                {
                    "threshold": th,
                    **scores.to_dict(),
                    "consecutive_grouped": pair_scores(
                        groups, source, labels["consecutive"]
                    ).hard_negatives_grouped,
                    "lookalikes_grouped": pair_scores(groups, source, look).hard_negatives_grouped,
                    "copies_grouped": copies_grouped(groups, source, edit),
                    "false_pair_examples": false_pairs(groups, source),
                    "groups": len(d.groups),
                    "pairs_verified": d.pairs,
                    "seconds": round(d.seconds, 2),
                }
            )
    families = len(set(source[k] for k in edit))
    print(
        json.dumps(
            {
                "photos": len(source),
                "edited_originals": families,
                "copies": len(edit),
                "positive_pairs": sum(n * (n + 1) // 2 for n in Counter(source[k] for k in edit).values()),
                "consecutive_pairs": len(labels["consecutive"]),
                "lookalike_pairs": len(look),
                "index_seconds": index_s,
                "default_threshold": DEFAULT_THRESHOLD,
                "results": results,
                "load_average": [round(x, 2) for x in load_before],
                "cpus": os.cpu_count(),
            }
        )
    )


if __name__ == "__main__":
    main()
