"""`pixsearch index --engine ray` on a local Ray cluster started by the test: the same library as a local
run, resumable, bad files reported."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest

ray = pytest.importorskip("ray")

from pixsearch import Library  # noqa: E402
from pixsearch.distributed import RayEngine  # noqa: E402

GALLERY = Path(__file__).resolve().parents[1] / "examples" / "gallery" / "images"


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
    rows = lib.catalog.db.execute("SELECT p.path, i.id FROM paths p JOIN images i ON i.id = p.image_id")
    by_path = {Path(p).name: iid for p, iid in rows}
    keys, vecs = lib.catalog.image_vectors(lib.encoder.dim)
    at = {int(k): v for k, v in zip(keys, vecs, strict=True)}
    return {name: at[iid] for name, iid in by_path.items()}


def test_ray_index_matches_local_and_resumes(tmp_path: Path) -> None:
    photos = _photos(tmp_path / "photos", 16)
    (photos / "broken.jpg").write_bytes(b"not a jpeg")
    eng = RayEngine(workers=2, batch_size=4)
    with Library.open(tmp_path / "ray") as lib:
        rep = lib.add([photos], generate_captions=False, engine=eng)
        assert rep.added == 16 and [Path(p).name for p, _ in rep.failed] == ["broken.jpg"]
        again = lib.add([photos], generate_captions=False, engine=eng)
        assert (again.added, again.unchanged) == (0, 16)
        n_img = lib.catalog.db.execute("SELECT COUNT(*), COUNT(DISTINCT hash) FROM images").fetchone()
        assert tuple(n_img) == (16, 16)
        ray_vecs = _vectors(lib)
        hits = lib.search("a dog", k=3)
        assert len(hits) == 3
    with Library.open(tmp_path / "local") as lib:
        lib.add([photos], generate_captions=False)
        local_vecs = _vectors(lib)
    assert ray_vecs.keys() == local_vecs.keys()
    for name, v in local_vecs.items():
        assert float(v @ ray_vecs[name]) >= 0.999, name  # float16 storage on both sides
