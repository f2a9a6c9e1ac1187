"""Library facade on real gallery photos: index, search, similar, describe, incremental, bad input."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest

from pixsearch import Library, ModelMismatchError, QueryError
from pixsearch.errors import DatasetError, NotFoundError
from pixsearch.models.encoder import RawEncoder
from tests.conftest import copy_without_index


def copy_photos(gallery_subset: Path, dst: Path, n: int) -> Path:
    """The first ``n`` gallery photos in a fresh folder this test may change."""
    dst.mkdir()
    for p in sorted((gallery_subset / "photos").glob("*.jpg"))[:n]:
        shutil.copy(p, dst / p.name)
    return dst


def test_search_ranks_captioned_match_first(built_library: Path, gallery_subset: Path) -> None:
    with Library.open(built_library) as lib:
        caps = (gallery_subset / "captions.csv").read_text().splitlines()[1:]
        name, caption = caps[7].split(",", 1)
        res = lib.search(caption, k=5)
        assert res[0].path.endswith(name)
        assert res[0].matched_caption == caption.strip()
        assert res[0].score >= res[-1].score
        assert set(res[0].scores) >= {"caption", "bm25"}
        assert len(res[0].captions) == 5


def test_search_paging_and_threshold(built_library: Path) -> None:
    with Library.open(built_library) as lib:
        full = lib.search("a dog running on grass", k=10)
        page2 = lib.search("a dog running on grass", k=5, offset=5)
        assert [r.image_id for r in full[5:10]] == [r.image_id for r in page2]
        cut = sorted(r.match for r in full)[-4]  # the threshold cuts the calibrated match score (#9)
        kept = lib.search("a dog running on grass", k=10, threshold=cut)
        assert kept and all(r.match >= cut for r in kept)
        with pytest.raises(QueryError, match="between 0 and 1"):
            lib.search("a dog running on grass", k=10, threshold=2.0)


@pytest.mark.parametrize("bad", ["", "   ", "\n"])
def test_empty_query_is_a_query_error(built_library: Path, bad: str) -> None:
    with Library.open(built_library) as lib, pytest.raises(QueryError, match="empty query"):
        lib.search(bad)


def test_similar_finds_a_copy_and_excludes_itself(
    built_library: Path, gallery_subset: Path, tmp_path: Path
) -> None:
    photos = sorted((gallery_subset / "photos").glob("*.jpg"))
    with Library.open(built_library) as lib:
        res = lib.similar(photos[0], k=3)
        assert all(not r.path.endswith(photos[0].name) for r in res)
        assert len(res) == 3
        # an outside image (not in the library) is encoded on the fly; a flipped copy is still closest
        from PIL import Image, ImageOps

        flipped = tmp_path / "flipped.jpg"
        ImageOps.mirror(Image.open(photos[2])).save(flipped, quality=92)
        res = lib.similar(flipped, k=3)
        assert res[0].path.endswith(photos[2].name)
        with pytest.raises(NotFoundError):
            lib.similar(10_000_000)


def test_describe_returns_captions_of_the_same_photo(built_library: Path, gallery_subset: Path) -> None:
    photos = sorted((gallery_subset / "photos").glob("*.jpg"))
    with Library.open(built_library) as lib:
        assert lib.encoder.cross_modal, "the shipped model has no trained heads"
        hits = 0
        for p in photos[:8]:
            res = lib.describe(p, k=5)
            assert len(res) == 5 and res[0].match >= res[-1].match  # ranked by match score (#9)
            hits += any(r.path.endswith(p.name) for r in res)
        assert hits >= 4  # a photo's own captions are usually among the 5 best of 120


def test_incremental_dedup_update_prune(gallery_subset: Path, tmp_path: Path) -> None:
    src = sorted((gallery_subset / "photos").glob("*.jpg"))[:4]
    photos = tmp_path / "p"
    photos.mkdir()
    for p in src:
        shutil.copy(p, photos / p.name)
    lib_dir = tmp_path / "lib"
    with Library.open(lib_dir) as lib:
        r1 = lib.add([photos])
        assert (r1.added, r1.unchanged) == (4, 0)
        r2 = lib.add([photos])
        assert (r2.added, r2.unchanged) == (0, 4)
        shutil.copy(src[0], photos / "copy.jpg")  # same bytes, second path
        r3 = lib.add([photos])
        assert (r3.added, r3.duplicates, r3.unchanged) == (0, 1, 4)
        assert lib.stats()["images"] == 4 and lib.stats()["paths"] == 5
        shutil.copy(src[1], photos / src[0].name)  # content of a path changes
        r4 = lib.add([photos])
        assert r4.updated == 1
        (photos / src[2].name).unlink()
        r5 = lib.add([photos], prune=True)
        assert r5.removed == 1
        st = lib.stats()
        assert st["paths"] == 4 and st["images"] == 3
        assert all(ok for _c, ok, _d in lib.doctor())


def test_corrupt_files_are_reported_and_the_rest_indexed(gallery_subset: Path, tmp_path: Path) -> None:
    photos = tmp_path / "p"
    photos.mkdir()
    good = sorted((gallery_subset / "photos").glob("*.jpg"))[:2]
    for p in good:
        shutil.copy(p, photos / p.name)
    (photos / "empty.jpg").write_bytes(b"")
    (photos / "truncated.jpg").write_bytes(good[0].read_bytes()[:2000])
    (photos / "text.png").write_text("not an image")
    with Library.open(tmp_path / "lib") as lib:
        rep = lib.add([photos, tmp_path / "does-not-exist"])
        assert rep.added == 2
        failed = {Path(p).name: why for p, why in rep.failed}
        assert set(failed) == {"empty.jpg", "truncated.jpg", "text.png", "does-not-exist"}
        assert "0 bytes" in failed["empty.jpg"]


def test_captions_csv_problems(gallery_subset: Path, tmp_path: Path) -> None:
    photos = tmp_path / "p"
    photos.mkdir()
    p = sorted((gallery_subset / "photos").glob("*.jpg"))[0]
    shutil.copy(p, photos / p.name)
    csv = tmp_path / "c.csv"
    csv.write_text(f"image,caption\n{p.name},a photo\nnope.jpg,ghost caption\n{p.name},\n")
    with Library.open(tmp_path / "lib") as lib:
        rep = lib.add([photos], captions_csv=csv)
        assert rep.captions_added == 1
        assert any("nope.jpg" in w for w in rep.warnings)
        assert any("empty" in w for w in rep.warnings)
        bad = tmp_path / "bad.csv"
        bad.write_bytes(b"image,caption\nx.jpg,caf\xe9\n")
        with pytest.raises(DatasetError, match="UTF-8"):
            lib.add([photos], captions_csv=bad)
        cols = tmp_path / "cols.csv"
        cols.write_text("file,text\nx.jpg,y\n")
        with pytest.raises(DatasetError, match="image,caption"):
            lib.add([photos], captions_csv=cols)


def test_model_mismatch_is_refused(built_library: Path, tmp_path: Path) -> None:
    """A library written by another model (here: its recorded fingerprint differs) is never searched."""
    import sqlite3

    copy = tmp_path / "lib"
    shutil.copytree(built_library, copy)
    db = sqlite3.connect(copy / "catalog.db")
    db.execute(
        "UPDATE meta SET value = 'other-model:0123|lite0:x|minilm:y' WHERE key = 'encoder_fingerprint'"
    )
    db.commit()
    db.close()
    with pytest.raises(ModelMismatchError, match="reindex"):
        Library.open(copy)
    with pytest.raises(ModelMismatchError):  # naming a model explicitly is refused the same way
        Library.open(copy, encoder=RawEncoder("lite0"))


def test_reindex_switches_model_and_keeps_captions(gallery_subset: Path, tmp_path: Path) -> None:
    photos = copy_photos(gallery_subset, tmp_path / "p", 3)
    with Library.open(tmp_path / "lib") as lib:
        lib.add([photos], captions_csv=gallery_subset / "captions.csv")
        caps = lib.stats()["captions"]
        rep = lib.reindex("lite0-raw")
        assert rep.added == 3 and lib.encoder.name == "lite0-raw"
        assert lib.stats()["captions"] == caps
        assert lib.search("dog", k=3)  # caption signals still work without a joint space
    with Library.open(tmp_path / "lib") as lib:
        assert lib.encoder.name == "lite0-raw"


def test_remove_forgets_paths_and_vectors(gallery_subset: Path, tmp_path: Path) -> None:
    photos = copy_photos(gallery_subset, tmp_path / "p", 3)
    with Library.open(tmp_path / "lib") as lib:
        lib.add([photos])
        target = sorted(photos.glob("*.jpg"))[0]
        assert lib.remove([target]) == 1
        assert lib.stats()["images"] == 2
        assert len(lib.vectors.get("images")) == 2
        assert lib.remove([photos]) == 2
        assert lib.stats()["images"] == 0


def test_index_repairs_after_lost_index_file(built_library: Path, tmp_path: Path) -> None:
    with Library.open(copy_without_index(built_library, tmp_path / "lib")) as lib:
        assert len(lib.vectors.get("images")) == 24
        assert "images" in lib.vectors.repaired
        assert all(lib.vectors.consistent().values())
        v = lib.vectors.get("images").get(np.array([1]))
        assert np.isclose(np.linalg.norm(v), 1.0, atol=1e-2)


def test_interrupted_reindex_keeps_the_old_library(gallery_subset: Path, tmp_path: Path) -> None:
    photos = copy_photos(gallery_subset, tmp_path / "p", 6)
    with Library.open(tmp_path / "lib") as lib:
        lib.add([photos], captions_csv=gallery_subset / "captions.csv")
        before = lib.stats()
        lib.settings = type(lib.settings)(**{**lib.settings.__dict__, "batch_size": 2})

        def stop(done: int, total: int) -> None:
            if done >= 2:
                raise KeyboardInterrupt

        rep = lib.reindex("lite0-raw", progress=stop)
        assert rep.interrupted
    with Library.open(tmp_path / "lib") as lib:  # untouched: same model, same counts, still searchable
        assert lib.encoder.name == before["model"] and lib.stats()["captions"] == before["captions"]
        assert lib.search("dog", k=2)
        rep = lib.reindex("lite0-raw")  # resumes in .reindex/ and swaps
        assert rep.unchanged >= 2 and rep.added + rep.unchanged == 6
        assert lib.encoder.name == "lite0-raw" and lib.stats()["captions"] == before["captions"]
        assert not (tmp_path / "lib" / ".reindex").exists()
        assert all(ok for _c, ok, _d in lib.doctor())


def test_sample_is_seeded(gallery_subset: Path, tmp_path: Path) -> None:
    picked = []
    for run in ("a", "b", "c"):
        with Library.open(tmp_path / run) as lib:
            rep = lib.add([gallery_subset / "photos"], sample=5, seed=0 if run != "c" else 1)
            assert rep.added == 5
            picked.append(sorted(lib.catalog.all_paths()))
    assert picked[0] == picked[1] and picked[0] != picked[2]
