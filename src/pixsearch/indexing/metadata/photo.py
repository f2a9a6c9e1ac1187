"""One photo's metadata, read from its file and its sidecars: :func:`read_photo_meta` -> :class:`PhotoMeta`.

Sources in order of trust for each field: the file's EXIF, then XMP in the file, then XMP sidecars (an
editor keeps there what it may not write into a raw file). The capture time falls back to the file's
modification time, marked ``taken_source='file'``, and to nothing (``'none'``) when the file cannot be
read. Descriptions and keywords are gathered from every source (sidecar first: the owner's latest edit),
each once. The file is opened once, headers only (no pixels decoded); a PNG's EXIF after its pixel data
is not looked for (it would mean decoding the whole image).
"""

from __future__ import annotations

import logging
import os
import stat
import struct
from dataclasses import dataclass, replace
from pathlib import Path

from PIL import Image

from pixsearch.indexing.metadata.dates import file_time
from pixsearch.indexing.metadata.exif import ExifFields, exif_fields
from pixsearch.indexing.metadata.iptc import IptcTexts, iptc_texts
from pixsearch.indexing.metadata.places import Places
from pixsearch.indexing.metadata.xmp import XmpFields, parse_xmp, read_sidecars
from pixsearch.media import FORMATS

__all__ = ["MAX_DESCRIPTIONS", "MAX_KEYWORDS", "PhotoMeta", "read_photo_meta"]

log = logging.getLogger("pixsearch.indexing.metadata")

MAX_DESCRIPTIONS = 5
MAX_KEYWORDS = 100
_MAX_KEYWORD = 100  # characters: a longer "keyword" is a sentence pasted in the wrong field
# What Pillow's parsers raise on damaged metadata (bad offsets, truncated IFDs, odd types): the field
# is then absent, and indexing goes on.
_BROKEN = (
    OSError,
    ValueError,
    TypeError,
    KeyError,
    IndexError,
    SyntaxError,
    struct.error,
    ZeroDivisionError,
    OverflowError,
    RecursionError,
    Image.DecompressionBombError,
)


@dataclass(frozen=True)
class PhotoMeta:
    """What a photo file says about itself. ``taken_at`` is ISO 8601 as written (with its offset when
    known), ``taken_ts`` the same instant in UTC epoch seconds, ``taken_source`` 'exif' (the camera's
    time, from EXIF or XMP), 'file' (the file's modification time) or 'none'."""

    taken_at: str | None = None
    taken_ts: float | None = None
    taken_source: str = "none"
    camera_make: str | None = None
    camera_model: str | None = None
    lens: str | None = None
    lat: float | None = None
    lon: float | None = None
    place: str | None = None
    country: str | None = None
    orientation: int | None = None
    width: int | None = None  # from the header, as stored (before EXIF orientation)
    height: int | None = None
    descriptions: tuple[str, ...] = ()  # the owner's captions: IPTC Caption-Abstract, XMP dc:description
    keywords: tuple[str, ...] = ()  # IPTC Keywords, XMP dc:subject


def read_photo_meta(path: Path, places: Places | None = None, now: float | None = None) -> PhotoMeta:
    """The metadata of the photo at ``path`` and its sidecars; ``places`` names its GPS position.

    Never raises for a bad file: what cannot be read is absent. ``now`` (tests) is the clock that
    absurd future dates are judged by."""
    try:
        st = os.stat(path)
    except (OSError, ValueError):
        st = None
    ex, xmps, iptc, size = ExifFields(), list[XmpFields](), IptcTexts(), None
    if st is not None and stat.S_ISREG(st.st_mode):  # never open a FIFO or a device: it could block
        ex, inner, iptc, size = _from_file(path, now)
        xmps = read_sidecars(path, now) + ([inner] if inner is not None else [])
    meta = _merge(ex, xmps, iptc, size)
    if meta.taken_source == "none" and st is not None:
        ft = file_time(st.st_mtime, now)
        if ft is not None:
            meta = replace(meta, taken_at=ft.iso, taken_ts=ft.ts, taken_source="file")
    if places is not None and meta.lat is not None and meta.lon is not None:
        found = places.names([(meta.lat, meta.lon)])
        if found and found[0] is not None:
            meta = replace(meta, place=found[0].place or None, country=found[0].country or None)
    return meta


def _from_file(
    path: Path, now: float | None
) -> tuple[ExifFields, XmpFields | None, IptcTexts, tuple[int, int] | None]:
    ex, inner, iptc, size = ExifFields(), None, IptcTexts(), None
    try:
        Image.init()
        with Image.open(path, formats=[f for f in FORMATS if f in Image.OPEN]) as im:
            size = im.size
            try:
                if im.format != "PNG" or "exif" in im.info:  # see the module's docstring
                    ex = exif_fields(im.getexif(), now)
            except _BROKEN as exc:
                log.debug("%s: unreadable EXIF (%s)", path, exc)
            packet = im.info.get("xmp")
            if isinstance(packet, bytes | str):
                inner = parse_xmp(packet, now)
            iptc = iptc_texts(im)
    except _BROKEN as exc:  # not an image we read, or its header is broken: its sidecars still count
        log.debug("%s: no metadata from the file (%s)", path, exc)
    return ex, inner, iptc, size


def _merge(ex: ExifFields, xmps: list[XmpFields], iptc: IptcTexts, size: tuple[int, int] | None) -> PhotoMeta:
    def pick(field: str) -> object:
        for source in (ex, *reversed(xmps)):  # EXIF, then XMP in the file, then the sidecars
            v = getattr(source, field, None)
            if v is not None:
                return v
        return None

    taken = pick("taken")
    lat, lon = ex.lat, ex.lon
    if lat is None:
        pos = next(((x.lat, x.lon) for x in reversed(xmps) if x.lat is not None), (None, None))
        lat, lon = pos
    descs = [d for x in xmps for d in x.descriptions] + list(iptc.descriptions)
    words = [w for x in xmps for w in x.keywords] + list(iptc.keywords)
    return PhotoMeta(
        taken_at=getattr(taken, "iso", None),
        taken_ts=getattr(taken, "ts", None),
        taken_source="exif" if taken is not None else "none",
        camera_make=_str(pick("make")),
        camera_model=_str(pick("model")),
        lens=_str(pick("lens")),
        lat=lat,
        lon=lon,
        orientation=ex.orientation,
        width=size[0] if size else None,
        height=size[1] if size else None,
        descriptions=_unique(descs, MAX_DESCRIPTIONS),
        keywords=_unique([w for w in words if len(w) <= _MAX_KEYWORD], MAX_KEYWORDS),
    )


def _str(v: object) -> str | None:
    return v if isinstance(v, str) else None


def _unique(texts: list[str], most: int) -> tuple[str, ...]:
    """Each text once (case and spacing ignored), first spelling kept, at most ``most``."""
    seen: dict[str, str] = {}
    for t in texts:
        s = " ".join(t.split())
        if s and s.casefold() not in seen:
            seen[s.casefold()] = s
    return tuple(seen.values())[:most]
