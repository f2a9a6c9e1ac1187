"""IPTC-IIM caption and keywords inside real JPEGs (an APP13 Photoshop block, as Photoshop writes it)."""

from __future__ import annotations

from pathlib import Path

from PIL import Image

from pixsearch.indexing.metadata.iptc import IptcTexts, iptc_texts
from tests.unit.indexing.metadata.photos import with_iptc


def _jpeg(flickr8k: Path) -> bytes:
    return sorted((flickr8k / "images").glob("*.jpg"))[5].read_bytes()


def test_caption_and_keywords_in_utf8(flickr8k: Path, tmp_path: Path) -> None:
    p = tmp_path / "p.jpg"
    p.write_bytes(with_iptc(_jpeg(flickr8k), "Crêpes à Montmartre", ("Paris", "café", "street food")))
    with Image.open(p) as im:
        assert iptc_texts(im) == IptcTexts(("Crêpes à Montmartre",), ("Paris", "café", "street food"))


def test_latin1_from_older_editors(flickr8k: Path, tmp_path: Path) -> None:
    p = tmp_path / "p.jpg"
    p.write_bytes(with_iptc(_jpeg(flickr8k), "Schöne Grüße", ("Köln",), utf8=False))
    with Image.open(p) as im:
        assert iptc_texts(im) == IptcTexts(("Schöne Grüße",), ("Köln",))


def test_no_block_or_a_broken_one(flickr8k: Path, tmp_path: Path) -> None:
    plain = tmp_path / "plain.jpg"
    plain.write_bytes(_jpeg(flickr8k))
    with Image.open(plain) as im:
        assert iptc_texts(im) == IptcTexts()
    good = with_iptc(_jpeg(flickr8k), "a caption", ("k",))
    i = good.index(b"\x1c\x02\x78")  # the caption's dataset: claim 60000 bytes that are not there
    broken = tmp_path / "broken.jpg"
    broken.write_bytes(good[: i + 3] + b"\xea\x60" + good[i + 5 :])
    with Image.open(broken) as im:
        assert iptc_texts(im).keywords in ((), ("k",))  # whatever survives, nothing raises
