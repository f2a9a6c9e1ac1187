"""Composed queries: several words and photos added and taken away in the joint space, mixed into
``Library``. ``pixsearch search "a dog" + snow - grass``, ``2:beach + holiday.jpg``, the web page's "less
like this" (the query minus a photo).

Why a vector sum: in the joint space a photo and its description point the same way, so the sum of the
terms' unit vectors (each times its weight) points at photos that have what the positive terms say and
lack what the negative ones say (rclip's and CLIP front ends' "+" and "-"). Only the joint-space cosine
ranks a composed query: there is no caption or calibrated match for a sum of meanings, so results carry
``score`` (the cosine) and no ``match``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np

from pixsearch.errors import QueryError
from pixsearch.library.photo import PhotoRef
from pixsearch.results import Result, Withheld, check_page
from pixsearch.search.filters import Filters, gather_plan
from pixsearch.search.terms import Term, parse_terms
from pixsearch.search.text import Hit

if TYPE_CHECKING:
    from pixsearch.models.encoder import JointEncoder
    from pixsearch.policy.rules import Policy
    from pixsearch.storage.catalog import Catalog
    from pixsearch.storage.vectorset import VectorSet

__all__ = ["Composing", "Term", "parse_terms"]  # Term, parse_terms: from search/terms.py


class Composing:
    """``compose``: mixed into Library, which provides what it names here."""

    catalog: Catalog
    encoder: JointEncoder
    vectors: VectorSet
    policy: Policy

    if TYPE_CHECKING:  # provided by Library

        def check_query(self, text: str) -> None: ...

        def image_vector(self, image: PhotoRef) -> tuple[np.ndarray, int | None]: ...

        def _results(
            self, hits: list[Hit], match: dict[int, float] | None = None
        ) -> list[Result | Withheld]: ...

    def compose(
        self, terms: Sequence[Term], k: int = 10, offset: int = 0, filters: Filters | None = None
    ) -> list[Result | Withheld]:
        """Photos nearest the weighted sum of ``terms`` in the joint space, best first; the query's own
        photos left out. Words pass the region's text check like any query; a photo the region
        withholds is a BlockedError like any read of it."""
        check_page(k, offset)
        if not terms:
            raise QueryError("empty query: give at least one term")
        if not self.encoder.cross_modal:
            raise QueryError(f"model {self.encoder.name} has no joint space: composed queries need one")
        total = np.zeros(self.encoder.dim, dtype=np.float64)
        own: set[int] = set()
        texts = [t for t in terms if t.text is not None]
        for t in texts:
            self.check_query(str(t.text))
        if texts:
            vecs = self.encoder.encode_text([str(t.text) for t in texts])
            total += sum(t.weight * vecs[i].astype(np.float64) for i, t in enumerate(texts))
        for t in terms:
            if t.photo is not None:
                vec, iid = self.image_vector(t.photo)
                total += t.weight * vec.astype(np.float64)
                own |= {iid} if iid is not None else set()
        norm = float(np.linalg.norm(total))
        if norm < 1e-9:
            raise QueryError("the terms cancel out: nothing is left to search for")
        q = (total / norm).astype(np.float32)
        allowed = None if filters is None else filters.allowed(self.catalog)
        images = self.vectors.view("images")
        depth, exact = offset + k + len(own), True
        if allowed is not None:
            depth, exact = gather_plan(len(allowed), len(images), offset + k, depth)
        if allowed is not None and exact:  # every allowed photo, exactly
            ids = np.array(sorted(allowed - own), dtype=np.int64)
            sims = images.get(ids) @ q if len(ids) else np.zeros(0)
            best = np.lexsort((ids, -sims))[: offset + k]
            pairs = [(int(ids[i]), float(sims[i])) for i in best]
        else:
            keys, sims = images.search(q, depth)  # a large filter: deeper, keep what it allows
            pairs = [
                (int(i), float(s))
                for i, s in zip(keys[0], sims[0], strict=True)
                if int(i) not in own and (allowed is None or int(i) in allowed)
            ]
        hits = [Hit(i, s, {"dense": s}) for i, s in pairs[offset : offset + k]]
        return self._results(hits)
