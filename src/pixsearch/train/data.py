"""Turn a dataset split into training arrays via the feature cache (encoding only what is missing)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from pixsearch.corpus.datasets import Dataset, load_dataset
from pixsearch.corpus.features import FeatureCache
from pixsearch.errors import DatasetError
from pixsearch.models.backbones import image_backbone, text_backbone
from pixsearch.models.heads import HeadsConfig, bridge, imagenet_class_prompts

__all__ = ["FeatureSet", "load_features", "split_features"]


@dataclass
class FeatureSet:
    images: list[str]
    pooled: np.ndarray
    logits: np.ndarray
    image_x: np.ndarray  # head input per image
    text_x: np.ndarray  # MiniLM embedding per caption
    caption_image: np.ndarray  # caption row -> image row
    captions_of: list[np.ndarray]  # image row -> caption rows
    pooled_mean: np.ndarray
    pooled_std: np.ndarray
    class_text: np.ndarray


def split_features(
    data: Path, split: str, backbone: str = "lite0", limit: int = 0, log: Callable[[dict], None] | None = None
) -> tuple[list[str], np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(image names, pooled, logits, caption embeddings, caption->image) for images that decode."""
    ds = _resolve_split(load_dataset(data), split)
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
    emb = cache.text_features(text_backbone(), texts)
    return names, f.pooled[keep], f.logits[keep], emb, np.array(owner, dtype=np.int64)


def flipped_image_x(data: Path, split: str, fs: FeatureSet, cfg: HeadsConfig) -> np.ndarray:
    """Head inputs of the mirrored images of ``fs`` (same rows, same standardisation): augmentation."""
    ds = _resolve_split(load_dataset(data), split)
    f = FeatureCache().image_features(
        image_backbone(cfg.image_backbone), [ds.image_path(n) for n in fs.images], flip=True
    )
    parts = []
    for name in cfg.image_inputs:
        if name == "pooled":
            parts.append((f.pooled - fs.pooled_mean) / fs.pooled_std)
        else:
            parts.append(bridge(f.logits, fs.class_text, cfg.bridge_temperature))
    return np.concatenate(parts, axis=1).astype(np.float32)


def _resolve_split(ds: Dataset, split: str) -> Dataset:
    """A dataset without split files still trains: 'val' is a stable ~10% of its images, 'train' the rest.

    Membership hangs on a hash of the file name, so adding images never moves old ones across splits.
    """
    if split in ds.splits or split == "all" or set(ds.splits) != {"all"} or split not in ("train", "val"):
        return ds.split(split)
    import zlib

    names = [n for n in ds.images if (zlib.crc32(n.encode()) % 10 == 0) == (split == "val")]
    return replace(ds, splits={**ds.splits, split: tuple(names)}).split(split)


def _class_text() -> np.ndarray:
    return FeatureCache().text_features(text_backbone(), imagenet_class_prompts())


def load_features(
    data: Path,
    split: str,
    cfg: HeadsConfig,
    limit: int = 0,
    stats_from: FeatureSet | None = None,
    log: Callable[[dict], None] | None = None,
) -> FeatureSet:
    names, pooled, logits, emb, owner = split_features(data, split, cfg.image_backbone, limit, log)
    if stats_from is None:
        mean = pooled.mean(0).astype(np.float32)
        std = (pooled.std(0) + 1e-3).astype(np.float32)
    else:
        mean, std = stats_from.pooled_mean, stats_from.pooled_std
    class_text = _class_text() if "bridge" in cfg.image_inputs else np.zeros((1000, 384), np.float32)
    parts = []
    for name in cfg.image_inputs:
        if name == "pooled":
            parts.append((pooled - mean) / std)
        elif name == "bridge":
            parts.append(bridge(logits, class_text, cfg.bridge_temperature))
        else:
            raise DatasetError(f"unknown image input {name!r}")
    image_x = np.concatenate(parts, axis=1).astype(np.float32)
    captions_of = [np.flatnonzero(owner == i) for i in range(len(names))]
    keep = [i for i, c in enumerate(captions_of) if len(c)]
    if len(keep) != len(names):  # images without captions cannot be trained or evaluated on
        remap = {old: new for new, old in enumerate(keep)}
        names = [names[i] for i in keep]
        pooled, logits, image_x = pooled[keep], logits[keep], image_x[keep]
        owner = np.array([remap[o] for o in owner], dtype=np.int64)
        captions_of = [np.flatnonzero(owner == i) for i in range(len(names))]
    return FeatureSet(
        names, pooled, logits, image_x, emb.astype(np.float32), owner, captions_of, mean, std, class_text
    )
