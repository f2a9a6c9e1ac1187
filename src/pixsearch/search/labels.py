"""Label search: photos whose stored ImageNet labels (``models/labels.py``) match a query's words.

The labels enricher stores each photo's confident classes with their searchable words, FTS5-indexed;
this is the query side, one of the signals ``text.py`` fuses, and the labels shown with a result.
"""

from __future__ import annotations

from collections.abc import Sequence

from pixsearch.storage.catalog import Catalog
from pixsearch.storage.rows import fts_query

__all__ = ["label_search", "labels_of"]


def _stem(word: str) -> str:
    w = word.lower()
    for suf in ("ing", "es", "s"):
        if w.endswith(suf) and len(w) > len(suf) + 2:
            return w[: -len(suf)]
    return w


def label_search(catalog: Catalog, text: str, limit: int) -> dict[int, tuple[float, str]]:
    """Image id -> (evidence, label) for its best label whose words match the query.

    Evidence = the label's probability x the share of the query's content words it covers: "dog" is
    all of the query "dog" but one word of five in "a black dog runs through the grass", where the
    label says much less about whether the photo fits (measured: full weight hurt caption-like
    queries, docs/model.md "Labels").
    """
    q = fts_query(text)
    if not q:
        return {}
    qwords = {_stem(w) for w in q.replace('"', "").split(" OR ")}
    out: dict[int, tuple[float, str]] = {}
    covers: dict[str, float] = {}  # a class's words recur on every photo it labels: stem them once
    for hit in catalog.enrichments.label_matches(text, limit):
        cover = covers.get(hit.words)
        if cover is None:
            cover = covers[hit.words] = len(qwords & {_stem(w) for w in hit.words.split()}) / len(qwords)
        ev = hit.score * cover
        if hit.image_id not in out or ev > out[hit.image_id][0]:
            out[hit.image_id] = (ev, hit.label)
    return out


def labels_of(catalog: Catalog, image_ids: Sequence[int]) -> dict[int, list[tuple[str, float]]]:
    """Image id -> [(label, probability)] best first, for results and the captions gallery."""
    return catalog.enrichments.labels_of(image_ids)
