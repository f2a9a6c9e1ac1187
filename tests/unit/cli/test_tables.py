"""Result tables: whole file names, one percentage, links (cli/tables.py)."""

from __future__ import annotations

import io

import pytest

from pixsearch.cli import tables
from pixsearch.cli.tables import fit_path, percent, shown_path
from pixsearch.results import Result, Withheld


@pytest.mark.parametrize(
    ("rel", "width", "want"),
    [
        ("dogs/beach/rex.jpg", 40, "dogs/beach/rex.jpg"),  # fits: as it is
        ("holidays/2019/italy/rome/day2/dog.jpg", 30, "holidays/…/rome/day2/dog.jpg"),
        ("holidays/2019/italy/rome/day2/dog.jpg", 20, "holidays/…/dog.jpg"),
        ("holidays/2019/italy/rome/day2/dog.jpg", 12, "…/dog.jpg"),
        ("holidays/2019/a_very_long_file_name.jpg", 10, "a_very_long_file_name.jpg"),  # never the name
        ("a_very_long_file_name.jpg", 5, "a_very_long_file_name.jpg"),
    ],
)
def test_fit_path_gives_way_in_the_folders_never_the_name(rel: str, width: int, want: str) -> None:
    got = fit_path(rel, width)
    assert got == want
    assert got.endswith(rel.rsplit("/", 1)[-1])


def test_percent_and_paths_relative_to_their_root() -> None:
    assert (percent(0.537), percent(1.0), percent(None)) == ("54%", "100%", "")
    roots = {1: "/photos", 2: "/photos/2019"}
    assert shown_path("/photos/2019/rome/dog.jpg", roots) == "2019/rome/dog.jpg"  # the outermost root
    assert shown_path("/elsewhere/cat.jpg", {}) == "/elsewhere/cat.jpg"


def _render(monkeypatch: pytest.MonkeyPatch, width: int, verbose: bool = False, **console: object) -> str:
    from rich.console import Console

    buf = io.StringIO()
    monkeypatch.setattr(tables.out, "_console", Console(file=buf, width=width, **console))  # type: ignore[arg-type]
    deep = "/lib/holidays/2019/italy/rome/day2/a_dog_running_on_the_beach_at_sunset.jpg"
    results = [
        Result(1, 0.044, (deep,), ("A dog runs on the beach .",), {"dense": 0.4, "bm25": 0.2}, match=0.537),
        Withheld("This image is unavailable in your country in compliance with local laws."),
        Result(2, 0.01, ("/lib/cat.jpg",), (), {"dense": 0.1}, match=0.05),
    ]
    tables.emit_results(results, False, "'a dog'", {1: "/lib"}, verbose)
    return buf.getvalue()


@pytest.mark.parametrize("width", [60, 80, 200])
def test_the_table_shows_whole_names_one_percentage_and_no_raw_score(
    monkeypatch: pytest.MonkeyPatch, width: int
) -> None:
    text = _render(monkeypatch, width)
    assert "a_dog_running_on_the_beach_at_sunset.jpg" in text and "cat.jpg" in text
    assert "54%" in text and "5%" in text
    assert "0.044" not in text and "score" not in text.split("\n\n")[0]  # no raw score column
    assert "unavailable" in text  # the withheld row: the disclaimer only
    assert all(len(line) <= width for line in text.splitlines())
    if width >= 200:
        assert "holidays/2019/italy/rome/day2/" in text


def test_verbose_adds_the_raw_signals(monkeypatch: pytest.MonkeyPatch) -> None:
    text = _render(monkeypatch, 120, verbose=True)
    assert "score=0.044" in text and "dense=0.400" in text and "bm25=0.200" in text


def test_each_photo_is_a_link_to_its_file_on_a_terminal(monkeypatch: pytest.MonkeyPatch) -> None:
    text = _render(monkeypatch, 120, force_terminal=True, color_system="standard")
    assert "\x1b]8;" in text and "/lib/holidays/2019/italy/rome/day2/a_dog_running" in text
    plain = _render(monkeypatch, 120)  # not a terminal: no escape codes at all
    assert "\x1b" not in plain
