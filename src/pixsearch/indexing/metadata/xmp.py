"""XMP, in the file or in a sidecar beside it (``photo.xmp`` as Lightroom writes it, ``photo.jpg.xmp`` as
darktable does): the owner's description (``dc:description``) and keywords (``dc:subject``), and the
camera fields an editor may keep only there (``exif:DateTimeOriginal``, ``photoshop:DateCreated``, GPS,
lens, ``tiff:Make``/``tiff:Model``).

Parsed with defusedxml: a packet is data from a stranger's file, so DTDs and entities (billion laughs,
external references) are refused rather than expanded. A malformed or oversized packet gives nothing.

What ``pixsearch export --xmp`` wrote (``library/export.py``) is not the owner's: the caption and keywords
it lists under its own namespace (``pixsearch:Caption``, ``pixsearch:Keywords``) are left out, so indexing
an exported folder again never turns a generated caption into a human one.
"""

from __future__ import annotations

import os
import re
import stat
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from xml.etree.ElementTree import Element, ParseError

import defusedxml.ElementTree as SafeET
from defusedxml import DefusedXmlException

from pixsearch.indexing.metadata.dates import CaptureTime, parse_taken
from pixsearch.indexing.metadata.exif import gps_degrees, text_value

__all__ = ["MAX_SIDECAR_BYTES", "PIXSEARCH_NS", "XmpFields", "parse_xmp", "read_sidecars", "sidecar_paths"]

MAX_SIDECAR_BYTES = 4 * 1024 * 1024  # real sidecars are a few kB; more is not a sidecar
_MAX_TEXT = 2000  # one description; longer ones are cut at a word
_RDF = "http://www.w3.org/1999/02/22-rdf-syntax-ns#"
_XML_LANG = "{http://www.w3.org/XML/1998/namespace}lang"
PIXSEARCH_NS = "urn:pixsearch:xmp:1.0/"  # what pixsearch itself wrote into a sidecar (library/export.py)
_NS = {
    "dc": "http://purl.org/dc/elements/1.1/",
    "exif": "http://ns.adobe.com/exif/1.0/",
    "exifEX": "http://cipa.jp/exif/1.0/",
    "aux": "http://ns.adobe.com/exif/1.0/aux/",
    "photoshop": "http://ns.adobe.com/photoshop/1.0/",
    "tiff": "http://ns.adobe.com/tiff/1.0/",
    "pixsearch": PIXSEARCH_NS,
}
_GPS = re.compile(r"(?P<d>\d{1,3}),(?P<m>\d{1,2}(?:\.\d+)?)(?:,(?P<s>\d{1,2}(?:\.\d+)?))?(?P<ref>[NSEW])")


@dataclass(frozen=True)
class XmpFields:
    descriptions: tuple[str, ...] = ()
    keywords: tuple[str, ...] = ()
    taken: CaptureTime | None = None
    make: str | None = None
    model: str | None = None
    lens: str | None = None
    lat: float | None = None
    lon: float | None = None


def parse_xmp(packet: bytes | str, now: float | None = None) -> XmpFields:
    """The fields of one XMP packet; empty fields for a malformed one."""
    data = packet.encode("utf-8") if isinstance(packet, str) else bytes(packet)
    data = data.rstrip(b"\x00 \t\r\n")
    if not data or len(data) > MAX_SIDECAR_BYTES:
        return XmpFields()
    try:
        root = SafeET.fromstring(data, forbid_dtd=True)
    except (ParseError, DefusedXmlException, ValueError, UnicodeError):
        return XmpFields()
    ours = {t for d in _descriptions(root) for t in _alt(d, "pixsearch", "Caption")}
    descs = list(dict.fromkeys(t for d in _descriptions(root) for t in _alt(d, "dc", "description")))
    descs = [t for t in descs if t not in ours]
    ours = {t for d in _descriptions(root) for t in _bag(d, "pixsearch", "Keywords")}
    words = [t for d in _descriptions(root) for t in _bag(d, "dc", "subject") if t not in ours]
    taken = None
    for ns, name in (("exif", "DateTimeOriginal"), ("photoshop", "DateCreated")):
        taken = taken or parse_taken(_first(root, ns, name), None, now)
    lat = _gps(_first(root, "exif", "GPSLatitude"), 90.0)
    lon = _gps(_first(root, "exif", "GPSLongitude"), 180.0)
    if lat is None or lon is None or (lat == 0.0 and lon == 0.0):
        lat = lon = None
    lens = text_value(_first(root, "exifEX", "LensModel")) or text_value(_first(root, "aux", "Lens"))
    return XmpFields(
        descriptions=tuple(_clip(t) for t in descs),
        keywords=tuple(words),
        taken=taken,
        make=text_value(_first(root, "tiff", "Make")),
        model=text_value(_first(root, "tiff", "Model")),
        lens=lens,
        lat=lat,
        lon=lon,
    )


def sidecar_paths(photo: Path) -> list[Path]:
    """The sidecars of ``photo`` that exist as regular files: ``photo.jpg.xmp`` first, then ``photo.xmp``
    (either case of the suffix)."""
    names = [photo.name + ".xmp", photo.name + ".XMP", photo.stem + ".xmp", photo.stem + ".XMP"]
    out: list[Path] = []
    for n in dict.fromkeys(names):
        p = photo.with_name(n)
        try:
            if stat.S_ISREG(os.stat(p).st_mode) and p not in out:
                out.append(p)
        except (OSError, ValueError):
            continue
    return out


def read_sidecars(photo: Path, now: float | None = None) -> list[XmpFields]:
    """The parsed sidecars of ``photo`` (unreadable or oversized ones left out)."""
    out: list[XmpFields] = []
    for p in sidecar_paths(photo):
        try:
            with open(p, "rb") as f:
                data = f.read(MAX_SIDECAR_BYTES + 1)
        except OSError:
            continue
        if len(data) <= MAX_SIDECAR_BYTES:
            out.append(parse_xmp(data, now))
    return out


def _descriptions(root: Element) -> Iterator[Element]:
    yield from root.iter(f"{{{_RDF}}}Description")


def _first(root: Element, ns: str, name: str) -> str | None:
    """A simple property's value, written as an attribute or as an element, in any rdf:Description."""
    key = f"{{{_NS[ns]}}}{name}"
    for d in _descriptions(root):
        if key in d.attrib:
            return d.attrib[key]
        el = d.find(key)
        if el is not None and el.text and el.text.strip():
            return el.text.strip()
    return None


def _alt(desc: Element, ns: str, name: str) -> list[str]:
    """A language alternative: the x-default text first, then the others (an attribute counts too)."""
    key = f"{{{_NS[ns]}}}{name}"
    texts = [desc.attrib[key]] if key in desc.attrib else []
    for el in desc.findall(key):
        items = el.findall(f"{{{_RDF}}}Alt/{{{_RDF}}}li") or [el]
        items.sort(key=lambda li: li.get(_XML_LANG, "") != "x-default")
        texts += [li.text for li in items if li.text]
    return [s for s in (" ".join(t.split()) for t in texts) if s]


def _bag(desc: Element, ns: str, name: str) -> list[str]:
    """An unordered or ordered array's items (or a plain text value)."""
    key = f"{{{_NS[ns]}}}{name}"
    texts = [desc.attrib[key]] if key in desc.attrib else []
    for el in desc.findall(key):
        items = el.findall(f"{{{_RDF}}}Bag/{{{_RDF}}}li") + el.findall(f"{{{_RDF}}}Seq/{{{_RDF}}}li")
        texts += [li.text or "" for li in items] if items else [el.text or ""]
    return [s for s in (" ".join(t.split()) for t in texts) if s]


def _gps(value: str | None, limit: float) -> float | None:
    """XMP's ``DDD,MM.mmk`` or ``DDD,MM,SSk`` (k one of N S E W) as signed degrees."""
    m = _GPS.fullmatch(value.strip()) if value else None
    if m is None or (m["ref"] in "NS") != (limit == 90.0):  # a latitude is N or S, a longitude E or W
        return None
    parts = (float(m["d"]), float(m["m"])) + ((float(m["s"]),) if m["s"] else ())
    return gps_degrees(parts, m["ref"], limit)


def _clip(text: str) -> str:
    return text if len(text) <= _MAX_TEXT else text[:_MAX_TEXT].rsplit(" ", 1)[0]
