"""Reports broken only between phrases; quiet and NO_COLOR consoles (cli/output.py)."""

from __future__ import annotations

import pytest

from pixsearch.cli import output
from pixsearch.cli.output import phrase_lines

PHRASES = ["added 100", "updated 0", "unchanged 0", "duplicates 0", "removed 0", "captions 500", "failed 0"]


@pytest.mark.parametrize("width", [14, 30, 40, 60, 80, 200])
def test_phrase_lines_never_split_a_phrase(width: int) -> None:
    lines = phrase_lines(PHRASES, width)
    assert all(len(line) <= width for line in lines)
    pieces = [p.strip() for line in lines for p in line.split(",") if p.strip()]
    assert pieces == PHRASES  # every phrase whole, in order, on one line
    assert ", ".join(PHRASES) == " ".join(lines)


def test_a_phrase_wider_than_the_line_has_a_line_to_itself() -> None:
    assert phrase_lines(["re-encoded 12 paths with a-very-long-model-name", "failed 0"], 20) == [
        "re-encoded 12 paths with a-very-long-model-name,",
        "failed 0",
    ]


def test_quiet_silences_output_and_notes_but_not_errors(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(output, "_quiet", [False])
    out, note, err = output.LazyConsole(), output.LazyConsole(stderr=True), output.LazyConsole(False)
    monkeypatch.setattr(output, "out", out)
    monkeypatch.setattr(output, "note", note)
    assert out.quiet is False  # built before --quiet was parsed
    output.set_quiet(True)
    assert out.quiet and note.quiet and not err.quiet
    assert output.LazyConsole().quiet  # and built after


def test_no_color_turns_off_every_escape_code(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NO_COLOR", "1")
    assert output.LazyConsole(force_terminal=True).color_system is None
    monkeypatch.delenv("NO_COLOR")
    assert output.LazyConsole(force_terminal=True, color_system="standard").color_system == "standard"
