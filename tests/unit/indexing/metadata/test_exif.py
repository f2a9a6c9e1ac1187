"""EXIF fields from real Flickr8k photos given EXIF by Pillow, and EXIF nobody should believe."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest
from PIL import Image, TiffImagePlugin

from pixsearch.indexing.metadata.exif import ExifFields, exif_fields, gps_degrees, text_value
from tests.unit.indexing.metadata.photos import PARIS, exif_for, photo

NOW = datetime(2024, 6, 1, tzinfo=UTC).timestamp()


def _fields(flickr8k: Path, tmp_path: Path, exif: Image.Exif) -> ExifFields:
    src = sorted((flickr8k / "images").glob("*.jpg"))[3]
    with Image.open(photo(src, tmp_path / "p.jpg", exif)) as im:
        return exif_fields(im.getexif(), NOW)


def test_every_field_a_camera_writes(flickr8k: Path, tmp_path: Path) -> None:
    exif = exif_for(
        "2019:05:01 12:00:00", "+02:00", "Canon", "Canon EOS 5D Mark IV", "EF24-70mm f/2.8L II USM", PARIS, 6
    )
    got = _fields(flickr8k, tmp_path, exif)
    assert got.taken is not None and got.taken.iso == "2019-05-01T12:00:00+02:00"
    assert got.taken.ts == datetime(2019, 5, 1, 10, tzinfo=UTC).timestamp()
    assert (got.make, got.model, got.lens) == ("Canon", "Canon EOS 5D Mark IV", "EF24-70mm f/2.8L II USM")
    assert got.lat == pytest.approx(PARIS[0], abs=1e-4) and got.lon == pytest.approx(PARIS[1], abs=1e-4)
    assert got.orientation == 6


def test_southern_and_western_positions_are_negative(flickr8k: Path, tmp_path: Path) -> None:
    got = _fields(flickr8k, tmp_path, exif_for(gps=(-33.8568, -151.2153)))
    assert got.lat == pytest.approx(-33.8568, abs=1e-4) and got.lon == pytest.approx(-151.2153, abs=1e-4)


def test_a_photo_without_exif_has_no_fields(flickr8k: Path) -> None:
    with Image.open(sorted((flickr8k / "images").glob("*.jpg"))[0]) as im:
        assert exif_fields(im.getexif(), NOW) == ExifFields()


@pytest.mark.parametrize(
    "gps",
    [
        ((200.0, 0.0, 0.0), "N", (2.0, 21.0, 7.9), "E"),  # latitude 200
        ((48.0, 51.0, 23.7), "N", (181.0, 0.0, 0.0), "E"),  # longitude 181
        ((48.0, 75.0, 0.0), "N", (2.0, 21.0, 7.9), "E"),  # 75 minutes
        ((48.0, 51.0, 23.7), "Q", (2.0, 21.0, 7.9), "E"),  # no such reference
        ((0.0, 0.0, 0.0), "N", (0.0, 0.0, 0.0), "E"),  # 0,0: a receiver without a fix
        ((TiffImagePlugin.IFDRational(48, 0), 0.0, 0.0), "N", (2.0, 21.0, 7.9), "E"),  # x/0
    ],
)
def test_impossible_positions_are_no_position(flickr8k: Path, tmp_path: Path, gps: tuple) -> None:
    got = _fields(flickr8k, tmp_path, exif_for("2019:05:01 12:00:00", "+02:00", "Nikon", gps=gps))
    assert (got.lat, got.lon) == (None, None)
    assert got.make == "Nikon" and got.taken is not None  # the rest of the block still counts


@pytest.mark.parametrize(
    "taken", ["1900:01:01 00:00:00", "2099:12:31 23:59:59", "garbage", "0000:00:00 00:00:00"]
)
def test_absurd_capture_times_are_dropped(flickr8k: Path, tmp_path: Path, taken: str) -> None:
    got = _fields(flickr8k, tmp_path, exif_for(taken, "+02:00", "Sony", orientation=1))
    assert got.taken is None and got.make == "Sony" and got.orientation == 1


def test_a_huge_maker_note_and_odd_values_do_not_hurt(flickr8k: Path, tmp_path: Path) -> None:
    """A 60 kB maker note (near JPEG's segment limit), orientation 9, a binary model name."""
    exif = exif_for(
        "2019:05:01 12:00", "+05:30", "FUJIFILM", "\x01\x02binary\x03", orientation=9,
        extra={0x927C: b"\x00FUJIFILM" * 6500},
    )  # fmt: skip
    got = _fields(flickr8k, tmp_path, exif)
    assert (
        got.taken is not None
        and got.taken.ts
        == datetime(2019, 5, 1, 12, tzinfo=timezone(timedelta(hours=5, minutes=30))).timestamp()
    )
    assert (got.make, got.model, got.orientation) == ("FUJIFILM", None, None)


def test_lens_make_is_prefixed_once() -> None:
    exif = exif_for(lens="RF 50mm F1.8 STM")
    exif.get_ifd(0x8769)[0xA433] = "Canon"
    assert exif_fields(exif).lens == "Canon RF 50mm F1.8 STM"
    exif.get_ifd(0x8769)[0xA434] = "Canon RF 50mm"
    assert exif_fields(exif).lens == "Canon RF 50mm"


def test_gps_parts_and_text_values() -> None:
    assert gps_degrees((48.0, 30.0), "N", 90) == 48.5
    assert gps_degrees(12.25, b"W\x00", 180) == -12.25
    assert gps_degrees((1.0, 2.0, 3.0, 4.0), "N", 90) is None
    assert gps_degrees("north", "N", 90) is None
    assert text_value(b"Canon\x00\x00 ") == "Canon"
    assert text_value(b"Sch\xf6n") == "Schön"  # Latin-1 bytes
    assert text_value("x" * 500) is None and text_value(42) is None and text_value("  ") is None
