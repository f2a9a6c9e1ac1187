"""A decoded photo as the image graph's input: squashed to the model's resolution, ImageNet-normalised.

``backbones.preprocess_image`` defines that input for training and evaluation; :func:`preprocess_pixels`
computes the same floats, bit for bit (``tests/unit/models/test_encoder.py`` holds them equal on real
photos), with a fifth of the CPU for the normalisation (0.2 ms a photo instead of 0.9, also with two
threads at it). Indexing runs it on every photo.
"""

from __future__ import annotations

from functools import lru_cache
from typing import TYPE_CHECKING

import numpy as np

from pixsearch.errors import ModelError
from pixsearch.models.backbones import IMAGENET_MEAN, IMAGENET_STD

if TYPE_CHECKING:
    from PIL import Image

__all__ = ["preprocess_pixels", "pack_pixels", "unpack_pixels"]


@lru_cache(maxsize=1)
def _levels() -> np.ndarray:
    """(3, 256) float32: each 8-bit level of each channel normalised by the very float32 operations of
    ``preprocess_image``, so looking a pixel up gives the float that arithmetic gives."""
    lv = np.repeat(np.arange(256, dtype=np.float32)[:, None], 3, axis=1) / 255.0
    return np.ascontiguousarray(((lv - IMAGENET_MEAN) / IMAGENET_STD).T, dtype=np.float32)


def preprocess_pixels(img: Image.Image, resolution: int) -> np.ndarray:
    """RGB image -> (3, resolution, resolution) float32: the resize of ``preprocess_image``, then one
    table lookup per channel instead of three passes of float arithmetic over the photo."""
    from PIL import Image

    if img.mode != "RGB":
        img = img.convert("RGB")
    rgb = np.asarray(img.resize((resolution, resolution), Image.Resampling.BILINEAR, reducing_gap=3.0))
    out = np.empty((3, resolution, resolution), np.float32)
    levels = _levels()
    for c in range(3):  # indexing, not np.take(out=): that buffers, and costs 4x the CPU on 2 threads
        out[c] = levels[c][rgb[:, :, c]]
    return out


def pack_pixels(img: Image.Image, resolutions: tuple[int, ...]) -> np.ndarray:
    """The image graph's inputs of one photo: (3, R, R) for one backbone; for several (a model with
    extra backbones, each at its own resolution) the inputs flattened into one row, so the indexing
    pipeline, reader processes and caches still move one array per photo."""
    if len(resolutions) == 1:
        return preprocess_pixels(img, resolutions[0])
    return np.concatenate([preprocess_pixels(img, r).ravel() for r in resolutions])


def unpack_pixels(arrays: np.ndarray, resolutions: tuple[int, ...]) -> list[np.ndarray]:
    """A batch of ``pack_pixels`` rows back into one contiguous (N, 3, R, R) float32 array per backbone."""
    x = np.asarray(arrays, dtype=np.float32)
    if len(resolutions) == 1:
        return [np.ascontiguousarray(x)]
    sizes = [3 * r * r for r in resolutions]
    if x.ndim != 2 or x.shape[1] != sum(sizes):
        raise ModelError(f"pixel rows of shape {x.shape[1:]} are not this model's input ({resolutions} px)")
    cuts = np.cumsum([0, *sizes])
    return [
        np.ascontiguousarray(x[:, a:b].reshape(-1, 3, r, r))
        for a, b, r in zip(cuts[:-1], cuts[1:], resolutions, strict=True)
    ]
