"""``pixsearch eval policy --data DIR --split SPLIT``: the photo check judged from pixels alone.

Each photo of the split goes through what the indexer would run on it, minus its captions: the
encoder's features and the stored-thumbnail pixels' face summary into the shipped classifier, and the same
faces into the face/age rule. Positives are photos whose human captions mention a person under 16
(``minor_words.photo_is_positive``). Prints ``n_images, n_positive, precision, recall, flagged`` (+ the
classifier's average precision, per-signal counts and timings; ``scores=True`` adds each photo's
classifier score, for precision/recall curves such as ``tools/policy_pr_curve.py``).
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import numpy as np

from pixsearch.corpus.datasets import load_dataset
from pixsearch.errors import DatasetError, MediaError
from pixsearch.evaluation.thresholds import average_precision

__all__ = ["eval_policy_photos", "split_labels", "thumbnails"]


def split_labels(data: Path, split: str) -> tuple[list[str], np.ndarray]:
    """(image names, positive or not) of a split, by ``minor_words.photo_is_positive`` on its captions."""
    from pixsearch.policy.minor_words import photo_is_positive

    ds = load_dataset(data).split(split)
    by = ds.captions_by_image()
    names = list(ds.images)
    if not names:
        raise DatasetError(f"split {split!r} of {data} has no images")
    y = np.array([photo_is_positive(c.text for c in by.get(n, [])) for n in names], dtype=bool)
    return names, y


def thumbnails(data: Path, names: list[str]) -> list[np.ndarray | None]:
    """The RGB pixels the face check sees at index time: the stored thumbnail (JPEG, <= 256 px)."""
    from pixsearch.media import load_image, thumbnail_bytes
    from pixsearch.models.backbones import decode_size
    from pixsearch.policy.photo import rgb_of_thumbnail

    ds = load_dataset(data)
    out: list[np.ndarray | None] = []
    for n in names:
        try:
            out.append(
                rgb_of_thumbnail(thumbnail_bytes(load_image(ds.image_path(n), draft=decode_size(224))))
            )
        except MediaError:
            out.append(None)
    return out


def eval_policy_photos(
    data: Path | str, split: str = "val", model: str | None = None, scores: bool = False
) -> dict[str, Any]:
    from pixsearch.corpus.splits import derived_features, split_pooled
    from pixsearch.models.encoder import create_encoder
    from pixsearch.policy.faces import FaceAges
    from pixsearch.policy.photo import MinorsClassifier, PhotoChecker

    data = Path(data)
    enc = create_encoder(model)
    clf = MinorsClassifier.for_encoder(enc.name)  # the shipped one trained on this encoder's features
    limit = clf.card.get("thresholds", {}).get("face_age_limit") or 18.0
    checker = PhotoChecker(None, clf, FaceAges(limit=float(limit)), enc.name, full_evidence=True)
    names_all, labels = split_labels(data, split)
    label = dict(zip(names_all, labels, strict=True))
    t0 = time.perf_counter()
    names, pooled, extra = split_pooled(data, split, enc)
    t1 = time.perf_counter()
    imgs = thumbnails(data, names)
    t2 = time.perf_counter()
    verdicts = checker.check(derived_features(enc, pooled, extra), imgs, None)
    t3 = time.perf_counter()
    y = np.array([label[n] for n in names], dtype=bool)
    flag = np.array([v.flagged for v in verdicts], dtype=bool)
    clf_scores = np.array([float(v.evidence.get("classifier", 1.0)) for v in verdicts], dtype=np.float64)
    ap = average_precision(clf_scores, y)
    tp = int((flag & y).sum())
    reasons: dict[str, int] = {}
    for v in verdicts:
        for r in v.evidence.get("reasons", []):
            reasons[r] = reasons.get(r, 0) + 1
    # Photos that failed to decode are judged flagged (fail closed) and count as such.
    failed = [n for n in names_all if n not in set(names)]
    n = len(names_all)
    n_flag = int(flag.sum()) + len(failed)
    tp += sum(1 for f in failed if label[f])
    n_pos = int(labels.sum())
    return {
        "split": split,
        "n_images": n,
        "n_positive": n_pos,
        "precision": round(tp / n_flag, 4) if n_flag else 0.0,
        "recall": round(tp / n_pos, 4) if n_pos else 1.0,
        "flagged": sorted([nm for nm, f in zip(names, flag, strict=True) if f] + failed),
        "n_flagged": n_flag,
        "average_precision": round(ap, 4),  # of the classifier score alone (decoded photos)
        "threshold": clf.threshold,
        "signals": reasons,
        "errors": checker.errors,
        "model": {
            "classifier": clf.fingerprint,
            "faces": checker.faces.fingerprint if checker.faces else None,
        },
        "seconds": {
            "features": round(t1 - t0, 2),
            "thumbnails": round(t2 - t1, 2),
            "check_per_photo": round((t3 - t2) / max(1, len(names)), 4),
        },
        **(
            {
                "scores": {
                    n: [float(f"{s:.6g}"), bool(t)] for n, s, t in zip(names, clf_scores, y, strict=True)
                }
            }
            if scores
            else {}
        ),
    }
