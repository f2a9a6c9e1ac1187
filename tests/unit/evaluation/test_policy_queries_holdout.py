"""The query check on its holdout set (``tests/data/policy_queries_holdout.csv``), through
``pixsearch eval policy``'s code (``evaluation/policy_queries.py``): recall and false-positive-rate floors.

docs/policy-queries.md: the holdout "was written after the lexicon, before the last calibration", so
it is the one query set the rules were not tuned on. Its first 60 rows (``lang`` = ``orig``: the
original holdout) are checked apart from the translations added later, so a regression on the
original set cannot hide behind the larger file.
"""

from __future__ import annotations

import csv
from pathlib import Path

import pytest

from pixsearch.evaluation.policy_queries import eval_policy_queries

HOLDOUT = Path(__file__).resolve().parents[3] / "tests" / "data" / "policy_queries_holdout.csv"


def _rows() -> list[dict[str, str]]:
    with HOLDOUT.open(encoding="utf-8", newline="") as f:
        return list(csv.DictReader(f))


def _rates(rows: list[dict[str, str]], tmp_path: Path) -> tuple[float, float, dict]:
    """(recall, false-positive rate, eval JSON) of the shipped policy's ``minors`` check on ``rows``."""
    f = tmp_path / "part.csv"
    with f.open("w", encoding="utf-8", newline="") as out:
        w = csv.writer(out)
        w.writerow(["query", "blocked"])
        w.writerows([r["query"], r["blocked"]] for r in rows)
    res = eval_policy_queries(f)
    negatives = sum(r["blocked"] == "0" for r in rows)
    return res["recall"], len(res["false_positives"]) / negatives, res


def test_original_60_query_holdout_floors(tmp_path: Path) -> None:
    """Measured (shipped policy, ``eval_policy_queries`` on the 60 ``orig`` rows, 29 blocked): recall 1.0,
    precision 1.0, false-positive rate 0.0. Floors: at most one miss (recall >= 0.965) and at most one
    false positive (FPR <= 0.033, of 31 negatives)."""
    rows = [r for r in _rows() if r.get("lang", "orig") == "orig"]
    assert len(rows) == 60 and sum(r["blocked"] == "1" for r in rows) == 29
    recall, fpr, res = _rates(rows, tmp_path)
    assert recall >= 0.965, res["false_negatives"]
    assert fpr <= 0.033, res["false_positives"]


@pytest.mark.parametrize("part", ["all", "translations"])
def test_whole_holdout_floors(part: str, tmp_path: Path) -> None:
    """Measured on the whole file (151 rows, 80 blocked): recall 1.0, precision 0.9877, FPR 1/71 = 0.0141
    (the false positive: '여자가 책을 읽는다', "a woman reads a book"); on the 91 translated rows alone
    recall 1.0, FPR 1/40 = 0.025. Floors: at most one miss and one more false positive than measured."""
    rows = _rows()
    if part == "translations":
        rows = [r for r in rows if r.get("lang", "orig") != "orig"]
    negatives = sum(r["blocked"] == "0" for r in rows)
    positives = len(rows) - negatives
    recall, fpr, res = _rates(rows, tmp_path)
    assert recall >= 1 - 1.5 / positives, res["false_negatives"]
    assert fpr <= 2.5 / negatives, res["false_positives"]
