"""The text->image query pipeline and rank fusion, over a catalog and its vector indexes.

query -> encode (MiniLM once; the joint-space query is the text head applied to that embedding) ->
candidates from every signal -> exact scores for every candidate -> calibrated fusion -> threshold -> page.

Signals (raw scores):
* dense: cosine between the query and the image in the joint space (needs a cross-modal encoder);
* caption: MiniLM cosine between the query and the image's best human caption;
* bm25: FTS5 BM25 over human captions, squashed by b / (b + 5) so a strong lexical match approaches 1;
* generated: MiniLM cosine between the query and the image's generated caption
  (indexing/enrichers/captions.py);
* label: probability of the image's best ImageNet label whose words match the query (search/labels.py).

Fusion is fair to photos that lack a signal. Each raw score is first mapped to the log-odds that the
photo is the one the query describes (``CALIBRATION``: logistic fits on Flickr8k val, docs/model.md), so
a dense cosine and a caption cosine are in the same units. A photo's fused score is then the weighted
mean of the log-odds of the signals it HAS (a photo without human captions is judged on its pixels and
generated caption alone, not given zeros for captions it never had); a matching label adds evidence
on top. The mean log-odds is squashed to 0..1 for display. Before this, a library where only some
photos had captions capped an uncaptioned photo near a quarter of its dense score.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from pixsearch.config import FusionWeights
from pixsearch.errors import QueryError
from pixsearch.models.encoder import JointEncoder
from pixsearch.results import check_page
from pixsearch.search.labels import label_search
from pixsearch.storage.catalog import Catalog, from_blobs
from pixsearch.storage.vectors import VectorIndex

__all__ = ["CALIBRATION", "Hit", "TextSearch", "calibrated", "fuse"]

BM25_HALF = 5.0
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


@dataclass(frozen=True)
class Hit:
    image_id: int
    score: float
    scores: dict[str, float] = field(default_factory=dict)
    caption_id: int | None = None  # the caption that matched best, if any


def calibrated(signal: str, raw: float) -> float:
    a, b = CALIBRATION[signal]
    return a * raw + b


def fuse(scores: dict[str, float], weights: dict[str, float]) -> float:
    """0..1 from the raw scores a photo HAS: weighted mean log-odds (+ label evidence), squashed.

    A signal missing from ``scores`` is left out of the mean (its weight too), not counted as 0.
    """
    num = den = 0.0
    for k, w in weights.items():
        if k in scores and k in CALIBRATION:
            num += w * calibrated(k, scores[k])
            den += w
    label = weights.get(LABEL_SIGNAL, 0.0) * scores.get(LABEL_SIGNAL, 0.0)
    if den == 0 and label == 0:
        return 0.0
    z = (num / den if den else 0.0) + label
    return 1.0 / (1.0 + math.exp(-max(-50.0, min(50.0, z))))


def _best(rows: list[tuple[int, int, str, float]]) -> dict[tuple[int, str], tuple[float, int]]:
    """(caption id, image id, source, score) -> (image id, source) -> (best score, caption id)."""
    best: dict[tuple[int, str], tuple[float, int]] = {}
    for cid, iid, src, s in rows:
        key = (iid, src)
        if key not in best or s > best[key][0]:
            best[key] = (s, cid)
    return best


class TextSearch:
    """Stateless over its inputs; the Library builds one per query with its open indexes."""

    def __init__(
        self,
        catalog: Catalog,
        encoder: JointEncoder,
        images: VectorIndex | None,
        captions: VectorIndex | None,
        weights: FusionWeights,
    ) -> None:
        self.catalog = catalog
        self.encoder = encoder
        self.images = images
        self.captions = captions
        w = {
            "dense": weights.dense,
            "caption": weights.caption,
            "bm25": weights.bm25,
            "generated": weights.generated,
            LABEL_SIGNAL: weights.label,
        }
        if not encoder.cross_modal or images is None or len(images) == 0:
            w.pop("dense")
        if captions is None or len(captions) == 0:
            for k in ("caption", "bm25", "generated"):
                w.pop(k)
        self.weights = {k: v for k, v in w.items() if v > 0}

    def run(self, query: str, k: int = 10, offset: int = 0, threshold: float | None = None) -> list[Hit]:
        q = query.strip()
        if not q:
            raise QueryError("empty query: type some words to search for")
        check_page(k, offset)
        if not self.weights:
            return []
        n = max(200, 4 * (k + offset))
        cap_q = self.encoder.encode_captions([q])[0]
        dense: dict[int, float] = {}
        dense_q = None
        if "dense" in self.weights and self.images is not None:
            dense_q = self.encoder.text_from_embeddings(cap_q[None])[0]
            keys, sims = self.images.search(dense_q, n)
            dense = {int(a): float(b) for a, b in zip(keys[0], sims[0], strict=True)}
        cands = set(dense)
        uses_captions = any(s in self.weights for s in ("caption", "bm25", "generated"))
        idx_hits: list[tuple[int, float]] = []
        if uses_captions and self.captions is not None:
            keys, sims = self.captions.search(cap_q, 3 * n)
            idx_hits = [(int(c), float(v)) for c, v in zip(keys[0], sims[0], strict=True)]
        fts_hits: list[tuple[int, float]] = []
        if "bm25" in self.weights:
            fts_hits = self.catalog.fts_rank(q, 3 * n)
        # one lookup of owner and source for every caption either search returned
        meta = self.catalog.caption_sources(sorted({c for c, _ in idx_hits} | {c for c, _ in fts_hits}))
        cap_best = _best([(c, *meta[c], v) for c, v in idx_hits if c in meta])
        bm25: dict[int, tuple[float, int]] = {}
        for c, b in fts_hits:
            if c in meta and meta[c][1] == "human":  # generated captions have their own, weaker signal
                iid = meta[c][0]
                if iid not in bm25 or b > bm25[iid][0]:
                    bm25[iid] = (b, c)
        cands |= {iid for iid, _ in cap_best} | set(bm25)
        labels: dict[int, tuple[float, str]] = {}
        if LABEL_SIGNAL in self.weights:
            labels = label_search(self.catalog, q, 3 * n)
            cands |= set(labels)
        if not cands:
            return []
        ids = sorted(cands)
        # Exact scores for every candidate, so a signal's top-N cut-off does not zero a real score.
        if dense_q is not None and self.images is not None:
            missing = [i for i in ids if i not in dense]
            if missing:
                vecs = self.images.get(np.array(missing, dtype=np.int64))
                dense.update(zip(missing, (vecs @ dense_q).tolist(), strict=True))
        if uses_captions:
            seen = {iid for iid, _ in cap_best}
            rows = self.catalog.captions_of_images([i for i in ids if i not in seen])
            if rows:
                sims = from_blobs([r[3] for r in rows], len(cap_q)) @ cap_q
                more = zip(rows, sims.tolist(), strict=True)
                cap_best.update(_best([(int(r[0]), int(r[1]), str(r[2]), v) for r, v in more]))
        hits = []
        for i in ids:
            sc: dict[str, float] = {}
            if "dense" in self.weights:
                sc["dense"] = dense.get(i, 0.0)
            human = cap_best.get((i, "human"))
            if human is not None:  # signals of human captions only for photos that have them
                if "caption" in self.weights:
                    sc["caption"] = human[0]
                if "bm25" in self.weights:
                    b = bm25[i][0] if i in bm25 else 0.0
                    sc["bm25"] = b / (b + BM25_HALF)
            gen = cap_best.get((i, "generated"))
            if gen is not None and "generated" in self.weights:
                sc["generated"] = gen[0]
            if i in labels:
                sc[LABEL_SIGNAL] = labels[i][0]
            best_cap = (human or gen or (0.0, None))[1]
            hits.append(Hit(i, fuse(sc, self.weights), sc, best_cap))
        hits.sort(key=lambda h: (-h.score, h.image_id))
        if threshold is not None:
            hits = [h for h in hits if h.score >= threshold]
        return hits[offset : offset + k]
