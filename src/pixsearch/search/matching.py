"""Match scores for library photos: gathers a photo's evidence from the catalog for models/scorer.py.

The Library calls this for ``score``, ``describe`` and every search. Evidence comes from what the
library already stores (joint vector, human captions' and generated captions' MiniLM vectors), so a
search's window costs a few small matrix products against the caption bank, never a photo decode. A new
photo (not in the library) is decoded and encoded once.

Search ranks by the match score: fusion (``text.py``) orders the candidates, and each block of that order
(``search_blocks``) is ranked by the calibrated match, so the number shown beside each result goes down
the list. Against the fused order (Flickr8k, k=10, blocks of 50): natural queries P@10 on val 0.454 ->
0.496 (the scorer's caption bank holds val captions: optimistic), on test 0.400 -> 0.410; test caption
queries R@1/5/10 72.5 / 93.8 / 97.2 -> 75.6 / 94.6 / 97.2 with every photo captioned, 45.5 / 78.2 / 88.2
-> 52.6 / 79.7 / 89.2 with half of them (the uncaptioned half loses: 35.9 / 71.4 / 84.0 -> 26.7 / 66.4 /
81.3, a match from pixels alone being less sure than one from a photo's own captions).

Thresholds apply to the calibrated match score; :data:`DEFAULT_THRESHOLD` is the "more likely than not"
point of a calibrated probability, the value to pass for a cut. Search does not cut by default: measured
on the Flickr8k test images, a photo's own caption reaches 0.5 in only ~32% of cases from pixels alone
(~85% with the photo's other captions as references), so a default cut would hide most right answers in
a library without captions. Every result still carries its match score.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np

from pixsearch.errors import ModelError, QueryError
from pixsearch.models.encoder import JointEncoder
from pixsearch.models.scorer import MatchScore, PhotoEvidence, Scorer, TextCheck, check_text, load_scorer
from pixsearch.results import Result, SearchResults, Withheld
from pixsearch.search.fusion import WORDS_SIGNAL, squash
from pixsearch.search.match_signals import combine_many, window_signals
from pixsearch.search.memo import SearchMemo
from pixsearch.search.text import Hit, QueryVectors
from pixsearch.storage.catalog import Catalog, from_blobs

if TYPE_CHECKING:
    from pixsearch.storage.vectors import VectorIndex

__all__ = ["Matcher", "DEFAULT_THRESHOLD", "BELOW_SHOWN", "MATCH_WINDOW", "check_threshold", "match_page"]
__all__ += ["search_blocks"]

DEFAULT_THRESHOLD = 0.5
BELOW_SHOWN = 3  # "best few below the line" when nothing passes
# Fused candidates ranked by match score together: a block (see ``search_blocks``). By block 10 / 20 /
# 30 / 50: natural queries P@10 on val 0.454 / 0.486 / 0.496 / 0.496, on test 0.400 / 0.413 / 0.410 /
# 0.410; test caption queries R@5, half the photos captioned, 79.9 / 79.5 / 79.5 / 79.6. 48 holds the
# web page's first two pages of 24 (the CLI's first five of 10 in a block of 50).
MATCH_WINDOW = 48


def check_threshold(value: float | None) -> float | None:
    if value is None:
        return None
    try:
        v = float(value)
    except (TypeError, ValueError):
        raise QueryError(f"threshold must be a number between 0 and 1, got {value!r}") from None
    if not 0.0 <= v <= 1.0:
        raise QueryError(f"threshold must be between 0 and 1 (a match probability), got {value}")
    return v


@dataclass
class Matcher:
    catalog: Catalog
    encoder: JointEncoder
    scorer: Scorer = field(init=False)  # the shipped scorer fitted for ``encoder`` (models/scorer.py)
    _texts: dict[str, tuple[TextCheck, QueryVectors]] = field(default_factory=dict, repr=False)
    memo: SearchMemo = field(init=False, repr=False)  # caption owners, bank neighbours (memo.py)

    def __post_init__(self) -> None:
        self.scorer = load_scorer(encoder=self.encoder.name, fingerprint=self.encoder.fingerprint)
        self.memo = SearchMemo(self.catalog)

    @property
    def usable(self) -> bool:
        """The scorer's caption bank and joint-space signal belong to one encoder: with another (a raw
        backbone, a fresh training run) there is no calibrated score, rather than a wrong one."""
        fp = self.scorer.card.get("encoder_fingerprint")
        return bool(self.encoder.cross_modal) and (fp is None or fp == self.encoder.fingerprint)

    def ensure_usable(self) -> None:
        if not self.usable:
            raise ModelError(
                f"the match scorer {self.scorer.name} was fitted for model "
                f"{self.scorer.card.get('encoder')}, "
                f"not {self.encoder.name}; match scores need that model (`pixsearch reindex`)"
            )

    @property
    def uses_generated(self) -> bool:
        return any("generated" in k for k in self.scorer.models)

    def text(self, text: str) -> tuple[TextCheck, np.ndarray, np.ndarray]:
        """(check, MiniLM vector, joint vector) of a text; QueryError when empty. Memoised (paging
        through one query, or a search and its page's match scores, encode it once)."""
        chk, qv = self._query(text)
        if qv.joint is None:
            self.ensure_usable()
            raise ModelError(f"model {self.encoder.name} has no joint space for texts")
        return chk, qv.minilm, qv.joint

    def vectors(self, text: str) -> QueryVectors:
        """The query's vectors for ``TextSearch`` (the same memo as :meth:`text`: one encoder pass)."""
        return self._query(text)[1]

    def _query(self, text: str) -> tuple[TextCheck, QueryVectors]:
        chk = check_text(text)
        hit = self._texts.get(chk.text)
        if hit is None:
            if self.encoder.cross_modal:
                m, j = self.encoder.encode_texts([chk.text])
                qv = QueryVectors(m[0], j[0])
            else:
                qv = QueryVectors(self.encoder.encode_captions([chk.text])[0])
            hit = self._texts[chk.text] = (chk, qv)
            while len(self._texts) > 64:
                self._texts.pop(next(iter(self._texts)))
        return hit

    def evidence(self, image_ids: Sequence[int], vectors: np.ndarray) -> list[PhotoEvidence]:
        """Evidence of library photos whose joint vectors are ``vectors`` (rows aligned with ids)."""
        refs: dict[int, list[bytes]] = {}
        gen: dict[int, bytes] = {}
        ids = [int(i) for i in image_ids]
        for iid, source, blob in self.catalog.caption_embeddings(ids):
            if source == "human":
                refs.setdefault(iid, []).append(blob)
            else:
                gen.setdefault(iid, blob)
        dim = self.encoder.caption_dim
        out = []
        for iid, vec in zip(ids, vectors, strict=True):
            g = from_blobs([gen[iid]], dim)[0] if iid in gen and self.uses_generated else None
            r = from_blobs(refs[iid], dim) if iid in refs else None
            out.append(PhotoEvidence(np.asarray(vec, dtype=np.float32), g, r))
        return out

    def score_evidence(
        self,
        text: str | tuple[TextCheck, np.ndarray, np.ndarray],
        photos: Sequence[PhotoEvidence],
        references: bool = True,
    ) -> list[MatchScore]:
        chk, m, j = self.text(text) if isinstance(text, str) else text
        return [self.scorer.combine(s, chk, references) for s in self.scorer.signals(m, j, photos)]

    def score_library(
        self, text: str, image_ids: Sequence[int], vectors: np.ndarray, references: bool = True
    ) -> list[MatchScore]:
        """Library photos for one text (a search's window, or ``Library.score``), all at once
        (``match_signals.py``): bank neighbours are remembered per photo id (``SearchMemo``), so a warm
        search pays only for the photos it has not scored before; the photos' captions come from one
        catalog read and count as references unless ``references`` is False."""
        chk, m, j = self.text(text)
        ids = [int(i) for i in image_ids]
        vecs = np.asarray(vectors, dtype=np.float32).reshape(len(ids), -1)
        known = self.memo.neighbours
        rows = {i: known[i] for i in ids if i in known}
        new = [n for n, i in enumerate(ids) if i not in rows]
        if new:
            nb = self.scorer.neighbours(vecs[new])
            rows.update((ids[n], nb[:, c]) for c, n in enumerate(new))
            self.memo.remember_neighbours([ids[n] for n in new], nb)
        refs, gen = self._caption_cosines(ids, m)
        nbs = np.stack([rows[i] for i in ids]) if ids else np.zeros((0, 1), np.int32)
        signals = window_signals(self.scorer, m, j, vecs, nbs, refs, gen)
        return combine_many(self.scorer, signals, chk, references)

    def _caption_cosines(
        self, ids: list[int], text_minilm: np.ndarray
    ) -> tuple[list[np.ndarray | None], list[float | None]]:
        """Per photo: its human captions' MiniLM cosines with the text (None: none), and its first
        generated caption's (None: none, or the scorer does not use generated captions)."""
        rows = self.catalog.caption_embeddings(ids)
        sims = from_blobs([r[2] for r in rows], self.encoder.caption_dim) @ text_minilm
        human: dict[int, list[int]] = {}
        gen: dict[int, float] = {}
        for n, (iid, source, _) in enumerate(rows):
            if source == "human":
                human.setdefault(iid, []).append(n)
            elif self.uses_generated:
                gen.setdefault(iid, float(sims[n]))
        refs = [sims[human[i]] if i in human else None for i in ids]
        return refs, [gen.get(i) for i in ids]

    def score_texts(
        self, texts: Sequence[str], photo: PhotoEvidence, references: bool = True
    ) -> list[MatchScore]:
        """Many texts against one photo (``describe``): one batched text encoding."""
        if not texts:
            return []
        checks = [check_text(t) for t in texts]
        m, j = self.encoder.encode_texts([c.text for c in checks])
        nb = self.scorer.neighbours(photo.embedding[None])[:, 0]
        return [
            self.scorer.combine(self.scorer.pair_signals(m[i], j[i], photo, nb), c, references)
            for i, c in enumerate(checks)
        ]


def search_blocks(k: int, offset: int, threshold: float | None) -> tuple[int, int]:
    """(fused hits to fetch, block size) for a page of ``k`` results from ``offset``.

    The fused order is cut into blocks, each ranked by match: the list a user pages through is block 1
    ranked, then block 2 ranked, and so on. So every page of it is the same whichever page is asked
    first (a photo never shows twice or not at all when scrolling), and the match shown never goes up
    within a block. A block is a whole number of pages, at least ``MATCH_WINDOW`` results, so a rise can
    only come between pages, after the first ``MATCH_WINDOW`` results or more. A page needs only the
    blocks it touches scored; a threshold looks twice as deep for photos that pass it.
    """
    block = k * -(-MATCH_WINDOW // k)
    want = offset + k if threshold is None else max(2 * (offset + k), block)
    return block * -(-want // block), block


def match_page(
    matcher: Matcher,
    images: VectorIndex,
    query: str,
    hits: list[Hit],
    page: tuple[int, int],
    threshold: float | None,
    results: Callable[[list[Hit], dict[int, float] | None], list[Result | Withheld]],
    block: int | None = None,
    words: float = 0.0,
) -> SearchResults:
    """A search page (``page`` = (k, offset)) of ``hits`` (best fused first, as deep as
    ``search_blocks`` says), each ``block`` of them ranked by calibrated match score (ties: fused score,
    then id): the number every front end shows goes down the page.

    Without a threshold only the blocks the page touches are scored; with one, every hit given is, those
    reaching it are paged, and when none does the best few below it are kept (``below_threshold``).
    ``images`` holds the hits' joint vectors; ``results`` turns hits (and their match scores) into the
    page's items. A model without a calibrated scorer gives the fused order, or raises (ensure_usable)
    when a threshold asks for a score. ``words``: log-odds per unit of a hit's ``words`` signal added to
    its match (the photo's keywords or the text read in it say what the pixels may not: a shop's name).
    """
    k, offset = page
    if not matcher.usable:  # no calibrated score for this model: plain results, or say why
        if threshold is not None:
            matcher.ensure_usable()
        return SearchResults(results(hits[offset : offset + k], None), threshold)
    block = block or len(hits) or 1
    first = 0 if threshold is not None else offset // block * block
    todo = hits[first:] if threshold is not None else hits[first : offset + k]
    todo = hits[first : first + block * -(-len(todo) // block)]  # whole blocks
    if not todo:
        return SearchResults([], threshold)
    ids = [h.image_id for h in todo]
    scores = matcher.score_library(query, ids, images.get(np.array(ids, dtype=np.int64)))
    match = {i: m.score for i, m in zip(ids, scores, strict=True)}
    for h in todo:
        lift = words * h.scores.get(WORDS_SIGNAL, 0.0)
        if lift > 0:
            p = min(max(match[h.image_id], 1e-9), 1 - 1e-9)
            match[h.image_id] = squash(math.log(p / (1 - p)) + lift)

    def by_match(hs: list[Hit]) -> list[Hit]:
        return sorted(hs, key=lambda h: (-match[h.image_id], -h.score, h.image_id))

    ranked = [h for b in range(0, len(todo), block) for h in by_match(todo[b : b + block])]
    if threshold is None:
        return SearchResults(results(ranked[offset - first : offset - first + k], match), threshold)
    passing = [h for h in ranked if match[h.image_id] >= threshold]
    if passing:
        return SearchResults(results(passing[offset : offset + k], match), threshold)
    return SearchResults([], threshold, results(by_match(todo)[:BELOW_SHOWN], match))
