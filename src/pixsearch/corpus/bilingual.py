"""Photos with captions in two languages, as features for training the multilingual query tower.

Per split: the photos' stored vectors (the run-time encoder's feature cache), the English captions'
MiniLM joint vectors (the text cache) and, for the English and the other language's captions, the
multilingual sentence encoder's vectors (the text cache, keyed by the encoder's package version).
The other language's captions replace the dataset's through ``Dataset.with_captions`` (Flickr8K-CN's
``captions_zh.csv``: same photo names, same splits).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, cast

import numpy as np

from pixsearch.corpus.datasets import Dataset
from pixsearch.corpus.features import FeatureCache
from pixsearch.errors import DatasetError
from pixsearch.models.heads import l2n
from pixsearch.models.multilingual import SentenceModel, model_identity, prepare

if TYPE_CHECKING:
    from pixsearch.models.backbones import TextBackbone
    from pixsearch.models.encoder import JointEncoder

__all__ = ["CachedModel", "SplitFeatures", "other_captions", "split_features"]

Log = Callable[[dict], None]


class CachedModel:
    """A sentence model as the feature cache wants it (``fingerprint``, ``dim``, ``encode``), keyed by
    the encoder's package version: a new release never reads stale vectors."""

    def __init__(self, model: SentenceModel) -> None:
        self.model = model
        self.dim = model.dim
        self.fingerprint = model_identity(model.name)

    def encode(self, texts: list[str]) -> np.ndarray:
        out = [self.model.encode(prepare(texts[s : s + 256])) for s in range(0, len(texts), 256)]
        return np.concatenate(out) if out else np.zeros((0, self.dim), np.float32)


@dataclass
class SplitFeatures:
    names: list[str]
    img: np.ndarray  # (N, 256) the photos' stored vectors
    en: list[str]
    en_owner: np.ndarray
    en_joint: np.ndarray  # MiniLM's joint vectors of the English captions
    en_x: np.ndarray  # encoder inputs of the English captions
    cn: list[str]
    cn_owner: np.ndarray
    cn_x: np.ndarray
    en_sentence: np.ndarray  # MiniLM's sentence vectors of the English captions (384-d, unit)


def other_captions(ds: Dataset, cn: Path) -> Dataset:
    """``ds`` with the other language's captions: Flickr8K-CN's folder or any ``image,caption`` CSV."""
    path = cn / "captions_zh.csv" if cn.is_dir() else cn
    if not path.is_file():
        raise DatasetError(f"{cn}: no captions_zh.csv (Flickr8K-CN) and not a captions CSV")
    return ds.with_captions(path)


def split_features(
    data: Path,
    limit: int,
    enc: JointEncoder,
    ds: Dataset,
    cn: Dataset,
    split: str,
    models: list[CachedModel],
    log: Log,
) -> SplitFeatures:
    """Features of one split's photos and captions, all through the caches."""
    part = ds.split(split)
    names = list(part.images[:limit] if limit else part.images)
    if not names:
        raise DatasetError(f"split {split!r} of {data} has no images")
    cache = FeatureCache()

    def prog(d: int, n: int) -> None:
        log({"event": "features", "split": split, "done": d, "total": n})

    f = cache.encoder_features(enc, [part.image_path(n) for n in names], "embedding", prog)
    for err in f.errors:
        log({"event": "skipped", "reason": str(err)})
    keep = np.flatnonzero(f.ok)
    names = [names[i] for i in keep]
    img = l2n(f.arrays["embedding"][keep].astype(np.float32))
    en, en_owner = part.caption_rows(names)
    cn_texts, cn_owner = cn.split(split).caption_rows(names)
    if not en:
        raise DatasetError(f"split {split!r} of {data} has no captions for its images")

    def x(texts: list[str]) -> np.ndarray:
        if not texts:
            return np.zeros((0, sum(m.dim for m in models)), np.float32)
        return np.hstack([cache.text_features(cast("TextBackbone", m), texts) for m in models]).astype(
            np.float32
        )

    emb = cache.text_features(enc.text_backbone, en)
    return SplitFeatures(
        names, img, en, np.array(en_owner, dtype=np.int64), enc.text_from_embeddings(emb).astype(np.float32),
        x(en), cn_texts, np.array(cn_owner, dtype=np.int64), x(cn_texts), emb.astype(np.float32),
    )  # fmt: skip
