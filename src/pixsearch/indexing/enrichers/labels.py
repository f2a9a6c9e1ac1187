"""The labels enricher: each photo's confident ImageNet classes (``models/labels.py``), stored per photo
in ``labels`` with their words FTS5-indexed, so ``search/labels.py`` finds them by word."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING

import numpy as np

from pixsearch.models.labels import THRESHOLD, TOP_K, top_labels
from pixsearch.storage.enrichments import LabelRow, Labels

if TYPE_CHECKING:
    from pixsearch.models.encoder import JointEncoder
    from pixsearch.storage.catalog import Catalog

__all__ = ["LabelsEnricher"]


class LabelsEnricher:
    """Stores each photo's confident ImageNet classes in ``labels`` (FTS5-indexed ``words``)."""

    name = "labels"

    def __init__(self, encoder: JointEncoder, threshold: float = THRESHOLD, k: int = TOP_K) -> None:
        self.encoder = encoder
        self.threshold = threshold
        self.k = k

    @property
    def fingerprint(self) -> str:
        # logits come from the encoder's image model (its fine-tuned top included)
        return f"labels-v1:t{self.threshold:g}:k{self.k}|{self.encoder.fingerprint}"

    def stale_ids(self, catalog: Catalog) -> list[int]:
        return catalog.enrichments.not_done(self.name, self.fingerprint)

    def prepare(
        self, features: Mapping[str, np.ndarray], thumbnails: Sequence[bytes | None]
    ) -> dict[str, np.ndarray]:
        return {}  # a softmax over logits the writer already has: nothing worth moving to a worker

    def enrich(
        self, catalog: Catalog, image_ids: Sequence[int], features: Mapping[str, np.ndarray]
    ) -> list[int]:
        ids = [int(i) for i in image_ids]
        if not ids:
            return []
        rows = [
            LabelRow(iid, cls.name, cls.words, p)
            for iid, labs in zip(ids, top_labels(features["logits"], self.threshold, self.k), strict=True)
            for cls, p in labs
        ]
        return catalog.enrichments.save(self.name, self.fingerprint, ids, Labels(rows))
