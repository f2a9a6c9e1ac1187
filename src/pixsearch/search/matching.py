"""Match scores for library photos: gathers a photo's evidence from the catalog for models/scorer.py.

The Library calls this for ``score``, ``describe`` and every search page. Evidence comes from what the
library already stores (joint vector, human captions' and generated captions' MiniLM vectors), so a
search page costs one small matrix product against the caption bank, never a photo decode. A new photo
(not in the library) is decoded and encoded once.

Thresholds apply to the calibrated match score; :data:`DEFAULT_THRESHOLD` is the "more likely than not"
point of a calibrated probability, the value to pass for a cut. Search does not cut by default: measured
on the Flickr8k test images, a photo's own caption reaches 0.5 in only ~32% of cases from pixels alone
(~85% with the photo's other captions as references), so a default cut would hide most right answers in
a library without captions. Every result still carries its match score.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np

from pixsearch.errors import ModelError, QueryError
from pixsearch.models.encoder import JointEncoder
from pixsearch.models.scorer import MatchScore, PhotoEvidence, Scorer, TextCheck, check_text, load_scorer
from pixsearch.results import Result, SearchResults, Withheld
from pixsearch.storage.catalog import Catalog, from_blobs

if TYPE_CHECKING:
    from pixsearch.search.text import Hit
    from pixsearch.storage.vectors import VectorIndex

__all__ = ["Matcher", "DEFAULT_THRESHOLD", "BELOW_SHOWN", "check_threshold", "match_page"]

DEFAULT_THRESHOLD = 0.5
BELOW_SHOWN = 3  # "best few below the line" when nothing passes


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
    scorer: Scorer = field(default_factory=lambda: load_scorer())
    _texts: dict[str, tuple[TextCheck, np.ndarray, np.ndarray]] = field(default_factory=dict, repr=False)
    _nbs: dict[int, np.ndarray] = field(default_factory=dict, repr=False)  # image id -> bank neighbours

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
        through one query encodes it once)."""
        hit = self._texts.get(text)
        if hit is None:
            hit = self._texts[text] = self._encode_text(text)
            while len(self._texts) > 64:
                self._texts.pop(next(iter(self._texts)))
        return hit

    def _encode_text(self, text: str) -> tuple[TextCheck, np.ndarray, np.ndarray]:
        chk = check_text(text)
        m, j = self.encoder.encode_texts([chk.text])
        return chk, m[0], j[0]

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

    def score_library(self, text: str, image_ids: Sequence[int], vectors: np.ndarray) -> list[MatchScore]:
        """Library photos for one text (a search page): bank neighbours are cached per photo id, so a
        warm search pays only for the photos it has not scored before."""
        chk, m, j = self.text(text)
        ids = [int(i) for i in image_ids]
        new = [n for n, i in enumerate(ids) if i not in self._nbs]
        if new:
            nb = self.scorer.neighbours(np.asarray(vectors)[new])
            for c, n in enumerate(new):
                self._nbs[ids[n]] = nb[:, c]
            while len(self._nbs) > 100_000:
                self._nbs.pop(next(iter(self._nbs)))
        evs = self.evidence(ids, vectors)
        return [
            self.scorer.combine(self.scorer.pair_signals(m, j, ev, self._nbs[i]), chk)
            for i, ev in zip(ids, evs, strict=True)
        ]

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


def match_page(
    matcher: Matcher,
    images: VectorIndex,
    query: str,
    hits: list[Hit],
    page: tuple[int, int],
    threshold: float | None,
    results: Callable[[list[Hit], dict[int, float] | None], list[Result | Withheld]],
) -> SearchResults:
    """A search page (``page`` = (k, offset)) of fused ``hits`` with match scores attached.

    Without a threshold only the page is scored; with one, every hit given (the search's window) is
    scored, those reaching it are paged, and when none does the best few below it are kept
    (``below_threshold``). ``images`` holds the hits' joint vectors; ``results`` turns hits (and their
    match scores) into the page's items. A model without a calibrated scorer gives plain results, or
    raises (ensure_usable) when a threshold asks for a score.
    """
    k, offset = page
    todo = hits[offset : offset + k] if threshold is None else hits
    if not matcher.usable:  # no calibrated score for this model: plain results, or say why
        if threshold is not None:
            matcher.ensure_usable()
        return SearchResults(results(todo, None), threshold)
    if not todo:
        return SearchResults([], threshold)
    ids = [h.image_id for h in todo]
    scores = matcher.score_library(query, ids, images.get(np.array(ids, dtype=np.int64)))
    match = {i: m.score for i, m in zip(ids, scores, strict=True)}
    if threshold is None:
        return SearchResults(results(todo, match), threshold)
    passing = [h for h in todo if match[h.image_id] >= threshold]
    if passing:
        return SearchResults(results(passing[offset : offset + k], match), threshold)
    best = sorted(todo, key=lambda h: -match[h.image_id])[:BELOW_SHOWN]
    return SearchResults([], threshold, results(best, match))
