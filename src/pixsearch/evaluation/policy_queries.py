"""Evaluation of the query check: precision and recall of ``Policy.check_text`` on a labelled CSV.

The CSV has a header ``query,blocked`` (more columns, e.g. ``split`` or ``note``, are ignored);
``blocked`` is 1/0 (or true/false, yes/no). Every query is judged by the topic's checker directly, so
the result does not depend on the region a user happens to run in. The photo half of ``pixsearch eval
policy`` (``--data DIR --split SPLIT``) lives in ``policy_photos.py``.
"""

from __future__ import annotations

import csv
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pixsearch.errors import DatasetError
from pixsearch.policy.rules import MINORS, Policy, load_policy

__all__ = ["LabelledQuery", "read_queries", "eval_policy_queries"]

_TRUE = {"1", "true", "yes", "y", "blocked", "t"}
_FALSE = {"0", "false", "no", "n", "allowed", "f", ""}


@dataclass(frozen=True)
class LabelledQuery:
    query: str
    blocked: bool
    split: str = ""


def read_queries(path: Path | str, split: str | None = None) -> list[LabelledQuery]:
    """Rows of a ``query,blocked`` CSV; ``split`` keeps only rows whose ``split`` column equals it."""
    p = Path(path)
    try:
        with p.open(newline="", encoding="utf-8") as f:
            reader = csv.DictReader(f)
            if reader.fieldnames is None or not {"query", "blocked"} <= set(reader.fieldnames):
                raise DatasetError(f"{p}: expected a CSV with header columns query,blocked")
            rows = []
            for i, r in enumerate(reader, 2):
                lab = (r.get("blocked") or "").strip().lower()
                if lab not in _TRUE | _FALSE:
                    raise DatasetError(f"{p}:{i}: blocked must be 1 or 0, got {r.get('blocked')!r}")
                q = r.get("query") or ""
                if not q.strip():
                    continue
                rows.append(LabelledQuery(q, lab in _TRUE, (r.get("split") or "").strip()))
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise DatasetError(f"{p}: cannot read queries ({exc})") from exc
    if split:
        rows = [r for r in rows if r.split == split]
    if not rows:
        raise DatasetError(f"{p}: no queries" + (f" in split {split!r}" if split else ""))
    return rows


def eval_policy_queries(
    path: Path | str,
    policy: Policy | None = None,
    topic: str = MINORS,
    split: str | None = None,
) -> dict[str, Any]:
    """``{"n", "precision", "recall", "false_negatives", "false_positives", ...}`` for the topic's check.

    Precision is 1.0 when nothing is blocked (no false positive is possible), recall 1.0 when there is
    no positive: the usual conventions, stated so a reader of the JSON is not surprised.
    """
    rows = read_queries(path, split)
    pol = policy or load_policy()
    checker = pol.checker(topic)
    checker.warm()
    tp = fp = 0
    fns: list[str] = []
    fps: list[str] = []
    reasons: dict[str, int] = {}
    t0 = time.perf_counter()
    for r in rows:
        v = checker.check(r.query)
        if v.blocked:
            kind = v.reason.split(":", 1)[0]
            reasons[kind] = reasons.get(kind, 0) + 1
        if v.blocked and r.blocked:
            tp += 1
        elif v.blocked:
            fp += 1
            fps.append(r.query)
        elif r.blocked:
            fns.append(r.query)
    secs = time.perf_counter() - t0
    pos = sum(r.blocked for r in rows)
    return {
        "n": len(rows),
        "n_blocked": pos,
        "precision": round(tp / (tp + fp), 4) if tp + fp else 1.0,
        "recall": round(tp / pos, 4) if pos else 1.0,
        "false_negatives": fns,
        "false_positives": fps,
        "blocked_by": reasons,
        "topic": topic,
        "policy": pol.fingerprint,
        "ms_per_query": round(1000 * secs / len(rows), 3),
    }
