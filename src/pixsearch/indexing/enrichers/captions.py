"""The captions enricher: a generated caption for each photo that has no human caption."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Protocol

import numpy as np

from pixsearch.storage.captions import GeneratedCaption, GeneratedCaptions

if TYPE_CHECKING:
    from pixsearch.models.encoder import JointEncoder
    from pixsearch.storage.catalog import Catalog

__all__ = ["Captioner", "CaptionsEnricher", "caption_vectors", "human_caption_rows"]


def caption_vectors(encoder: JointEncoder, texts: list[str]) -> tuple[np.ndarray, np.ndarray | None]:
    """MiniLM vectors and (for a joint model) joint-space vectors of caption texts, as the indexer stores."""
    emb = encoder.encode_captions(texts)
    return emb, (encoder.text_from_embeddings(emb) if encoder.cross_modal else None)


def human_caption_rows(
    encoder: JointEncoder, texts: list[str]
) -> list[tuple[str, str, np.ndarray, np.ndarray | None]]:
    """``catalog.add_captions`` rows of texts people wrote (a captions CSV, a photo's own description):
    MiniLM and, for a joint model, joint-space vectors from one pass of the query encoder."""
    if not texts:
        return []
    if encoder.cross_modal:
        emb, joint = encoder.encode_texts(texts)
    else:
        emb, joint = encoder.encode_captions(texts), None
    return [(t, "human", emb[i], None if joint is None else joint[i]) for i, t in enumerate(texts)]


class Captioner(Protocol):
    """What this module needs of ``models.captioner``."""

    @property
    def fingerprint(self) -> str: ...

    def caption_features(self, spatial: np.ndarray, beam: int = 3) -> list[str]: ...


class CaptionsEnricher:
    """A generated caption for each photo that has no human caption, searchable like a human one.

    Stored with ``source='generated'`` and ``model`` = the captioner's fingerprint; a new captioner makes
    old ones stale, and redoing a photo replaces its generated caption. A photo with human captions is
    marked done without generating (its human words are better than ours).
    """

    name = "captions"

    def __init__(self, captioner: Captioner, encoder: JointEncoder, beam: int = 3) -> None:
        self.captioner = captioner
        self.encoder = encoder
        self.beam = beam

    @property
    def fingerprint(self) -> str:
        return f"{self.captioner.fingerprint}|beam{self.beam}"

    def stale_ids(self, catalog: Catalog) -> list[int]:
        return catalog.enrichments.not_done(self.name, self.fingerprint)

    def prepare(
        self, features: Mapping[str, np.ndarray], thumbnails: Sequence[bytes | None]
    ) -> dict[str, np.ndarray]:
        """Captions and their vectors for every photo (the writer drops those with human captions)."""
        texts = self.captioner.caption_features(np.asarray(features["spatial"]), self.beam)
        emb, joint = caption_vectors(self.encoder, texts)
        out = {"captions.text": np.array(texts, dtype=object), "captions.emb": emb}
        if joint is not None:
            out["captions.joint"] = joint
        return out

    def enrich(
        self, catalog: Catalog, image_ids: Sequence[int], features: Mapping[str, np.ndarray]
    ) -> list[int]:
        ids = [int(i) for i in image_ids]
        if not ids:
            return []
        human = catalog.human_captioned(ids)
        rows = [j for j, i in enumerate(ids) if i not in human]
        joint: np.ndarray | None
        if rows and "captions.text" in features:  # prepared by an engine's worker
            texts = [str(t) for t in np.asarray(features["captions.text"])[rows]]
            emb = np.asarray(features["captions.emb"])[rows]
            joint = np.asarray(features["captions.joint"])[rows] if "captions.joint" in features else None
        elif rows:
            texts = self.captioner.caption_features(np.asarray(features["spatial"])[rows], self.beam)
            emb, joint = caption_vectors(self.encoder, texts)
        else:
            texts = []
        out = [
            GeneratedCaption(ids[j], text, emb[k], None if joint is None else joint[k])
            for k, (j, text) in enumerate(zip(rows, texts, strict=True))
            if text.strip()
        ]
        return catalog.enrichments.save(self.name, self.fingerprint, ids, GeneratedCaptions(out))
