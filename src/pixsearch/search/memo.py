"""What warm searches repeat, remembered per library connection: caption owners, how many captions hold a
word, bank neighbours, the photos a filter allows.

Each search maps hundreds of caption hits to their photos and weighs its words by how common they are,
and each window's match scores need every photo's nearest caption-bank rows (``models/scorer.py``);
across queries the same captions, words and photos come back.
A :class:`SearchMemo` belongs to one Library (one catalog connection, one thread: the REST server's
readers each hold their own Library), so it needs no lock. What it holds is valid for one state of the
catalog: caption owners and word counts until any write (``vectors_gen``), bank neighbours (a function
of a photo's vector, which never changes under its id) until ``reindex`` swaps in another catalog
(``catalog_id``). All are bounded; a full cache starts over rather than tracking recency.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from pixsearch.search.filters import Filters
from pixsearch.storage.catalog import Catalog

__all__ = ["SearchMemo"]

MAX_OWNERS = 500_000  # caption id -> (photo, human?): ~100 bytes each
MAX_NEIGHBOURS = 100_000  # photo id -> BANK_K int32 bank rows: ~300 bytes each
MAX_FILTERS = 16  # filters -> the photo ids they allow


@dataclass
class SearchMemo:
    catalog: Catalog | None
    _state: tuple[str, str] = ("", "")
    _owners: dict[int, tuple[int, bool]] = field(default_factory=dict, repr=False)
    _counts: dict[str, int] = field(default_factory=dict, repr=False)
    neighbours: dict[int, np.ndarray] = field(default_factory=dict, repr=False)
    _allowed: dict[Filters, set[int] | None] = field(default_factory=dict, repr=False)

    def sync(self) -> None:
        """Forget what the catalog's last write (or a reindex) may have changed; call in the read's
        snapshot, before using the memo (one small read of ``meta``)."""
        if self.catalog is None:
            return
        meta = self.catalog.meta_values(("catalog_id", "vectors_gen"))
        state = (meta.get("catalog_id", ""), meta.get("vectors_gen", ""))
        if state[0] != self._state[0]:
            self.neighbours.clear()
        if state != self._state:
            self._owners.clear()
            self._counts.clear()
            self._allowed.clear()
            self._state = state

    def allowed(self, filters: Filters) -> set[int] | None:
        """``Filters.allowed`` through the memo: people page and retype under the same filters, and a
        filter over a large library reads tens of thousands of rows (until the next write)."""
        if self.catalog is None:
            raise ValueError("a memo without a catalog knows no photos")
        if filters not in self._allowed:
            if len(self._allowed) >= MAX_FILTERS:
                self._allowed.clear()
            self._allowed[filters] = filters.allowed(self.catalog)
        return self._allowed[filters]

    def caption_owners(self, caption_ids: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """``Catalog.caption_owners`` (caption ids ascending, image ids, human?) through the memo: only
        captions not seen since the last write are read from the catalog."""
        if self.catalog is None:
            raise ValueError("a memo without a catalog knows no captions")
        want = np.unique(np.asarray(caption_ids, dtype=np.int64))
        owners = self._owners
        new = [c for c in want.tolist() if c not in owners]
        if new:
            if len(owners) + len(new) > MAX_OWNERS:
                owners.clear()
            c, i, h = self.catalog.caption_owners(new)
            owners.update(zip(c.tolist(), zip(i.tolist(), h.tolist(), strict=True), strict=True))
        got = [(c, *owners[c]) for c in want.tolist() if c in owners]
        if not got:
            return np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros(0, dtype=bool)
        a = np.array(got, dtype=np.int64).reshape(-1, 3)
        return a[:, 0], a[:, 1], a[:, 2].astype(bool)

    def doc_counts(self, words: list[str]) -> dict[str, int]:
        """``Catalog.fts_doc_counts`` through the memo (a query's words recur across queries)."""
        if self.catalog is None:
            raise ValueError("a memo without a catalog knows no captions")
        new = [w for w in words if w not in self._counts]
        if new:
            if len(self._counts) > MAX_OWNERS:
                self._counts.clear()
            self._counts.update(self.catalog.fts_doc_counts(new))
        return {w: self._counts[w] for w in words if w in self._counts}

    def remember_neighbours(self, ids: list[int], rows: np.ndarray) -> None:
        """Bank rows (k, len(ids)) nearest each photo, as ``Scorer.neighbours`` gives them."""
        if len(self.neighbours) + len(ids) > MAX_NEIGHBOURS:
            self.neighbours.clear()
        rows = np.asarray(rows, dtype=np.int32)
        for c, i in enumerate(ids):
            self.neighbours[i] = rows[:, c]
