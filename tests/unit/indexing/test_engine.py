"""The local engine's pipeline on real gallery photos: photos are read while others are encoded, the
enrichers' prepare runs beside the encoder, photos the library has are not encoded again, a corrupt file
is reported and skipped, and the flags it prepares are the ones the writer would have computed.

Overlap is checked with events, never with timings: a stage waits (with a deadline) for a sign that the
stage it should overlap with is running; a pipeline that ran them one after the other fails the wait.
"""

from __future__ import annotations

import gc
import shutil
import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from pixsearch import Library
from pixsearch.errors import MediaError
from pixsearch.indexing.engine import EncodedBatch, EncodeJob, LocalEngine
from pixsearch.media import content_hash
from pixsearch.models.encoder import create_encoder
from tests.conftest import GALLERY

PHOTOS = sorted((GALLERY / "images").glob("*.jpg"))
WAIT = 30.0  # seconds a stage waits for the sign it expects: a failure, never a hang


@pytest.fixture(scope="module")
def encoder() -> Any:
    return create_encoder()


def _paths(n: int, start: int = 0) -> list[str]:
    return [str(p) for p in PHOTOS[start : start + n]]


@dataclass
class SpyEncoder:
    """The shipped encoder, with a hook before each batch it encodes (run on the engine's encode thread)."""

    inner: Any
    before: Any = None  # callable(batch number) or None
    batches: list[int] = field(default_factory=list)  # rows of each call

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)

    def encode_image_features(self, arrays: np.ndarray) -> dict[str, np.ndarray]:
        if self.before is not None:
            self.before(len(self.batches))
        self.batches.append(len(arrays))
        return dict(self.inner.encode_image_features(arrays))


class SpyEnricher:
    """An enricher whose prepare adds a column and may wait for a sign (run on the prepare thread)."""

    name = "spy"
    fingerprint = "spy-v1"

    def __init__(self, before: Any = None) -> None:
        self.before = before
        self.prepared: list[int] = []

    def stale_ids(self, catalog: Any) -> list[int]:
        return []

    def prepare(self, features: Mapping[str, np.ndarray], thumbnails: Sequence[bytes | None]) -> dict:
        if self.before is not None:
            self.before(len(self.prepared))
        self.prepared.append(len(thumbnails))
        assert all(t for t in thumbnails)  # the thumbnails of the photos encoded, in order
        return {"spy.rows": np.arange(len(thumbnails))}

    def enrich(self, catalog: Any, image_ids: Sequence[int], features: Mapping[str, np.ndarray]) -> list[int]:
        return []


def _wait(ev: threading.Event, what: str) -> None:
    assert ev.wait(WAIT), f"{what}: not within {WAIT:g} s (the stages ran one after the other)"


def test_photos_are_read_while_the_encoder_works(encoder: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    """Batch 0's encoding waits until a photo of batch 2 has been read: only a pipeline that reads ahead
    while it encodes gets there. Before, the local engine did not encode at all (the writer did)."""
    import pixsearch.indexing.engine as eng

    read_later = threading.Event()
    paths = _paths(12)
    late = set(paths[8:])
    real = eng.decode

    def decode(enc: Any, path: Path) -> Any:
        out = real(enc, path)
        if str(path) in late:
            read_later.set()
        return out

    monkeypatch.setattr(eng, "decode", decode)

    def before(n: int) -> None:
        if n == 0:
            _wait(read_later, "batch 2 read while batch 0 is encoded")

    spy = SpyEncoder(encoder, before)
    engine = LocalEngine(spy, batch_size=4)  # type: ignore[arg-type]
    got = list(engine.encode(EncodeJob(encoder.name), paths))
    assert [b.paths for b in got] == [paths[:4], paths[4:8], paths[8:]]
    assert spy.batches == [4, 4, 4]
    for b in got:
        assert b.features is not None and set(b.features) == set(b.paths)
        assert {"decode", "encode"} <= set(b.timings)


def test_prepare_runs_while_the_next_batch_is_encoded(encoder: Any) -> None:
    """The enrichers' prepare of batch 0 waits until batch 1 is being encoded."""
    encoding_1 = threading.Event()
    spy = SpyEncoder(encoder, lambda n: encoding_1.set() if n == 1 else None)

    def before(n: int) -> None:
        if n == 0:
            _wait(encoding_1, "batch 1 encoded while batch 0 is prepared")

    enr = SpyEnricher(before)
    engine = LocalEngine(spy, batch_size=3, enrichers=(enr,))  # type: ignore[arg-type]
    got = list(engine.encode(EncodeJob(encoder.name), _paths(6)))
    assert enr.prepared == [3, 3]
    rows = got[0].features
    assert rows is not None and [int(rows[p]["spy.rows"]) for p in got[0].paths] == [0, 1, 2]
    assert rows[got[0].paths[0]]["embedding"].shape == (encoder.dim,)
    assert "spy" in got[0].timings


def test_the_pipeline_runs_blas_on_one_thread(encoder: Any) -> None:
    """OpenBLAS's spinning workers took a core from the readers and the encoder: one thread while the
    pipeline runs (the enrichers' matrix products are small), the caller's setting again afterwards.

    Checked on the OpenBLAS that NumPy and SciPy use (their wheels' ``scipy_openblas``): the enrichers'
    products run there. Another package's OpenMP-threaded OpenBLAS (faiss-cpu's, which Milvus Lite loads)
    follows OpenMP's thread count instead, and our pipeline never calls it."""
    threadpoolctl = pytest.importorskip("threadpoolctl")

    def blas_threads() -> set[int]:
        return {
            int(i["num_threads"])
            for i in threadpoolctl.threadpool_info()
            if i["user_api"] == "blas" and "scipy_openblas" in i["filepath"]
        }

    gc.collect()  # an earlier test's unfinished pipeline, collected mid-run, would restore its own limits
    before = blas_threads()
    assert before, "NumPy's OpenBLAS is not loaded"
    seen: list[set[int]] = []
    enr = SpyEnricher(lambda n: seen.append(blas_threads()))
    list(LocalEngine(encoder, batch_size=2, enrichers=(enr,)).encode(EncodeJob(encoder.name), _paths(4)))
    assert seen == [{1}, {1}]
    assert blas_threads() == before


def test_bytes_the_library_has_are_not_encoded_and_a_corrupt_photo_is_reported(
    encoder: Any, tmp_path: Path
) -> None:
    paths = _paths(5)
    bad = tmp_path / "broken.jpg"
    bad.write_bytes(PHOTOS[0].read_bytes()[:300])  # a JPEG cut inside its header
    spy = SpyEncoder(encoder)
    digests_seen: list[str] = []

    def known(digest: str) -> int | None:
        assert threading.current_thread() is threading.main_thread()  # the writer's thread: SQLite is safe
        digests_seen.append(digest)
        return 7 if len(digests_seen) == 2 else None  # the second photo: "already in the library" as id 7

    engine = LocalEngine(spy, batch_size=8, known=known)  # type: ignore[arg-type]
    (batch,) = list(engine.encode(EncodeJob(encoder.name), [*paths[:3], str(bad), *paths[3:]]))
    res = batch.decoded[str(bad)].result()
    assert isinstance(res, MediaError) and "corrupt" in res.reason
    assert batch.features is not None
    assert set(batch.features) == {paths[0], paths[2], paths[3], paths[4]}
    assert spy.batches == [4]
    assert len(digests_seen) == 5  # every photo that decoded was asked about, the broken one not


def test_closing_the_stream_stops_its_threads(encoder: Any) -> None:
    engine = LocalEngine(encoder, batch_size=2)
    stream = engine.encode(EncodeJob(encoder.name), _paths(12))
    first = next(stream)
    assert isinstance(first, EncodedBatch) and len(first.paths) == 2
    stream.close()
    stages = ("pixsearch-read", "pixsearch-encode", "pixsearch-prepare")
    assert not [t.name for t in threading.enumerate() if t.name.startswith(stages)]


def test_flags_and_vectors_made_in_the_engine_equal_the_writers(tmp_path: Path) -> None:
    """The photo policy's evidence prepared in the engine is the evidence the writer computes from the
    stored thumbnails (same verdicts, faces, classifier scores), and the vectors are the same, whether the
    engine encoded every photo, none (the writer encodes, as before), or some: ``known`` said yes to
    photos the library lacks, so the writer encodes that batch itself. A corrupt file among them is
    reported and skipped each time."""
    photos = tmp_path / "photos"
    photos.mkdir()
    for p in PHOTOS[:10]:
        shutil.copy(p, photos / p.name)
    (photos / "zz-broken.jpg").write_bytes(PHOTOS[0].read_bytes()[:5000])
    flags: dict[str, list[tuple[str, int, str]]] = {}
    vectors: dict[str, np.ndarray] = {}
    odd = {content_hash(p) for p in sorted(photos.glob("*.jpg"))[::2]}
    lies = {"engine": None, "writer": lambda d: 1, "some": lambda d: 1 if d in odd else None}
    for how, known in lies.items():
        with Library.open(tmp_path / f"lib-{how}") as lib:
            engine = None if known is None else LocalEngine(lib.encoder, lib.settings.batch_size, known=known)
            rep = lib.add([photos], engine=engine)
            assert rep.added == 10 and [Path(p).name for p, _ in rep.failed] == ["zz-broken.jpg"]
            assert rep.enriched.get("policy") == 10 and rep.enriched.get("labels") == 10
            db = lib.catalog.connection_for_tests()
            sql = "SELECT p.path, f.flagged, f.evidence FROM flags f JOIN paths p ON p.image_id = f.image_id"
            flags[how] = sorted((Path(p).name, fl, ev) for p, fl, ev in db.execute(sql).fetchall())
            ids, vecs = lib.catalog.image_vectors(lib.encoder.dim)
            where = lib.catalog.first_paths([int(i) for i in ids])
            order = np.argsort([where[int(i)] for i in ids])
            vectors[how] = np.asarray(vecs)[order]
    assert len(flags["engine"]) == 10
    assert flags["engine"] == flags["writer"] == flags["some"]
    for how in ("writer", "some"):  # stored as float16: one rounding step apart at most
        assert np.abs(vectors["engine"] - vectors[how]).max() < 1e-3, how
