"""Threshold metrics for a flag-or-not classifier: the threshold that keeps a target recall, precision
and recall at a threshold, the precision/recall table, average precision.

Why in evaluation: the photo-policy trainer calibrates with them and ``eval policy`` reports with them,
and the library never imports the trainer; one tested definition serves both.
"""

from __future__ import annotations

import numpy as np

__all__ = ["average_precision", "pr_at", "pr_curve", "recall_threshold"]


def recall_threshold(
    scores: np.ndarray, y: np.ndarray, target: float, forced: np.ndarray | None = None
) -> float:
    """Largest threshold t such that recall of (scores >= t OR forced) on labels ``y`` is >= target."""
    pos = np.flatnonzero(y)
    if len(pos) == 0:
        return 0.5
    caught = np.zeros(len(pos), bool) if forced is None else forced[pos].astype(bool)
    rest = np.sort(scores[pos][~caught])[::-1]  # positives only the classifier can catch
    need = int(np.ceil(target * len(pos) - 1e-9)) - int(caught.sum())
    if need <= 0:
        return 1.0
    return float(rest[min(need, len(rest)) - 1])


def pr_at(scores: np.ndarray, y: np.ndarray, t: float, forced: np.ndarray | None = None) -> dict[str, float]:
    flag = scores >= t
    if forced is not None:
        flag |= forced
    y = np.asarray(y, bool)
    tp = int((flag & y).sum())
    return {
        "precision": round(tp / max(1, int(flag.sum())), 4),
        "recall": round(tp / max(1, int(y.sum())), 4),
        "flagged": int(flag.sum()),
    }


def pr_curve(
    scores: np.ndarray, y: np.ndarray, recalls: tuple[float, ...] = (0.8, 0.9, 0.95, 0.98, 0.99, 0.995, 1.0)
) -> list[dict[str, float]]:
    """Per target recall: the threshold that reaches it on these labels and the precision there (the
    precision/recall table of docs/policy.md)."""
    out = []
    for r in recalls:
        t = recall_threshold(scores, y, r)
        out.append({"target_recall": r, "threshold": t, **pr_at(scores, y, t)})
    return out


def average_precision(scores: np.ndarray, y: np.ndarray) -> float:
    order = np.argsort(-scores, kind="stable")
    hits = np.asarray(y, bool)[order].astype(np.float64)
    prec = np.cumsum(hits) / np.arange(1, len(hits) + 1)
    return float((prec * hits).sum() / max(1.0, hits.sum()))
