"""A photo's perceptual fingerprint: DCT hashes (pHash) of its stored thumbnail, whole and cropped.

Why a hash of pixels and not the joint-space vector: the joint space says two photos show the same kind of
scene, so the next shot of a burst sits as close to a photo as its own re-saved copy does (measured on
Flickr8k: a copy halved and re-saved at JPEG quality 40 has cosine 0.61-0.99 to its original, and
different photos of one scene reach 0.95). A pHash keeps the photo's coarse pixel layout, which a resize, a
re-encode, a brightness or contrast change or a small watermark leave alone and a different shot does not.

Why cropped hashes too: a 5-10% crop shifts and rescales everything, and the whole-frame hashes of a photo
and its crop differ as much as two different photos do. So each photo also gets the hashes of a grid of
sub-rectangles of itself (each side cut by 0, 1/30, 2/30 or 3/30 of its length: 256 boxes); a cropped copy
matches one of them, up to 1/60 of the frame, when the hash is compared with the copy's whole-frame hash.
Only boxes of the copy's aspect ratio are compared, so the grid adds few chances of a false match.

The hash is the classic pHash (``imagehash.phash``'s recipe: a 32x32 grey resample, its 2-D DCT, the
16x16 lowest frequencies against their median), computed for all boxes at once as matrix products: the
box's area resample and the DCT are both linear, so one ``P @ A @ Q`` per box pair does it.
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from functools import cache, lru_cache

import numpy as np
from PIL import Image

__all__ = [
    "ASPECT_TOLERANCE",
    "BITS",
    "Fingerprint",
    "bucket_pairs",
    "distance",
    "fingerprint",
    "similarity",
    "whole_distance",
    "whole_distances",
]

_GRID = 32  # the resample the DCT runs on (pHash: 4x the hash side)
_SIDE = 16  # hash side: 16x16 = 256 bits (8x8 separated copies from look-alikes less well: benchmark)
BITS = _SIDE * _SIDE
_SOURCE = 128  # thumbnails are decoded at about this size (JPEG draft mode): enough for a 32x32 resample
_CUTS = (0.0, 1 / 30, 2 / 30, 3 / 30)  # how much of a side a box leaves out, at each end
_SPANS = tuple((a, 1.0 - b) for a in _CUTS for b in _CUTS)  # (start, end) of a box along one side
ASPECT_TOLERANCE = 0.07  # |log(aspect ratio / other aspect ratio)| for two frames to be compared
_POPCOUNT = np.array([bin(i).count("1") for i in range(256)], dtype=np.uint16)


@dataclass(frozen=True, eq=False)
class Fingerprint:
    """Hashes of one thumbnail: ``whole`` (packed bits of the whole frame), the aspect ratio (width /
    height) of the grey image they came from and, when asked for, ``boxes[y, x]``: the packed hash of the
    box with vertical span ``_SPANS[y]`` and horizontal span ``_SPANS[x]`` (``[0, 0]`` is ``whole``)."""

    whole: np.ndarray  # (BITS // 8,) uint8
    aspect: float
    boxes: np.ndarray | None = None  # (len(_SPANS), len(_SPANS), BITS // 8) uint8


@cache
def _dct(n: int, k: int) -> np.ndarray:
    """The first ``k`` rows of the (unnormalised) DCT-II matrix of size ``n``: scaling does not move a
    median, so the hash is that of ``scipy.fft.dct``'s."""
    i = np.arange(n)
    return np.cos(np.pi * (2 * i[None, :] + 1) * np.arange(k)[:, None] / (2 * n))


@lru_cache(maxsize=64)  # one per thumbnail side length seen (at most _SOURCE of them)
def _box_rows(length: int) -> np.ndarray:
    """For a side of ``length`` pixels: per span, DCT rows times the area resample of that span onto
    ``_GRID`` cells, shape (len(_SPANS), _SIDE, length)."""
    out = np.empty((len(_SPANS), _SIDE, length))
    p = np.arange(length)
    for s, (start, end) in enumerate(_SPANS):
        edges = np.linspace(start * length, end * length, _GRID + 1)
        lo = np.maximum(edges[:-1, None], p[None, :])
        hi = np.minimum(edges[1:, None], p[None, :] + 1)
        w = np.clip(hi - lo, 0.0, None)
        out[s] = _dct(_GRID, _SIDE) @ (w / w.sum(1, keepdims=True))
    return out.astype(np.float32)  # half the time of float64; a bit flips only at a tie with the median


def _grey(thumbnail: bytes) -> np.ndarray:
    with Image.open(io.BytesIO(thumbnail)) as src:
        src.draft("L", (_SOURCE, _SOURCE))  # a JPEG decodes straight at 1/2, 1/4 ... of its size
        img = src.convert("L")
    w, h = img.size
    if max(w, h) > _SOURCE:
        s = _SOURCE / max(w, h)
        img = img.resize((max(1, round(w * s)), max(1, round(h * s))), Image.Resampling.BOX)
    return np.asarray(img, dtype=np.float32)


def _bits(coeffs: np.ndarray) -> np.ndarray:
    """Packed bits: each coefficient against the median of its hash (``np.partition``: the median's two
    middle values without a full sort)."""
    mid = np.partition(coeffs, (BITS // 2 - 1, BITS // 2), axis=-1)[..., BITS // 2 - 1 : BITS // 2 + 1]
    return np.packbits(coeffs > mid.mean(axis=-1, keepdims=True), axis=-1)


def fingerprint(thumbnail: bytes, boxes: bool = False) -> Fingerprint:
    """The hashes of a stored thumbnail (JPEG bytes): the whole frame's, and with ``boxes`` every box's
    (~0.5 ms more). Raises OSError or ValueError when the bytes do not decode (the caller treats such a
    photo as having no fingerprint)."""
    a = _grey(thumbnail)
    h, w = a.shape
    ry, rx = _box_rows(h), _box_rows(w)
    if not boxes:
        return Fingerprint(_bits((ry[0] @ a @ rx[0].T).reshape(BITS)), w / h)
    n = len(_SPANS)
    # one product for every (vertical, horizontal) span pair: rows (n*_SIDE, w) times (w, n*_SIDE)
    c = (ry.reshape(n * _SIDE, h) @ a) @ rx.reshape(n * _SIDE, w).T
    c = c.reshape(n, _SIDE, n, _SIDE).transpose(0, 2, 1, 3).reshape(n, n, BITS)
    packed = _bits(c)
    return Fingerprint(packed[0, 0], w / h, packed)


def _hamming(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Bit differences between packed hashes along the last axis (broadcasting)."""
    return _POPCOUNT[np.bitwise_xor(a, b)].sum(axis=-1, dtype=np.int64)


def whole_distance(a: Fingerprint, b: Fingerprint) -> int | None:
    """Bits that differ between two whole-frame hashes; None when the aspect ratios differ."""
    if abs(np.log(a.aspect / b.aspect)) > ASPECT_TOLERANCE:
        return None
    return int(_hamming(a.whole, b.whole))


def whole_distances(wholes: np.ndarray, aspects: np.ndarray, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """``whole_distance`` for many pairs at once: rows ``a[k]`` and ``b[k]`` of ``wholes`` (n, BITS // 8)
    and ``aspects`` (n,); BITS + 1 where the aspect ratios differ."""
    d = _hamming(wholes[a], wholes[b])
    d[np.abs(np.log(aspects[a] / aspects[b])) > ASPECT_TOLERANCE] = BITS + 1
    return d


_CHUNK = 2  # bytes of a whole hash that two photos must share to be paired by ``bucket_pairs``
_CROWD = 64  # a bucket this full is a pattern many photos share (a plain sky), not a sign of a copy


def bucket_pairs(wholes: np.ndarray) -> np.ndarray:
    """Pairs of rows of ``wholes`` (n, BITS // 8) that agree on at least one 16-bit chunk: the candidates
    of a re-encoded, resized, retouched or watermarked copy, whatever the joint space thinks of it. Two
    hashes that differ in fewer than 16 bits always share a chunk (pigeonhole); on the benchmark this paired
    every such copy with its original (1000 of 1000). Returns unique (i, j), i < j, as an (m, 2) array."""
    n = len(wholes)
    found: list[np.ndarray] = []
    weights = 256 ** np.arange(_CHUNK, dtype=np.int64)
    for c in range(0, wholes.shape[1], _CHUNK):
        key = wholes[:, c : c + _CHUNK].astype(np.int64) @ weights
        order = np.argsort(key, kind="stable")
        starts = np.flatnonzero(np.r_[True, key[order][1:] != key[order][:-1]])
        sizes = np.diff(np.r_[starts, n])
        keep = (sizes > 1) & (sizes <= _CROWD)
        for s, size in zip(starts[keep].tolist(), sizes[keep].tolist(), strict=True):
            i, j = np.triu_indices(size, 1)
            members = order[s : s + size]
            found.append(np.stack([members[i], members[j]], axis=1))
    if not found:
        return np.empty((0, 2), dtype=np.int64)
    pairs = np.sort(np.concatenate(found), axis=1)
    return np.unique(pairs, axis=0)


_EXTENT = np.array([end - start for start, end in _SPANS])


def distance(a: Fingerprint, b: Fingerprint) -> int | None:
    """Fewest bits that differ between one photo's whole frame and a box of the other, either way round,
    among boxes of the other's aspect ratio; None when no box has it (they cannot be copies). A
    fingerprint made without boxes offers its whole frame only."""
    found: list[int] = []
    for big, small in ((a, b), (b, a)):
        if big.boxes is None:
            d = whole_distance(big, small)
            found += [] if d is None else [d]
            continue
        box_aspect = big.aspect * _EXTENT[None, :] / _EXTENT[:, None]  # [y span, x span]
        ok = np.abs(np.log(box_aspect / small.aspect)) <= ASPECT_TOLERANCE
        if ok.any():
            found.append(int(_hamming(big.boxes[ok], small.whole).min()))
    return min(found, default=None)


def similarity(bits: int | None) -> float:
    """A distance as 0..1: 1 the same hash, 0 as unlike as two unrelated photos (half the bits differ)."""
    if bits is None:
        return 0.0
    return max(0.0, 1.0 - 2.0 * bits / BITS)
