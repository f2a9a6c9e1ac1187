"""Turn a dataset split into training arrays via the feature cache (encoding only what is missing)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from pixsearch.corpus.datasets import load_dataset
from pixsearch.corpus.features import FeatureCache
from pixsearch.corpus.splits import resolve_split, split_features
from pixsearch.errors import DatasetError
from pixsearch.models.backbones import image_backbone
from pixsearch.models.encoder import JointEncoder, default_text_backbone
from pixsearch.models.heads import HeadsConfig, bridge, imagenet_class_prompts

__all__ = ["FeatureSet", "load_features", "flipped_image_x"]


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


def flipped_image_x(data: Path, split: str, fs: FeatureSet, cfg: HeadsConfig) -> np.ndarray:
    """Head inputs of the mirrored images of ``fs`` (same rows, same standardisation): augmentation."""
    ds = resolve_split(load_dataset(data), split)
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


def _through_top(data: Path, split: str, names: list[str], top: JointEncoder) -> np.ndarray:
    ds = resolve_split(load_dataset(data), split)
    f = FeatureCache().image_features(top.image_backbone, [ds.image_path(n) for n in names], mid=True)
    if not f.ok.all():
        raise DatasetError(f"some images of {split!r} decoded for pooled features but not for the top's")
    return np.concatenate([top.pooled_from_mid(f.mid[s : s + 256]) for s in range(0, len(names), 256)])


def _class_text() -> np.ndarray:
    return FeatureCache().text_features(default_text_backbone(), imagenet_class_prompts())


def load_features(
    data: Path,
    split: str,
    cfg: HeadsConfig,
    limit: int = 0,
    stats_from: FeatureSet | None = None,
    log: Callable[[dict], None] | None = None,
    extra: tuple[str, ...] = (),
    top: JointEncoder | None = None,
) -> FeatureSet:
    """The split's head inputs. ``extra`` backbones' pooled features are appended to the main one's before
    standardisation (so each part is standardised with its own statistics), for the same images. With
    ``top`` (a phase-2 model) the main features are its fine-tuned top's, from cached last-block inputs."""
    names, pooled, logits, emb, owner = split_features(data, split, cfg.image_backbone, limit, log)
    if top is not None:
        pooled = _through_top(data, split, names, top)
    for name in extra:
        more_names, more, *_ = split_features(data, split, name, limit, log)
        if more_names != names:
            raise DatasetError(
                f"backbone {name!r} decoded other images of {split!r} than {cfg.image_backbone!r}"
            )
        pooled = np.concatenate([pooled, more], axis=1)
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
