"""``Library.reindex`` on a small library of real gallery photos with the shipped model: re-encoding with
the same model changes no answer, and a library stamped by a model this build does not ship (or by other
weights under the same name) is refused with a pointer to reindex, which then makes it searchable."""

from __future__ import annotations

import shutil
import sqlite3
from pathlib import Path

import pytest

from pixsearch import Library, ModelMismatchError
from pixsearch.config import load_settings

MODEL = "lite02-minilm-v2"
QUERIES = ["a dog running on the grass", "two children playing in the water", "a man on a bike"]


def _answers(lib: Library, photos: list[Path]) -> dict[str, list[tuple[str, float]]]:
    """Every read's ranked paths and scores (ids are the catalog's and may change; paths may not)."""
    out: dict[str, list[tuple[str, float]]] = {}
    for q in QUERIES:
        out[f"search {q}"] = [(r.path, round(r.score, 4)) for r in lib.search(q, k=8)]
    for p in photos[:3]:
        out[f"similar {p.name}"] = [(r.path, round(r.score, 4)) for r in lib.similar(p, k=5)]
        out[f"describe {p.name}"] = [(r.caption, round(r.score, 4)) for r in lib.describe(p, k=5)]
    return out


def _stamp(lib_dir: Path, name: str, fingerprint: str) -> None:
    db = sqlite3.connect(lib_dir / "catalog.db")
    db.execute("UPDATE meta SET value = ? WHERE key = 'encoder'", (name,))
    db.execute("UPDATE meta SET value = ? WHERE key = 'encoder_fingerprint'", (fingerprint,))
    db.commit()
    db.close()


@pytest.fixture
def small(gallery_subset: Path, tmp_path: Path) -> tuple[Path, list[Path]]:
    """A fresh library of 8 gallery photos (copies) with their human captions."""
    photos_dir = tmp_path / "photos"
    photos_dir.mkdir()
    for f in sorted((gallery_subset / "photos").glob("*.jpg"))[:8]:
        shutil.copy(f, photos_dir / f.name)
    lib_dir = tmp_path / "lib"
    with Library.open(lib_dir) as lib:
        rep = lib.add([photos_dir], captions_csv=gallery_subset / "captions.csv")
        assert rep.added == 8 and rep.captions_added == 40 and not rep.failed
    return lib_dir, sorted(photos_dir.glob("*.jpg"))


def test_reindex_with_the_same_model_changes_no_answer(small: tuple[Path, list[Path]]) -> None:
    lib_dir, photos = small
    with Library.open(lib_dir) as lib:
        before, stats = _answers(lib, photos), lib.stats()
        old_id = lib.catalog.catalog_id
        seen: list[tuple[int, int]] = []
        rep = lib.reindex(progress=lambda done, total: seen.append((done, total)))
        assert (rep.added, rep.captions_added, rep.failed, rep.kept) == (8, 40, [], [])
        assert not rep.interrupted and seen and seen[-1] == (8, 8)
        assert lib.catalog.catalog_id != old_id  # a new catalog lifetime: old index files are stale
        assert _answers(lib, photos) == before
        assert {k: v for k, v in lib.stats().items() if k != "bytes_on_disk"} == {
            k: v for k, v in stats.items() if k != "bytes_on_disk"
        }
    assert not (lib_dir / ".reindex").exists()
    with Library.open(lib_dir, create=False) as lib:  # and so does a later process
        assert _answers(lib, photos) == before
        assert all(ok for _, ok, _ in lib.doctor())


def test_reindex_twice_is_the_same_as_once(small: tuple[Path, list[Path]]) -> None:
    lib_dir, photos = small
    with Library.open(lib_dir) as lib:
        lib.reindex()
        once = _answers(lib, photos)
        lib.reindex()
        assert _answers(lib, photos) == once


def test_a_library_of_a_model_no_longer_shipped_asks_for_reindex(small: tuple[Path, list[Path]]) -> None:
    lib_dir, photos = small
    with Library.open(lib_dir) as lib:
        want = _answers(lib, photos)
    _stamp(lib_dir, "lite0-minilm-v0", "lite0-minilm-v0:0123|lite0:x|minilm:y")
    with pytest.raises(ModelMismatchError) as exc:
        Library.open(lib_dir, create=False)
    msg = str(exc.value)
    assert "built with model lite0-minilm-v0, which is not installed" in msg
    assert f"run `pixsearch reindex` to re-encode it with {MODEL}" in msg and "\n" not in msg
    # what `pixsearch reindex` does: open with the model to re-encode into, without the model check
    s = load_settings(library=lib_dir, model=MODEL)
    with Library.open(settings=s, check_model=False, create=False) as lib:
        rep = lib.reindex()
        assert (rep.added, rep.failed) == (8, [])
    with Library.open(lib_dir, create=False) as lib:
        assert lib.stats()["model"] == MODEL and lib.stats()["human_captions"] == 40
        assert _answers(lib, photos) == want  # the vectors the shipped model gives, as before the stamp


def test_a_library_of_other_weights_under_the_same_name_asks_for_reindex(
    small: tuple[Path, list[Path]],
) -> None:
    lib_dir, photos = small
    with Library.open(lib_dir) as lib:
        want = _answers(lib, photos)
    _stamp(lib_dir, MODEL, f"{MODEL}:0123456789ab|lite0:x|minilm:y")  # retrained heads, same name
    with pytest.raises(ModelMismatchError, match=f"run `pixsearch reindex --model {MODEL}`"):
        Library.open(lib_dir, create=False)
    with Library.open(lib_dir, check_model=False, create=False) as lib:
        lib.reindex()
    with Library.open(lib_dir, create=False) as lib:
        assert _answers(lib, photos) == want


def test_reindex_of_an_empty_library_is_a_no_op(tmp_path: Path) -> None:
    with Library.open(tmp_path / "lib") as lib:
        rep = lib.reindex()
        assert (rep.added, rep.failed, rep.kept) == (0, [], [])
        assert lib.stats()["images"] == 0 and lib.search("a dog") == []
