"""The policy enricher: the photo side of the content policy (``policy/photo.py``), run at index time
and stored as one ``flags`` row per photo (flagged or not, with its evidence)."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from pixsearch.policy.photo import PhotoChecker, photo_checker, rgb_of_thumbnail
from pixsearch.policy.verdicts import MINORS
from pixsearch.storage.enrichments import FlagRow, Flags

if TYPE_CHECKING:
    from pixsearch.config import Settings
    from pixsearch.models.encoder import JointEncoder
    from pixsearch.storage.catalog import Catalog

__all__ = ["PIXELS", "PolicyEnricher", "policy_enricher"]

PIXELS = "policy.pixels"  # the column PolicyEnricher.prepare adds: pixel evidence per photo, as JSON


class PolicyEnricher:
    """Enricher ``policy``: writes ``flags(image_id, flagged, evidence, policy)``.

    Runs after the captions enricher (it reads generated captions too). A photo is stale when it has no
    flag at this fingerprint, or captions were attached after its flag was computed.
    """

    name = "policy"

    def __init__(self, checker: PhotoChecker) -> None:
        self.checker = checker

    @property
    def fingerprint(self) -> str:
        return self.checker.fingerprint

    def stale_ids(self, catalog: Catalog) -> list[int]:
        return catalog.enrichments.stale_flags(self.fingerprint)

    def prepare(
        self, features: Mapping[str, np.ndarray], thumbnails: Sequence[bytes | None]
    ) -> dict[str, np.ndarray]:
        evs = self.checker.pixel_evidence(features, [rgb_of_thumbnail(t) for t in thumbnails])
        return {PIXELS: np.array([json.dumps(e) for e in evs], dtype=object)}

    def enrich(
        self, catalog: Catalog, image_ids: Sequence[int], features: Mapping[str, np.ndarray]
    ) -> list[int]:
        ids = [int(i) for i in image_ids]
        if not ids:
            return []
        pixels: list[dict[str, Any]] | None = None
        if PIXELS in features:  # prepared by an engine's worker: no pixels needed here
            pixels = [json.loads(str(e)) for e in features[PIXELS]]
            images: list[np.ndarray | None] = [None] * len(ids)
        else:
            thumbs = catalog.thumbnails(ids)
            images = [rgb_of_thumbnail(thumbs.get(i)) for i in ids]
        caps = catalog.captions_by_image(ids)
        verdicts = self.checker.check(features, images, [caps[i] for i in ids], pixels)
        rows = [FlagRow(i, v.flagged, v.evidence) for i, v in zip(ids, verdicts, strict=True)]
        return catalog.enrichments.save(self.name, self.fingerprint, ids, Flags(rows))


def policy_enricher(settings: Settings, encoder: JointEncoder) -> PolicyEnricher | None:
    """Builder for ``registry.enrichers``: None when the policy has no ``minors`` topic at all."""
    from pixsearch.policy.rules import load_policy

    policy = load_policy(settings)
    if MINORS not in policy.topics:
        return None
    return PolicyEnricher(photo_checker(policy, encoder.name))
