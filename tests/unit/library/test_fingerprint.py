"""Perceptual fingerprints (library/fingerprint.py): crop boxes find a cropped copy that the whole frame
misses, other shapes are never compared, and hash buckets pair photos that share a chunk of their hash."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from pixsearch.library import fingerprint as fp
from pixsearch.library.duplicates import DEFAULT_THRESHOLD
from pixsearch.media import thumbnail_bytes

PHOTO = "1082379191_ec1e53f996.jpg"  # test split, 384x288


def _print(img: Image.Image, quality: int = 90) -> fp.Fingerprint:
    buf = io.BytesIO()
    img.save(buf, "JPEG", quality=quality)
    with Image.open(buf) as again:
        return fp.fingerprint(thumbnail_bytes(again.convert("RGB")), boxes=True)


@pytest.fixture(scope="module")
def photo(flickr8k: Path) -> Image.Image:
    with Image.open(flickr8k / "images" / PHOTO) as img:
        return img.convert("RGB")


def test_crop_boxes_find_a_cropped_copy_the_whole_frame_misses(photo: Image.Image) -> None:
    w, h = photo.size
    orig = _print(photo)
    crop = _print(photo.crop((round(0.06 * w), round(0.02 * h), round(0.96 * w), round(0.92 * h))))
    assert fp.similarity(fp.distance(orig, crop)) >= DEFAULT_THRESHOLD
    assert fp.similarity(fp.whole_distance(orig, crop)) < DEFAULT_THRESHOLD
    assert fp.distance(orig, crop) == fp.distance(crop, orig)  # either way round
    small = _print(photo.resize((w // 2, h // 2)), quality=40)
    assert fp.similarity(fp.whole_distance(orig, small)) >= 0.8  # a re-encode barely moves the hash


def test_other_shapes_are_never_compared(photo: Image.Image) -> None:
    orig = _print(photo)
    tall = fp.Fingerprint(orig.whole, orig.aspect / 1.5)
    assert fp.whole_distance(orig, tall) is None and fp.similarity(None) == 0.0
    wholes, aspects = np.stack([orig.whole, tall.whole]), np.array([orig.aspect, tall.aspect])
    d = fp.whole_distances(wholes, aspects, np.array([0, 0]), np.array([0, 1]))
    assert d.tolist() == [0, fp.BITS + 1]  # itself; the other shape: past any threshold


def test_bucket_pairs_pair_hashes_that_share_a_chunk() -> None:
    rng = np.random.default_rng(0)
    hashes = rng.integers(0, 256, size=(6, fp.BITS // 8), dtype=np.uint8)
    hashes[1] = hashes[0] ^ 1  # one bit off in every byte: no chunk is the same
    hashes[2] = hashes[0]
    hashes[2, 4:] ^= 0xFF  # the first two chunks the same, the rest far apart
    pairs = fp.bucket_pairs(hashes).tolist()
    assert [0, 2] in pairs and [0, 1] not in pairs and all(i < j for i, j in pairs)
    crowd = np.zeros((fp._CROWD + 1, fp.BITS // 8), dtype=np.uint8)  # one pattern shared by too many
    assert fp.bucket_pairs(crowd).shape == (0, 2)
