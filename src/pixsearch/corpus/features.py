"""Backbone feature cache for training and evaluation (the heads train on cached features).

Features are keyed by *content hash* + backbone fingerprint, so a renamed or copied image is never encoded
twice and a different backbone never reads stale features. Shards are safetensors files written every
``shard_size`` items with an atomic rename: an interrupted run keeps every finished shard and resumes.
Lives outside the repo: ``$PIXSEARCH_CACHE`` or ``~/.cache/pixsearch``.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from pixsearch.errors import MediaError
from pixsearch.media import content_hash
from pixsearch.models.backbones import ImageBackbone, TextBackbone, prepared_batches

if TYPE_CHECKING:
    from pixsearch.models.encoder import JointEncoder

__all__ = ["FeatureCache", "default_cache_dir", "ImageFeatures"]

Progress = Callable[[int, int], None]


def default_cache_dir() -> Path:
    env = os.environ.get("PIXSEARCH_CACHE")
    if env:
        return Path(env)
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "pixsearch"


class _ShardStore:
    """Append-only key -> row store over safetensors shards in one directory."""

    def __init__(self, root: Path) -> None:
        self.root = root
        root.mkdir(parents=True, exist_ok=True)
        self.rows: dict[str, tuple[int, int]] = {}
        self.shards: list[dict[str, np.ndarray]] = []
        from safetensors.numpy import load_file

        for i, f in enumerate(sorted(root.glob("shard-*.safetensors"))):
            data = load_file(str(f))
            keys = [bytes(k).hex() for k in data.pop("keys")]
            self.shards.append(data)
            for r, k in enumerate(keys):
                self.rows[k] = (i, r)

    def __contains__(self, key: str) -> bool:
        return key in self.rows

    def get(self, keys: Sequence[str], field: str) -> np.ndarray:
        return np.stack([self.shards[s][field][r] for s, r in (self.rows[k] for k in keys)])

    def write(self, keys: list[str], fields: dict[str, np.ndarray]) -> None:
        from safetensors.numpy import save_file

        if not keys:
            return
        n = len(self.shards)
        data = dict(fields)
        data["keys"] = np.frombuffer(b"".join(bytes.fromhex(k) for k in keys), dtype=np.uint8).reshape(
            len(keys), -1
        )
        final = self.root / f"shard-{n:05d}.safetensors"
        tmp = final.with_suffix(".tmp")
        save_file({k: np.ascontiguousarray(v) for k, v in data.items()}, str(tmp))
        os.replace(tmp, final)
        self.shards.append({k: v for k, v in data.items() if k != "keys"})
        for r, k in enumerate(keys):
            self.rows[k] = (n, r)


def _pending(
    paths: Sequence[Path], store: _ShardStore
) -> tuple[list[str | None], list[MediaError], dict[str, Path]]:
    """(content hash per path, None where it can't be read; those errors; hash -> one path for the
    images the store lacks). Keyed by content, so a copied or renamed image is encoded once."""
    hashes: list[str | None] = []
    errors: list[MediaError] = []
    for p in paths:
        try:
            hashes.append(content_hash(Path(p)))
        except OSError as exc:
            hashes.append(None)
            errors.append(MediaError(str(p), f"cannot read: {exc}"))
    todo: dict[str, Path] = {}
    for p, h in zip(paths, hashes, strict=True):
        if h is not None and h not in store and h not in todo:
            todo[h] = Path(p)
    return hashes, errors, todo


def _encoded(hashes: list[str | None], bad: set[str]) -> tuple[list[str | None], list[str], np.ndarray]:
    """(hash per path, None where it could not be read or decoded; the hashes that have features; the
    mask of those rows): the alignment of ``ImageFeatures`` with the caller's paths."""
    final = [h if (h is not None and h not in bad) else None for h in hashes]
    good = [h for h in final if h is not None]
    mask = np.array([h is not None for h in final], dtype=bool)
    return final, good, mask


class ImageFeatures:
    """Feature arrays for a list of images, aligned with it (zeros where ``ok`` is False)."""

    def __init__(self, hashes: list[str | None], arrays: dict[str, np.ndarray], errors: list[MediaError]):
        self.hashes = hashes
        self.arrays = arrays
        self.errors = errors
        self.ok = np.array([h is not None for h in hashes], dtype=bool)

    @property
    def pooled(self) -> np.ndarray:
        return self.arrays["pooled"]

    @property
    def logits(self) -> np.ndarray:
        return self.arrays["logits"]

    @property
    def mid(self) -> np.ndarray:
        return self.arrays["mid"]


class FeatureCache:
    """Image and text backbone features on disk, computed on demand."""

    def __init__(self, root: Path | None = None, shard_size: int = 512) -> None:
        self.root = (root or default_cache_dir()) / "features"
        self.shard_size = shard_size

    def _store(self, fingerprint: str) -> _ShardStore:
        return _ShardStore(self.root / fingerprint.replace(":", "-"))

    def image_features(
        self,
        backbone: ImageBackbone,
        paths: Sequence[Path],
        progress: Progress | None = None,
        mid: bool = False,
        flip: bool = False,
    ) -> ImageFeatures:
        """Pooled + logits per image, or with ``mid`` the last block's input (phase 2), cached.

        ``flip`` encodes the horizontally mirrored image (training augmentation), cached separately.
        """
        fields = ("mid",) if mid else ("pooled", "logits")
        store = self._store(backbone.fingerprint + ("-mid" if mid else "") + ("-flip" if flip else ""))
        hashes, errors, todo = _pending(paths, store)
        todo_keys = list(todo)
        done = len(paths) - len(todo_keys)
        if progress:
            progress(done, len(paths))
        buf_keys: list[str] = []
        buf: dict[str, list[np.ndarray]] = {f: [] for f in fields}
        bad: set[str] = set()
        srcs = [todo[k] for k in todo_keys]
        for ok, arrays, failed in prepared_batches(
            backbone.preprocess, backbone.spec.resolution, srcs, batch_size=32
        ):
            for i, err in failed:
                bad.add(todo_keys[i])
                errors.append(err)
            if arrays is not None:
                out = backbone.encode(np.ascontiguousarray(arrays[..., ::-1]) if flip else arrays, mid=mid)
                buf_keys += [todo_keys[i] for i in ok]
                for f in fields:
                    buf[f].append(out[f])
            if len(buf_keys) >= self.shard_size:
                store.write(buf_keys, {k: np.concatenate(v) for k, v in buf.items()})
                buf_keys, buf = [], {f: [] for f in fields}
            done += len(ok) + len(failed)
            if progress:
                progress(done, len(paths))
        if buf_keys:
            store.write(buf_keys, {k: np.concatenate(v) for k, v in buf.items()})
        final, good, mask = _encoded(hashes, bad)
        result: dict[str, np.ndarray] = {}
        for f in fields:
            got = store.get(good, f) if good else None
            shape = got.shape[1:] if got is not None else ((backbone.spec.dim,) if f == "pooled" else (1000,))
            arr = np.zeros((len(paths), *shape), dtype=got.dtype if got is not None else np.float32)
            if got is not None:
                arr[mask] = got
            result[f] = arr
        return ImageFeatures(final, result, errors)

    def encoder_features(
        self,
        encoder: JointEncoder,
        paths: Sequence[Path],
        field: str = "spatial",
        progress: Progress | None = None,
    ) -> ImageFeatures:
        """One output of ``encoder.encode_image_features`` per image (float16), cached by content hash +
        *encoder* fingerprint (e.g. ``spatial`` for the captioner: it depends on the fine-tuned top).

        Works with any runtime encoder (decode + preprocess in threads, one batch ahead); resumable like
        the backbone cache. Rows of images that fail to decode are zeros with ``ok`` False.
        """
        from concurrent.futures import ThreadPoolExecutor

        from pixsearch.media import load_image
        from pixsearch.models.backbones import decode_size

        store = self._store(f"{encoder.fingerprint}-{field}".replace("|", "_"))
        hashes, errors, todo = _pending(paths, store)
        keys = list(todo)
        bad: set[str] = set()

        def prep(p: Path) -> np.ndarray | MediaError:
            try:
                return encoder.preprocess(load_image(p, draft=decode_size(encoder.resolution)))
            except MediaError as exc:
                return exc

        done = len(paths) - len(keys)
        step = 32
        with ThreadPoolExecutor(max_workers=2) as pool:
            buf_k: list[str] = []
            buf: list[np.ndarray] = []
            nxt = [pool.submit(prep, todo[k]) for k in keys[:step]]
            for s in range(0, len(keys), step):
                cur, chunk = nxt, keys[s : s + step]
                nxt = [pool.submit(prep, todo[k]) for k in keys[s + step : s + 2 * step]]
                ok: list[str] = []
                arrs: list[np.ndarray] = []
                for k, fut in zip(chunk, cur, strict=True):
                    r = fut.result()
                    if isinstance(r, MediaError):
                        bad.add(k)
                        errors.append(r)
                    else:
                        ok.append(k)
                        arrs.append(r)
                if arrs:
                    buf.append(encoder.encode_image_features(np.stack(arrs))[field].astype(np.float16))
                    buf_k += ok
                if len(buf_k) >= self.shard_size or (s + step >= len(keys) and buf_k):
                    store.write(buf_k, {field: np.concatenate(buf)})
                    buf_k, buf = [], []
                done += len(chunk)
                if progress:
                    progress(done, len(paths))
        final, good, mask = _encoded(hashes, bad)
        got = store.get(good, field) if good else np.zeros((0, 0), np.float16)
        arr = np.zeros((len(paths), *got.shape[1:]), dtype=np.float16)
        if good:
            arr[mask] = got
        return ImageFeatures(final, {field: arr}, errors)

    def text_features(
        self, backbone: TextBackbone, texts: Sequence[str], progress: Progress | None = None
    ) -> np.ndarray:
        store = self._store(backbone.fingerprint)
        keys = [hashlib.blake2b(t.encode("utf-8"), digest_size=16).hexdigest() for t in texts]
        todo: dict[str, str] = {}
        for k, t in zip(keys, texts, strict=True):
            if k not in store and k not in todo:
                todo[k] = t
        items = list(todo.items())
        step = max(self.shard_size, 2048)
        for s in range(0, len(items), step):
            chunk = items[s : s + step]
            store.write([k for k, _ in chunk], {"emb": backbone.encode([t for _, t in chunk])})
            if progress:
                progress(min(s + step, len(items)), len(items))
        return store.get(keys, "emb") if keys else np.zeros((0, backbone.dim), dtype=np.float32)


def encoded_split(
    encoder: JointEncoder, data: Path, split: str, progress: Progress | None = None
) -> tuple[list[str], np.ndarray, np.ndarray, np.ndarray]:
    """(image names, image embeddings, caption joint vectors, caption -> image row) of a dataset split,
    encoded end to end by a run-time encoder (ONNX: what a library stores), images cached by content hash.

    Evaluation of shipped models uses this, so ``pixsearch eval retrieval`` measures the path users run,
    without torch.
    """
    from pixsearch.corpus.datasets import load_dataset
    from pixsearch.errors import DatasetError

    ds = load_dataset(Path(data)).split(split)
    names = list(ds.images)
    f = FeatureCache().encoder_features(encoder, [ds.image_path(n) for n in names], "embedding", progress)
    keep = np.flatnonzero(f.ok)
    names = [names[i] for i in keep]
    texts, owner = ds.caption_rows(names)
    if not texts:
        raise DatasetError(f"split {split!r} of {data} has no captions for its images")
    _, joint = encoder.encode_texts(texts)
    img = f.arrays["embedding"][keep].astype(np.float32)
    return names, img, joint, np.array(owner, dtype=np.int64)
