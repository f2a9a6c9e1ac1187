"""Shared fixtures: real data from ../shared (skipped where absent) and one small indexed library."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
GALLERY = ROOT / "examples" / "gallery"
FLICKR8K = Path(os.environ.get("PIXSEARCH_FLICKR8K", ROOT.parent / "shared" / "data" / "flickr8k"))


@pytest.fixture(scope="session", autouse=True)
def _isolated_dirs(tmp_path_factory: pytest.TempPathFactory) -> None:
    """Keep tests away from the user's library, config and feature cache."""
    base = tmp_path_factory.mktemp("home")
    os.environ["PIXSEARCH_CACHE"] = str(base / "cache")
    os.environ["XDG_DATA_HOME"] = str(base / "data")
    os.environ["XDG_CONFIG_HOME"] = str(base / "config")
    os.environ.pop("PIXSEARCH_LIBRARY", None)


@pytest.fixture(scope="session")
def flickr8k() -> Path:
    if not (FLICKR8K / "captions.csv").is_file():
        pytest.skip(f"Flickr8k not found at {FLICKR8K}")
    return FLICKR8K


@pytest.fixture(scope="session")
def gallery_subset(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """24 gallery photos + their captions CSV in a fresh folder (tests may add files beside them)."""
    d = tmp_path_factory.mktemp("gallery")
    names = sorted(p.name for p in (GALLERY / "images").glob("*.jpg"))[:24]
    (d / "photos").mkdir()
    for n in names:
        shutil.copy(GALLERY / "images" / n, d / "photos" / n)
    lines = (GALLERY / "captions.csv").read_text().splitlines()
    keep = [lines[0]] + [ln for ln in lines[1:] if ln.split(",", 1)[0] in set(names)]
    (d / "captions.csv").write_text("\n".join(keep) + "\n")
    return d


@pytest.fixture(scope="session")
def built_library(gallery_subset: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A library indexed from ``gallery_subset`` with its captions (read-only for tests)."""
    from pixsearch import Library

    lib_dir = tmp_path_factory.mktemp("lib")
    with Library.open(lib_dir) as lib:
        rep = lib.add([gallery_subset / "photos"], captions_csv=gallery_subset / "captions.csv")
        assert rep.added == 24 and not rep.failed
    return lib_dir
