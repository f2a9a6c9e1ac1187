"""Fusion of the text->image signals into one score per photo: per-signal calibration, then a fair mean.

Each raw score is first mapped to the log-odds that the photo is the one the query describes
(``CALIBRATION``: logistic fits on Flickr8k val, docs/model.md), so a dense cosine and a caption cosine
are in the same units. A photo's fused log-odds is the weighted mean of the log-odds of the signals it
HAS (a photo without human captions is judged on its pixels and generated caption alone, not given zeros
for captions it never had); a matching label, and the query's words among the photo's own words (its
keywords, place name, text read in it), add evidence on top. Squashed to 0..1, it is ``Hit.score``.

:func:`fuse_many` scores every candidate of a query at once (one NumPy pass per signal); :func:`fuse` is
the same formula for one photo, kept as the readable reference that the tests hold ``fuse_many`` to.
"""

from __future__ import annotations

import math
from collections.abc import Mapping

import numpy as np

__all__ = ["BM25_HALF", "CALIBRATION", "EVIDENCE", "LABEL_SIGNAL", "WORDS_SIGNAL", "calibrated", "fuse"]
__all__ += ["fuse_many", "squash"]

BM25_HALF = 5.0  # BM25 b -> b / (b + BM25_HALF): a strong lexical match approaches 1
# Raw score -> log-odds of relevance: slope, intercept. Fitted by logistic regression on Flickr8k val
# with lite0-minilm-v1 (2,000 caption queries x 1,000 images, one relevant each; docs/model.md, "Fair
# fusion"). ``generated`` was fitted on the captions of a 3-epoch captioner run (val BLEU-4 18.8): much
# flatter than human captions because generated ones are often wrong; refit when the captioner changes.
CALIBRATION: dict[str, tuple[float, float]] = {
    "dense": (20.06, -11.27),
    "caption": (17.94, -13.95),
    "bm25": (19.99, -16.28),
    "generated": (7.07, -8.13),
}
LABEL_SIGNAL = "label"
WORDS_SIGNAL = "words"  # share of the query's words among the photo's keywords, place, OCR text
EVIDENCE = (LABEL_SIGNAL, WORDS_SIGNAL)  # added on top of the mean, weight x value log-odds
_CLIP = 50.0  # log-odds beyond +-50 squash to exactly 0 or 1 in float64 anyway


def calibrated(signal: str, raw: float) -> float:
    a, b = CALIBRATION[signal]
    return a * raw + b


def squash(z: float) -> float:
    return 1.0 / (1.0 + math.exp(-max(-_CLIP, min(_CLIP, z))))


def fuse(scores: Mapping[str, float], weights: Mapping[str, float]) -> float:
    """0..1 from the raw scores a photo HAS: weighted mean log-odds (+ label evidence), squashed.

    A signal missing from ``scores`` is left out of the mean (its weight too), not counted as 0.
    """
    num = den = 0.0
    for k, w in weights.items():
        if k in scores and k in CALIBRATION:
            num += w * calibrated(k, scores[k])
            den += w
    label = 0.0
    for k in EVIDENCE:
        label += weights.get(k, 0.0) * scores.get(k, 0.0)
    if den == 0 and label == 0:
        return 0.0
    return squash((num / den if den else 0.0) + label)


def fuse_many(signals: Mapping[str, np.ndarray], weights: Mapping[str, float], n: int) -> np.ndarray:
    """:func:`fuse` for ``n`` photos at once: ``signals[k][i]`` is photo i's raw score of signal k, NaN
    where the photo lacks that signal (a missing ``label`` or ``words`` may also be 0). Same formula, same
    order of additions, in float64: the scores equal ``fuse``'s (up to the last bit of ``exp``)."""
    num = np.zeros(n)
    den = np.zeros(n)
    for k, w in weights.items():
        if k not in CALIBRATION or k not in signals:
            continue
        raw = np.asarray(signals[k], dtype=np.float64)
        has = ~np.isnan(raw)
        a, b = CALIBRATION[k]
        num += np.where(has, w * (a * np.where(has, raw, 0.0) + b), 0.0)
        den += np.where(has, w, 0.0)
    label = np.zeros(n)
    for k in EVIDENCE:
        if k in signals:
            label += weights.get(k, 0.0) * np.nan_to_num(np.asarray(signals[k], dtype=np.float64), nan=0.0)
    z = np.divide(num, den, out=np.zeros(n), where=den != 0) + label
    out = 1.0 / (1.0 + np.exp(-np.clip(z, -_CLIP, _CLIP)))
    out[(den == 0) & (label == 0)] = 0.0
    return out
