"""The OCR enricher at index time, on real Flickr8k photos (one given a shop sign): lines of words in
``photo_texts`` that BM25 finds, on only when asked, read once per photo and model, and a library indexed
without it gets its words on a later ``--ocr`` run without any photo being encoded again."""

from __future__ import annotations

import random
import shutil
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image

from pixsearch import Library
from pixsearch.config import load_settings
from pixsearch.indexing.enrichers.base import Enricher
from pixsearch.indexing.enrichers.ocr import OcrEnricher
from pixsearch.indexing.enrichers.registry import enrichers
from tests.unit.models.signs import PILLOW_FONT, Sign, plain_photos, render

pytest.importorskip("tesserocr", reason="the ocr extra is not installed")

SIGN = "bakery.jpg"


@pytest.fixture(scope="module")
def photos(flickr8k: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Four real photos; one carries a "GRAND CENTRAL BAKERY" sign."""
    names = plain_photos(flickr8k, 4)
    d = tmp_path_factory.mktemp("ocr_photos")
    with Image.open(flickr8k / "images" / names[0]) as im:
        sign = Sign(("GRAND", "CENTRAL", "BAKERY"), PILLOW_FONT, 30, 0.0, True)
        render(im.convert("RGB"), sign, random.Random(0)).save(d / SIGN, quality=92)
    for n in names[1:]:
        shutil.copy(flickr8k / "images" / n, d / n)
    return d


def _id(lib: Library, path: Path) -> int:
    iid = lib.catalog.image_for_path(str(path))
    assert iid is not None
    return iid


class _Counting:
    """Counts photos the encoder encodes."""

    def __init__(self, encoder: Any) -> None:
        self.photos = 0
        real = encoder.encode_image_features

        def features(arrays: np.ndarray) -> dict[str, np.ndarray]:
            self.photos += len(arrays)
            return real(arrays)

        encoder.encode_image_features = features


def test_index_with_ocr_stores_lines_that_bm25_finds(photos: Path, tmp_path: Path) -> None:
    with Library.open(tmp_path / "lib") as lib:
        rep = lib.add([photos], ocr=True)
        assert rep.added == 4 and rep.enriched["ocr"] == 4 and not rep.failed
        sign = _id(lib, photos / SIGN)
        lines = lib.catalog.photo_texts.texts_of([sign], "ocr")[sign]
        assert any({"grand", "central", "bakery"} <= set(t.lower().split()) for t in lines), lines
        hits = lib.catalog.photo_texts.fts_rank("grand central bakery", 5, kinds=["ocr"])
        assert hits and hits[0][0] == sign
        assert lib.catalog.photo_texts.counts()["ocr"] <= len(lines) + 2  # plain photos: little or nothing
        again = lib.add([photos], ocr=True)
        assert again.unchanged == 4 and again.enriched == {}  # done at this fingerprint: not read again


def test_ocr_is_off_unless_asked(photos: Path, tmp_path: Path) -> None:
    settings = load_settings(library=tmp_path / "lib")
    with Library.open(settings=settings) as lib:
        assert "ocr" not in [e.name for e in enrichers(lib.settings, lib.encoder)]
        names = [e.name for e in enrichers(replace(lib.settings, ocr=True), lib.encoder)]
        assert names.index("ocr") < names.index("policy")
        ocr = next(e for e in enrichers(replace(lib.settings, ocr=True), lib.encoder) if e.name == "ocr")
        assert isinstance(ocr, Enricher) and isinstance(ocr, OcrEnricher)
        rep = lib.add([photos])
        assert "ocr" not in rep.enriched and lib.catalog.photo_texts.counts()["ocr"] == 0


def test_ocr_on_later_reads_files_without_encoding_again(photos: Path, tmp_path: Path) -> None:
    with Library.open(tmp_path / "lib") as lib:
        lib.add([photos])  # indexed without OCR
        vectors_before = lib.catalog.image_vectors(lib.encoder.dim)[1]
        counted = _Counting(lib.encoder)
        rep = lib.add([photos], ocr=True)
        assert rep.unchanged == 4 and rep.enriched["ocr"] == 4
        assert counted.photos == 0  # OCR reads the files itself: nothing decoded for the encoder
        np.testing.assert_array_equal(lib.catalog.image_vectors(lib.encoder.dim)[1], vectors_before)
        assert lib.catalog.photo_texts.fts_rank("bakery", 5)[0][0] == _id(lib, photos / SIGN)
        assert lib.add([photos]).enriched == {}  # a run without --ocr keeps the words read
        assert lib.catalog.photo_texts.counts()["ocr"] > 0


def test_other_languages_redo_every_photo(photos: Path, tmp_path: Path) -> None:
    with Library.open(tmp_path / "lib") as lib:
        lib.add([photos], ocr=True)
        lib.settings = replace(lib.settings, ocr_languages="eng+deu")
        assert lib.add([photos], ocr=True).enriched["ocr"] == 4  # another fingerprint: read again


def test_a_photo_that_cannot_be_read_is_tried_again_next_time(photos: Path, tmp_path: Path) -> None:
    folder = tmp_path / "photos"
    shutil.copytree(photos, folder)
    with Library.open(tmp_path / "lib") as lib:
        lib.add([folder])
        gone = _id(lib, folder / SIGN)
        (folder / SIGN).unlink()  # vanished, not pruned: its file cannot be read now
        lib.add([folder], ocr=True)
        ocr = next(e for e in enrichers(replace(lib.settings, ocr=True), lib.encoder) if e.name == "ocr")
        assert ocr.stale_ids(lib.catalog) == [gone]  # not marked done: the next --ocr run tries again


def test_settings_ocr_from_the_config_file_and_languages_from_the_environment(tmp_path: Path) -> None:
    cfg = tmp_path / "config.toml"
    cfg.write_text('ocr = true\nocr_languages = "eng+fra"\n')
    s = load_settings({"PIXSEARCH_CONFIG": str(cfg)})
    assert s.ocr and s.ocr_languages == "eng+fra"
    s = load_settings({"PIXSEARCH_CONFIG": str(cfg), "PIXSEARCH_OCR_LANGUAGES": "eng+deu"}, ocr=False)
    assert not s.ocr and s.ocr_languages == "eng+deu"  # the flag beats the file, the environment too
    assert not load_settings({}).ocr and load_settings({}).ocr_languages == "eng"
