"""``pixsearch duplicates`` (cli/duplicates.py), through a Typer app built as the real one is: --json keys,
the human report, one-line errors for bad options and a missing library, nothing deleted."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from PIL import Image
from typer.testing import CliRunner

from pixsearch import Library
from pixsearch.cli._common import group
from pixsearch.cli.duplicates import duplicates
from pixsearch.library.duplicates import DEFAULT_THRESHOLD
from tests.conftest import GALLERY

PHOTOS = sorted(p.name for p in (GALLERY / "images").glob("*.jpg"))[:4]

app = group("test")
app.command()(duplicates)


@app.callback()
def _root() -> None:
    """A group, as the real app is (a lone command would be the whole program)."""


runner = CliRunner()


@pytest.fixture(scope="module")
def lib_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    base = tmp_path_factory.mktemp("clidups")
    photos = base / "photos"
    photos.mkdir()
    for n in PHOTOS:
        shutil.copy(GALLERY / "images" / n, photos / n)
    shutil.copy(GALLERY / "images" / PHOTOS[1], photos / "again.jpg")
    with Image.open(GALLERY / "images" / PHOTOS[0]) as img:
        img.convert("RGB").resize((img.width // 2, img.height // 2)).save(photos / "half.jpg", quality=40)
    with Library.open(base / "lib") as lib:
        assert lib.add([photos], generate_captions=False).added == 5
    return base / "lib"


def _run(*args: str) -> object:
    return runner.invoke(app, ["duplicates", *args])


def test_json_lists_groups_with_the_copy_to_keep(lib_dir: Path) -> None:
    r = _run("--library", str(lib_dir), "--json")
    assert r.exit_code == 0, r.output  # type: ignore[attr-defined]
    d = json.loads(r.stdout)  # type: ignore[attr-defined]
    assert d["threshold"] == DEFAULT_THRESHOLD and d["prefer"] == "largest" and d["photos"] == 5
    groups = {g["kind"]: g for g in d["groups"]}
    assert set(groups) == {"exact", "near"}
    near = groups["near"]["photos"]
    assert [Path(p["path"]).name for p in near] == [PHOTOS[0], "half.jpg"] and groups["near"]["best"] == 0
    assert all(Path(p["path"]).is_absolute() for p in near)  # the CLI gives the files' own paths
    for key in ("path", "width", "height", "bytes", "taken_at", "similarity"):
        assert all(key in p for g in d["groups"] for p in g["photos"])
    assert {Path(p["path"]).name for p in groups["exact"]["photos"]} == {PHOTOS[1], "again.jpg"}
    assert (lib_dir.parent / "photos" / "half.jpg").is_file()  # nothing deleted


def test_people_read_which_copy_to_keep(lib_dir: Path) -> None:
    r = _run("-L", str(lib_dir), "--prefer", "oldest")
    assert r.exit_code == 0, r.output  # type: ignore[attr-defined]
    text = r.stdout  # type: ignore[attr-defined]
    assert "2 groups of duplicates (1 near, 1 exact) among 5 photos" in text and "Nothing was deleted" in text
    assert "keep" in text and "half.jpg" in text and "same bytes" in text
    assert all(n in text for n in (PHOTOS[0], PHOTOS[1], "again.jpg"))  # every file name whole, never "…"


def test_a_high_threshold_keeps_only_exact_copies(lib_dir: Path) -> None:
    r = _run("-L", str(lib_dir), "--json", "--threshold", "1")
    assert [g["kind"] for g in json.loads(r.stdout)["groups"]] == ["exact"]  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    ("args", "code", "says"),
    [
        (["--threshold", "1.5"], 2, "--threshold"),
        (["--prefer", "newest"], 2, "prefer must be one of largest, oldest"),
        (["--threshold", "nan"], 2, "threshold must be between 0 and 1"),
    ],
)
def test_bad_options_are_one_line_usage_errors(lib_dir: Path, args: list[str], code: int, says: str) -> None:
    r = _run("-L", str(lib_dir), *args)
    assert r.exit_code == code and says in r.output  # type: ignore[attr-defined]
    assert "Traceback" not in r.output  # type: ignore[attr-defined]


def test_no_library_there_is_an_error_not_an_empty_report(tmp_path: Path) -> None:
    r = _run("-L", str(tmp_path / "nothing"), "--json")
    assert r.exit_code == 4 and r.stdout == ""  # type: ignore[attr-defined]
    assert not (tmp_path / "nothing").exists()
