"""The text->image query pipeline and rank fusion, over a catalog and its vector indexes.

query -> encode (MiniLM once; the joint-space query is the text head applied to that embedding) ->
candidates from three signals -> exact scores for every candidate -> weighted fusion -> threshold -> page.

Signals, each in 0..1-ish units so a weighted mean is meaningful:
* dense: cosine between the query and the image in the joint space (needs a cross-modal encoder);
* caption: MiniLM cosine between the query and the image's best-matching caption;
* bm25: FTS5 BM25 over captions, squashed by b / (b + 5) so a strong lexical match approaches 1.
The fused score is the weighted mean over the signals this library can offer; an image that lacks a
signal (no captions) scores 0 on it, which is what a user expects: less evidence, lower rank.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from .config import FusionWeights
from .errors import QueryError
from .index.catalog import Catalog, from_blobs
from .index.vectors import VectorIndex
from .models.encoder import HeadsEncoder, JointEncoder

__all__ = ["Hit", "TextSearch", "fuse"]

BM25_HALF = 5.0


@dataclass(frozen=True)
class Hit:
    image_id: int
    score: float
    scores: dict[str, float] = field(default_factory=dict)
    caption_id: int | None = None  # the caption that matched best, if any


def fuse(scores: dict[str, float], weights: dict[str, float]) -> float:
    total = sum(weights.values())
    return sum(w * scores.get(k, 0.0) for k, w in weights.items()) / total if total else 0.0


def _best_per_image(pairs: list[tuple[int, int, float]]) -> dict[int, tuple[float, int]]:
    """(caption id, image id, score) -> image id -> (best score, caption id)."""
    best: dict[int, tuple[float, int]] = {}
    for cid, iid, s in pairs:
        if iid not in best or s > best[iid][0]:
            best[iid] = (s, cid)
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
        w = {"dense": weights.dense, "caption": weights.caption, "bm25": weights.bm25}
        if not encoder.cross_modal or images is None or len(images) == 0:
            w.pop("dense")
        if captions is None or len(captions) == 0:
            w.pop("caption")
            w.pop("bm25")
        self.weights = {k: v for k, v in w.items() if v > 0}

    def run(self, query: str, k: int = 10, offset: int = 0, threshold: float | None = None) -> list[Hit]:
        q = query.strip()
        if not q:
            raise QueryError("empty query: type some words to search for")
        if k < 1 or offset < 0:
            raise QueryError("k must be >= 1 and offset >= 0")
        if not self.weights:
            return []
        n = max(200, 4 * (k + offset))
        cap_q = self.encoder.encode_captions([q])[0]
        dense: dict[int, float] = {}
        dense_q = None
        if "dense" in self.weights and self.images is not None:
            assert isinstance(self.encoder, HeadsEncoder)
            dense_q = self.encoder.text_from_embeddings(cap_q[None])[0]
            keys, sims = self.images.search(dense_q, n)
            dense = {int(a): float(b) for a, b in zip(keys[0], sims[0], strict=True)}
        cap_best: dict[int, tuple[float, int]] = {}
        if "caption" in self.weights and self.captions is not None:
            keys, sims = self.captions.search(cap_q, 3 * n)
            owner = self.catalog.caption_owner([int(x) for x in keys[0]])
            cap_best = _best_per_image(
                [
                    (int(c), owner[int(c)], float(s))
                    for c, s in zip(keys[0], sims[0], strict=True)
                    if int(c) in owner
                ]
            )
        bm25: dict[int, tuple[float, int]] = {}
        if "bm25" in self.weights:
            bm25 = _best_per_image(self.catalog.fts_search(q, 3 * n))
        cands = set(dense) | set(cap_best) | set(bm25)
        if not cands:
            return []
        ids = sorted(cands)
        # Exact scores for every candidate, so a signal's top-N cut-off does not zero a real score.
        if dense_q is not None and self.images is not None:
            missing = [i for i in ids if i not in dense]
            if missing:
                vecs = self.images.get(np.array(missing, dtype=np.int64))
                dense.update(zip(missing, (vecs @ dense_q).tolist(), strict=True))
        if "caption" in self.weights:
            rows = self.catalog.captions_of_images([i for i in ids if i not in cap_best])
            if rows:
                sims = from_blobs([r[2] for r in rows], len(cap_q)) @ cap_q
                for (cid, iid, _), s in zip(rows, sims.tolist(), strict=True):
                    if iid not in cap_best or s > cap_best[iid][0]:
                        cap_best[iid] = (s, cid)
        hits = []
        for i in ids:
            sc: dict[str, float] = {}
            if "dense" in self.weights:
                sc["dense"] = dense.get(i, 0.0)
            if "caption" in self.weights:
                sc["caption"] = cap_best[i][0] if i in cap_best else 0.0
            if "bm25" in self.weights:
                b = bm25[i][0] if i in bm25 else 0.0
                sc["bm25"] = b / (b + BM25_HALF)
            best_cap = cap_best.get(i, bm25.get(i, (0.0, None)))[1]
            hits.append(Hit(i, fuse(sc, self.weights), sc, best_cap))
        hits.sort(key=lambda h: (-h.score, h.image_id))
        if threshold is not None:
            hits = [h for h in hits if h.score >= threshold]
        return hits[offset : offset + k]
