"""Real Flickr8k photos given the metadata a camera or an editor writes: EXIF through Pillow (IFD0, the
Exif IFD, the GPS IFD), XMP packets (in the file or as sidecars) and an IPTC block in a JPEG's APP13
segment (Pillow cannot write one, so it is built here byte by byte, as Photoshop lays it out)."""

from __future__ import annotations

from pathlib import Path
from typing import Any
from xml.sax.saxutils import escape

from PIL import Image

PARIS = (48.8566, 2.3522)


def dms(deg: float) -> tuple[float, float, float]:
    """Degrees as EXIF's (degrees, minutes, seconds)."""
    d = abs(deg)
    m = (d - int(d)) * 60
    return float(int(d)), float(int(m)), round((m - int(m)) * 60, 4)


def exif_for(
    taken: str | None = None,
    offset: str | None = None,
    make: str | None = None,
    model: str | None = None,
    lens: str | None = None,
    gps: tuple[Any, ...] | None = None,
    orientation: int | None = None,
    extra: dict[int, Any] | None = None,
) -> Image.Exif:
    """An Exif block; ``gps`` is (lat, lon) in degrees or the raw (lat, ref, lon, ref) tag values."""
    exif = Image.Exif()
    if make is not None:
        exif[0x010F] = make
    if model is not None:
        exif[0x0110] = model
    if orientation is not None:
        exif[0x0112] = orientation
    sub = exif.get_ifd(0x8769)
    if taken is not None:
        sub[0x9003] = taken
    if offset is not None:
        sub[0x9011] = offset
    if lens is not None:
        sub[0xA434] = lens
    for tag, value in (extra or {}).items():
        sub[tag] = value
    if gps is not None:
        g = exif.get_ifd(0x8825)
        if len(gps) == 2:
            lat, lon = gps
            gps = (dms(lat), "N" if lat >= 0 else "S", dms(lon), "E" if lon >= 0 else "W")
        g[2], g[1], g[4], g[3] = gps
    return exif


def xmp_packet(
    description: str | None = None, keywords: tuple[str, ...] = (), extra: str = "", attrs: str = ""
) -> bytes:
    """An XMP packet as Lightroom writes one: dc:description (a language alternative), dc:subject (a bag)."""
    body = ""
    if description is not None:
        body += (
            '<dc:description><rdf:Alt><rdf:li xml:lang="x-default">'
            f"{escape(description)}</rdf:li></rdf:Alt></dc:description>"
        )
    if keywords:
        items = "".join(f"<rdf:li>{escape(k)}</rdf:li>" for k in keywords)
        body += f"<dc:subject><rdf:Bag>{items}</rdf:Bag></dc:subject>"
    return (
        '<?xpacket begin="\ufeff" id="W5M0MpCehiHzreSzNTczkc9d"?>'
        '<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#">'
        '<rdf:Description rdf:about="" xmlns:dc="http://purl.org/dc/elements/1.1/" '
        'xmlns:exif="http://ns.adobe.com/exif/1.0/" xmlns:photoshop="http://ns.adobe.com/photoshop/1.0/" '
        f'xmlns:aux="http://ns.adobe.com/exif/1.0/aux/" {attrs}>'
        f"{body}{extra}</rdf:Description></rdf:RDF></x:xmpmeta>"
        '<?xpacket end="w"?>'
    ).encode()


def with_iptc(jpeg: bytes, caption: str | None, keywords: tuple[str, ...], utf8: bool = True) -> bytes:
    """``jpeg`` with an APP13 Photoshop block holding an IPTC-IIM caption and keywords."""
    enc = "utf-8" if utf8 else "latin-1"

    def dataset(record: int, tag: int, data: bytes) -> bytes:
        return b"\x1c" + bytes([record, tag]) + len(data).to_bytes(2, "big") + data

    iim = dataset(1, 90, b"\x1b%G") if utf8 else b""
    iim += dataset(2, 0, b"\x00\x04")  # record version
    if caption is not None:
        iim += dataset(2, 120, caption.encode(enc))
    iim += b"".join(dataset(2, 25, k.encode(enc)) for k in keywords)
    resource = b"8BIM" + (0x0404).to_bytes(2, "big") + b"\x00\x00" + len(iim).to_bytes(4, "big") + iim
    resource += b"\x00" * (len(iim) % 2)
    payload = b"Photoshop 3.0\x00" + resource
    segment = b"\xff\xed" + (len(payload) + 2).to_bytes(2, "big") + payload
    assert jpeg[:2] == b"\xff\xd8"
    return jpeg[:2] + segment + jpeg[2:]


def photo(
    src: Path, dst: Path, exif: Image.Exif | None = None, xmp: bytes | None = None, quality: int = 90
) -> Path:
    """``src`` saved as ``dst`` (a new JPEG: its own bytes, so its own photo) with this metadata."""
    with Image.open(src) as im:
        kw: dict[str, Any] = {"quality": quality}
        if exif is not None:
            kw["exif"] = exif
        if xmp is not None:
            kw["xmp"] = xmp
        dst.parent.mkdir(parents=True, exist_ok=True)
        im.convert("RGB").save(dst, **kw)
    return dst
