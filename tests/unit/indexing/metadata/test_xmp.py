"""XMP packets and sidecars: the owner's description and keywords, editor-only fields, and packets that
are broken or hostile (never expanded, never an error)."""

from __future__ import annotations

from pathlib import Path

import pytest

from pixsearch.indexing.metadata.xmp import (
    MAX_SIDECAR_BYTES,
    XmpFields,
    parse_xmp,
    read_sidecars,
    sidecar_paths,
)
from tests.unit.indexing.metadata.photos import xmp_packet


def test_description_and_keywords() -> None:
    got = parse_xmp(
        xmp_packet("Sunset over the Seine, <Pont Neuf> & friends", ("paris", "river", "Pont Neuf"))
    )
    assert got.descriptions == ("Sunset over the Seine, <Pont Neuf> & friends",)
    assert got.keywords == ("paris", "river", "Pont Neuf")


def test_the_default_language_comes_first_and_attributes_count() -> None:
    alt = (
        "<dc:description><rdf:Alt><rdf:li xml:lang='fr-FR'>Coucher de soleil</rdf:li>"
        "<rdf:li xml:lang='x-default'>Sunset</rdf:li></rdf:Alt></dc:description>"
    )
    got = parse_xmp(xmp_packet(extra=alt))
    assert got.descriptions == ("Sunset", "Coucher de soleil")
    got = parse_xmp(xmp_packet(attrs='exif:DateTimeOriginal="2019-05-01T12:00:00+02:00" aux:Lens="EF 50mm"'))
    assert got.taken is not None and got.taken.iso == "2019-05-01T12:00:00+02:00" and got.lens == "EF 50mm"


def test_editor_fields_in_a_sidecar() -> None:
    extra = (
        "<exif:GPSLatitude>48,51.396N</exif:GPSLatitude><exif:GPSLongitude>2,21.132E</exif:GPSLongitude>"
        "<photoshop:DateCreated>2019-05-01T12:00</photoshop:DateCreated>"
    )
    got = parse_xmp(xmp_packet(extra=extra))
    assert got.lat == pytest.approx(48.8566) and got.lon == pytest.approx(2.3522)
    assert got.taken is not None and got.taken.iso == "2019-05-01T12:00:00"
    swapped = extra.replace("48,51.396N", "48,51.396E")  # a latitude cannot be east
    assert parse_xmp(xmp_packet(extra=swapped)).lat is None


@pytest.mark.parametrize(
    "packet",
    [
        b"",
        b"not xml at all",
        b"<x:xmpmeta xmlns:x='adobe:ns:meta/'><rdf:RDF",  # cut short
        xmp_packet("a description")[:-60],
        # billion laughs: refused, never expanded
        b'<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;&lol;&lol;">]>'
        b"<x:xmpmeta xmlns:x='adobe:ns:meta/'>&lol2;</x:xmpmeta>",
        # an external entity: never read
        b'<?xml version="1.0"?><!DOCTYPE x [<!ENTITY e SYSTEM "file:///etc/passwd">]><x>&e;</x>',
        "\udcff".encode("utf-8", "surrogatepass"),
    ],
)
def test_broken_or_hostile_packets_give_nothing(packet: bytes) -> None:
    assert parse_xmp(packet) == XmpFields()


def test_sidecars_by_either_name(tmp_path: Path) -> None:
    img = tmp_path / "IMG_0001.jpg"
    img.write_bytes(b"")
    assert sidecar_paths(img) == []
    (tmp_path / "IMG_0001.xmp").write_bytes(xmp_packet("lightroom", ("a",)))
    (tmp_path / "IMG_0001.jpg.xmp").write_bytes(xmp_packet("darktable", ("b",)))
    (tmp_path / "IMG_0002.xmp").write_bytes(xmp_packet("another photo's", ("c",)))
    assert sidecar_paths(img) == [tmp_path / "IMG_0001.jpg.xmp", tmp_path / "IMG_0001.xmp"]
    got = read_sidecars(img)
    assert [g.descriptions for g in got] == [("darktable",), ("lightroom",)]


def test_malformed_oversized_or_unreadable_sidecars_are_skipped(tmp_path: Path) -> None:
    img = tmp_path / "p.jpg"
    (tmp_path / "p.xmp").write_bytes(b"<x:xmpmeta><broken")
    assert read_sidecars(img) == [XmpFields()]
    (tmp_path / "p.xmp").write_bytes(b" " * (MAX_SIDECAR_BYTES + 1))
    assert read_sidecars(img) == []
    (tmp_path / "p.xmp").unlink()
    (tmp_path / "p.xmp").mkdir()  # a folder by that name is no sidecar
    assert read_sidecars(img) == []
