"""The duplicate finder: groups of files that hold one photo, exact copies or edited ones, with the copy to
keep. It only reads; nothing is ever deleted or moved.

Exact copies are files with one content hash (the catalog keeps one ``images`` row for them, with several
``paths``). Near-duplicates are photos whose pixels are one photo's: resized, re-encoded, lightly cropped
or straightened, brightened, watermarked. They are found in two steps:

1. candidates, from two sources: photos whose whole-frame perceptual hashes share a 16-bit chunk (catches
   every resized, re-encoded, retouched or watermarked copy on the benchmark), and each photo's nearest
   neighbours in the joint space (the vector index), for crops and straightened copies, whose whole-frame
   hashes differ. The joint space alone is not enough: a halved copy re-saved at JPEG quality 40 sat at
   cosine 0.44 to its original on the development set, while the next shot of a burst sits at 0.95;
2. verification with the crop-tolerant perceptual hash of both thumbnails (``fingerprint.py``): the
   whole-frame hashes settle most pairs; the cropped boxes are compared for joint-space neighbours at
   cosine >= CROP_COSINE only (crops and straightened copies kept >= 0.79 on the benchmark).

A pair whose perceptual similarity reaches ``threshold`` is linked; groups are the linked components.
Different shots of one scene (bursts, the next photo of a jump) are what must stay apart: the benchmark
(``benchmarks/bench_duplicates.py``) measures both sides. Photos the region withholds take no part.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Sequence
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np

from pixsearch.errors import QueryError
from pixsearch.library import fingerprint as fp
from pixsearch.results import Roots, root_relative, shown
from pixsearch.storage.duplicates import DuplicateReads, FileRow
from pixsearch.storage.vectors import VectorIndex

__all__ = ["DEFAULT_THRESHOLD", "PREFER", "DuplicateGroup", "DuplicatePhoto", "Duplicates", "find_duplicates"]

PREFER = ("largest", "oldest")
# Perceptual similarity (1 - 2 * differing bits / 256) a pair needs to be called a near-duplicate. Chosen
# on a development set (the 100 Flickr8k val photos that keep their aspect, 7 edits each, among 2.2K
# photos): every threshold from 0.50 to 0.58 grouped all copies and no different photos there (the rope
# swing burst of tests/unit/library/test_duplicates.py scores 0.48); 0.54 is the middle. The benchmark
# (held-out test photos) reports precision and recall at this value.
DEFAULT_THRESHOLD = 0.54
NEIGHBOURS = 24  # joint-space neighbours per photo that are candidates
MIN_COSINE = 0.5  # joint-space neighbours below this are no candidates (hash buckets find re-encodes)
CROP_COSINE = 0.75  # pairs at least this close also get their cropped boxes compared
_BATCH = 1024  # neighbour queries per vector index call


@dataclass(frozen=True)
class DuplicatePhoto:
    """One file of a group: where it is, its pixels and bytes, when it was taken (None: unknown), and
    its perceptual ``similarity`` to the group's suggested copy (1.0 for that copy and exact copies)."""

    image_id: int
    path: str
    width: int
    height: int
    bytes: int
    taken_at: str | None
    taken_from: str | None  # where taken_at came from: 'exif', 'file' (modification time); None unknown
    modified: float  # the file's modification time when indexed (Unix time)
    similarity: float

    def to_dict(self, roots: Roots | None = None) -> dict[str, Any]:
        """JSON; with ``roots`` (the REST API) the path relative to its indexed root, and ``root``."""
        if roots is None:
            where: dict[str, Any] = {"path": shown(self.path)}
        else:
            rid, rel = root_relative(self.path, roots)
            where = {"path": rel, "root": rid}
        return {
            "image_id": self.image_id,
            **where,
            "width": self.width,
            "height": self.height,
            "bytes": self.bytes,
            "taken_at": self.taken_at,
            "taken_from": self.taken_from,
            "modified": round(self.modified, 3),
            "similarity": round(self.similarity, 4),
        }


@dataclass(frozen=True)
class DuplicateGroup:
    """Files that hold one photo. ``photos`` are in order of preference: ``best`` (always 0) is the copy
    the finder suggests keeping. ``kind`` is "exact" when every file has the same bytes, else "near";
    ``similarity`` is the lowest of the photos' similarities to the suggested copy."""

    kind: Literal["exact", "near"]
    photos: tuple[DuplicatePhoto, ...]
    similarity: float
    best: int = 0

    def to_dict(self, roots: Roots | None = None) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "best": self.best,
            "similarity": round(self.similarity, 4),
            "photos": [p.to_dict(roots) for p in self.photos],
        }


@dataclass(frozen=True)
class Duplicates:
    """``Library.duplicates``: the groups (most files first), what the pass looked at, and how long it
    took. ``photos``: distinct photos examined; ``pairs``: candidate pairs verified."""

    groups: tuple[DuplicateGroup, ...]
    threshold: float
    prefer: str
    photos: int
    pairs: int
    seconds: float

    def to_dict(self, roots: Roots | None = None) -> dict[str, Any]:
        return {
            "groups": [g.to_dict(roots) for g in self.groups],
            "threshold": self.threshold,
            "prefer": self.prefer,
            "photos": self.photos,
            "pairs": self.pairs,
            "seconds": round(self.seconds, 3),
        }


def check_options(threshold: float | None, prefer: str) -> float:
    """The threshold to use (the default for None); QueryError for one outside 0..1 or an unknown
    ``prefer``."""
    if prefer not in PREFER:
        raise QueryError(f"prefer must be one of {', '.join(PREFER)}, not {prefer!r}")
    if threshold is None:
        return DEFAULT_THRESHOLD
    if not 0.0 <= threshold <= 1.0:  # also refuses NaN
        raise QueryError(f"threshold must be between 0 and 1, not {threshold}")
    return float(threshold)


def find_duplicates(
    reads: DuplicateReads,
    index: VectorIndex,
    hidden: Callable[[Iterable[int]], set[int]],
    threshold: float | None = None,
    prefer: str = "largest",
    neighbours: int = NEIGHBOURS,
) -> Duplicates:
    """Every group of copies among the indexed photos that ``hidden`` does not withhold (module
    docstring). ``index`` holds the photos' joint-space vectors by image id."""
    start = time.perf_counter()
    th = check_options(threshold, prefer)
    files: dict[int, list[FileRow]] = {}
    for f in reads.files():
        files.setdefault(f.image_id, []).append(f)
    for i in hidden(files):
        del files[i]
    with _one_blas_thread():  # small matrix products: threads only add overhead (fingerprint.py)
        ids = sorted(files)
        near = _candidates(index, np.array(ids, dtype=np.int64), neighbours)
        linked, prints, compared = _verify(reads, ids, near, th)
        groups = [_group(files, members, prints, reads, prefer) for members in _components(files, linked)]
    groups.sort(key=lambda g: (-len(g.photos), g.photos[0].path))
    return Duplicates(tuple(groups), th, prefer, len(files), compared, time.perf_counter() - start)


def _one_blas_thread() -> AbstractContextManager[Any]:
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:  # pragma: no cover - installed with the policy's sentence encoder
        return nullcontext()
    return threadpool_limits(limits=1, user_api="blas")


def _candidates(index: VectorIndex, ids: np.ndarray, k: int) -> dict[tuple[int, int], float]:
    """(smaller id, larger id) -> joint-space cosine, for each photo and its ``k`` nearest visible
    neighbours at cosine >= MIN_COSINE."""
    out: dict[tuple[int, int], float] = {}
    if len(ids) < 2:
        return out
    visible = set(ids.tolist())
    for s in range(0, len(ids), _BATCH):
        q = ids[s : s + _BATCH]
        keys, sims = index.search(index.get(q), k + 1)
        for a, row, cos in zip(q.tolist(), keys.tolist(), sims.tolist(), strict=True):
            for b, c in zip(row, cos, strict=True):
                if b != a and c >= MIN_COSINE and b in visible:
                    key = (a, b) if a < b else (b, a)
                    out[key] = max(c, out.get(key, -1.0))
    return out


def _fingerprints(reads: DuplicateReads, ids: Iterable[int], boxes: bool) -> dict[int, fp.Fingerprint]:
    """Fingerprints of those ``ids`` whose thumbnail decodes (one that does not is left out: its photo
    can still be an exact copy, never a near one)."""
    out: dict[int, fp.Fingerprint] = {}
    for i, thumb in reads.thumbnails(sorted(ids)):
        try:
            out[i] = fp.fingerprint(thumb, boxes)
        except (OSError, ValueError):
            continue
    return out


def _verify(
    reads: DuplicateReads, ids: Sequence[int], near: dict[tuple[int, int], float], threshold: float
) -> tuple[list[tuple[int, int]], dict[int, fp.Fingerprint], int]:
    """The pairs whose perceptual similarity reaches ``threshold``, the fingerprints made (with boxes for
    the photos of pairs close enough in the joint space to be crops of each other), and how many pairs
    were compared. Candidates: ``near`` (joint-space neighbours) and photos whose whole-frame hashes share
    a chunk (``fingerprint.bucket_pairs``)."""
    whole = _fingerprints(reads, ids, boxes=False)
    keys = np.array(sorted(whole), dtype=np.int64)
    if len(keys) < 2:
        return [], whole, 0
    row = {int(k): n for n, k in enumerate(keys)}
    hashes = np.stack([whole[int(k)].whole for k in keys])
    aspects = np.array([whole[int(k)].aspect for k in keys])
    knn = [(row[a], row[b]) for a, b in near if a in row and b in row]
    pairs = np.unique(
        np.concatenate([fp.bucket_pairs(hashes), np.array(knn, dtype=np.int64).reshape(-1, 2)]), axis=0
    )
    d = fp.whole_distances(hashes, aspects, pairs[:, 0], pairs[:, 1])
    ok = (d <= fp.BITS) & (np.maximum(0.0, 1.0 - 2.0 * d / fp.BITS) >= threshold)
    linked = [(int(keys[a]), int(keys[b])) for a, b in pairs[ok]]
    done = set(linked)
    rest = [
        p for p, cos in near.items() if cos >= CROP_COSINE and p not in done and p[0] in row and p[1] in row
    ]
    boxed = _fingerprints(reads, {i for p in rest for i in p}, boxes=True)
    linked += [(a, b) for a, b in rest if _similarity(boxed.get(a), boxed.get(b)) >= threshold]
    return linked, {**whole, **boxed}, len(pairs)


def _components(files: dict[int, list[FileRow]], linked: Sequence[tuple[int, int]]) -> list[list[int]]:
    """Image ids per group: linked photos together (union-find), and alone a photo with several files."""
    parent: dict[int, int] = {}

    def root(x: int) -> int:
        while parent.get(x, x) != x:
            parent[x] = parent.get(parent[x], parent[x])  # path halving
            x = parent[x]
        return x

    for a, b in linked:
        ra, rb = root(a), root(b)
        if ra != rb:
            parent[max(ra, rb)] = min(ra, rb)
    comps: dict[int, list[int]] = {}
    in_pairs = {x for p in linked for x in p}
    for i in in_pairs:
        comps.setdefault(root(i), []).append(i)
    singles = [[i] for i, fs in files.items() if len(fs) > 1 and i not in in_pairs]
    return [sorted(c) for c in comps.values()] + singles


def _rank(prefer: str) -> Callable[[FileRow], tuple[Any, ...]]:
    """Sort key: the preferred copy first. ``largest``: most pixels, then bytes, then oldest; ``oldest``:
    earliest capture time (the file's modification time where none is known; exact copies share one
    capture time, so then the older file), then largest."""

    def when(f: FileRow) -> tuple[float, int]:
        return (f.taken_ts if f.taken_ts is not None else f.mtime_ns / 1e9), f.mtime_ns

    def size(f: FileRow) -> tuple[int, int]:
        return -f.width * f.height, -f.size

    if prefer == "oldest":
        return lambda f: (*when(f), *size(f), f.path)
    return lambda f: (*size(f), *when(f), f.path)


def _group(
    files: dict[int, list[FileRow]],
    members: list[int],
    prints: dict[int, fp.Fingerprint],
    reads: DuplicateReads,
    prefer: str,
) -> DuplicateGroup:
    rows = sorted((f for i in members for f in files[i]), key=_rank(prefer))
    best = rows[0].image_id
    mine = {i: prints.get(i) for i in members}
    missing = {i for i, f in mine.items() if f is None or f.boxes is None}
    if len(members) > 1 and missing:  # to compare every member with the best copy, crop boxes included
        mine.update(_fingerprints(reads, missing, boxes=True))
    sims = {i: 1.0 if i == best else max(0.0, _similarity(mine[best], mine[i])) for i in members}
    photos = tuple(
        DuplicatePhoto(
            f.image_id,
            f.path,
            f.width,
            f.height,
            f.size,
            f.taken_at,
            f.taken_from,
            f.mtime_ns / 1e9,
            sims[f.image_id],
        )
        for f in rows
    )
    kind: Literal["exact", "near"] = "exact" if len(members) == 1 else "near"
    return DuplicateGroup(kind, photos, min(sims.values()))


def _similarity(a: fp.Fingerprint | None, b: fp.Fingerprint | None) -> float:
    """Perceptual similarity, crop boxes included; -1 when the two cannot be copies (no fingerprint, or
    no box of one has the other's shape), so that no threshold links them."""
    d = None if a is None or b is None else fp.distance(a, b)
    return -1.0 if d is None else fp.similarity(d)
