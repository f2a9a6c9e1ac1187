"""Distributed indexing on Ray Data: decode and encode across a cluster, write through one writer.

Why Ray Data: decoding and ONNX encoding are embarrassingly parallel and dominate indexing; Ray Data streams
file batches to a pool of actors (one ONNX Runtime session each, created once per actor) with back-pressure,
retries a batch whose worker died, and runs unchanged on a laptop (a local Ray started here) or on a cluster
(``--address auto`` / ``ray://HEAD:10001``). The catalog still has exactly one writer: this process, which
commits each batch that comes back in its own transaction, so an interrupted run resumes like a local one
and a batch retried after a worker died cannot be indexed twice (images are keyed by content hash).

Paths must be readable by the workers: on a cluster, a shared file system mounted at the same path on every
node (object storage through a FUSE mount such as s3fs or gcsfuse works the same way).
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator, Sequence
from concurrent.futures import Future
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from .errors import ConfigError, MediaError

__all__ = ["Engine", "RayEngine", "EncodedBatch"]

# Features a worker sends back, and the dtype on the wire: the 7x7 map is the bulk (250 KB an image in
# float32), so it travels as float16 and is widened again here.
_WIRE = {"embedding": np.float32, "logits": np.float32, "pooled": np.float32, "spatial": np.float16}


@dataclass(frozen=True)
class EncodedBatch:
    """What the indexer's writer needs for a batch: per path, a decode result and its features."""

    paths: list[str]
    decoded: dict[str, Future]  # path -> Future of ((w, h), None, thumbnail) or MediaError, as _decode gives
    digests: dict[str, str]
    features: dict[str, dict[str, np.ndarray]]  # path -> feature name -> row


class Engine(Protocol):
    """Where photos are decoded and encoded when not in the indexing process itself."""

    def encode(self, model: str, paths: Sequence[str]) -> Iterator[EncodedBatch]: ...


@lru_cache(maxsize=2)
def _worker_encoder(model: str, threads: int) -> Any:
    """One encoder (one ONNX Runtime session) per Ray worker process, reused by every batch it runs."""
    os.environ["PIXSEARCH_THREADS"] = str(threads)
    from .models.encoder import create_encoder

    return create_encoder(model)


def _encode_batch(batch: dict[str, np.ndarray], model: str, threads: int) -> dict[str, Any]:
    """A Ray task: decode + encode one batch of paths; the encoder is built once per worker process."""
    return _Encode(_worker_encoder(model, threads))(batch)


class _Encode:
    def __init__(self, encoder: Any) -> None:
        self.encoder = encoder

    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, Any]:
        from .media import content_hash, load_image, read_bytes, thumbnail_bytes
        from .models.backbones import decode_size

        n = len(batch["path"])
        out: dict[str, list[Any]] = {k: [] for k in ("path", "error", "digest", "width", "height", "thumb")}
        arrays, ok = [], []
        for i in range(n):
            p = str(batch["path"][i])
            err, digest, size, thumb = "", "", (0, 0), b""
            try:
                data = read_bytes(Path(p))
                digest = content_hash(data)
                img = load_image(data, name=p, draft=decode_size(self.encoder.resolution))
                size, thumb = img.size, thumbnail_bytes(img) or b""
                arrays.append(self.encoder.preprocess(img))
                ok.append(i)
            except MediaError as exc:
                err = exc.reason
            except OSError as exc:
                err = f"cannot read: {exc.strerror or exc}"
            for k, v in zip(out, (p, err, digest, size[0], size[1], thumb), strict=True):
                out[k].append(v)
        feats = self.encoder.encode_image_features(np.stack(arrays)) if arrays else {}
        cols: dict[str, Any] = {k: np.array(v, dtype=object) for k, v in out.items()}
        for name, dt in _WIRE.items():
            if name not in feats:
                continue
            f = np.asarray(feats[name])
            full = np.zeros((n, *f.shape[1:]), dtype=dt)
            full[ok] = f.astype(dt)
            cols[name] = full
        return cols


@dataclass(frozen=True)
class RayEngine:
    """``--engine ray``: where the cluster is and how to split the work."""

    address: str | None = None  # None: start a local Ray on this machine; "auto": join the running one
    workers: int | None = None  # concurrent encoding tasks; default: the cluster's CPUs / threads
    threads: int = 1  # ONNX Runtime threads per actor
    batch_size: int = 32

    def __post_init__(self) -> None:
        if self.threads < 1 or self.batch_size < 1 or (self.workers is not None and self.workers < 1):
            raise ConfigError("--engine ray: workers, threads and batch size must be >= 1")

    def _init(self) -> Any:
        try:
            import ray
        except ImportError as exc:
            raise ConfigError("--engine ray needs Ray: pip install 'pixsearch[ray]'") from exc
        if not ray.is_initialized():
            kw: dict[str, Any] = {
                "include_dashboard": False,
                "log_to_driver": False,
                "logging_level": logging.ERROR,  # the CLI owns the terminal: progress, not Ray's logs
            }
            try:
                if self.address:
                    ray.init(address=self.address, **kw)
                else:
                    ray.init(num_cpus=os.cpu_count() or 1, **kw)
            except Exception as exc:  # Ray raises ConnectionError, RuntimeError, ValueError...
                where = self.address or "a local Ray"
                raise ConfigError(
                    f"cannot start or join {where}: {' '.join(str(exc).split())[:300]}"
                ) from exc
        return ray

    def encode(self, model: str, paths: Sequence[str]) -> Iterator[EncodedBatch]:
        """Stream encoded batches (in completion order, not input order) for ``paths``.

        Ray tasks (max_retries) with at most two in flight per worker slot: back-pressure keeps the object
        store small. Whatever fails, a batch is committed only once and keyed by content hash, so a rerun
        never indexes a photo twice; an interrupted run resumes like a local one."""
        if not paths:
            return
        ray = self._init()
        cpus = int(ray.cluster_resources().get("CPU", 1))
        slots = self.workers or max(1, cpus // self.threads)
        task = ray.remote(num_cpus=self.threads, max_retries=5, retry_exceptions=False)(_encode_batch)
        todo = [list(paths[s : s + self.batch_size]) for s in range(0, len(paths), self.batch_size)]
        todo.reverse()
        running: list[Any] = []
        try:
            while todo or running:
                while todo and len(running) < 2 * slots:
                    running.append(
                        task.remote({"path": np.array(todo.pop(), dtype=object)}, model, self.threads)
                    )
                done, running = ray.wait(running, num_returns=1)
                yield _to_batch(ray.get(done[0]))
        finally:
            for ref in running:  # Ctrl-C or an error in the writer: stop what is still queued
                ray.cancel(ref, force=True)


def _to_batch(cols: dict[str, np.ndarray]) -> EncodedBatch:
    paths = [str(p) for p in cols["path"]]
    decoded: dict[str, Future] = {}
    digests: dict[str, str] = {}
    feats: dict[str, dict[str, np.ndarray]] = {}
    for i, p in enumerate(paths):
        fut: Future = Future()
        digests[p] = str(cols["digest"][i])
        if cols["error"][i]:
            fut.set_result(MediaError(p, str(cols["error"][i])))
        else:
            thumb = bytes(cols["thumb"][i]) or None
            fut.set_result(((int(cols["width"][i]), int(cols["height"][i])), None, thumb))
            feats[p] = {k: np.asarray(cols[k][i], dtype=np.float32) for k in _WIRE if k in cols}
        decoded[p] = fut
    return EncodedBatch(paths, decoded, digests, feats)
