"""The OCR reader (tesseract through tesserocr) on real Flickr8k photos: signs rendered onto them, photos
with real signs, photos without text (which stop at the cheap first pass), other languages, and the
one-line errors when tesseract or its language data is missing."""

from __future__ import annotations

import random
import sys
from pathlib import Path

import pytest
from PIL import Image

from pixsearch.errors import ModelError
from pixsearch.models.ocr import OCR_EXTRA, TextReader, create_text_reader, tessdata_dir
from tests.unit.models.signs import PILLOW_FONT, REAL_SIGNS, Sign, fonts, norm, plain_photos, render

pytest.importorskip("tesserocr", reason="the ocr extra is not installed")


@pytest.fixture(scope="module")
def reader() -> TextReader:
    return create_text_reader("eng")


def _photo(flickr8k: Path, name: str) -> Image.Image:
    with Image.open(flickr8k / "images" / name) as im:
        return im.convert("RGB")


def _words(reader: TextReader, image: Image.Image) -> set[str]:
    return {norm(w) for line in reader.read(image).lines for w in line.text.split()}


def test_a_rendered_sign_is_read_as_one_line(reader: TextReader, flickr8k: Path) -> None:
    photo = _photo(flickr8k, plain_photos(flickr8k, 1)[0])
    sign = render(photo, Sign(("GRAND", "CENTRAL", "BAKERY"), PILLOW_FONT, 30, 0.0, True), random.Random(0))
    got = reader.read(sign)
    assert got.read_twice  # the gate saw text
    texts = [norm(line.text) for line in got.lines]
    assert "grandcentralbakery" in texts, got.lines  # one line: a query naming the sign matches one text
    assert all(0.6 <= line.confidence <= 1.0 for line in got.lines)


def test_real_signs_in_flickr8k_photos(reader: TextReader, flickr8k: Path) -> None:
    found = {n: set(want) & _words(reader, _photo(flickr8k, n)) for n, want in REAL_SIGNS.items()}
    recall = sum(map(len, found.values())) / sum(map(len, REAL_SIGNS.values()))
    assert recall >= 0.5, found  # 0.60 measured (benchmarks/bench_ocr.py): small, slanted, neon letters
    assert sum(bool(f) for f in found.values()) >= len(REAL_SIGNS) - 2, found
    assert {"photographs", "hooker", "skiing", "armenian"} <= set().union(*found.values())


def test_photos_without_text_mostly_stop_at_the_gate(reader: TextReader, flickr8k: Path) -> None:
    readings = [reader.read(_photo(flickr8k, n)) for n in plain_photos(flickr8k, 20)]
    assert sum(r.read_twice for r in readings) <= 4  # the second, 4x dearer pass is for text (10% measured)
    assert sum(len(r.lines) for r in readings) <= 5  # and little is taken for words


def test_large_photos_are_read_at_a_bounded_size(reader: TextReader, flickr8k: Path) -> None:
    photo = _photo(flickr8k, plain_photos(flickr8k, 2)[1])
    big = photo.resize((photo.width * 8, photo.height * 8), Image.Resampling.BICUBIC)  # ~3000 px
    sign = render(big, Sign(("HARBOUR", "MUSEUM"), PILLOW_FONT, 160, 0.0, True), random.Random(1))
    assert {"harbour", "museum"} <= _words(reader, sign)


def test_other_languages_read_their_letters(flickr8k: Path) -> None:
    dejavu = [f for f in fonts() if f.endswith("DejaVuSans.ttf")]
    if not dejavu:
        pytest.skip("DejaVu Sans (fonts-dejavu-core) is not installed")
    photo = _photo(flickr8k, plain_photos(flickr8k, 3)[2])
    sign = render(photo, Sign(("Bäckerei", "Straße"), dejavu[0], 36, 0.0, True), random.Random(1))
    cyrillic = render(photo, Sign(("Пекарня",), dejavu[0], 36, 0.0, True), random.Random(3))
    german = create_text_reader("eng+deu")
    assert {"bäckerei", "straße"} & _words(german, sign)
    assert not {"bäckerei", "straße"} & _words(create_text_reader("eng"), sign)  # English has no ä, ß
    assert "пекарня" in _words(create_text_reader("eng+rus"), cyrillic)
    assert german.fingerprint != create_text_reader("eng").fingerprint  # other languages: read again


def test_missing_tesserocr_is_one_line_naming_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "tesserocr", None)  # import fails as when the extra is missing
    with pytest.raises(ModelError) as exc:
        create_text_reader("eng")
    msg = str(exc.value)
    assert "\n" not in msg and "pip install 'pixsearch[ocr]'" in msg
    assert "apt-get install tesseract-ocr" in msg


def test_missing_language_data_is_one_line(tmp_path: Path) -> None:
    with pytest.raises(ModelError) as exc:  # a folder without any language
        TextReader("eng", env={"TESSDATA_PREFIX": str(tmp_path)})
    assert "\n" not in str(exc.value) and "apt-get install tesseract-ocr-eng" in str(exc.value)
    with pytest.raises(ModelError, match="tesseract-ocr-chi-tra"):  # a language Debian has not put here
        TextReader("eng+chi_tra")
    with pytest.raises(ModelError, match=r"OCR needs tesseract's language data: " + r"pip install"):
        TextReader("eng", env={"TESSDATA_PREFIX": str(tmp_path / "missing")})
    assert OCR_EXTRA.startswith("pip install 'pixsearch[ocr]'")


@pytest.mark.parametrize("langs", ["", "eng+", "eng;rm -rf /", "../eng"])
def test_language_names_are_checked(langs: str) -> None:
    with pytest.raises(ModelError, match="OCR languages"):
        TextReader(langs)


def test_tessdata_is_found_without_the_program(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    found = tessdata_dir({"PATH": str(tmp_path)})  # no tesseract program on PATH: the usual folders
    assert found is not None and (found / "eng.traineddata").is_file()
    assert tessdata_dir({"TESSDATA_PREFIX": str(tmp_path)}) == tmp_path
