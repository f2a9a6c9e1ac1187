"""What a library holds (``Library.stats``) and whether it is sound (``Library.doctor``), on real gallery
photos with the shipped model: a sound library passes every check, and a broken one fails the check
that names what broke, without raising."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import pytest

from pixsearch import Library, ModelMismatchError
from pixsearch.config import load_settings
from tests.conftest import copy_without_index

CHECKS = [
    "catalog integrity",
    "text model loads",
    "image model loads",
    "vectors 'images' match catalog",
    "vectors 'captions' match catalog",
    "vectors 'caption_joint' match catalog",
    "every photo has a path",
    "indexed files present",
]
WEIGHTS = Path(__file__).resolve().parents[3] / "src" / "pixsearch" / "models" / "weights"
MODEL = "lite02-minilm-v2"


def _copy(built_library: Path, dst: Path) -> Path:
    shutil.copytree(built_library, dst)
    return dst


def test_stats_counts_the_gallery_library(built_library: Path) -> None:
    with Library.open(built_library, create=False) as lib:
        st = lib.stats()
        on_disk = sum(f.stat().st_size for f in built_library.iterdir() if f.is_file())  # WAL included
    assert st["library"] == str(built_library)
    assert (st["images"], st["paths"]) == (24, 24)
    assert (st["captions"], st["human_captions"], st["generated_captions"]) == (120, 120, 0)
    assert st["model"] == MODEL and st["cross_modal"] is True
    assert (st["vector_backend"], st["store"]) == ("usearch", "local")
    assert st["bytes_on_disk"] == on_disk > 0
    json.dumps(st)  # `stats --json` prints it as is


def test_stats_of_a_new_library_are_zeros(tmp_path: Path) -> None:
    with Library.open(tmp_path / "lib") as lib:
        st = lib.stats()
    assert {k: st[k] for k in ("images", "paths", "captions", "human_captions", "generated_captions")} == {
        "images": 0,
        "paths": 0,
        "captions": 0,
        "human_captions": 0,
        "generated_captions": 0,
    }


def test_stats_follow_adds_and_removes(gallery_subset: Path, tmp_path: Path) -> None:
    photos = sorted((gallery_subset / "photos").glob("*.jpg"))[:3]
    with Library.open(tmp_path / "lib") as lib:
        lib.add(photos, captions_csv=gallery_subset / "captions.csv")
        assert (lib.stats()["images"], lib.stats()["human_captions"]) == (3, 15)
        lib.remove([photos[0]])
        assert (lib.stats()["images"], lib.stats()["human_captions"]) == (2, 10)


def test_doctor_passes_every_check_on_a_sound_library(built_library: Path) -> None:
    with Library.open(built_library, create=False) as lib:
        checks = lib.doctor()
    assert [c for c, _, _ in checks] == CHECKS
    assert all(ok for _, ok, _ in checks), checks
    detail = {c: d for c, _, d in checks}
    assert detail["catalog integrity"] == str(built_library / "catalog.db")
    assert detail["text model loads"] == detail["image model loads"] == MODEL
    assert detail["vectors 'images' match catalog"] == "24 vectors"
    assert detail["vectors 'captions' match catalog"] == "120 vectors"
    assert detail["indexed files present"] == "all present"


def test_doctor_fails_when_indexed_photos_are_gone(gallery_subset: Path, tmp_path: Path) -> None:
    """Photos deleted behind the library's back: one failed check that says how to fix it."""
    photos = tmp_path / "photos"
    photos.mkdir()
    for f in sorted((gallery_subset / "photos").glob("*.jpg"))[:4]:
        shutil.copy(f, photos / f.name)
    with Library.open(tmp_path / "lib") as lib:
        lib.add([photos])
        doomed = sorted(photos.glob("*.jpg"))[:2]
        for p in doomed:
            p.unlink()
        checks = {c: (ok, d) for c, ok, d in lib.doctor()}
        assert checks["indexed files present"] == (False, "2 missing (run `pixsearch index --prune`)")
        assert all(ok for c, (ok, _) in checks.items() if c != "indexed files present")
        lib.add([photos], prune=True)  # the fix it names
        assert all(ok for _, ok, _ in lib.doctor())


def test_doctor_fails_when_a_model_file_is_damaged(gallery_subset: Path, tmp_path: Path) -> None:
    """A library built with a model from a folder whose image graph is later damaged: the image check
    fails with the reason, the text check still passes, and ``pixsearch doctor`` exits 1 (a fresh process:
    a model file is hash-checked when a process first loads it)."""
    model_dir = tmp_path / "model"
    model_dir.mkdir()
    card = json.loads((WEIGHTS / f"{MODEL}.json").read_text())["onnx"]
    shared = {card[k]["file"] for k in ("image", "text", "tokenizer")}  # graphs another model ships
    for f in {*WEIGHTS.glob(f"{MODEL}.*"), *(WEIGHTS / n for n in shared)}:
        os.symlink(f, model_dir / f.name)
    weights = model_dir / f"{MODEL}.safetensors"
    lib_dir = tmp_path / "lib"
    settings = replace(load_settings(library=lib_dir), model=str(weights))
    photos = sorted((gallery_subset / "photos").glob("*.jpg"))[:2]
    with Library.open(settings=settings) as lib:
        assert lib.add(photos).added == 2
    image_graph = model_dir / card["image"]["file"]
    data = bytearray(image_graph.read_bytes())
    data[len(data) // 2] ^= 0xFF  # one flipped byte
    image_graph.unlink()
    image_graph.write_bytes(bytes(data))
    p = subprocess.run(
        [sys.executable, "-m", "pixsearch.cli", "doctor", "-L", str(lib_dir), "--json"],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert p.returncode == 1, p.stderr
    checks = {c["check"]: c for c in json.loads(p.stdout)}
    assert list(checks) == CHECKS
    assert checks["image model loads"]["ok"] is False
    assert "does not match the sha256 in its model card" in checks["image model loads"]["detail"]
    assert checks["text model loads"]["ok"] is True
    assert all(c["ok"] for name, c in checks.items() if name != "image model loads")


def test_a_broken_model_stamp_fails_before_any_check(built_library: Path, tmp_path: Path) -> None:
    """A catalog stamped by another model is never reported on as if it were sound: opening it (and so
    ``pixsearch doctor``) refuses and names the fix."""
    import sqlite3

    lib = _copy(built_library, tmp_path / "lib")
    db = sqlite3.connect(lib / "catalog.db")
    db.execute("UPDATE meta SET value = 'other-model:0|x|y' WHERE key = 'encoder_fingerprint'")
    db.commit()
    db.close()
    with pytest.raises(ModelMismatchError, match="reindex"):
        Library.open(lib, create=False)
    p = subprocess.run(
        [sys.executable, "-m", "pixsearch.cli", "doctor", "-L", str(lib)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert p.returncode != 0 and "reindex" in p.stderr
    assert len(p.stderr.strip().splitlines()) == 1 and p.stdout == ""


@pytest.fixture
def full_disk_saves(monkeypatch: pytest.MonkeyPatch) -> None:
    """usearch cannot save (as on a full disk: RuntimeError, no errno) and the disk reports no room."""
    from usearch.index import Index

    import pixsearch.storage.failures as failures

    def cannot_save(self: Index, *args: object, **kw: object) -> None:
        raise RuntimeError("Failed to serialize into stream")

    monkeypatch.setattr(Index, "save", cannot_save)
    monkeypatch.setattr(failures, "no_space_on", lambda where, need=0: True)


def test_doctor_and_search_work_from_memory_when_a_repair_cannot_be_saved(
    built_library: Path, tmp_path: Path, full_disk_saves: None, caplog: pytest.LogCaptureFixture
) -> None:
    lib_dir = copy_without_index(built_library, tmp_path / "lib")  # opening repairs images.usearch
    with caplog.at_level("WARNING"), Library.open(lib_dir, create=False) as lib:
        assert len(lib.search("a dog runs on the grass", k=3)) == 3
        checks = lib.doctor()
        assert all(ok for _, ok, _ in checks), checks
        assert lib.vectors.unsaved == ["images"]
    said = [r.getMessage() for r in caplog.records if r.levelname == "WARNING"]
    assert said == [
        "warning: could not save the repaired vector index (No space left on device); using it from memory"
    ]  # once, however many reads
    assert not list(lib_dir.glob("images.*")) and not list(lib_dir.glob(".images*"))


def test_a_write_on_a_full_disk_fails_in_one_line_and_keeps_the_commit(
    gallery_subset: Path, tmp_path: Path, full_disk_saves: None
) -> None:
    from pixsearch import StorageError

    with Library.open(tmp_path / "lib") as lib:
        with pytest.raises(StorageError) as exc:
            lib.add(sorted((gallery_subset / "photos").glob("*.jpg"))[:2])
        assert str(exc.value).startswith("could not write the vector index ")
        assert str(exc.value).endswith(": No space left on device; free some space and run the command again")
        assert lib.stats()["images"] == 2  # the catalog's commit stays; the index files follow later
