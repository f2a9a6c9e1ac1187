"""Where the indexer's photos are read and encoded: the :class:`Engine` seam and the local engine.

The indexer is the catalog's one writer; an engine hands it batches of photos read (content hash,
size, thumbnail, or why the file failed) and, where it can, already encoded. :class:`LocalEngine`
runs a pipeline in this process so that both cores of a small machine stay busy while the writer
commits: photos are read two batches ahead on two threads (Pillow releases the GIL), the next batch is
encoded on a third while the enrichers' costly, catalog-free part (``Enricher.prepare``: the photo
policy's face check) runs for the current one on a fourth. ``ray_engine.RayEngine`` reads and encodes
on a Ray cluster.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Generator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np

from pixsearch.errors import MediaError
from pixsearch.media import read_photo, thumbnail_bytes
from pixsearch.models.backbones import decode_size

if TYPE_CHECKING:
    from pixsearch.config import Settings
    from pixsearch.indexing.enrichers.base import Enricher
    from pixsearch.models.encoder import JointEncoder

__all__ = ["Decoded", "EncodeJob", "EncodedBatch", "Engine", "LocalEngine", "decode"]

Decoded = tuple[tuple[int, int], np.ndarray | None, bytes | None] | MediaError
"""One photo read for the writer: ((width, height), preprocessed pixels or None when an engine encoded
it already, thumbnail JPEG), or the MediaError that says why the file cannot be used."""


@dataclass(frozen=True)
class EncodeJob:
    """What workers need to do the writer's work: its model and the enrichers it runs.

    ``enrichers`` are (name, fingerprint) pairs; a worker prepares an enricher only if it builds the same
    one from ``settings`` (another pixsearch or model files on a node: the writer computes it instead)."""

    model: str
    settings: Settings | None = None
    enrichers: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True)
class EncodedBatch:
    """What the indexer's writer needs for a batch: per path, a read result, its content hash and,
    when the engine encoded the photos, their features.

    ``digests[path]`` is set once ``decoded[path]`` is done. ``features`` is None when the writer is to
    encode the batch's new photos itself (from the preprocessed pixels in ``decoded``); a path missing
    from it is encoded by the writer too. ``timings``: seconds the engine spent on this batch per stage
    (``decode``, ``encode``, an enricher's name), summed over its threads, for ``IndexReport.timings``."""

    paths: list[str]
    decoded: dict[str, Future[Decoded]]
    digests: dict[str, str]
    features: dict[str, dict[str, np.ndarray]] | None  # path -> feature (or enricher column) -> row
    timings: dict[str, float] = field(default_factory=dict)


class Engine(Protocol):
    """Reads (and may encode) the photos of an index run, batch by batch, for the one writer."""

    def encode(self, job: EncodeJob, paths: Sequence[str]) -> Generator[EncodedBatch, None, None]:
        """Batches covering ``paths``, each path once; closing the iterator stops the work."""
        ...


def decode(encoder: JointEncoder, path: Path) -> tuple[str, Decoded]:
    """(content hash, read result) of one photo, preprocessed for ``encoder``; the thumbnail is made
    from the same decoded pixels (the file is decoded once)."""
    digest, img = read_photo(path, decode_size(encoder.resolution))
    if isinstance(img, MediaError):
        return digest, img
    return digest, (img.size, encoder.preprocess(img), thumbnail_bytes(img))


@dataclass(frozen=True)
class LocalEngine:
    """Reads, encodes and prepares photos in this process, ``batch_size`` at a time, ahead of the writer.

    ``enrichers``: those whose ``prepare`` runs here, next to the encoder (the writer's ``enrich`` then
    reads their columns). ``known(digest)``: not None when the library holds those bytes already (the
    writer's ``Catalog.image_id_for_hash``); the writer skips such photos, so they are not encoded here.
    It is called on the writer's thread only (between two batches), so it may use the writer's SQLite
    connection. Without it every photo read is encoded.
    """

    encoder: JointEncoder
    batch_size: int = 32
    enrichers: Sequence[Enricher] = ()
    known: Callable[[str], object | None] | None = None

    def encode(self, job: EncodeJob, paths: Sequence[str]) -> Generator[EncodedBatch, None, None]:
        batches = [list(paths[s : s + self.batch_size]) for s in range(0, len(paths), self.batch_size)]
        if not batches:
            return
        run = _Pipeline(self, batches)
        try:
            with _one_blas_thread():
                yield from run.stream()
        finally:
            run.close()


def _one_blas_thread() -> AbstractContextManager[Any]:
    """OpenBLAS on one thread while the pipeline runs. Why: the enrichers' matrix products are small
    (a classifier on 32 rows), and OpenBLAS's idle workers spin after each one, taking the core that
    the readers and the encoder need (measured on 2 cores: 1.5-1.9 CPU ms a photo, 5% of the run)."""
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:  # pragma: no cover - installed with the policy's sentence encoder
        return nullcontext()
    return threadpool_limits(limits=1, user_api="blas")


READ_AHEAD = 2  # batches read beyond the one the writer holds: the encoder never waits for pixels
ENCODE_AHEAD = 1  # batches encoded beyond the one the writer holds: encode i+1 while i is prepared


@dataclass(frozen=True)
class _Read:
    """A batch handed to the readers: per path, the read's future, the content hash and seconds spent."""

    paths: list[str]
    decoded: dict[str, Future[Decoded]]
    digests: dict[str, str] = field(default_factory=dict)
    seconds: dict[str, float] = field(default_factory=dict)


class _Pipeline:
    """The threads of one :meth:`LocalEngine.encode` run: read (2) -> encode (1) -> prepare (1) -> writer.

    Why a pipeline and not one batch ahead: on 2 cores the face check (one thread, ~4 ms a photo) and the
    commit left a core idle once the next batch was read; now the encoder and the readers fill it.
    Each stage's pool runs batches in order and hands the next stage a future, so batch i is done first.
    """

    def __init__(self, engine: LocalEngine, batches: list[list[str]]) -> None:
        self.engine = engine
        self.batches = batches
        self.reading = ThreadPoolExecutor(2, thread_name_prefix="pixsearch-read")
        self.encoding = ThreadPoolExecutor(1, thread_name_prefix="pixsearch-encode")
        self.preparing = ThreadPoolExecutor(1, thread_name_prefix="pixsearch-prepare")
        self.read: list[_Read] = []  # batches submitted to the readers, in order
        self.staged: dict[int, Future[EncodedBatch]] = {}  # batch index -> encoded and prepared

    def stream(self) -> Generator[EncodedBatch, None, None]:
        for b in range(len(self.batches)):
            self._read_upto(b + READ_AHEAD)
            for i in range(b, min(b + ENCODE_AHEAD + 1, len(self.batches))):
                if i not in self.staged:
                    self.staged[i] = self._stage(self.read[i])
            yield self.staged.pop(b).result()

    def close(self) -> None:
        pools = (self.reading, self.encoding, self.preparing)
        for pool in pools:  # drop queued work everywhere first, then wait for what is running
            pool.shutdown(wait=False, cancel_futures=True)
        for pool in pools:
            pool.shutdown(wait=True)

    def _read_upto(self, last: int) -> None:
        while len(self.read) <= min(last, len(self.batches) - 1):
            job = _Read(self.batches[len(self.read)], {})
            for p in job.paths:
                job.decoded[p] = self.reading.submit(self._read_one, job, p)
            self.read.append(job)

    def _read_one(self, job: _Read, path: str) -> Decoded:
        t = time.perf_counter()
        job.digests[path], res = decode(self.engine.encoder, Path(path))
        job.seconds[path] = time.perf_counter() - t
        return res

    def _stage(self, job: _Read) -> Future[EncodedBatch]:
        """Send a batch to the encoder once its photos are read, leaving out the bytes the library has
        (``known`` runs here, on the writer's thread); its enrichers' ``prepare`` follows on another."""
        known = self.engine.known
        fresh: list[str] = []
        for p in job.paths:
            res = job.decoded[p].result()
            if not isinstance(res, MediaError) and (known is None or known(job.digests[p]) is None):
                fresh.append(p)
        encoded = self.encoding.submit(self._encode, job, fresh)
        return self.preparing.submit(self._prepare, job, fresh, encoded)

    def _encode(self, job: _Read, fresh: list[str]) -> tuple[dict[str, np.ndarray], float] | None:
        if not fresh:
            return None
        t = time.perf_counter()
        pixels = []
        for p in fresh:
            res = job.decoded[p].result()
            assert not isinstance(res, MediaError) and res[1] is not None  # fresh: read and decoded
            pixels.append(res[1])
        feats = self.engine.encoder.encode_image_features(np.stack(pixels))
        return feats, time.perf_counter() - t

    def _prepare(
        self,
        job: _Read,
        fresh: list[str],
        encoded: Future[tuple[dict[str, np.ndarray], float] | None],
    ) -> EncodedBatch:
        timings = {"decode": sum(job.seconds.values())}
        done = encoded.result()
        if done is None:  # nothing new: the writer has what it needs
            return EncodedBatch(job.paths, job.decoded, job.digests, None, timings)
        feats, timings["encode"] = done
        thumbs: list[bytes | None] = []
        for p in fresh:
            res = job.decoded[p].result()
            thumbs.append(None if isinstance(res, MediaError) else res[2])
        cols: dict[str, np.ndarray] = dict(feats)
        for e in self.engine.enrichers:
            t = time.perf_counter()
            cols.update(e.prepare(feats, thumbs))
            timings[e.name] = timings.get(e.name, 0.0) + time.perf_counter() - t
        rows = {p: {k: v[i] for k, v in cols.items()} for i, p in enumerate(fresh)}
        return EncodedBatch(job.paths, job.decoded, job.digests, rows, timings)
