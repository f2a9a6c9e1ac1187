"""Natural-query evaluation: photographer-style queries whose relevance comes from caption regexes.

A query set is JSON ``[{"query": ..., "regex": ...}]``; a photo is relevant to a query when the regex
(case-insensitive, on lowercased text) matches at least one of the photo's human captions. Search never
sees those captions, so this measures how well a library indexed from pixels alone answers the way
people ask ("surfer riding a wave"), not how well it finds a caption it already holds.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from pathlib import Path

from pixsearch.errors import DatasetError

__all__ = ["load_queries", "relevant_sets", "natural_query_metrics"]


def load_queries(path: Path) -> list[dict[str, str]]:
    """Read and check a query set (each row needs a non-empty ``query`` and a valid ``regex``)."""
    try:
        rows = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as exc:
        raise DatasetError(f"{path}: cannot read query set ({exc})") from exc
    if not isinstance(rows, list):
        raise DatasetError(f"{path}: expected a JSON list of {{query, regex}} objects")
    for i, r in enumerate(rows):
        if not isinstance(r, dict) or not str(r.get("query", "")).strip() or "regex" not in r:
            raise DatasetError(f"{path}: row {i} needs a query and a regex")
        try:
            re.compile(r["regex"])
        except re.error as exc:
            raise DatasetError(f"{path}: row {i} ({r['query']!r}): bad regex ({exc})") from exc
    return rows


def relevant_sets(
    queries: Sequence[Mapping[str, str]], captions: Mapping[str, Sequence[str]]
) -> list[set[str]]:
    """Per query: the photos (keys of ``captions``) with at least one caption the regex matches."""
    out = []
    for q in queries:
        rx = re.compile(q["regex"], re.IGNORECASE)
        out.append({name for name, caps in captions.items() if any(rx.search(c.lower()) for c in caps)})
    return out


def natural_query_metrics(
    ranked: Sequence[Sequence[str]], relevant: Sequence[set[str]], k: int = 10
) -> dict[str, float | list[float]]:
    """Mean P@k and mAP@k over queries; ``ranked[i]`` is query i's result list, best first.

    P@k divides by k (a short result list is not rewarded). AP@k averages precision at each relevant
    hit over min(k, number of relevant photos), so a perfect top k scores 1 even with few relevant.
    A query with no relevant photo scores 0 (write query sets where each has some).
    """
    if len(ranked) != len(relevant):
        raise ValueError("one result list per query")
    ps, aps = [], []
    for res, rel in zip(ranked, relevant, strict=True):
        top = list(res)[:k]
        hits = [r in rel for r in top]
        ps.append(sum(hits) / k)
        found, ap = 0, 0.0
        for i, h in enumerate(hits, start=1):
            if h:
                found += 1
                ap += found / i
        aps.append(ap / min(k, len(rel)) if rel else 0.0)
    n = max(len(ps), 1)
    return {
        "p_at_10" if k == 10 else f"p_at_{k}": round(sum(ps) / n, 4),
        "map_at_10" if k == 10 else f"map_at_{k}": round(sum(aps) / n, 4),
        "per_query_p": ps,
        "per_query_ap": aps,
    }
