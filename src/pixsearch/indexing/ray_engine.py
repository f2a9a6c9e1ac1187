"""Distributed indexing on Ray Data: decode, encode, caption and check photos across a cluster; one writer.

Why Ray Data: decoding, ONNX encoding, beam-search captioning and the face check are embarrassingly
parallel and dominate indexing. ``map_batches`` over a pool of actors streams file batches with
back-pressure, builds each actor's models once (one ONNX Runtime session per actor), restarts an actor
whose process died and runs its batch again, and runs unchanged on a laptop (a local Ray started here)
or on a cluster (``--address auto`` / ``ray://HEAD:10001``). The catalog still has exactly one writer:
this process, which commits each batch that comes back in its own transaction, so an interrupted run
resumes like a local one and a batch that ran twice after a worker died cannot be indexed twice (images
are keyed by content hash, and the writer skips a hash it already has).

Paths must be readable by the workers: on a cluster, a shared file system mounted at the same path on every
node (object storage through a FUSE mount such as s3fs or gcsfuse works the same way).
"""

from __future__ import annotations

import logging
import os
import socket
import warnings
from collections.abc import Generator, Iterator, Sequence
from concurrent.futures import Future
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from pixsearch.errors import ConfigError, EngineError, MediaError
from pixsearch.indexing.engine import Decoded, EncodedBatch, EncodeJob

__all__ = ["RETRIES", "RayEngine"]

# Features a worker sends back, and the dtype on the wire: the 7x7 map is the bulk (250 KB an image in
# float32), so it travels as float16 and is widened again here.
_WIRE = {"embedding": np.float32, "logits": np.float32, "pooled": np.float32, "spatial": np.float16}
_META = ("path", "error", "digest", "width", "height", "thumb")
RETRIES = 3  # restarts of a worker that died, and re-runs of its batch, before the run stops with an error


def _check_reachable(address: str) -> None:
    """Fail in seconds on a cluster address nobody answers at: ``ray.init`` retries for minutes."""
    host, sep, port = address.removeprefix("ray://").rpartition(":")
    if not sep or not port.isdigit():
        return  # "auto", or a form Ray resolves itself
    try:
        socket.create_connection((host.strip("[]") or "127.0.0.1", int(port)), timeout=5).close()
    except OSError as exc:
        raise ConfigError(f"cannot reach Ray at {address}: {exc.strerror or exc}") from exc


class _Worker:
    """A Ray Data actor: builds the encoder and the enrichers once, then decodes + encodes batches."""

    def __init__(self, job: EncodeJob, threads: int) -> None:
        os.environ["PIXSEARCH_THREADS"] = str(threads)
        from pixsearch.models.encoder import create_encoder

        self.encoder = create_encoder(job.model)
        self.enrichers: list[Any] = []
        if job.settings is not None and job.enrichers:
            from pixsearch.indexing.enrichers.registry import enrichers

            built = {e.name: e for e in enrichers(job.settings, self.encoder)}
            want = dict(job.enrichers)
            self.enrichers = [e for n, e in built.items() if want.get(n) == e.fingerprint]

    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, Any]:
        from pixsearch.media import read_photo, thumbnail_bytes
        from pixsearch.models.backbones import decode_size

        n = len(batch["path"])
        out: dict[str, list[Any]] = {k: [] for k in _META}
        arrays, ok = [], []
        draft = decode_size(self.encoder.resolution)
        for i in range(n):
            p = str(batch["path"][i])
            err, size, thumb = "", (0, 0), b""
            digest, img = read_photo(Path(p), draft)
            if isinstance(img, MediaError):
                err = img.reason
            else:
                size, thumb = img.size, thumbnail_bytes(img) or b""
                arrays.append(self.encoder.preprocess(img))
                ok.append(i)
            for k, v in zip(out, (p, err, digest, size[0], size[1], thumb), strict=True):
                out[k].append(v)
        cols: dict[str, Any] = {k: np.array(v, dtype=object) for k, v in out.items()}
        thumbs = [out["thumb"][i] or None for i in ok]
        if not arrays:  # every file failed: encode a blank so this block has the columns of the others
            from PIL import Image

            r = self.encoder.resolution
            arrays, thumbs = [self.encoder.preprocess(Image.new("RGB", (r, r)))], [None]
        feats = self.encoder.encode_image_features(np.stack(arrays))
        extra: dict[str, np.ndarray] = {}
        for e in self.enrichers:
            extra.update(e.prepare(feats, thumbs))
        wire = {k: np.asarray(v).astype(_WIRE[k]) for k, v in feats.items() if k in _WIRE}
        for name, f in (wire | extra).items():
            f = np.asarray(f)
            full = np.empty((n, *f.shape[1:]), dtype=f.dtype) if f.dtype == object else None
            full = np.zeros((n, *f.shape[1:]), dtype=f.dtype) if full is None else full
            full[ok] = f[: len(ok)]  # (none of the blank's row)
            cols[name] = full
        return cols


@dataclass(frozen=True)
class RayEngine:
    """``--engine ray``: where the cluster is and how to split the work. An :class:`Engine` whose batches
    come encoded (with the enrichers' worker-side columns), in completion order."""

    address: str | None = None  # None: start a local Ray on this machine; "auto": join the running one
    workers: int | None = None  # actors; default: the cluster's CPUs / threads
    threads: int = 1  # ONNX Runtime threads per actor
    batch_size: int = 32

    def __post_init__(self) -> None:
        if self.threads < 1 or self.batch_size < 1 or (self.workers is not None and self.workers < 1):
            raise ConfigError("--engine ray: workers, threads and batch size must be >= 1")

    def _init(self) -> tuple[Any, bool]:
        """Ray, started or joined unless this process already runs one (then: False, leave it be)."""
        try:
            import ray
            import ray.data
        except ImportError as exc:
            raise ConfigError("--engine ray needs Ray: pip install 'pixsearch[ray]'") from exc
        started_here = not ray.is_initialized()
        if started_here:
            kw: dict[str, Any] = {
                "include_dashboard": False,
                "log_to_driver": False,
                "logging_level": logging.ERROR,  # the CLI owns the terminal: progress, not Ray's logs
            }
            if self.address:
                _check_reachable(self.address)
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
        ctx = ray.data.DataContext.get_current()
        ctx.enable_progress_bars = False  # the CLI draws its own progress from the batches it commits
        logging.getLogger("ray.data").setLevel(logging.ERROR)
        return ray, started_here

    def encode(self, job: EncodeJob, paths: Sequence[str]) -> Generator[EncodedBatch, None, None]:
        """Stream encoded batches (in completion order, not input order) for ``paths``.

        Whatever fails, a batch is committed only once and keyed by content hash, so a rerun never
        indexes a photo twice; an interrupted run resumes like a local one."""
        if not paths:
            return
        ray, started_here = self._init()
        try:
            yield from self._encode(ray, job, paths)
        finally:
            if started_here and ray.is_initialized():  # a Ray this run started (or joined), it stops
                ray.shutdown()

    def _encode(self, ray: Any, job: EncodeJob, paths: Sequence[str]) -> Iterator[EncodedBatch]:
        cpus = int(ray.cluster_resources().get("CPU", 1))
        actors = self.workers or max(1, cpus // self.threads)
        # one block per batch: Ray Data hands blocks to actors, so fewer blocks than actors leaves some idle
        blocks = -(-len(paths) // self.batch_size)
        ds = ray.data.from_items([{"path": p} for p in paths], override_num_blocks=blocks)
        with warnings.catch_warnings():
            # Ray 2.60 deprecates ray_remote_args with no other way yet to cap an actor's restarts
            warnings.filterwarnings("ignore", message=".*ray_remote_args.*deprecated")
            ds = ds.map_batches(
                _Worker,
                fn_constructor_args=(job, self.threads),
                batch_size=self.batch_size,
                batch_format="numpy",
                concurrency=actors,
                num_cpus=self.threads,
                max_restarts=RETRIES,  # a batch that kills its worker every time must not loop forever
                max_task_retries=RETRIES,
            )
        batches = iter(ds.iter_batches(batch_size=None, batch_format="numpy"))
        while True:
            try:
                cols = next(batches)
            except StopIteration:
                return
            except ray.exceptions.RayError as exc:
                why = " ".join(str(exc).split())[:300]
                raise EngineError(
                    f"the Ray cluster gave up on a batch after {RETRIES} retries: {why}; "
                    "what was indexed is kept, run the same command to resume"
                ) from exc
            yield _to_batch(cols)


def _to_batch(cols: dict[str, np.ndarray]) -> EncodedBatch:
    paths = [str(p) for p in cols["path"]]
    decoded: dict[str, Future[Decoded]] = {}
    digests: dict[str, str] = {}
    feats: dict[str, dict[str, np.ndarray]] = {}
    for i, p in enumerate(paths):
        fut: Future[Decoded] = Future()
        digests[p] = str(cols["digest"][i])
        if cols["error"][i]:
            fut.set_result(MediaError(p, str(cols["error"][i])))
        else:
            thumb = bytes(cols["thumb"][i]) or None
            fut.set_result(((int(cols["width"][i]), int(cols["height"][i])), None, thumb))
            feats[p] = {
                k: np.asarray(v[i], dtype=np.float32) if k in _WIRE else v[i]
                for k, v in cols.items()
                if k not in _META
            }
        decoded[p] = fut
    return EncodedBatch(paths, decoded, digests, feats)
