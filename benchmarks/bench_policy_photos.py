"""Indexing cost of the photo policy per photo (prints JSON).

Two measurements on N photos of a dataset split (default: 200 of Flickr8k val):

* ``index``: a real ``Library.add`` of the photos with their captions; ``policy`` is the policy
  enricher's share of the run (``IndexReport.timings``), next to decode / encode / store and the other
  enrichers, all per photo;
* ``parts``: the checker's signals timed apart on the same photos (classifier on the encoder features,
  face detection + age on the stored thumbnails, caption text check), per photo.

The checker uses the shipped classifier trained on the library's encoder (``--model``: policy-minors-v3
for lite02-minilm-v2, the default; policy-minors-v2 for lite0-minilm-v1).

Usage: python benchmarks/bench_policy_photos.py [--data DIR] [--split val] [-n 200] [--threads 1]
       [--model ENCODER]
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path


def main() -> None:
    ap = argparse.ArgumentParser()
    root = Path(__file__).resolve().parents[1]
    ap.add_argument("--data", type=Path, default=root.parent / "shared" / "data" / "flickr8k")
    ap.add_argument("--split", default="val")
    ap.add_argument("-n", type=int, default=200)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--model", default=None, help="Encoder of the fresh library (default: the default one).")
    a = ap.parse_args()
    os.environ.setdefault("PIXSEARCH_THREADS", str(a.threads))
    os.environ.setdefault("OMP_NUM_THREADS", str(a.threads))

    import numpy as np

    from pixsearch import Library
    from pixsearch.config import load_settings
    from pixsearch.corpus.datasets import load_dataset
    from pixsearch.policy.photo import photo_checker, rgb_of_thumbnail
    from pixsearch.policy.rules import load_policy
    from pixsearch.policy.verdicts import MINORS

    ds = load_dataset(a.data).split(a.split)
    names = list(ds.images)[: a.n]
    by = ds.captions_by_image()
    work = Path(tempfile.mkdtemp(prefix="bench-policy-"))
    try:
        (work / "photos").mkdir()
        for n in names:
            shutil.copy(ds.image_path(n), work / "photos" / n)
        with open(work / "captions.csv", "w", newline="") as f:
            w = csv.writer(f)
            w.writerow(["image", "caption"])
            for n in names:
                for c in by.get(n, []):
                    w.writerow([n, c.text])
        settings = load_settings(library=work / "lib", model=a.model)
        with Library.open(settings=settings) as lib:
            t = time.perf_counter()
            rep = lib.add([work / "photos"], captions_csv=work / "captions.csv")
            wall = time.perf_counter() - t
            per = {k: round(v / len(names) * 1000, 2) for k, v in rep.timings.items()}
            flagged = (
                lib.catalog.connection_for_tests()
                .execute("SELECT SUM(flagged), COUNT(*) FROM flags")
                .fetchone()
            )
            rows = (
                lib.catalog.connection_for_tests()
                .execute(
                    "SELECT i.thumbnail, GROUP_CONCAT(c.text, '\x1f') FROM images i "
                    "LEFT JOIN captions c ON c.image_id = i.id GROUP BY i.id ORDER BY i.id"
                )
                .fetchall()
            )
            enc_name = lib.encoder.name
        checker = photo_checker(load_policy(settings), enc_name)
        imgs = [rgb_of_thumbnail(r[0]) for r in rows]
        caps = [(r[1] or "").split("\x1f") if r[1] else [] for r in rows]
        parts: dict[str, float] = {}
        if checker.classifier is not None:  # its input: the encoder features side by side
            x = np.random.default_rng(0).random((len(rows), checker.classifier.params["mean"].shape[0]))
            t = time.perf_counter()
            checker.classifier.logits(x.astype(np.float32))
            parts["classifier_ms"] = (time.perf_counter() - t) / len(rows) * 1000
        if checker.faces is not None and "faces" not in checker.errors:
            t = time.perf_counter()
            n_faces = sum(len(checker.faces.faces(im)) for im in imgs if im is not None)
            parts["faces_ms"] = (time.perf_counter() - t) / len(rows) * 1000
            parts["faces_per_photo"] = n_faces / len(rows)
        if checker.policy is not None:
            checker.policy.check_text("warm up", MINORS)
            t = time.perf_counter()
            n_caps = sum(len(c) for c in caps)
            for cs in caps:
                for c in cs:
                    checker.policy.check_text(c, MINORS)
            parts["captions_ms"] = (time.perf_counter() - t) / len(rows) * 1000
            parts["captions_per_photo"] = n_caps / len(rows)
        print(
            json.dumps(
                {
                    "photos": len(names),
                    "threads": a.threads,
                    "index_wall_s": round(wall, 2),
                    "index_ms_per_photo": per,
                    "policy_ms_per_photo": per.get("policy"),
                    "flagged": int(flagged[0] or 0),
                    "flag_rows": int(flagged[1]),
                    "parts_ms_per_photo": {k: round(v, 2) for k, v in parts.items()},
                    "encoder": enc_name,
                    "checker": checker.fingerprint,
                    "python": sys.version.split()[0],
                }
            )
        )
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
