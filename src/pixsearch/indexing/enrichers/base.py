"""Enrichers: what a photo gets at index time besides its vector (generated captions, labels, policy flags).

The seam is small on purpose (contract 2): the Indexer encodes a batch once with
``encoder.encode_image_features`` and hands every enricher the same features, inside the batch's write
transaction, so a photo and all it was given commit together (an interrupted run loses nothing
half-written). Each enricher names the model or policy it ran with (``fingerprint``); photos done with
another fingerprint are ``stale`` and ``pixsearch index`` decodes them again to recompute (their vectors
are untouched). Which photo an enricher has done is recorded in the ``enrichments`` table, so a photo
that legitimately got nothing (no label above the threshold, a human caption already) is still done.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Protocol, runtime_checkable

import numpy as np

from pixsearch.errors import ModelError

if TYPE_CHECKING:
    from pixsearch.config import Settings
    from pixsearch.models.encoder import JointEncoder
    from pixsearch.storage.catalog import Catalog

__all__ = ["Enricher", "CaptionsEnricher", "enrichers", "mark_done", "not_done"]


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

        Why: an engine's workers (``distributed.py``) run this next to the encoder, in parallel, and the
        single writer only writes. Without these columns ``enrich`` computes everything itself, so an
        enricher with nothing costly returns ``{}``.
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


# -- bookkeeping shared by enrichers ----------------------------------------------------------------
def mark_done(catalog: Catalog, name: str, fingerprint: str, image_ids: Sequence[int]) -> None:
    """Record that ``name`` ran on these images at ``fingerprint`` (inside the caller's transaction)."""
    catalog.db.executemany(
        "INSERT OR REPLACE INTO enrichments(image_id, name, fingerprint) VALUES (?, ?, ?)",
        [(int(i), name, fingerprint) for i in image_ids],
    )


def not_done(catalog: Catalog, name: str, fingerprint: str) -> list[int]:
    """Images ``name`` has not run on at ``fingerprint`` (new, or done with an older model)."""
    rows = catalog.db.execute(
        "SELECT id FROM images WHERE id NOT IN "
        "(SELECT image_id FROM enrichments WHERE name = ? AND fingerprint = ?) ORDER BY id",
        (name, fingerprint),
    )
    return [int(r[0]) for r in rows]


def caption_vectors(encoder: JointEncoder, texts: list[str]) -> tuple[np.ndarray, np.ndarray | None]:
    """MiniLM vectors and (for a joint model) joint-space vectors of caption texts, as the indexer stores."""
    emb = encoder.encode_captions(texts)
    to_joint = getattr(encoder, "text_from_embeddings", None)
    return emb, (to_joint(emb) if encoder.cross_modal and to_joint is not None else None)


# -- generated captions -----------------------------------------------------------------------------
class Captioner(Protocol):
    """What this module needs of ``models.captioner`` (contract 5)."""

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
        return not_done(catalog, self.name, self.fingerprint)

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
        q = ",".join("?" * len(ids))
        catalog.db.execute(f"DELETE FROM captions WHERE source = 'generated' AND image_id IN ({q})", ids)
        human = {
            int(r[0])
            for r in catalog.db.execute(
                f"SELECT DISTINCT image_id FROM captions WHERE source = 'human' AND image_id IN ({q})", ids
            )
        }
        rows = [j for j, i in enumerate(ids) if i not in human]
        new: list[int] = []
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
        for k, (j, text) in enumerate(zip(rows, texts, strict=True)):
            if not text.strip():
                continue
            got = catalog.add_captions(
                ids[j], [(text, "generated", emb[k], None if joint is None else joint[k])]
            )
            new += got
        if new:
            catalog.db.execute(
                f"UPDATE captions SET model = ? WHERE id IN ({','.join('?' * len(new))})",
                [self.fingerprint, *new],
            )
        mark_done(catalog, self.name, self.fingerprint, ids)
        return new


def _captions(settings: Settings, encoder: JointEncoder) -> Enricher | None:
    if not getattr(settings, "generate_captions", False):  # off by default: docs/model.md
        return None
    try:
        from pixsearch.models.captioner import create_captioner
    except ImportError:  # no captioner module in this build
        return None
    try:
        captioner = create_captioner(getattr(settings, "captioner", None))
        check = getattr(captioner, "check_encoder", None)
        if check is not None:
            check(encoder)  # a captioner reads one encoder's spatial map; another library model: no captions
        return CaptionsEnricher(captioner, encoder)
    except (ModelError, FileNotFoundError):
        if getattr(settings, "captioner", None):
            raise  # the user asked for this captioner: say why it cannot be used
        return None  # no shipped captioner, or one for another encoder: index without generated captions


def _labels(settings: Settings, encoder: JointEncoder) -> Enricher | None:
    from pixsearch.indexing.enrichers.labels import LabelsEnricher

    return LabelsEnricher(encoder)


def _policy(settings: Settings, encoder: JointEncoder) -> Enricher | None:
    from pixsearch.policy.photo import policy_enricher  # photo flags (content policy, photo side)

    return policy_enricher(settings, encoder)


def enrichers(settings: Settings, encoder: JointEncoder) -> list[Enricher]:
    """The enrichers this library runs at index time, in order (captions, labels, policy).

    Registry built here, not at import: each builder returns None when its model is not installed or
    the user turned it off. Another enricher (the policy's photo flags) appends its builder here.
    """
    builders: list[Callable[[Settings, JointEncoder], Enricher | None]] = [_captions, _labels, _policy]
    return [e for e in (b(settings, encoder) for b in builders) if e is not None]
