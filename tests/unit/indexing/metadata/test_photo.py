"""``read_photo_meta`` on real Flickr8k photos: every source merged, and every kind of bad input leaves
a field absent (the file's time marked 'file'), never an error."""

from __future__ import annotations

import os
import threading
from datetime import UTC, datetime
from pathlib import Path

import pytest

from pixsearch.indexing.metadata import PhotoMeta, read_photo_meta
from pixsearch.indexing.metadata.places import OfflinePlaces
from tests.unit.indexing.metadata.photos import PARIS, exif_for, photo, with_iptc, xmp_packet

NOW = datetime(2024, 6, 1, tzinfo=UTC).timestamp()
MTIME = datetime(2023, 3, 4, 5, 6, 7, tzinfo=UTC).timestamp()


@pytest.fixture(scope="module")
def sources(flickr8k: Path) -> list[Path]:
    return sorted((flickr8k / "images").glob("*.jpg"))[10:20]


def _aged(p: Path) -> Path:
    os.utime(p, (MTIME, MTIME))
    return p


def test_every_source_merged(sources: list[Path], tmp_path: Path) -> None:
    exif = exif_for(
        "2019:05:01 12:00:00", "+02:00", "Apple", "iPhone 12 mini", "iPhone 12 mini back camera", PARIS, 1
    )
    inner = xmp_packet("Crêpes near the Louvre", ("Paris", "food"))
    p = photo(sources[0], tmp_path / "IMG_1.jpg", exif, inner)
    p.write_bytes(with_iptc(p.read_bytes(), "Crêpes near the Louvre", ("paris", "Travel")))
    (tmp_path / "IMG_1.xmp").write_bytes(xmp_packet("Lunch on our first day", ("holiday",)))
    got = read_photo_meta(_aged(p), OfflinePlaces(), NOW)
    assert (got.taken_at, got.taken_source) == ("2019-05-01T12:00:00+02:00", "exif")
    assert got.taken_ts == datetime(2019, 5, 1, 10, tzinfo=UTC).timestamp()
    assert (got.camera_make, got.camera_model, got.lens) == (
        "Apple",
        "iPhone 12 mini",
        "iPhone 12 mini back camera",
    )
    assert got.lat == pytest.approx(PARIS[0], abs=1e-4) and got.lon == pytest.approx(PARIS[1], abs=1e-4)
    assert got.place is not None and "Paris" in got.place and got.country == "France"
    assert (got.orientation, got.width, got.height) == (1, *_size(sources[0]))
    # the sidecar (the owner's latest edit) first, each text once whatever its case
    assert got.descriptions == ("Lunch on our first day", "Crêpes near the Louvre")
    assert got.keywords == ("holiday", "Paris", "food", "Travel")


def _size(p: Path) -> tuple[int, int]:
    from PIL import Image

    with Image.open(p) as im:
        return im.size


@pytest.mark.parametrize(
    "taken", ["1900:01:01 00:00:00", "2099:01:01 00:00:00", "1800:05:01 10:00:00", "junk"]
)
def test_an_absurd_capture_time_falls_back_to_the_file_time(
    sources: list[Path], tmp_path: Path, taken: str
) -> None:
    p = _aged(photo(sources[1], tmp_path / "p.jpg", exif_for(taken, "+02:00", "Canon")))
    got = read_photo_meta(p, None, NOW)
    assert (got.taken_source, got.taken_ts, got.camera_make) == ("file", MTIME, "Canon")
    assert got.taken_at is not None and datetime.fromisoformat(got.taken_at).timestamp() == MTIME


def test_a_photo_without_metadata_has_its_file_time(sources: list[Path], tmp_path: Path) -> None:
    p = _aged(photo(sources[2], tmp_path / "p.jpg"))
    got = read_photo_meta(p, OfflinePlaces(), NOW)
    assert (got.taken_source, got.taken_ts) == ("file", MTIME)
    assert (got.camera_make, got.lat, got.place, got.descriptions, got.keywords) == (None, None, None, (), ())


def test_a_sidecar_fills_what_the_file_lacks(sources: list[Path], tmp_path: Path) -> None:
    p = _aged(photo(sources[3], tmp_path / "DSC_7.jpg"))
    extra = (
        "<exif:DateTimeOriginal>2018-07-14T22:30:00+02:00</exif:DateTimeOriginal>"
        "<exif:GPSLatitude>48,51.396N</exif:GPSLatitude><exif:GPSLongitude>2,21.132E</exif:GPSLongitude>"
    )
    (tmp_path / "DSC_7.jpg.xmp").write_bytes(xmp_packet("Fireworks", ("bastille day",), extra))
    got = read_photo_meta(p, OfflinePlaces(), NOW)
    assert (got.taken_at, got.taken_source) == ("2018-07-14T22:30:00+02:00", "exif")
    assert (
        got.country == "France" and got.descriptions == ("Fireworks",) and got.keywords == ("bastille day",)
    )


def test_a_missing_file_has_nothing(tmp_path: Path) -> None:
    assert read_photo_meta(tmp_path / "gone.jpg", OfflinePlaces(), NOW) == PhotoMeta()


def test_a_file_that_is_not_an_image_keeps_its_sidecar(tmp_path: Path) -> None:
    p = tmp_path / "fake.jpg"
    p.write_bytes(b"\xff\xd8\xff\xe1\x00\x10Exif\x00\x00garbage" + os.urandom(500))
    _aged(p)
    (tmp_path / "fake.xmp").write_bytes(xmp_packet("still described", ("kept",)))
    got = read_photo_meta(p, None, NOW)
    assert (got.taken_source, got.descriptions, got.keywords) == ("file", ("still described",), ("kept",))


def test_a_broken_exif_block_keeps_the_xmp(sources: list[Path], tmp_path: Path) -> None:
    good = photo(
        sources[4],
        tmp_path / "p.jpg",
        exif_for("2019:05:01 12:00:00", "+02:00", "Canon"),
        xmp_packet("x", ("k",)),
    )
    data = good.read_bytes()
    i = data.index(b"Exif\x00\x00") + 6
    good.write_bytes(data[:i] + b"XX\x00\x2a" + data[i + 4 :])  # neither II nor MM: not a TIFF header
    got = read_photo_meta(_aged(good), None, NOW)
    assert got.camera_make is None and got.taken_source == "file" and got.keywords == ("k",)


def test_a_fifo_is_never_opened(tmp_path: Path) -> None:
    fifo = tmp_path / "pipe.jpg"
    os.mkfifo(fifo)
    done: list[PhotoMeta] = []
    t = threading.Thread(target=lambda: done.append(read_photo_meta(fifo, None, NOW)), daemon=True)
    t.start()
    t.join(10)
    assert done and done[0].camera_make is None  # returned at once: opening a FIFO would block forever


def test_keywords_are_bounded_and_once_each(sources: list[Path], tmp_path: Path) -> None:
    words = tuple(f"word{i}" for i in range(150)) + ("WORD1", "x" * 300)
    p = photo(sources[5], tmp_path / "p.jpg", xmp=xmp_packet(None, words))
    got = read_photo_meta(p, None, NOW)
    assert (
        len(got.keywords) == 100 and got.keywords[:2] == ("word0", "word1") and "x" * 300 not in got.keywords
    )


def test_damaged_metadata_never_raises(sources: list[Path], tmp_path: Path) -> None:
    """300 copies of a photo with EXIF (a maker note, GPS), XMP and IPTC, each with bytes of its metadata
    segments overwritten at random (seeded): every one is read without an exception."""
    import random
    import warnings

    exif = exif_for(
        "2019:05:01 12:00:00", "+02:00", "Canon", "EOS", "L", PARIS, 3, extra={0x927C: b"NOTE" * 200}
    )
    p = photo(sources[6], tmp_path / "base.jpg", exif, xmp_packet("a description", ("k1", "k2")))
    base = with_iptc(p.read_bytes(), "a caption", ("k3",))
    end = base.index(b"\xff\xdb")  # the first quantisation table: every metadata segment is before it
    rng = random.Random(7)
    seen = set()
    for i in range(300):
        data = bytearray(base)
        for _ in range(rng.randint(1, 20)):
            data[rng.randrange(2, end)] = rng.randrange(256)
        q = tmp_path / f"d{i}.jpg"
        q.write_bytes(bytes(data))
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # Pillow warns about what it skips; that is not our concern here
            got = read_photo_meta(q, OfflinePlaces())
        assert got.taken_source in ("exif", "file")
        seen.add(got.camera_make)
    assert "Canon" in seen and len(seen) > 1  # some copies still read, some lost their EXIF
