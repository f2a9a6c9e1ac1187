"""Cross-check of the query check against the photo side's caption label rule (prints JSON).

Every human caption of a Flickr8k split is judged twice: by ``Policy.check_text(caption, "minors")``
(the query check: rules + semantic model) and by ``minor_words.caption_mentions_minor`` (the photo
side's stable English label rule, which on purpose does not count son/daughter). Captions are not
queries, but they are thousands of independent, real descriptions of photos: a caption the label rule
calls a minor that the query check lets through is a recall gap; the reverse shows what the query
check blocks beyond the rule (by design: daughter, his son; or semantic false positives).

    python tools/policy_vs_caption_rule.py --data ../shared/data/flickr8k --split val
"""

from __future__ import annotations

import os

os.environ.setdefault("OMP_NUM_THREADS", "1")

import argparse  # noqa: E402
import csv  # noqa: E402
import json  # noqa: E402
import time  # noqa: E402
from collections import Counter  # noqa: E402
from pathlib import Path  # noqa: E402

from pixsearch.policy.minor_words import caption_mentions_minor  # noqa: E402
from pixsearch.policy.rules import MINORS, load_policy  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", type=Path, default=Path("../shared/data/flickr8k"))
    ap.add_argument("--split", default="val")
    a = ap.parse_args()
    names = set((a.data / f"{a.split}.txt").read_text().split())
    with (a.data / "captions.csv").open(newline="", encoding="utf-8") as f:
        caps = [r["caption"] for r in csv.DictReader(f) if r["image"] in names]
    checker = load_policy().checker(MINORS)
    checker.warm()
    t = time.perf_counter()
    missed, extra, kinds = [], [], Counter()
    pos = 0
    for c in caps:
        y = caption_mentions_minor(c)
        v = checker.check(c)
        pos += y
        if y and not v.blocked:
            missed.append(c)
        elif v.blocked and not y:
            extra.append(f"{v.reason} | {c}")
            kinds[v.reason.split(":")[0]] += 1
    print(
        json.dumps(
            {
                "split": a.split,
                "captions": len(caps),
                "rule_positive": pos,
                "query_check_recall_vs_rule": round(1 - len(missed) / pos, 5) if pos else 1.0,
                "missed": missed,
                "extra_blocked": len(extra),
                "extra_blocked_rate_of_rule_negatives": round(len(extra) / (len(caps) - pos), 5),
                "extra_by_rule": dict(kinds),
                "extra_examples": extra[:30],
                "ms_per_caption": round(1000 * (time.perf_counter() - t) / len(caps), 3),
            },
            ensure_ascii=False,
            indent=1,
        )
    )


if __name__ == "__main__":
    main()
