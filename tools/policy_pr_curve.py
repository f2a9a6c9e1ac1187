"""Precision/recall of the shipped photo check on val and test (a dev tool, not shipped).

Why: the photo classifier's threshold is bought on val for a recall target; what it costs in precision
at each recall, and whether the held-out test split keeps the recall, is the table in docs/policy.md.
Each row is a threshold chosen on *val* (the largest that reaches the target recall there) and the
precision/recall/flagged it gives on val and on test. Scores are the classifier's alone (the face rule
of the shipped card never fires when its threshold is 1.0); the labels are ``photo_is_positive``.

    python tools/policy_pr_curve.py --data ../shared/data/flickr8k [--png docs/policy-pr.png] [--json]
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

import numpy as np

from pixsearch.evaluation.policy_photos import eval_policy_photos
from pixsearch.evaluation.thresholds import average_precision, pr_at, recall_threshold

TARGETS = (0.8, 0.9, 0.95, 0.98, 0.99, 0.995, 1.0)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", type=Path, required=True)
    ap.add_argument("--png", type=Path, default=None, help="Also draw both curves into this PNG.")
    ap.add_argument("--json", action="store_true", help="Print the rows as JSON instead of a table.")
    args = ap.parse_args()
    runs = {s: eval_policy_photos(args.data, s, scores=True) for s in ("val", "test")}
    sy = {
        s: (np.array([v[0] for v in r["scores"].values()]), np.array([v[1] for v in r["scores"].values()]))
        for s, r in runs.items()
    }
    rows: list[dict[str, Any]] = []
    for t in TARGETS:
        th = recall_threshold(*sy["val"], t)
        rows.append({"val_target_recall": t, "threshold": th, **{s: pr_at(*sy[s], th) for s in sy}})
    shipped = runs["val"]["threshold"]
    rows.append(
        {"val_target_recall": "shipped", "threshold": shipped, **{s: pr_at(*sy[s], shipped) for s in sy}}
    )
    aps = {s: round(average_precision(*sy[s]), 4) for s in sy}
    if args.json:
        print(json.dumps({"rows": rows, "average_precision": aps, "model": runs["val"]["model"]}))
    else:
        print(f"model {runs['val']['model']['classifier']}; AP val {aps['val']}, test {aps['test']}")
        cols = ["val recall target", "threshold"] + [
            f"{s} {m}" for s in sy for m in ("precision", "recall", "flagged")
        ]
        print("| " + " | ".join(cols) + " |")
        print("|---|---|---|---|---|---|---|---|")
        for r in rows:
            v, te = r["val"], r["test"]
            print(
                f"| {r['val_target_recall']} | {r['threshold']:.4g} | {v['precision']:.3f} | "
                f"{v['recall']:.4f} | {v['flagged']} | {te['precision']:.3f} | {te['recall']:.4f} | "
                f"{te['flagged']} |"
            )
    if args.png:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        fig, ax = plt.subplots(figsize=(6, 4), dpi=100)
        for s, (sc, y) in sy.items():
            order = np.argsort(-sc, kind="stable")
            tp = np.cumsum(y[order])
            ax.plot(tp / max(1, y.sum()), tp / np.arange(1, len(y) + 1), label=f"{s} (AP {aps[s]:.3f})")
            m = pr_at(sc, y, shipped)
            ax.plot([m["recall"]], [m["precision"]], "o", color=ax.lines[-1].get_color())
        ax.axvline(0.99, color="grey", lw=0.8, ls="--")
        ax.set_xlim(0.5, 1.005)
        ax.set_ylim(0.35, 1.0)
        ax.set_xlabel("recall (photos with a person under 16, caption labels)")
        ax.set_ylabel("precision")
        ax.set_title(f"{runs['val']['model']['classifier'].split(':')[0]}: dots = shipped threshold")
        ax.legend(loc="lower left")
        fig.tight_layout()
        fig.savefig(args.png)


if __name__ == "__main__":
    main()
