"""search/filters.py: what people type becomes typed filters, or a one-line QueryError."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from pixsearch.errors import QueryError
from pixsearch.search.filters import DEFAULT_KM, Filters, check_sort, parse_date, parse_near


def _ts(*args: int) -> float:
    return datetime(*args, tzinfo=UTC).timestamp()


def test_dates_are_the_start_of_the_period_named() -> None:
    assert parse_date("2024") == _ts(2024, 1, 1)
    assert parse_date("2024-05") == _ts(2024, 5, 1)
    assert parse_date(" 2024-5-17 ") == _ts(2024, 5, 17)
    assert parse_date("2024-05-17T10:30:00+02:00") == _ts(2024, 5, 17, 8, 30)
    for bad in ("May 2024", "2024-13", "2024-02-30", "yesterday", ""):
        with pytest.raises(QueryError, match="is not a date"):
            parse_date(bad)


def test_near_takes_a_position_and_an_optional_radius() -> None:
    assert parse_near("48.8584, 2.2945, 2") == (48.8584, 2.2945, 2.0)
    assert parse_near("-33.86,151.21") == (-33.86, 151.21, DEFAULT_KM)
    for bad in ("paris", "48.8", "1,2,3,4", "91,0", "0,181", "0,0,0", "nan,0"):
        with pytest.raises(QueryError, match="near"):
            parse_near(bad)


def test_parse_keeps_what_was_given_and_checks_the_range(tmp_path: Path) -> None:
    f = Filters.parse(after="2024-05", before="2024-06", camera=" canon ", folder=tmp_path, place="")
    assert (f.after, f.before) == (_ts(2024, 5, 1), _ts(2024, 6, 1))
    assert f.camera == "canon" and f.place is None and f.near is None
    assert f.folders == (str(tmp_path.resolve()) + "/",) and f.active
    assert not Filters.parse(after="", camera="  ").active
    with pytest.raises(QueryError, match="not before"):
        Filters.parse(after="2024-06", before="2024-05")
    assert check_sort("-date") == "-date"
    with pytest.raises(QueryError, match="unknown sort"):
        check_sort("newest")


def test_gather_plan_is_exact_when_few_pass_or_deeper_would_miss() -> None:
    from pixsearch.search.filters import DEEPER_MAX, EXACT_ALLOWED, gather_plan

    assert gather_plan(EXACT_ALLOWED, 10**6, 10, 200) == (200, True)
    # half the library passes: twice as deep, plenty of allowed photos come back
    assert gather_plan(50_000, 100_000, 10, 200) == (400, False)
    # 0.6 % of a million: even ten times deeper brings ~12 allowed photos back for a depth of 10
    n, exact = gather_plan(6_000, 10**6, 10, 200)
    assert n == 200 * DEEPER_MAX and exact
