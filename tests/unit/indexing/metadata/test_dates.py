"""Capture times in the formats cameras and editors write, and the ones nobody should believe."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest

from pixsearch.indexing.metadata.dates import file_time, parse_offset, parse_taken

NOW = datetime(2024, 6, 1, tzinfo=UTC).timestamp()
PLUS2 = timezone(timedelta(hours=2))


NOON = datetime(2019, 5, 1, 12, tzinfo=PLUS2)
ISO = "2019-05-01T12:00:00+02:00"


@pytest.mark.parametrize(
    ("text", "offset", "iso", "when"),
    [
        ("2019:05:01 12:00:00", "+02:00", ISO, NOON),  # EXIF + OffsetTimeOriginal
        ("2019-05-01T12:00:00+02:00", None, ISO, NOON),  # XMP / ISO 8601
        ("2019-05-01T12:00:00+0200", "-05:00", ISO, NOON),  # the text's own offset wins
        ("2019-05-01T10:00:00Z", None, "2019-05-01T10:00:00+00:00", datetime(2019, 5, 1, 10, tzinfo=UTC)),
        ("2019:05:01 12:00", "+02:00", ISO, NOON),  # no seconds
        ("2019:05:01 12:00:00.250", "+02:00", ISO, NOON + timedelta(milliseconds=250)),
        (b"2019:05:01 12:00:00\x00", b"+02:00\x00", ISO, NOON),  # NUL-padded EXIF ASCII
        ("1826:06:01 09:00:00", "+00:00", "1826-06-01T09:00:00+00:00", datetime(1826, 6, 1, 9, tzinfo=UTC)),
    ],
)
def test_times_as_written_with_their_offset(text: object, offset: object, iso: str, when: datetime) -> None:
    got = parse_taken(text, offset, now=NOW)
    assert got is not None and got.iso == iso and got.ts == pytest.approx(when.timestamp())


def test_a_time_without_offset_is_a_wall_clock_time_in_this_machines_zone() -> None:
    got = parse_taken("2019:05:01 12:00:00", None, now=NOW)
    assert got is not None and got.iso == "2019-05-01T12:00:00"
    assert got.ts == datetime(2019, 5, 1, 12).timestamp()
    bare = parse_taken("2019-05-01", None, now=NOW)  # XMP may give a date alone
    assert bare is not None and bare.iso == "2019-05-01"


@pytest.mark.parametrize(
    "text",
    [
        "1900:01:01 00:00:00",  # a camera whose clock was never set
        "1970:01:01 00:00:00",
        "2000:01:01 00:00:00",
        "1825:12:31 23:59:59",  # before photography
        "2099:01:01 00:00:00",  # the future
        "2024:06:03 00:00:00",  # more than a day after NOW
        "0000:00:00 00:00:00",
        "    :  :     :  :  ",
        "2019:13:01 12:00:00",
        "2019:02:30 12:00:00",
        "2019:05:01 25:00:00",
        "2019:05:01 12:00:00+99:00",
        "yesterday",
        "",
        "2019:05:01 12:00:00 and more",
        12345,
        None,
    ],
)
def test_absurd_or_garbled_times_are_no_time(text: object) -> None:
    assert parse_taken(text, "+02:00", now=NOW) is None


def test_a_clock_a_few_hours_ahead_is_still_believed() -> None:
    assert parse_taken("2024:06:01 20:00:00", "+00:00", now=NOW) is not None


def test_old_photos_are_believed_unless_at_a_clock_reset() -> None:
    """A scan of an 1890s print may say so; only the exact instants unset clocks start from are dropped."""
    assert parse_taken("1895:07:14 15:30:00", None, now=NOW) is not None
    assert parse_taken("1900:01:01 00:00:01", None, now=NOW) is not None


@pytest.mark.parametrize(
    ("text", "minutes"), [("+02:00", 120), ("-05:30", -330), ("+0545", 345), ("Z", 0), ("+14:00", 840)]
)
def test_offsets(text: str, minutes: int) -> None:
    tz = parse_offset(text)
    assert tz is not None and tz.utcoffset(None) == timedelta(minutes=minutes)


@pytest.mark.parametrize("text", ["+15:00", "+02:60", "2", "GMT+2", "", None, b"\x00\x00"])
def test_bad_offsets_are_none(text: object) -> None:
    assert parse_offset(text) is None


def test_file_times_are_bounded_too() -> None:
    ft = file_time(datetime(2020, 1, 2, 3, 4, 5, tzinfo=UTC).timestamp(), now=NOW)
    assert (
        ft is not None
        and ft.iso.startswith("2020-01-0")
        and ft.ts == datetime(2020, 1, 2, 3, 4, 5, tzinfo=UTC).timestamp()
    )
    assert datetime.fromisoformat(ft.iso).utcoffset() is not None  # marked with this machine's offset
    assert file_time(NOW + 10 * 86400, now=NOW) is None  # a file "modified" next week
    assert file_time(1e20, now=NOW) is None  # beyond what a clock can name
