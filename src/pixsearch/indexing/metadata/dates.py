"""Capture times as cameras and editors write them, parsed strictly: anything else is no time at all.

Accepted: EXIF's ``2019:05:01 12:00:00`` (separators ``:`` or ``-`` in the date, ``T`` or a space before
the time), missing seconds, fractional seconds, a bare date (XMP allows one), and an offset either in the
text (``+02:00``, ``+0200``, ``Z``: XMP, ISO 8601) or beside it (EXIF ``OffsetTimeOriginal``). Years before
photography (1826) and instants more than a day ahead of now are absurd (a camera whose clock was never
set says 2099, or the epoch it resets to: midnight on 1 January 1900, 1904, 1970, 1980 or 2000): such a
time is dropped, and the caller falls back to the file's time.

A time without an offset is a wall-clock time of an unknown zone; its ``ts`` is taken in this machine's
zone (as Python's ``datetime.timestamp`` does), which is what the file times beside it are shown in.
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone

__all__ = ["FIRST_YEAR", "CaptureTime", "file_time", "parse_offset", "parse_taken"]

FIRST_YEAR = 1826  # the oldest surviving photograph
_SLACK = 86400.0  # a clock a little ahead (time zones, a camera set by hand) is still believed
_RESET_YEARS = frozenset({1900, 1904, 1970, 1980, 2000})  # epochs an unset camera clock starts from

_DATE_TIME = re.compile(
    r"(?P<y>\d{4})[:\-](?P<mo>\d{1,2})[:\-](?P<d>\d{1,2})"
    r"(?:[T ]+(?P<h>\d{1,2}):(?P<mi>\d{2})(?::(?P<s>\d{2})(?:[.,](?P<frac>\d{1,9}))?)?)?"
    r"\s*(?P<off>Z|[+\-]\d{2}:?\d{2})?"
)
_OFFSET = re.compile(r"(?P<sign>[+\-])(?P<h>\d{2}):?(?P<m>\d{2})")


@dataclass(frozen=True)
class CaptureTime:
    """One instant: ``iso`` as written (ISO 8601, with its offset when known), ``ts`` UTC epoch seconds."""

    iso: str
    ts: float


def parse_offset(text: object) -> timezone | None:
    """``+02:00``, ``-0530``, ``Z`` -> a timezone; None for anything else (absent, garbage, over 14 h)."""
    s = _clean(text)
    if s is None:
        return None
    if s.upper() == "Z":
        return UTC
    m = _OFFSET.fullmatch(s)
    if m is None:
        return None
    minutes = int(m["h"]) * 60 + int(m["m"])
    if int(m["m"]) >= 60 or minutes > 14 * 60:
        return None
    return timezone(timedelta(minutes=-minutes if m["sign"] == "-" else minutes))


def parse_taken(text: object, offset: object = None, now: float | None = None) -> CaptureTime | None:
    """A capture time from ``text`` (offset ``offset`` when the text has none), or None when it is
    missing, malformed, impossible (month 13, ``0000:00:00``) or absurd (before 1826, after now + 1 day)."""
    s = _clean(text)
    if s is None:
        return None
    m = _DATE_TIME.fullmatch(s)
    if m is None:
        return None
    try:
        frac = m["frac"] or ""
        local = datetime(
            int(m["y"]),
            int(m["mo"]),
            int(m["d"]),
            int(m["h"] or 0),
            int(m["mi"] or 0),
            int(m["s"] or 0),
            int((frac + "000000")[:6]),
        )
    except ValueError:  # month 13, day 0, hour 25, second 60...
        return None
    tz = parse_offset(m["off"]) if m["off"] else parse_offset(offset)
    if m["off"] and tz is None:
        return None
    when = local.replace(tzinfo=tz) if tz is not None else local
    try:
        ts = when.timestamp()
    except (OverflowError, OSError, ValueError):  # outside what this platform's clock can name
        return None
    if not _plausible(local.year, ts, now) or _reset_clock(local):
        return None
    iso = when.isoformat(timespec="seconds") if m["h"] is not None else when.date().isoformat()
    if m["h"] is None and tz is not None:
        iso += when.isoformat()[19:]  # a bare date keeps its offset: "2019-05-01+02:00"
    return CaptureTime(iso, ts)


def file_time(mtime: float, now: float | None = None) -> CaptureTime | None:
    """The file's modification time as a capture time (in this machine's zone), unless it is absurd too."""
    try:
        when = datetime.fromtimestamp(mtime).astimezone()
    except (OverflowError, OSError, ValueError):
        return None
    if not _plausible(when.year, mtime, now):
        return None
    return CaptureTime(when.isoformat(timespec="seconds"), float(mtime))


def _plausible(year: int, ts: float, now: float | None) -> bool:
    limit = (time.time() if now is None else now) + _SLACK
    return year >= FIRST_YEAR and ts <= limit


def _reset_clock(t: datetime) -> bool:
    return t.year in _RESET_YEARS and (t.month, t.day, t.hour, t.minute, t.second) == (1, 1, 0, 0, 0)


def _clean(value: object) -> str | None:
    """EXIF ASCII as text: bytes decoded, NULs and padding stripped; None when nothing is left."""
    if isinstance(value, bytes):
        value = value.decode("ascii", "replace")
    if not isinstance(value, str):
        return None
    s = value.replace("\x00", " ").strip()
    return s or None
