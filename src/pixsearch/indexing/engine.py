"""Where the indexer's photos are read and encoded: the :class:`Engine` seam and the local engine.

The indexer is the catalog's one writer; an engine hands it batches of photos read (content hash,
size, thumbnail, or why the file failed) and, where it can, already encoded. :class:`LocalEngine`
reads in this process, one batch ahead of the writer on two threads (Pillow releases the GIL, so batch
i+1 decodes while batch i is encoded), and leaves the encoding to the writer, which then encodes only
the photos the catalog does not hold yet. ``ray_engine.RayEngine`` reads and encodes on a Ray cluster.
"""

from __future__ import annotations

from collections.abc import Generator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

import numpy as np

from pixsearch.errors import MediaError
from pixsearch.media import read_photo, thumbnail_bytes
from pixsearch.models.backbones import decode_size

if TYPE_CHECKING:
    from pixsearch.config import Settings
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
    encode the batch's new photos itself (from the preprocessed pixels in ``decoded``)."""

    paths: list[str]
    decoded: dict[str, Future[Decoded]]
    digests: dict[str, str]
    features: dict[str, dict[str, np.ndarray]] | None  # path -> feature (or enricher column) -> row


class Engine(Protocol):
    """Reads (and may encode) the photos of an index run, batch by batch, for the one writer."""

    def encode(self, job: EncodeJob, paths: Sequence[str]) -> Generator[EncodedBatch, None, None]:
        """Batches covering ``paths``, each path once; closing the iterator stops the work."""
        ...


def decode(encoder: JointEncoder, path: Path) -> tuple[str, Decoded]:
    """(content hash, read result) of one photo, preprocessed for ``encoder``."""
    digest, img = read_photo(path, decode_size(encoder.resolution))
    if isinstance(img, MediaError):
        return digest, img
    return digest, (img.size, encoder.preprocess(img), thumbnail_bytes(img))


@dataclass(frozen=True)
class LocalEngine:
    """Reads photos in this process, ``batch_size`` at a time, one batch ahead of the writer."""

    encoder: JointEncoder
    batch_size: int = 32

    def encode(self, job: EncodeJob, paths: Sequence[str]) -> Generator[EncodedBatch, None, None]:
        batches = [list(paths[s : s + self.batch_size]) for s in range(0, len(paths), self.batch_size)]
        if not batches:
            return
        pool = ThreadPoolExecutor(max_workers=2)
        try:
            ahead = self._submit(pool, batches[0])
            for b in range(len(batches)):
                current = ahead
                if b + 1 < len(batches):
                    ahead = self._submit(pool, batches[b + 1])
                yield current
        finally:
            pool.shutdown(wait=True, cancel_futures=True)

    def _submit(self, pool: ThreadPoolExecutor, paths: list[str]) -> EncodedBatch:
        digests: dict[str, str] = {}

        def read(p: str) -> Decoded:
            digests[p], res = decode(self.encoder, Path(p))
            return res

        return EncodedBatch(paths, {p: pool.submit(read, p) for p in paths}, digests, None)
