"""The metadata enricher: what each photo's file says about itself (``indexing/metadata``), stored at
index time.

Per photo: one ``photo_meta`` row (capture time, camera, lens, GPS, place, orientation), its keywords and
place name as searchable words (``photo_texts``, kinds 'keyword' and 'place'), and its owner's
descriptions as human captions, encoded and stored the way a captions CSV's are (``Indexer.caption_rows``
and ``catalog.add_captions``), so they get caption vectors and BM25 like any caption people wrote.

It reads the file at the photo's first path, never its pixels (``reads_pixels`` False): the indexer runs it
on photos indexed before it existed without decoding or encoding them again (a library from before
``photo_meta`` gets its metadata on the next ``pixsearch index``). Runs before the captions enricher, so
a photo whose owner described it gets no generated caption.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, fields
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from pixsearch.indexing.enrichers.captions import human_caption_rows
from pixsearch.indexing.metadata.photo import PhotoMeta, read_photo_meta
from pixsearch.indexing.metadata.places import OfflinePlaces, Places
from pixsearch.storage.enrichments import Output
from pixsearch.storage.photo_meta import MetaRow, MetaRows
from pixsearch.storage.photo_texts import TextRow, TextRows

if TYPE_CHECKING:
    import sqlite3

    from pixsearch.config import Settings
    from pixsearch.models.encoder import JointEncoder
    from pixsearch.storage.catalog import Catalog

__all__ = ["EXTRACTOR", "MetadataEnricher", "metadata_enricher"]

# The reading rules' version: bump it when ``indexing/metadata`` reads a field it did not (or reads one
# differently), and every photo is read again on the next index.
EXTRACTOR = "meta-v1"


@dataclass(frozen=True)
class _Together:
    """Several outputs written as one (``Enrichments.save`` takes one); the photos are done when all are."""

    outputs: tuple[Output, ...]
    marks_done = True

    def write(self, db: sqlite3.Connection, image_ids: Sequence[int], fingerprint: str) -> list[int]:
        return [i for o in self.outputs for i in o.write(db, image_ids, fingerprint)]


class MetadataEnricher:
    """Enricher ``metadata``: ``photo_meta`` rows, keyword and place words, the owner's descriptions."""

    name = "metadata"
    reads_pixels = False  # the indexer may run it without decoding (see the module's docstring)

    def __init__(self, encoder: JointEncoder, places: Places | None = None, now: float | None = None) -> None:
        self.encoder = encoder
        self.places: Places = OfflinePlaces() if places is None else places
        self.now = now  # tests: the clock absurd future dates are judged by

    @property
    def fingerprint(self) -> str:
        return f"{EXTRACTOR}|{self.places.fingerprint}"

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
        if not ids:
            return []
        paths = catalog.first_paths(ids)
        metas = {
            i: read_photo_meta(Path(paths[i]), self.places, self.now) if i in paths else PhotoMeta()
            for i in ids
        }
        new_captions = self._captions(catalog, metas)
        rows = [_row(i, m) for i, m in metas.items()]
        texts = [TextRow(i, "keyword", k) for i, m in metas.items() for k in m.keywords]
        texts += [TextRow(i, "place", p) for i, m in metas.items() if (p := _place_text(m))]
        out = _Together((MetaRows(rows), TextRows(("keyword", "place"), texts)))
        return new_captions + catalog.enrichments.save(self.name, self.fingerprint, ids, out)

    def _captions(self, catalog: Catalog, metas: Mapping[int, PhotoMeta]) -> list[int]:
        """The descriptions each photo lacks as human captions, encoded in one call; new caption ids."""
        todo: list[tuple[int, str]] = []
        for iid, m in metas.items():
            if m.descriptions:
                have = catalog.caption_texts(iid)
                todo += [(iid, t) for t in m.descriptions if t not in have]
        if not todo:
            return []
        rows = human_caption_rows(self.encoder, [t for _, t in todo])  # as a captions CSV's are stored
        new: list[int] = []
        for (iid, _), row in zip(todo, rows, strict=True):
            new += catalog.add_captions(iid, [row])
        return new


def _row(image_id: int, m: PhotoMeta) -> MetaRow:
    """The stored row: the photo's fields that ``MetaRow`` has (the extractor is stamped on write)."""
    return MetaRow(image_id, **{f: getattr(m, f) for f in _STORED})


_STORED = [f.name for f in fields(MetaRow) if f.name not in ("image_id", "extractor")]


def _place_text(m: PhotoMeta) -> str:
    return ", ".join(p for p in (m.place, m.country) if p)


def metadata_enricher(settings: Settings, encoder: JointEncoder) -> MetadataEnricher:
    """Builder for ``registry.enrichers``: every library reads its photos' metadata."""
    return MetadataEnricher(encoder)
