"""Which enrichers a library runs at index time, built from its settings and encoder.

Apart from ``base.py`` so the enricher modules import only the seam, and this registry imports them.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from pixsearch.errors import ModelError
from pixsearch.indexing.enrichers.base import Enricher
from pixsearch.indexing.enrichers.captions import CaptionsEnricher
from pixsearch.indexing.enrichers.labels import LabelsEnricher
from pixsearch.indexing.enrichers.metadata import metadata_enricher
from pixsearch.indexing.enrichers.ocr import ocr_enricher
from pixsearch.indexing.enrichers.policy import policy_enricher

if TYPE_CHECKING:
    from pixsearch.config import Settings
    from pixsearch.models.encoder import JointEncoder

__all__ = ["enrichers"]


def _captions(settings: Settings, encoder: JointEncoder) -> Enricher | None:
    if not settings.generate_captions:  # off by default: docs/model.md
        return None
    try:
        from pixsearch.models.captioner import create_captioner
    except ImportError:  # no captioner module in this build
        return None
    try:
        captioner = create_captioner(settings.captioner)
        captioner.check_encoder(encoder)  # it reads one encoder's spatial map; another model: no captions
        return CaptionsEnricher(captioner, encoder)
    except (ModelError, FileNotFoundError):
        if settings.captioner:
            raise  # the user asked for this captioner: say why it cannot be used
        return None  # no shipped captioner, or one for another encoder: index without generated captions


def _labels(settings: Settings, encoder: JointEncoder) -> Enricher | None:
    return LabelsEnricher(encoder)


def enrichers(settings: Settings, encoder: JointEncoder) -> list[Enricher]:
    """The enrichers this library runs at index time, in order (metadata, captions, labels, OCR, policy).

    Built here, not at import: each builder returns None when its model is not installed or the user
    turned it off (the policy's photo flags: a policy without the ``minors`` topic; OCR unless asked).
    """
    builders: list[Callable[[Settings, JointEncoder], Enricher | None]]
    builders = [metadata_enricher, _captions, _labels, ocr_enricher, policy_enricher]
    return [e for e in (b(settings, encoder) for b in builders) if e is not None]
