"""The OCR enricher: text read in each photo (``models/ocr.py``), stored as ``photo_texts`` rows of kind
'ocr' (one per line of confident words, with its confidence), so BM25 finds "grand central bakery" in
the photo of that sign.

On only when asked (``pixsearch index --ocr``, or ``ocr = true`` in the config file), as generated captions
are: a run without it leaves the words read before in place. It reads the photo's file itself, at the
size tesseract needs (up to ``READ_SIDE`` px, where the indexer decodes for a 224-260 px encoder), and so
needs none of the indexer's pixels (``reads_pixels`` False): turning it on for a library indexed without
it reads every photo once more without encoding any again. A file that cannot be read now is left
undone, to be tried on the next index.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

import numpy as np

from pixsearch.errors import MediaError
from pixsearch.media import load_image
from pixsearch.storage.photo_texts import TextRow, TextRows

if TYPE_CHECKING:
    from PIL import Image

    from pixsearch.config import Settings
    from pixsearch.models.encoder import JointEncoder
    from pixsearch.models.ocr import Reading
    from pixsearch.storage.catalog import Catalog

__all__ = ["OcrEnricher", "TextReader", "ocr_enricher"]


class TextReader(Protocol):
    """What this module needs of ``models.ocr.TextReader``."""

    @property
    def fingerprint(self) -> str: ...

    def read(self, image: Image.Image, gate: bool = True) -> Reading: ...


class OcrEnricher:
    """Enricher ``ocr``: ``photo_texts`` rows of kind 'ocr' for each photo whose file could be read."""

    name = "ocr"
    reads_pixels = False  # it decodes the file itself, larger than the indexer does (module docstring)

    def __init__(self, reader: TextReader, draft: int | None = None) -> None:
        from pixsearch.models.ocr import GATE_SIDE

        self.reader = reader
        # A JPEG decodes at the smallest scale whose *both* sides reach ``draft``: GATE_SIDE gives a 4:3
        # camera photo 2000 px or more on its long side, what the second pass reads, at a quarter of the
        # pixels (a draft of READ_SIDE would decode it whole).
        self.draft = GATE_SIDE if draft is None else draft

    @property
    def fingerprint(self) -> str:
        return self.reader.fingerprint

    def stale_ids(self, catalog: Catalog) -> list[int]:
        return catalog.enrichments.not_done(self.name, self.fingerprint)

    def prepare(
        self, features: Mapping[str, np.ndarray], thumbnails: Sequence[bytes | None]
    ) -> dict[str, np.ndarray]:
        return {}  # it reads files by path, which only the writer knows

    def enrich(
        self, catalog: Catalog, image_ids: Sequence[int], features: Mapping[str, np.ndarray]
    ) -> list[int]:
        ids = [int(i) for i in image_ids]
        paths = catalog.first_paths(ids)
        rows: list[TextRow] = []
        done: list[int] = []
        for iid in ids:
            if iid not in paths:
                continue
            try:
                image = load_image(Path(paths[iid]), draft=self.draft)
            except MediaError:
                continue  # moved, or unreadable now: the next index tries again
            lines = self.reader.read(image).lines
            rows += [TextRow(iid, "ocr", line.text, line.confidence) for line in lines]
            done.append(iid)
        if not done:
            return []
        return catalog.enrichments.save(self.name, self.fingerprint, done, TextRows(("ocr",), rows, True))


def ocr_enricher(settings: Settings, encoder: JointEncoder) -> OcrEnricher | None:
    """Builder for ``registry.enrichers``: None unless the settings ask for OCR; a one-line ModelError
    naming the ``[ocr]`` extra when tesseract or its language data is missing."""
    if not settings.ocr:
        return None
    from pixsearch.models.ocr import create_text_reader

    return OcrEnricher(create_text_reader(settings.ocr_languages))
