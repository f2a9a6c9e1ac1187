"""Calibrate the semantic query check's threshold and margin on the DEV split of a labelled query CSV.

Prints JSON: the chosen (threshold, margin), and for dev and test the precision/recall of the semantic
check alone and of the whole check (rules + semantic). Choice rule, on dev only: among thresholds and
margins whose semantic check alone blocks at most --max-fp-rate of the dev negatives, the one that
blocks the most dev positives on its own (its power as a backstop for words the lexicon lacks), then
the fewest false positives, then the highest threshold. ``by_lang`` gives the whole check's figures
per language group (the CSV's ``lang`` column) and split.

    python tools/calibrate_policy.py [--queries tests/data/policy_queries.csv] [--model use-m3]
"""

from __future__ import annotations

import argparse
import csv
import json
from dataclasses import replace

import numpy as np

from pixsearch.evaluation.policy_queries import read_queries
from pixsearch.policy.rules import MINORS, load_policy
from pixsearch.policy.semantic import SemanticCheck
from pixsearch.policy.text import has_letters


def pr(pred: np.ndarray, y: np.ndarray) -> dict[str, float]:
    tp = int((pred & y).sum())
    fp = int((pred & ~y).sum())
    neg = int((~y).sum())
    return {
        "precision": round(tp / (tp + fp), 4) if tp + fp else 1.0,
        "recall": round(tp / int(y.sum()), 4) if y.sum() else 1.0,
        "fpr": round(fp / neg, 4) if neg else 0.0,
        "fp": fp,
        "fn": int((~pred & y).sum()),
    }


def languages(path: str, n: int) -> list[str]:
    """The CSV's ``lang`` column (the language group of each row), or "" where it has none."""
    with open(path, newline="", encoding="utf-8") as f:
        langs = [(r.get("lang") or "").strip() for r in csv.DictReader(f) if (r.get("query") or "").strip()]
    return langs if len(langs) == n else [""] * n


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--queries", default="tests/data/policy_queries.csv")
    ap.add_argument("--model", default=None)
    ap.add_argument("--max-fp-rate", type=float, default=0.01, help="semantic-only FP rate on dev negatives")
    a = ap.parse_args()
    pol = load_policy()
    checker = pol.checker(MINORS)
    topic = checker.topic if a.model is None else replace(checker.topic, semantic_model=a.model)
    sem = SemanticCheck(topic)
    rows = read_queries(a.queries)
    y = np.array([r.blocked for r in rows])
    dev = np.array([r.split == "dev" for r in rows])
    rule = np.array([checker.rule_verdict(r.query) is not None for r in rows])
    # the semantic check never reads a text without letters ("!!!", "2024"): SemanticCheck.check
    letters = np.array([has_letters(r.query) for r in rows])
    pn = np.array(
        [sem.scores(checker.semantic_input(r.query)) if has_letters(r.query) else (-1.0, 1.0) for r in rows]
    )
    p, n = pn[:, 0], pn[:, 1]
    assert not ((p >= -0.5) & ~letters).any()
    neg_dev = dev & ~y
    best = None
    for th in np.arange(0.30, 0.90, 0.005):
        for m in np.arange(-0.30, 0.301, 0.01):
            s = (p >= th) & (p - n >= m)
            fp_rate = (s & neg_dev).sum() / max(1, neg_dev.sum())
            if fp_rate > a.max_fp_rate:
                continue
            key = (-int((s & dev & y).sum()), int((s & neg_dev).sum()), -th, -m)
            if best is None or key < best[0]:
                best = (key, float(th), float(m))
    out: dict[str, object] = {"model": topic.semantic_model, "n": len(rows), "n_dev": int(dev.sum())}
    if best is None:
        out["error"] = "no threshold meets the false-positive budget on dev"
    else:
        th, m = best[1], best[2]
        s = (p >= th) & (p - n >= m)
        out["threshold"] = round(th, 3)
        out["margin"] = round(m, 3)
        for name, mask in (("dev", dev), ("test", ~dev)):
            out[name] = {
                "semantic_only": pr(s[mask], y[mask]),
                "rules_only": pr(rule[mask], y[mask]),
                "whole": pr((rule | s)[mask], y[mask]),
            }
        whole = rule | s
        lang = np.array(languages(a.queries, len(rows)))
        out["by_lang"] = {
            g: {
                name: pr(whole[mask & (lang == g)], y[mask & (lang == g)])
                for name, mask in (("dev", dev), ("test", ~dev))
            }
            for g in sorted(set(lang))
        }
        out["semantic_false_positives"] = [r.query for r, v in zip(rows, s & ~y, strict=True) if v]
        out["semantic_misses_of_positives"] = [r.query for r, v in zip(rows, ~s & y, strict=True) if v][:40]
    print(json.dumps(out, ensure_ascii=False, indent=1))


if __name__ == "__main__":
    main()
