"""``pixsearch doctor`` on libraries damaged behind pixsearch's back: it must say "not ok" (exit 1) and name
the check that broke. (``tests/unit/library/test_health.py`` covers a sound library, deleted photo files,
a damaged model file and a foreign model stamp; these are the catalog/vector-index disagreements.)"""

from __future__ import annotations

import json
import shutil
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import gallery_photos

NAMES = [
    "1177994172_10d143cb8d.jpg",
    "1232148178_4f45cc3284.jpg",
    "123997871_6a9ca987b1.jpg",
    "1319634306_816f21677f.jpg",
    "1429546659_44cb09cbe2.jpg",
]


def _doctor(lib: Path) -> tuple[int, dict[str, dict]]:
    p = subprocess.run(
        [sys.executable, "-m", "pixsearch.cli", "doctor", "-L", str(lib), "--json"],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert p.stdout.strip(), p.stderr
    return p.returncode, {c["check"]: c for c in json.loads(p.stdout)}


def _index(lib: Path, *paths: Path, captions: Path | None = None) -> None:
    cmd = [sys.executable, "-m", "pixsearch.cli", "index", *map(str, paths), "-L", str(lib), "--json"]
    if captions is not None:
        cmd += ["--captions", str(captions)]
    p = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    assert p.returncode == 0, p.stderr


@pytest.fixture(scope="module")
def sound(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """(library, photo folder): 5 gallery photos with their captions, indexed; doctor passes."""
    d = gallery_photos(tmp_path_factory.mktemp("doctor"), NAMES)
    lib = d / "lib"
    _index(lib, d / "photos", captions=d / "captions.csv")
    code, checks = _doctor(lib)
    assert code == 0 and all(c["ok"] for c in checks.values()), checks
    return lib, d / "photos"


def _copy(lib: Path, dst: Path) -> Path:
    shutil.copytree(lib, dst)
    return dst


def _sql(lib: Path, *statements: str) -> None:
    db = sqlite3.connect(lib / "catalog.db")
    db.execute("PRAGMA foreign_keys = ON")
    for s in statements:
        db.execute(s)
    db.commit()
    db.close()


def test_an_image_row_deleted_behind_the_index_fails_the_vector_check(
    sound: tuple[Path, Path], tmp_path: Path
) -> None:
    """One photo's row (and, by cascade, its path and captions) deleted with plain SQL, generation not
    bumped: the index files are still stamped fresh but hold a key the catalog lacks."""
    lib = _copy(sound[0], tmp_path / "lib")
    _sql(lib, "DELETE FROM images WHERE id = (SELECT MIN(id) FROM images)")
    code, checks = _doctor(lib)
    assert code == 1
    assert checks["vectors 'images' match catalog"]["ok"] is False, checks
    assert checks["catalog integrity"]["ok"] and checks["indexed files present"]["ok"]


def test_an_index_file_with_a_forged_fresh_stamp_fails_the_vector_check(
    sound: tuple[Path, Path], tmp_path: Path
) -> None:
    """The images index of an older state (3 photos) put back after 2 more were indexed, its stamp edited
    to the catalog's current generation: opening trusts the stamp, doctor must not."""
    lib, photos = sound
    d = gallery_photos(tmp_path / "src", NAMES[:3])
    part = d / "lib"
    _index(part, d / "photos")
    old = {f.name: f.read_bytes() for f in part.glob("images.*")}
    _index(part, *(photos / n for n in NAMES[3:]))
    stamp_file = next(f for f in part.glob("images.*.json"))
    current = json.loads(stamp_file.read_text())
    for name, data in old.items():
        (part / name).write_bytes(data)
    forged = json.loads(stamp_file.read_text())
    assert forged["count"] == 3 and current["count"] == 5
    forged["generation"] = current["generation"]
    stamp_file.write_text(json.dumps(forged))
    code, checks = _doctor(part)
    assert code == 1
    assert checks["vectors 'images' match catalog"]["ok"] is False, checks
    assert checks["vectors 'images' match catalog"]["detail"] == "3 vectors"


def test_a_caption_vector_deleted_fails_its_check(sound: tuple[Path, Path], tmp_path: Path) -> None:
    """A caption row deleted with plain SQL (generation not bumped): its vector stays in the caption
    indexes, which doctor must report."""
    lib = _copy(sound[0], tmp_path / "lib")
    _sql(lib, "DELETE FROM captions WHERE id = (SELECT MIN(id) FROM captions)")
    code, checks = _doctor(lib)
    assert code == 1
    assert checks["vectors 'captions' match catalog"]["ok"] is False, checks
    assert checks["vectors 'images' match catalog"]["ok"] is True


def test_a_photo_whose_path_row_is_gone_is_reported(sound: tuple[Path, Path], tmp_path: Path) -> None:
    """A photo row left without any path (its ``paths`` row deleted with plain SQL): search would return a
    photo that names no file. Doctor must not call that library sound."""
    lib = _copy(sound[0], tmp_path / "lib")
    _sql(lib, "DELETE FROM paths WHERE image_id = (SELECT MIN(id) FROM images)")
    code, checks = _doctor(lib)
    assert code == 1, checks
    assert not all(c["ok"] for c in checks.values())
