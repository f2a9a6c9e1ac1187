"""``Library.export_xmp``: generated captions and labels written to ``photo.jpg.xmp`` sidecars, merged
with the user's own (kept as they are), replaced only where we wrote them, read back by the metadata
reader (which skips what we wrote), and never touching a photo; with the merge itself on packets as
Lightroom, exiv2 (digiKam) and broken files leave them."""

from __future__ import annotations

import hashlib
import os
import shutil
from pathlib import Path

import defusedxml.ElementTree as SafeET
import pytest

from pixsearch import Library
from pixsearch.errors import NotFoundError
from pixsearch.indexing.metadata.xmp import PIXSEARCH_NS, parse_xmp
from pixsearch.library.export import DC, LR, RDF, Words, merge_sidecar, sidecar_for
from tests.conftest import GALLERY
from tests.unit.indexing.metadata.photos import xmp_packet

WORDS = Words("a dog runs through the grass", ("golden retriever", "tennis ball"))


def _values(data: bytes, ns: str, name: str) -> list[str]:
    """What any XMP reader sees for a property: its array items (or plain value), in every Description."""
    root = SafeET.fromstring(data, forbid_dtd=True)
    out: list[str] = []
    for d in root.iter(f"{{{RDF}}}Description"):
        if f"{{{ns}}}{name}" in d.attrib:
            out.append(d.attrib[f"{{{ns}}}{name}"])
        for el in d.findall(f"{{{ns}}}{name}"):
            items = el.findall(f"./*/{{{RDF}}}li")
            out += [li.text or "" for li in items] if items else [el.text or ""]
    return out


# -- the merge ------------------------------------------------------------------------------------------
def test_a_new_sidecar_says_it_all_and_the_reader_skips_it() -> None:
    data = merge_sidecar(None, WORDS)
    assert _values(data, DC, "description") == [WORDS.caption]
    assert _values(data, DC, "subject") == list(WORDS.keywords)
    assert _values(data, LR, "hierarchicalSubject") == ["pixsearch|golden retriever", "pixsearch|tennis ball"]
    assert _values(data, PIXSEARCH_NS, "Caption") == [WORDS.caption]
    got = parse_xmp(data)  # indexing the folder again: ours is not the owner's
    assert got.descriptions == () and got.keywords == ()
    assert merge_sidecar(data, WORDS) == data  # nothing new: the same bytes


def test_the_users_fields_are_kept_and_ours_replaced() -> None:
    rating = '<xmp:Rating xmlns:xmp="http://ns.adobe.com/xap/1.0/">4</xmp:Rating>'
    user = xmp_packet("Rex at the lake", ("rex", "Golden Retriever"), extra=rating)
    first = merge_sidecar(user, WORDS)
    assert _values(first, DC, "description") == ["Rex at the lake"]  # theirs: no caption of ours there
    assert _values(first, DC, "subject") == ["rex", "Golden Retriever", "tennis ball"]  # no doubles
    assert _values(first, "http://ns.adobe.com/xap/1.0/", "Rating") == ["4"]
    assert _values(first, LR, "hierarchicalSubject") == []  # would hide "rex" from hierarchy readers
    assert parse_xmp(first).descriptions == ("Rex at the lake",)
    assert parse_xmp(first).keywords == ("rex", "Golden Retriever")
    second = merge_sidecar(first, Words("a dog by a lake", ("frisbee",)))
    assert _values(second, DC, "subject") == ["rex", "Golden Retriever", "frisbee"]
    assert _values(second, PIXSEARCH_NS, "Caption") == ["a dog by a lake"]
    cleared = merge_sidecar(second, Words())
    assert _values(cleared, DC, "subject") == ["rex", "Golden Retriever"]
    assert (
        _values(cleared, PIXSEARCH_NS, "Caption") == [] and _values(cleared, PIXSEARCH_NS, "Keywords") == []
    )


def test_a_caption_the_user_edited_is_theirs() -> None:
    ours = merge_sidecar(None, WORDS)
    edited = ours.replace(b">a dog runs through the grass</rdf:li>", b">Rex chasing his ball</rdf:li>")
    again = merge_sidecar(edited, Words("a dog on grass", ()))
    assert _values(again, DC, "description") == ["Rex chasing his ball"]
    assert parse_xmp(again).descriptions == ("Rex chasing his ball",)  # a human caption when indexed
    assert merge_sidecar(None, WORDS, user_described=True).count(b"dc:description") == 0


def test_a_sidecar_rewritten_by_exiv2_is_still_ours_where_we_wrote() -> None:
    """exiv2 (digiKam) keeps unknown namespaces but writes a simple property as an attribute, puts each
    namespace on the Description and wraps the packet; a tag the user added there is kept."""
    exiv2 = (
        '<?xpacket begin="\ufeff" id="W5M0MpCehiHzreSzNTczkc9d"?>\n'
        '<x:xmpmeta xmlns:x="adobe:ns:meta/" x:xmptk="XMP Core 4.4.0-Exiv2">\n'
        ' <rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#">\n'
        '  <rdf:Description rdf:about="" xmlns:lr="http://ns.adobe.com/lightroom/1.0/"'
        f' xmlns:pixsearch="{PIXSEARCH_NS}" xmlns:dc="http://purl.org/dc/elements/1.1/"'
        ' pixsearch:Caption="a dog runs through the grass">\n'
        "   <lr:hierarchicalSubject><rdf:Bag><rdf:li>pixsearch|golden retriever</rdf:li>"
        "<rdf:li>places|home</rdf:li></rdf:Bag></lr:hierarchicalSubject>\n"
        "   <pixsearch:Keywords><rdf:Bag><rdf:li>golden retriever</rdf:li></rdf:Bag></pixsearch:Keywords>\n"
        "   <dc:subject><rdf:Bag><rdf:li>golden retriever</rdf:li><rdf:li>home</rdf:li></rdf:Bag>"
        "</dc:subject>\n"
        '   <dc:description><rdf:Alt><rdf:li xml:lang="x-default">a dog runs through the grass</rdf:li>'
        "</rdf:Alt></dc:description>\n"
        "  </rdf:Description>\n </rdf:RDF>\n</x:xmpmeta>\n"
        '<?xpacket end="w"?>'
    ).encode()
    assert parse_xmp(exiv2).descriptions == () and parse_xmp(exiv2).keywords == ("home",)
    out = merge_sidecar(exiv2, Words("a dog", ("frisbee",)))
    assert _values(out, DC, "subject") == ["home", "frisbee"]
    assert _values(out, DC, "description") == ["a dog"]  # ours was unchanged by the user: replaced
    assert _values(out, LR, "hierarchicalSubject") == ["places|home", "pixsearch|frisbee"]  # home is a leaf
    assert b'xmlns:x="adobe:ns:meta/"' in out and b"<rdf:RDF" in out  # the file's own prefixes


@pytest.mark.parametrize(
    "broken",
    [
        b"not xml",
        b"<x:xmpmeta xmlns:x='adobe:ns:meta/'><rdf:RDF",
        b'<?xml version="1.0"?><!DOCTYPE x [<!ENTITY a "aaaa">]>'
        b'<x:xmpmeta xmlns:x="adobe:ns:meta/">&a;</x:xmpmeta>',
        b"<html><body>a web page</body></html>",
    ],
)
def test_a_sidecar_that_is_not_xmp_is_refused(broken: bytes) -> None:
    with pytest.raises(ValueError):
        merge_sidecar(broken, WORDS)


# -- a library's photos ---------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def captioned(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """Four gallery photos (two in a sub-folder) indexed with generated captions and labels; a library
    to copy for each test with its photos."""
    base = tmp_path_factory.mktemp("export")
    names = sorted(p.name for p in (GALLERY / "images").glob("*.jpg"))[:4]
    (base / "photos" / "trip").mkdir(parents=True)
    for i, n in enumerate(names):
        shutil.copy(GALLERY / "images" / n, base / "photos" / ("trip" if i >= 2 else "") / n)
    with Library.open(base / "lib") as lib:
        rep = lib.add([base / "photos"], generate_captions=True)
        assert rep.added == 4 and rep.captions_generated == 4
    return base / "photos", base / "lib"


@pytest.fixture()
def library(captioned: tuple[Path, Path], tmp_path: Path) -> tuple[Path, Library]:
    photos, lib_dir = captioned
    for p in list(photos.rglob("*.xmp")):
        p.unlink()
    return photos, Library.open(lib_dir)


def _digest(folder: Path) -> dict[str, tuple[str, int]]:
    return {
        str(p): (hashlib.sha256(p.read_bytes()).hexdigest(), p.stat().st_mtime_ns)
        for p in folder.rglob("*.jpg")
    }


def test_export_writes_sidecars_and_never_touches_photos(
    library: tuple[Path, Library], tmp_path: Path
) -> None:
    photos, lib = library
    before = _digest(photos)
    with lib:
        rep = lib.export_xmp()
        assert (rep.written, rep.unchanged, rep.skipped) == (4, 0, [])
        for p in photos.rglob("*.jpg"):
            data = sidecar_for(p).read_bytes()
            assert sidecar_for(p).name == p.name + ".xmp"
            iid = lib.catalog.image_for_path(str(p))
            assert iid is not None
            caption = [t for t, src in lib.catalog.captions_by_image([iid])[iid] if src == "generated"]
            assert _values(data, DC, "description") == caption
            labels = [lb for lb, _ in lib.catalog.enrichments.labels_of([iid]).get(iid, [])]
            assert _values(data, DC, "subject") == labels
        again = lib.export_xmp()
        assert (again.written, again.unchanged) == (0, 4)
    assert _digest(photos) == before  # the photos: same bytes, same times


def test_indexing_an_exported_folder_finds_no_human_words(
    library: tuple[Path, Library], tmp_path: Path
) -> None:
    photos, lib = library
    with lib:
        lib.export_xmp()
    with Library.open(tmp_path / "again") as fresh:  # another library reads the same folder
        rep = fresh.add([photos])
        assert rep.added == 4
        stats = fresh.stats()
        assert stats["human_captions"] == 0 and stats["keywords"] == 0


def test_the_users_sidecars_are_merged(library: tuple[Path, Library]) -> None:
    photos, lib = library
    a, b = sorted(photos.glob("*.jpg"))
    sidecar_for(a).write_bytes(xmp_packet("Our dog on holiday", ("holiday",)))
    b.with_suffix(".xmp").write_bytes(xmp_packet("Lightroom's words", ()))  # Lightroom's name for it
    os.chmod(sidecar_for(a), 0o640)
    with lib:
        rep = lib.export_xmp(photos)
    assert rep.written == 4
    got = sidecar_for(a).read_bytes()
    assert _values(got, DC, "description") == ["Our dog on holiday"]
    assert _values(got, DC, "subject")[0] == "holiday" and len(_values(got, DC, "subject")) > 1
    assert os.stat(sidecar_for(a)).st_mode & 0o777 == 0o640  # the user's sidecar keeps its mode
    assert os.stat(sidecar_for(b)).st_mode & 0o777 == os.stat(b).st_mode & 0o666  # a new one: the photo's
    assert _values(sidecar_for(b).read_bytes(), DC, "description") == []  # described in b.xmp already
    assert b.with_suffix(".xmp").read_bytes() == xmp_packet("Lightroom's words", ())  # never written


def test_a_folder_limits_the_export_and_bad_sidecars_are_left_alone(library: tuple[Path, Library]) -> None:
    photos, lib = library
    trip = sorted((photos / "trip").glob("*.jpg"))
    sidecar_for(trip[0]).write_bytes(b"<broken")
    os.symlink(photos / "elsewhere.xmp", sidecar_for(trip[1]))
    with lib:
        rep = lib.export_xmp(photos / "trip")
        assert rep.written == 0 and len(rep.skipped) == 2
        assert "left as is" in rep.skipped[0][1] and "left as is" in rep.skipped[1][1]
        assert not list(photos.glob("*.xmp"))  # nothing outside the folder
        assert sidecar_for(trip[0]).read_bytes() == b"<broken"
        with pytest.raises(NotFoundError, match="no indexed photos under"):
            lib.export_xmp(photos / "nowhere")
