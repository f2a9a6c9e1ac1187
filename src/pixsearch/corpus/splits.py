"""A dataset split's features through the feature cache, shared by training and evaluation.

``split_features`` gives the frozen backbone's features (training the heads, ``eval retrieval`` of a
model trained on torch); ``split_pooled`` + ``derived_features`` give what a run-time encoder hands
the indexer's enrichers (training and evaluating the photo policy's classifier). Only images that
decode are kept; encoding happens only for what the cache lacks.
"""

from __future__ import annotations

import zlib
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from pixsearch.corpus.datasets import Dataset, load_dataset
from pixsearch.corpus.features import FeatureCache
from pixsearch.errors import DatasetError
from pixsearch.models.backbones import image_backbone
from pixsearch.models.encoder import default_text_backbone

if TYPE_CHECKING:
    from pixsearch.models.encoder import JointEncoder

__all__ = ["resolve_split", "split_features", "split_pooled", "extra_pooled", "derived_features"]


def resolve_split(ds: Dataset, split: str) -> Dataset:
    """A dataset without split files still trains: 'val' is a stable ~10% of its images, 'train' the rest.

    Membership hangs on a hash of the file name, so adding images never moves old ones across splits.
    """
    if split in ds.splits or split == "all" or set(ds.splits) != {"all"} or split not in ("train", "val"):
        return ds.split(split)
    names = [n for n in ds.images if (zlib.crc32(n.encode()) % 10 == 0) == (split == "val")]
    return replace(ds, splits={**ds.splits, split: tuple(names)}).split(split)


def split_features(
    data: Path, split: str, backbone: str = "lite0", limit: int = 0, log: Callable[[dict], None] | None = None
) -> tuple[list[str], np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(image names, pooled, logits, caption embeddings, caption->image) for images that decode."""
    ds = resolve_split(load_dataset(data), split)
    names = list(ds.images[:limit] if limit else ds.images)
    if not names:
        raise DatasetError(f"split {split!r} of {data} has no images")
    cache = FeatureCache()
    prog = (lambda d, n: log({"event": "features", "split": split, "done": d, "total": n})) if log else None
    f = cache.image_features(image_backbone(backbone), [ds.image_path(n) for n in names], progress=prog)
    for err in f.errors:
        if log:
            log({"event": "skipped", "reason": str(err)})
    keep = np.flatnonzero(f.ok)
    names = [names[i] for i in keep]
    texts, owner = ds.caption_rows(names)
    if not texts:
        raise DatasetError(f"split {split!r} of {data} has no captions for its images")
    emb = cache.text_features(default_text_backbone(), texts)
    return names, f.pooled[keep], f.logits[keep], emb, np.array(owner, dtype=np.int64)


def split_pooled(
    data: Path, split: str, encoder: JointEncoder, log: Callable[[dict], None] | None = None
) -> tuple[list[str], np.ndarray, np.ndarray | None]:
    """(names, pooled features, extra backbones' pooled features or None) of a split's decodable images,
    as the runtime encoder computes them.

    Goes through the shared feature cache (keyed by content hash): for a phase-2 model the cached
    last-block inputs run through its fine-tuned top (``pooled_from_mid``, as ``eval retrieval`` does),
    so a second run, or another engineer's run, costs no backbone pass.
    """
    ds = load_dataset(data).split(split)
    names = list(ds.images)
    if not names:
        raise DatasetError(f"split {split!r} of {data} has no images")
    prog = (lambda d, n: log({"event": "features", "split": split, "done": d, "total": n})) if log else None
    has_top = encoder.has_top
    f = FeatureCache().image_features(
        encoder.image_backbone, [ds.image_path(n) for n in names], progress=prog, mid=has_top
    )
    keep = np.flatnonzero(f.ok)
    if has_top:
        mid = f.mid[keep]
        pooled = np.concatenate([encoder.pooled_from_mid(mid[s : s + 256]) for s in range(0, len(mid), 256)])
    else:
        pooled = f.pooled[keep]
    more = extra_pooled(encoder, [ds.image_path(names[i]) for i in keep])
    return [names[i] for i in keep], np.asarray(pooled, dtype=np.float32), more


def extra_pooled(encoder: JointEncoder, paths: list[Path]) -> np.ndarray | None:
    """The encoder's extra backbones' pooled features of ``paths``, side by side (None without any),
    through the shared feature cache."""
    parts = [FeatureCache().image_features(image_backbone(b), paths).pooled for b in encoder.extra_backbones]
    return np.concatenate(parts, axis=1).astype(np.float32) if parts else None


def derived_features(
    encoder: JointEncoder, pooled: np.ndarray, extra: np.ndarray | None = None
) -> dict[str, np.ndarray]:
    """pooled -> the other features the indexer hands enrichers: ImageNet ``logits`` and the joint
    ``embedding`` (what the photo's stored vector is)."""
    import torch

    with torch.inference_mode():
        logits = encoder.image_backbone.model._fc(torch.from_numpy(pooled)).numpy().astype(np.float32)
    embedding = np.asarray(encoder.image_from_features(pooled, logits, extra), dtype=np.float32)
    return {"pooled": pooled, "logits": logits, "embedding": embedding}
