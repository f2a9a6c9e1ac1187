"""The text->image query pipeline over a catalog and its vector indexes: candidates, exact scores, fusion.

query -> vectors (one encoder pass: MiniLM and joint space, shared with the match score) -> candidates
from every signal -> exact scores for every candidate that can still reach the depth asked for ->
fusion (``fusion.py``) -> threshold -> the window that ``matching.py`` ranks by the calibrated match.

Signals (raw scores):
* dense: cosine between the query and the image in the joint space (needs a cross-modal encoder);
* caption: MiniLM cosine between the query and the image's best human caption;
* bm25: FTS5 BM25 over human captions, squashed by b / (b + 5) so a strong lexical match approaches 1;
* generated: MiniLM cosine between the query and the image's generated caption
  (indexing/enrichers/captions.py);
* label: probability of the image's best ImageNet label whose words match the query (search/labels.py);
* words: the share of the query's words among the photo's own words (keywords, place name, text read
  in it: photo_texts, found with FTS5); evidence added on top like a label.

:class:`~pixsearch.search.filters.Filters` narrow the candidates to the photos they allow (``allowed``):
a small set is scored whole (every photo in it exactly), a large one by gathering deeper.

Every candidate's signals are held in arrays aligned with the candidates' ids (NaN: the photo lacks the
signal), so fusion is one NumPy pass, and only the returned page becomes :class:`Hit` objects. A photo
without human captions is judged on what it has (``fusion.py``).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from pixsearch.config import FusionWeights
from pixsearch.errors import QueryError
from pixsearch.models.encoder import JointEncoder
from pixsearch.results import check_page
from pixsearch.search.filters import gather_plan
from pixsearch.search.fusion import (
    BM25_HALF,
    CALIBRATION,
    LABEL_SIGNAL,
    WORDS_SIGNAL,
    calibrated,
    fuse,
    fuse_many,
)
from pixsearch.search.labels import label_search
from pixsearch.storage.catalog import Catalog, from_blobs
from pixsearch.storage.rows import fts_words
from pixsearch.storage.vectors import VectorIndex

__all__ = ["CALIBRATION", "Hit", "QueryVectors", "Ranked", "TextSearch", "calibrated", "fuse"]

_SIGNALS = ("dense", "caption", "bm25", "generated", LABEL_SIGNAL, WORDS_SIGNAL)  # Hit.scores' key order
# Cosine slack on the caption index's last hit when bounding what an unread caption can score: the
# HNSW index is approximate, so a caption just above its last hit may not have come back. On 7,567
# Flickr8k photos, 300 queries, top 50: slack 0.02 changed 2 queries' lists (a photo at rank 46-50),
# 0.05 one, 0.1 none (every list and score as when every candidate is read).
ANN_SLACK = 0.1
# Captions BM25 may score per caption it returns (words rarest first, see TextSearch._bm25_words): the
# cost of FTS5 grows with every caption a word matches. On 7,567 Flickr8k photos (37,831 captions) this
# took BM25 from 7.1 to 1.7 ms of CPU a query, with the same natural-query P@10 and test R@1/5/10.
BM25_ROWS = 4
Owners = Callable[[np.ndarray], tuple[np.ndarray, np.ndarray, np.ndarray]]
Counts = Callable[[list[str]], dict[str, int]]


@dataclass(frozen=True)
class Hit:
    image_id: int
    score: float
    scores: dict[str, float] = field(default_factory=dict)
    caption_id: int | None = None  # the caption that matched best, if any


@dataclass(frozen=True)
class QueryVectors:
    """A query's vectors from one encoder pass: MiniLM (captions' space) and the joint space (None for
    an encoder without one). The Library encodes once and hands the same vectors to the match score."""

    minilm: np.ndarray
    joint: np.ndarray | None = None


def _check_query(query: str) -> str:
    q = query.strip()
    if not q:
        raise QueryError("empty query: type some words to search for")
    return q


def _group_best(
    iids: np.ndarray, scores: np.ndarray, cids: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(image ids, best score, its caption id) per image; among equal scores the first row wins."""
    if not len(iids):
        return iids, scores, cids
    order = np.lexsort((np.arange(len(iids)), -scores, iids))
    first = np.ones(len(order), dtype=bool)
    first[1:] = iids[order][1:] != iids[order][:-1]
    pick = order[first]
    return iids[pick], scores[pick], cids[pick]


def _lookup(sorted_ids: np.ndarray, keys: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(which ``keys`` are in ``sorted_ids``, their positions there: valid where found)."""
    if not len(sorted_ids):
        return np.zeros(len(keys), dtype=bool), np.zeros(len(keys), dtype=np.int64)
    pos = np.minimum(np.searchsorted(sorted_ids, keys), len(sorted_ids) - 1)
    return sorted_ids[pos] == keys, pos


def _place(ids: np.ndarray, keys: np.ndarray, values: np.ndarray, fill: float = np.nan) -> np.ndarray:
    """``values`` of ``keys`` spread over the sorted ``ids`` (keys not among them left out); ``fill``
    elsewhere."""
    out = np.full(len(ids), fill, dtype=np.float64)
    found, pos = _lookup(ids, np.asarray(keys, dtype=np.int64))
    out[pos[found]] = np.asarray(values)[found]
    return out


def _none() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    return np.zeros(0, np.int64), np.zeros(0), np.zeros(0, np.int64)


@dataclass
class _Gathered:
    """One query's hits from each signal, before the candidates' exact scores."""

    uses_captions: bool
    dense_keys: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))
    dense_sims: np.ndarray = field(default_factory=lambda: np.zeros(0))
    # source (human | generated) -> (image ids, best caption score, that caption's id)
    best: dict[str, tuple[np.ndarray, np.ndarray, np.ndarray]] = field(
        default_factory=lambda: {"human": _none(), "generated": _none()}
    )
    bm25_ids: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))
    bm25: np.ndarray = field(default_factory=lambda: np.zeros(0))
    label_ids: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))
    label_evidence: np.ndarray = field(default_factory=lambda: np.zeros(0))
    words_ids: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))
    words: np.ndarray = field(default_factory=lambda: np.zeros(0))
    every_caption: bool = True  # the caption index returned all it holds
    ceiling: float = 1.0  # no caption the index did not return scores above this

    def seen(self) -> list[np.ndarray]:
        """Image ids with a caption among the caption index's hits (either source)."""
        return [self.best["human"][0], self.best["generated"][0]]

    def add_rows(self, rows: list[tuple[int, int, str, bytes]], q: np.ndarray) -> None:
        """Exact best caption per source of photos read from the catalog: (caption id, image id, source,
        MiniLM blob) rows of photos with no caption among the hits."""
        if not rows:
            return
        c = np.array([r[0] for r in rows], dtype=np.int64)
        i = np.array([r[1] for r in rows], dtype=np.int64)
        h = np.array([r[2] == "human" for r in rows], dtype=bool)
        s = (from_blobs([r[3] for r in rows], len(q)) @ q).astype(np.float64)
        for src, m in (("human", h), ("generated", ~h)):
            (oi, os_, oc), (ni, ns, nc) = self.best[src], _group_best(i[m], s[m], c[m])
            self.best[src] = (np.concatenate([oi, ni]), np.concatenate([os_, ns]), np.concatenate([oc, nc]))

    def caption_ids(self, ids: np.ndarray) -> np.ndarray:
        """The best human caption of each photo, else its generated one, else -1."""
        hi, _, hc = self.best["human"]
        gi, _, gc = self.best["generated"]
        human = _place(ids, hi, hc.astype(np.float64), fill=-1)
        gen = _place(ids, gi, gc.astype(np.float64), fill=-1)
        return np.where(human >= 0, human, gen).astype(np.int64)


@dataclass
class Ranked:
    """The candidates of one query that can reach the depth asked for, fused: ids ascending, ``score``
    aligned, raw ``signals`` (NaN: the photo lacks it), each one's best caption id (-1: none)."""

    ids: np.ndarray
    score: np.ndarray
    signals: dict[str, np.ndarray]
    caption_ids: np.ndarray

    def order(self, threshold: float | None = None) -> np.ndarray:
        """Candidate positions best first (ties: lower image id first), at or above ``threshold``."""
        order = np.lexsort((self.ids, -self.score))
        return order if threshold is None else order[self.score[order] >= threshold]

    def hit(self, i: int) -> Hit:
        scores = {k: float(self.signals[k][i]) for k in _SIGNALS if k in self.signals}
        scores = {k: v for k, v in scores.items() if v == v}  # NaN: the photo lacks this signal
        cid = int(self.caption_ids[i])
        return Hit(int(self.ids[i]), float(self.score[i]), scores, None if cid < 0 else cid)


class TextSearch:
    """Stateless over its inputs; the Library builds one per query with its open indexes.

    ``encode`` (text -> :class:`QueryVectors`) lets the caller share the query's vectors (the Library's
    match scorer memoises them); without it the encoder runs once here. ``owners`` maps caption ids to
    (ids, image ids, human?) like ``Catalog.caption_owners``, ``doc_counts`` words to how many captions
    hold them like ``Catalog.fts_doc_counts`` (the Library's ``SearchMemo`` remembers both).
    """

    min_hits = 200  # each signal's hits: at least this many photos (three times as many captions)
    prune = True  # leave out unread candidates that cannot reach the requested depth (tests turn it off)

    def __init__(
        self,
        catalog: Catalog,
        encoder: JointEncoder,
        images: VectorIndex | None,
        captions: VectorIndex | None,
        weights: FusionWeights,
        encode: Callable[[str], QueryVectors] | None = None,
        owners: Owners | None = None,
        doc_counts: Counts | None = None,
        allowed: set[int] | None = None,
    ) -> None:
        self.catalog = catalog
        # the only photos a filtered search may return, sorted (None: every photo)
        self.allowed = None if allowed is None else np.array(sorted(allowed), dtype=np.int64)
        self.encoder = encoder
        self.images = images
        self.captions = captions
        self._encode = encode
        self._owners: Owners = owners or catalog.caption_owners
        self._doc_counts: Counts = doc_counts or catalog.fts_doc_counts
        w = {
            "dense": weights.dense,
            "caption": weights.caption,
            "bm25": weights.bm25,
            "generated": weights.generated,
            LABEL_SIGNAL: weights.label,
            WORDS_SIGNAL: weights.words,
        }
        if not encoder.cross_modal or images is None or len(images) == 0:
            w.pop("dense")
        if captions is None or len(captions) == 0:
            for k in ("caption", "bm25", "generated"):
                w.pop(k)
        self.weights = {k: v for k, v in w.items() if v > 0}

    def encode(self, text: str) -> QueryVectors:
        if self._encode is not None:
            return self._encode(text)
        if self.encoder.cross_modal:
            m, j = self.encoder.encode_texts([text])
            return QueryVectors(m[0], j[0])
        return QueryVectors(self.encoder.encode_captions([text])[0])

    def run(self, query: str, k: int = 10, offset: int = 0, threshold: float | None = None) -> list[Hit]:
        _check_query(query)
        check_page(k, offset)
        ranked = self.rank(query, k + offset)
        if ranked is None:
            return []
        return [ranked.hit(int(i)) for i in ranked.order(threshold)[offset : offset + k]]

    def rank(self, query: str, depth: int = 10) -> Ranked | None:
        """The candidates of ``query`` that can reach its best ``depth``, with exact fused scores (None:
        nothing to search, or nothing found). Each signal contributes its best ``max(min_hits, 4 * depth)``
        photos (dense) or three times that many captions, as before; a candidate none of whose captions
        the caption index returned is read from the catalog only when its best possible score (its
        captions at most as close as the last caption returned) could still reach the best ``depth``."""
        q = _check_query(query)
        check_page(depth)
        allowed = self.allowed
        if not self.weights or (allowed is not None and not len(allowed)):
            return None
        qv = self.encode(q)
        n = max(self.min_hits, 4 * depth)
        exact, dense_n = True, n
        if allowed is not None:  # filtered: photos deeper, or every allowed photo scored (filters.py)
            dense_n, exact = gather_plan(len(allowed), len(self.images or ()), depth, n)
        g = self._gather(q, qv, n, dense_n)
        ids = np.unique(np.concatenate([g.dense_keys, *g.seen(), g.bm25_ids, g.label_ids, g.words_ids]))
        if allowed is not None:
            ids = allowed if exact else np.intersect1d(ids, allowed)
        if not len(ids):
            return None
        w = self.weights
        signals: dict[str, np.ndarray] = {}
        # Exact scores for every candidate, so a signal's top-N cut-off does not zero a real score.
        if qv.joint is not None and "dense" in w and self.images is not None:
            dense = _place(ids, g.dense_keys, g.dense_sims)
            missing = np.isnan(dense)
            if missing.any():
                dense[missing] = self.images.get(ids[missing]) @ qv.joint
            signals["dense"] = dense
        if len(g.label_ids):
            signals[LABEL_SIGNAL] = _place(ids, g.label_ids, g.label_evidence)
        if len(g.words_ids):
            signals[WORDS_SIGNAL] = _place(ids, g.words_ids, g.words, fill=0.0)
        if not g.uses_captions:
            return Ranked(ids, fuse_many(signals, w, len(ids)), signals, np.full(len(ids), -1, np.int64))
        unseen = ~np.isin(ids, np.concatenate(g.seen()))
        if unseen.any() and not g.every_caption and self.prune:
            keep = ~unseen | self._may_reach(ids, signals, g, unseen, depth)
            ids, unseen = ids[keep], unseen[keep]
            signals = {k: v[keep] for k, v in signals.items()}
        if unseen.any():
            g.add_rows(self.catalog.captions_of_images(ids[unseen].tolist()), qv.minilm)
        self._caption_signals(ids, signals, g)
        return Ranked(ids, fuse_many(signals, w, len(ids)), signals, g.caption_ids(ids))

    def _gather(self, q: str, qv: QueryVectors, n: int, dense_n: int) -> _Gathered:
        """Each signal's own best: dense (``dense_n`` photos: deeper under a filter) and caption-index
        hits, BM25 over human captions, labels."""
        w = self.weights
        g = _Gathered(uses_captions=any(s in w for s in ("caption", "bm25", "generated")))
        if qv.joint is not None and "dense" in w and self.images is not None:
            keys, sims = self.images.search(qv.joint, dense_n)
            g.dense_keys, g.dense_sims = keys[0].astype(np.int64), sims[0].astype(np.float64)
        cap_c, cap_s = np.zeros(0, np.int64), np.zeros(0)
        if g.uses_captions and self.captions is not None:
            keys, sims = self.captions.search(qv.minilm, 3 * n)
            cap_c, cap_s = keys[0].astype(np.int64), sims[0].astype(np.float64)
            g.every_caption = len(cap_c) < 3 * n  # the index holds fewer: every caption came back
            g.ceiling = float(cap_s.min()) + ANN_SLACK if len(cap_c) else 1.0
        fts = self.catalog.fts_rank(" ".join(self._bm25_words(q, 3 * n)), 3 * n) if "bm25" in w else []
        fts_c = np.array([c for c, _ in fts], dtype=np.int64)
        fts_b = np.array([b for _, b in fts], dtype=np.float64)
        # one lookup of owner and source for every caption either search returned
        mid, miid, mhuman = self._owners(np.union1d(cap_c, fts_c))
        if len(cap_c):
            known, pos = _lookup(mid, cap_c)
            iid, human, c, s = miid[pos][known], mhuman[pos][known], cap_c[known], cap_s[known]
            for src, m in (("human", human), ("generated", ~human)):
                g.best[src] = _group_best(iid[m], s[m], c[m])
        if len(fts_c):  # generated captions have their own, weaker signal: BM25 of human ones only
            known, pos = _lookup(mid, fts_c)
            keep = known & mhuman[pos]
            g.bm25_ids, g.bm25, _ = _group_best(miid[pos][keep], fts_b[keep], fts_c[keep])
        if LABEL_SIGNAL in w:
            labels = label_search(self.catalog, q, 3 * n)
            g.label_ids = np.fromiter(labels, dtype=np.int64, count=len(labels))
            g.label_evidence = np.array([labels[i][0] for i in labels], dtype=np.float64)
        if WORDS_SIGNAL in w:
            words = self.catalog.photo_texts.coverage(q, 3 * n)
            g.words_ids = np.array([i for i, _ in words], dtype=np.int64)
            g.words = np.array([b for _, b in words], dtype=np.float64)
        return g

    def _bm25_words(self, q: str, limit: int) -> list[str]:
        """The query's words for BM25, rarest first, while the captions holding them stay within
        ``BM25_ROWS`` x ``limit`` (always the rarest one): FTS5 scores every caption that matches, so
        a word in a fifth of the library ("dog", "man") would cost more than the rest of the search, and
        the captions it alone matches rank below those matching the rarer words."""
        words = fts_words(q)
        counts = self._doc_counts(words)
        kept: list[str] = []
        rows = 0
        for word in sorted(words, key=lambda x: counts.get(x, 0)):
            rows += counts.get(word, 0)
            if kept and rows > BM25_ROWS * limit:
                break
            kept.append(word)
        return kept

    def _caption_signals(self, ids: np.ndarray, signals: dict[str, np.ndarray], g: _Gathered) -> None:
        w = self.weights
        human = _place(ids, *g.best["human"][:2])
        if "caption" in w:  # signals of human captions only for photos that have them
            signals["caption"] = human
        if "bm25" in w:
            b = _place(ids, g.bm25_ids, g.bm25, fill=0.0)
            signals["bm25"] = np.where(np.isnan(human), np.nan, b / (b + BM25_HALF))
        if "generated" in w:
            signals["generated"] = _place(ids, *g.best["generated"][:2])

    def _may_reach(
        self, ids: np.ndarray, signals: dict[str, np.ndarray], g: _Gathered, unseen: np.ndarray, depth: int
    ) -> np.ndarray:
        """Unseen candidates whose best possible score reaches the ``depth``-th exact score of the others.

        An unseen photo may have human and generated captions or not; each it has scores at most
        ``g.ceiling`` (the last caption returned, plus slack for the approximate index). Fusion only grows
        with each signal's value, so the best of the (at most four) ways it can be is an upper bound.
        """
        w = self.weights
        seen_sig = {k: v[~unseen] for k, v in signals.items()}
        seen_ids = ids[~unseen]
        self._caption_signals(seen_ids, seen_sig, g)
        exact = fuse_many(seen_sig, w, len(seen_ids))
        cut = len(exact) - depth
        bar = -np.inf if cut < 0 else float(np.partition(exact, cut)[cut])
        m = int(unseen.sum())
        base = {k: v[unseen] for k, v in signals.items()}
        b = _place(ids[unseen], g.bm25_ids, g.bm25, fill=0.0)
        nan, top = np.full(m, np.nan), np.full(m, g.ceiling)
        best = np.zeros(m)
        for has_human in (False, True) if {"caption", "bm25"} & set(w) else (False,):
            for has_gen in (False, True) if "generated" in w else (False,):
                sig = dict(base)
                sig["caption"] = top if has_human else nan
                sig["bm25"] = b / (b + BM25_HALF) if has_human else nan
                sig["generated"] = top if has_gen else nan
                best = np.maximum(best, fuse_many(sig, w, m))
        out = np.zeros(len(ids), dtype=bool)
        out[unseen] = best >= bar
        return out
