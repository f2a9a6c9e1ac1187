"""`pixsearch index --engine ray` on a local Ray cluster started by the test: the same library as a local
run, resumable, bad files reported."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

ray = pytest.importorskip("ray")
pytestmark = pytest.mark.slow  # a local Ray cluster per module: ~95 s

from pixsearch import Library  # noqa: E402
from pixsearch.errors import EngineError  # noqa: E402
from pixsearch.indexing.enrichers.registry import enrichers  # noqa: E402
from pixsearch.indexing.ray_engine import RETRIES, RayEngine  # noqa: E402
from pixsearch.media import content_hash  # noqa: E402
from pixsearch.models.captioner import Captioner  # noqa: E402
from pixsearch.policy.photo import PhotoChecker  # noqa: E402

_BUSY = "MapBatches(_Worker)).submit"  # Ray Data's actor running a batch
GALLERY = Path(__file__).resolve().parents[2] / "examples" / "gallery" / "images"


@pytest.fixture(scope="module", autouse=True)
def local_ray():
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    yield
    ray.shutdown()


def _photos(dst: Path, n: int) -> Path:
    dst.mkdir()
    for p in sorted(GALLERY.glob("*.jpg"))[:n]:
        shutil.copy(p, dst / p.name)
    return dst


def _vectors(lib: Library) -> dict[str, np.ndarray]:
    rows = lib.catalog.connection_for_tests().execute(
        "SELECT p.path, i.id FROM paths p JOIN images i ON i.id = p.image_id"
    )
    by_path = {Path(p).name: iid for p, iid in rows}
    keys, vecs = lib.catalog.image_vectors(lib.encoder.dim)
    at = {int(k): v for k, v in zip(keys, vecs, strict=True)}
    return {name: at[iid] for name, iid in by_path.items()}


def _catalog_is_the_folder(lib: Library, photos: Path, bad: tuple[str, ...] = ()) -> None:
    """The catalog holds exactly the folder's readable photos: each file's path leads to the image row whose
    hash is that file's content hash (so no photo was lost, written twice under two rows, or attached to
    another photo's row), no other path or image row exists, and every image has its vector in the
    catalog and in the vector index. (``COUNT(*) == COUNT(DISTINCT hash)`` said none of this: ``hash``
    is UNIQUE, so it always held.)"""
    want = {str(p.absolute()): content_hash(p) for p in sorted(photos.iterdir()) if p.name not in set(bad)}
    db = lib.catalog.connection_for_tests()
    got = dict(db.execute("SELECT p.path, i.hash FROM paths p JOIN images i ON i.id = p.image_id"))
    assert got == want
    (n_images,) = db.execute("SELECT COUNT(*) FROM images").fetchone()
    assert n_images == len(set(want.values()))
    keys, vecs = lib.catalog.image_vectors(lib.encoder.dim)
    assert len(keys) == n_images and np.allclose(np.linalg.norm(vecs, axis=1), 1.0, atol=1e-2)
    consistent = lib.vectors.consistent()
    assert consistent["images"] and all(consistent.values()), consistent


def test_ray_index_matches_local_and_resumes(tmp_path: Path) -> None:
    photos = _photos(tmp_path / "photos", 16)
    broken = [f"0-broken-{i}.jpg" for i in range(4)]  # sorted first: the first batch of 4 is all bad
    for name in broken:
        (photos / name).write_bytes(b"not a jpeg")
    eng = RayEngine(workers=2, batch_size=4)
    with Library.open(tmp_path / "ray") as lib:
        rep = lib.add([photos], generate_captions=False, engine=eng)
        assert rep.added == 16 and sorted(Path(p).name for p, _ in rep.failed) == broken
        again = lib.add([photos], generate_captions=False, engine=eng)
        assert (again.added, again.unchanged) == (0, 16)
        _catalog_is_the_folder(lib, photos, bad=tuple(broken))
        ray_vecs = _vectors(lib)
        hits = lib.search("a dog", k=3)
        assert len(hits) == 3
    with Library.open(tmp_path / "local") as lib:
        lib.add([photos], generate_captions=False)
        local_vecs = _vectors(lib)
    assert ray_vecs.keys() == local_vecs.keys()
    for name, v in local_vecs.items():
        assert float(v @ ray_vecs[name]) >= 0.999, name  # float16 storage on both sides


def _kill_first_task(name: str, killed: list[int], stop: threading.Event, every: bool = False) -> None:
    """SIGKILL the first Ray worker running ``name`` (a busy actor is titled ``ray::<class>.<method>``);
    ``every``: each one, until ``stop``."""
    while not stop.is_set():
        for pid in filter(str.isdigit, os.listdir("/proc")):
            try:
                cmd = Path(f"/proc/{pid}/cmdline").read_bytes()
            except OSError:
                continue
            if cmd.split(b"\0")[0].strip().endswith(name.encode()):
                os.kill(int(pid), signal.SIGKILL)
                killed.append(int(pid))
                if not every:
                    return
        time.sleep(0.02)


def test_worker_killed_mid_batch_loses_and_repeats_nothing(tmp_path: Path) -> None:
    photos = _photos(tmp_path / "photos", 40)
    killed: list[int] = []
    stop = threading.Event()
    hunter = threading.Thread(target=_kill_first_task, args=(_BUSY, killed, stop))
    hunter.start()
    try:
        with Library.open(tmp_path / "lib") as lib:
            rep = lib.add([photos], generate_captions=False, engine=RayEngine(workers=2, batch_size=4))
            _catalog_is_the_folder(lib, photos)  # nothing lost or written twice by the retried batch
    finally:
        stop.set()
        hunter.join()
    assert len(killed) == 1, "no worker was seen running a batch"  # killed while encoding a batch
    with pytest.raises(ProcessLookupError):
        os.kill(killed[0], 0)  # it really died
    assert (rep.added, rep.failed) == (40, [])


def test_batch_that_keeps_killing_workers_stops_with_an_error_and_resumes(tmp_path: Path) -> None:
    photos = _photos(tmp_path / "photos", 16)
    killed: list[int] = []
    stop = threading.Event()
    hunter = threading.Thread(target=_kill_first_task, args=(_BUSY, killed, stop, True))
    hunter.start()
    try:
        with Library.open(tmp_path / "lib") as lib, pytest.raises(EngineError, match="resume"):
            lib.add([photos], generate_captions=False, engine=RayEngine(workers=1, batch_size=4))
    finally:
        stop.set()
        hunter.join()
    assert len(killed) > RETRIES  # it retried, then gave up: no endless loop
    with Library.open(tmp_path / "lib") as lib:
        rep = lib.add([photos], generate_captions=False, engine=RayEngine(workers=2, batch_size=4))
        assert rep.added == 16
        _catalog_is_the_folder(lib, photos)


def _outputs(lib: Library) -> tuple[dict[str, list[str]], dict[str, tuple[int, list[str]]]]:
    """Per file name: generated captions, and (flagged, reasons) of the photo policy."""
    caps: dict[str, list[str]] = {}
    flags: dict[str, tuple[int, list[str]]] = {}
    for path, text in lib.catalog.connection_for_tests().execute(
        "SELECT p.path, c.text FROM captions c JOIN paths p ON p.image_id = c.image_id "
        "WHERE c.source = 'generated' ORDER BY c.id"
    ):
        caps.setdefault(Path(path).name, []).append(text)
    for path, flagged, ev in lib.catalog.connection_for_tests().execute(
        "SELECT p.path, f.flagged, f.evidence FROM flags f JOIN paths p ON p.image_id = f.image_id"
    ):
        flags[Path(path).name] = (flagged, sorted(json.loads(ev)["reasons"]))
    return caps, flags


def test_workers_caption_and_check_policy_like_the_writer(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Captions and the photo policy's pixel checks run in the workers, with the same output as local."""
    photos = _photos(tmp_path / "photos", 12)
    with Library.open(tmp_path / "local") as lib:
        lib.add([photos], generate_captions=True)
        local_out = _outputs(lib)

    def not_here(*_a: object, **_k: object) -> None:
        raise AssertionError("the writer did a worker's job")

    # Patched in this (the writer's) process only: Ray's worker processes import pixsearch afresh.
    monkeypatch.setattr(Captioner, "caption_features", not_here)
    monkeypatch.setattr(PhotoChecker, "pixel_evidence", not_here)
    with Library.open(tmp_path / "ray") as lib:
        rep = lib.add([photos], generate_captions=True, engine=RayEngine(workers=2, batch_size=4))
        assert rep.captions_generated == 12 and rep.enriched == {
            "metadata": 12,
            "captions": 12,
            "labels": 12,
            "policy": 12,
        }
        ray_out = _outputs(lib)
        s = replace(lib.settings, generate_captions=True)
        stale = {e.name: e.stale_ids(lib.catalog) for e in enrichers(s, lib.encoder)}
    assert stale == {"metadata": [], "captions": [], "labels": [], "policy": []}  # workers ran today's models
    assert ray_out == local_out and len(ray_out[0]) == 12


def test_cli_engine_ray_and_unreachable_cluster(tmp_path: Path) -> None:
    photos = _photos(tmp_path / "photos", 6)
    lib = str(tmp_path / "lib")
    run = [sys.executable, "-m", "pixsearch.cli", "index", str(photos), "-L", lib, "--engine", "ray"]
    ok = subprocess.run([*run, "--workers", "1", "--json"], capture_output=True, text=True, timeout=300)
    assert ok.returncode == 0, ok.stderr
    assert json.loads(ok.stdout)["added"] == 6
    run[run.index(lib)] = str(tmp_path / "other")  # a library with photos to do: the engine is needed
    bad = subprocess.run([*run, "--address", "127.0.0.1:1"], capture_output=True, text=True, timeout=300)
    assert bad.returncode != 0
    err = [line for line in bad.stderr.splitlines() if line.strip()]
    assert err and err[-1].startswith("error: cannot reach Ray at 127.0.0.1:1"), bad.stderr[-2000:]
    with Library.open(tmp_path / "other") as other:
        assert other.stats()["images"] == 0  # nothing half-done


def test_ctrl_c_mid_run_keeps_what_was_committed_and_resumes(flickr8k: Path, tmp_path: Path) -> None:
    n = 400  # enough batches that the interrupt lands mid-run, not in the last one
    images = sorted((flickr8k / "images").glob("*.jpg"))[:n]
    assert len(images) == n
    photos = tmp_path / "photos"
    photos.mkdir()
    for img in images:  # copies: links leading out of the indexed folder are skipped (indexing/scan.py)
        shutil.copy(img, photos / img.name)
    lib = tmp_path / "lib"
    cmd = [sys.executable, "-m", "pixsearch.cli", "index", str(photos), "-L", str(lib), "--engine", "ray"]
    proc = subprocess.Popen(
        [*cmd, "--workers", "1"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    deadline = time.monotonic() + 240
    while time.monotonic() < deadline and proc.poll() is None:
        if (lib / "catalog.db").exists():
            with Library.open(lib, create=False) as seen:
                if seen.stats()["images"] > 0:
                    break
        time.sleep(0.2)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, err[-2000:]
    assert err.strip().splitlines()[-1].startswith("interrupted: what was committed is kept")
    with Library.open(lib) as again:
        first = again.stats()["images"]
        assert 0 < first < n
        rep = again.add([photos], generate_captions=False, engine=RayEngine(workers=2, batch_size=8))
        assert (rep.added, rep.unchanged) == (n - first, first)
        _catalog_is_the_folder(again, photos)


def test_engine_ray_writes_to_a_milvus_store(tmp_path: Path) -> None:
    """The two scale-out parts together: Ray encodes, the writer commits to the catalog and Milvus Lite."""
    pytest.importorskip("milvus_lite")
    photos = _photos(tmp_path / "photos", 8)
    lib, spec = str(tmp_path / "lib"), f"milvus-lite:{tmp_path / 'v.db'}"
    pix = [sys.executable, "-m", "pixsearch.cli"]
    idx = [*pix, "index", str(photos), "-L", lib, "--store", spec, "--engine", "ray", "--json"]
    p = subprocess.run(idx, capture_output=True, text=True, timeout=300)
    assert p.returncode == 0 and json.loads(p.stdout)["added"] == 8, p.stderr[-2000:]
    p = subprocess.run([*pix, "doctor", "-L", lib, "--json"], capture_output=True, text=True, timeout=300)
    assert p.returncode == 0, p.stdout + p.stderr[-2000:]
    p = subprocess.run(
        [*pix, "search", "a dog", "-L", lib, "-k", "3", "--json"], capture_output=True, text=True
    )
    assert p.returncode == 0 and len(json.loads(p.stdout)["results"]) == 3
