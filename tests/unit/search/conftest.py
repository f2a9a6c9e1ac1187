"""A real library where every fusion signal occurs and photos lack some: Flickr8k val photos (copies),
human captions #0-2 on the even-numbered half, generated captions on the rest (the captions enricher
skips photos people captioned), labels on all. Built by :func:`build_mixed_library`, which
``expected_fused.py`` also ran (with the code before vectorised fusion) to record the expected scores."""

from __future__ import annotations

import csv
import shutil
from pathlib import Path

import pytest

N_PHOTOS = 24


def val_captions(flickr8k: Path, names: list[str]) -> dict[str, list[str]]:
    caps: dict[str, list[str]] = {n: [] for n in names}
    with open(flickr8k / "captions.csv", encoding="utf-8") as f:
        for row in csv.DictReader(f):
            if row["image"] in caps:
                caps[row["image"]].append(row["caption"])
    return caps


def build_mixed_library(flickr8k: Path, work: Path) -> Path:
    """The library described in the module docstring, in ``work/lib``; returns that path."""
    from pixsearch import Library
    from pixsearch.config import load_settings

    names = (flickr8k / "val.txt").read_text().split()[:N_PHOTOS]
    caps = val_captions(flickr8k, names)
    (work / "photos").mkdir(parents=True)
    for n in names:
        shutil.copy(flickr8k / "images" / n, work / "photos" / n)
    with open(work / "half.csv", "w", encoding="utf-8", newline="") as f:
        w = csv.writer(f)
        w.writerow(["image", "caption"])
        for n in names[::2]:
            for c in caps[n][:3]:
                w.writerow([n, c])
    # The recorded scores (expected_fused.py) came from lite0-minilm-v1: fusion's arithmetic is what these
    # tests hold, and it does not depend on the model, so the library keeps that model.
    settings = load_settings(library=work / "lib", model="lite0-minilm-v1")
    with Library.open(settings=settings) as lib:
        rep = lib.add([work / "photos"], captions_csv=work / "half.csv", generate_captions=True)
        assert rep.added == N_PHOTOS and rep.captions_generated == N_PHOTOS // 2, rep
    return work / "lib"


@pytest.fixture(scope="package")
def mixed_library(flickr8k: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_mixed_library(flickr8k, tmp_path_factory.mktemp("mixed"))
