"""Enrichers: what a photo gets at index time besides its vector (generated captions, labels, policy flags).

The seam is small on purpose: the Indexer encodes a batch once with ``encoder.encode_image_features``
and hands every enricher the same features, inside the batch's write transaction, so a photo and all it
was given commit together (an interrupted run loses nothing half-written). Each enricher names the model
or policy it ran with (``fingerprint``); photos done with another fingerprint are ``stale`` and
``pixsearch index`` decodes them again to recompute (their vectors are untouched). Every enricher writes
its rows with one call, ``catalog.enrichments.save`` (``storage/enrichments.py``), which also records the
photos done. The enrichers themselves are ``captions.py``, ``labels.py`` and ``policy.py``; which of them
a library runs is ``registry.py``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Protocol, runtime_checkable

import numpy as np

if TYPE_CHECKING:
    from pixsearch.storage.catalog import Catalog

__all__ = ["Enricher"]


@runtime_checkable
class Enricher(Protocol):
    name: str  # "captions", "labels", "policy"

    @property
    def fingerprint(self) -> str:
        """Model/policy identity; stored output made under another fingerprint is stale."""
        ...

    def stale_ids(self, catalog: Catalog) -> list[int]:
        """Images lacking this enricher's output at this fingerprint."""
        ...

    def prepare(
        self, features: Mapping[str, np.ndarray], thumbnails: Sequence[bytes | None]
    ) -> dict[str, np.ndarray]:
        """The catalog-free, costly part of ``enrich`` for a batch of new photos, as extra per-row columns
        named ``<name>.<column>`` that ``enrich`` then reads from ``features`` instead of computing.

        Why: an engine's workers (``indexing/ray_engine.py``) run this next to the encoder, in parallel,
        and the single writer only writes. Without these columns ``enrich`` computes everything itself,
        so an enricher with nothing costly returns ``{}``.
        """
        ...

    def enrich(
        self, catalog: Catalog, image_ids: Sequence[int], features: Mapping[str, np.ndarray]
    ) -> list[int]:
        """Write output rows for ``image_ids`` (row i of each feature array is ``image_ids[i]``).

        Called inside the batch's write transaction. Returns the ids of caption rows it added: the
        indexer puts them in the caption vector indexes.
        """
        ...
