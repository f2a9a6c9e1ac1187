"""Re-running enrichers on photos already indexed, when an enricher's fingerprint changed (a new
model, new settings): the photo's vector stays, only what the enrichers wrote is redone."""

from __future__ import annotations

import time
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Protocol

import numpy as np

from pixsearch.errors import MediaError
from pixsearch.indexing.engine import decode
from pixsearch.indexing.enrichers.base import Enricher
from pixsearch.indexing.report import IndexReport
from pixsearch.models.encoder import JointEncoder
from pixsearch.storage.catalog import Catalog
from pixsearch.storage.vectorset import VectorSet


class Indexer(Protocol):
    """What a redo needs of ``indexing.indexer.Indexer``: its parts, and its two steps that write."""

    catalog: Catalog
    vectors: VectorSet
    encoder: JointEncoder
    enrichers: list[Enricher]
    batch_size: int

    def enrich(
        self, todo: Mapping[str, list[int]], ids: list[int], feats: Mapping[str, np.ndarray], r: IndexReport
    ) -> list[int]: ...

    def index_new_captions(self) -> None: ...


__all__ = ["redo_stale"]


def redo_stale(ix: Indexer, report: IndexReport, pool: ThreadPoolExecutor) -> None:
    """Photos an enricher has not done at its current fingerprint: decode again, recompute (the
    photo's vector is kept; only the enrichers' output changes). File-only enrichers go first."""
    _redo_from_files(ix, report)
    pixels = [e for e in ix.enrichers if getattr(e, "reads_pixels", True)]
    stale = {e.name: set(e.stale_ids(ix.catalog)) for e in pixels}
    ids = sorted(set().union(*stale.values()))
    for s in range(0, len(ids), ix.batch_size):
        chunk = ids[s : s + ix.batch_size]
        path_of = ix.catalog.first_paths(chunk)
        t0 = time.perf_counter()
        futs = {i: pool.submit(decode, ix.encoder, Path(path_of[i])) for i in chunk if i in path_of}
        ok: list[int] = []
        arrays: list[np.ndarray] = []
        for i, fut in futs.items():
            _, res = fut.result()
            if isinstance(res, MediaError):
                report.warnings.append(f"cannot redo {path_of[i]} for new models: {res.reason}")
            elif res[1] is not None:  # always: decoded here, never by an engine
                ok.append(i)
                arrays.append(res[1])
        if not ok:
            continue
        t1 = time.perf_counter()
        feats = ix.encoder.encode_image_features(np.stack(arrays))
        t2 = time.perf_counter()
        todo = {n: [i for i in ok if i in st] for n, st in stale.items()}
        with ix.catalog.transaction():
            gone = ix.enrich(todo, ok, feats, report)
            gen = ix.catalog.bump_generation()
        ix.vectors.forget([], gone)
        ix.index_new_captions()
        ix.vectors.mark(gen)
        report.timings["decode"] += t1 - t0
        report.timings["encode"] += t2 - t1


def _redo_from_files(ix: Indexer, report: IndexReport) -> None:
    """Stale enrichers with ``reads_pixels = False`` (metadata): no decoding, no encoding."""
    files = [e for e in ix.enrichers if not getattr(e, "reads_pixels", True)]
    stale = {e.name: set(e.stale_ids(ix.catalog)) for e in files}
    ids = sorted(set().union(*stale.values()))
    for s in range(0, len(ids), 256):  # no pixels held: larger transactions than a batch
        chunk = ids[s : s + 256]
        with ix.catalog.transaction():
            ix.enrich({n: [i for i in chunk if i in st] for n, st in stale.items()}, chunk, {}, report)
            gen = ix.catalog.bump_generation()
        ix.index_new_captions()
        ix.vectors.mark(gen)
