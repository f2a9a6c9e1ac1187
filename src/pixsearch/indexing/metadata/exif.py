"""The EXIF fields photographers search by, read with Pillow's ``Image.getexif`` (IFD0, the Exif IFD
and the GPS IFD): capture time with its offset, camera make and model, lens, GPS position, orientation.

Each field is read on its own and checked; a value that is missing, of the wrong type, or absurd
(latitude 200, orientation 9, the 1900 of an unset clock) leaves that field None and the rest stands.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from PIL import Image

from pixsearch.indexing.metadata.dates import CaptureTime, parse_taken

__all__ = ["ExifFields", "exif_fields", "gps_degrees", "text_value"]

# Tag numbers (EXIF 2.32 / TIFF 6): named here so a reader need not look them up.
_MAKE, _MODEL, _ORIENTATION = 0x010F, 0x0110, 0x0112
_EXIF_IFD, _GPS_IFD = 0x8769, 0x8825
_DATE_TIME_ORIGINAL, _OFFSET_TIME_ORIGINAL = 0x9003, 0x9011
_LENS_MAKE, _LENS_MODEL = 0xA433, 0xA434
_GPS_LAT_REF, _GPS_LAT, _GPS_LON_REF, _GPS_LON = 1, 2, 3, 4
_MAX_TEXT = 200  # a make, model or lens longer than this is junk (a maker note spilled into a tag)


@dataclass(frozen=True)
class ExifFields:
    taken: CaptureTime | None = None
    make: str | None = None
    model: str | None = None
    lens: str | None = None
    lat: float | None = None
    lon: float | None = None
    orientation: int | None = None


def exif_fields(exif: Image.Exif, now: float | None = None) -> ExifFields:
    """The fields of one photo's EXIF (an empty ``Image.Exif`` gives all None)."""
    sub = _ifd(exif, _EXIF_IFD)
    gps = _ifd(exif, _GPS_IFD)
    lat, lon = _position(gps)
    lens = text_value(sub.get(_LENS_MODEL))
    lens_make = text_value(sub.get(_LENS_MAKE))
    if lens and lens_make and not lens.lower().startswith(lens_make.lower()):
        lens = f"{lens_make} {lens}"
    return ExifFields(
        taken=parse_taken(sub.get(_DATE_TIME_ORIGINAL), sub.get(_OFFSET_TIME_ORIGINAL), now),
        make=text_value(exif.get(_MAKE)),
        model=text_value(exif.get(_MODEL)),
        lens=lens,
        lat=lat,
        lon=lon,
        orientation=_orientation(exif.get(_ORIENTATION)),
    )


def text_value(value: object) -> str | None:
    """An ASCII/UTF-8 tag as one line of text; None when empty, not text, or implausibly long."""
    if isinstance(value, bytes):
        raw = value
        try:
            value = raw.decode("utf-8")
        except UnicodeDecodeError:
            value = raw.decode("latin-1")
    if not isinstance(value, str):
        return None
    s = " ".join(value.replace("\x00", " ").split())
    if not s or len(s) > _MAX_TEXT or not s.isprintable():
        return None
    return s


def gps_degrees(value: object, ref: object, limit: float) -> float | None:
    """Degrees from EXIF's (degrees, minutes, seconds) rationals (or fewer parts) and its N/S/E/W
    reference; None when any part is not a finite number, minutes or seconds are out of range, or the
    result is beyond ``limit`` (90 for latitude, 180 for longitude)."""
    parts = value if isinstance(value, tuple | list) else (value,)
    if not 1 <= len(parts) <= 3:
        return None
    try:
        nums = [float(p) for p in parts]  # IFDRational: x/0 is nan
    except (TypeError, ValueError, ZeroDivisionError, OverflowError):
        return None
    if not all(math.isfinite(n) and n >= 0 for n in nums) or any(n >= 60 for n in nums[1:]):
        return None
    deg = sum(n / 60**i for i, n in enumerate(nums))
    r = text_value(ref)
    if r is not None and r.upper() in ("S", "W"):
        deg = -deg
    elif r is not None and r.upper() not in ("N", "E"):
        return None
    return deg if abs(deg) <= limit else None


def _position(gps: Mapping[int, Any]) -> tuple[float | None, float | None]:
    lat = gps_degrees(gps.get(_GPS_LAT), gps.get(_GPS_LAT_REF), 90.0)
    lon = gps_degrees(gps.get(_GPS_LON), gps.get(_GPS_LON_REF), 180.0)
    if lat is None or lon is None or (lat == 0.0 and lon == 0.0):  # 0,0: a receiver with no fix
        return None, None
    return lat, lon


def _orientation(value: object) -> int | None:
    if isinstance(value, tuple | list) and len(value) == 1:
        value = value[0]
    return value if isinstance(value, int) and 1 <= value <= 8 else None


def _ifd(exif: Image.Exif, tag: int) -> Mapping[int, Any]:
    """A sub-IFD; nothing when it is absent or its pointer is broken (Pillow raises on bad offsets)."""
    try:
        return exif.get_ifd(tag)
    except (OSError, ValueError, TypeError, KeyError, IndexError, SyntaxError):
        return {}
