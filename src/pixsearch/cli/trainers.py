"""How ``train ...`` commands report a trainer's events: one place, so every trainer reports alike."""

from __future__ import annotations

from collections.abc import Callable, Mapping

from pixsearch.cli.output import note

__all__ = ["skipped_line", "trainer_log"]


def trainer_log(
    prog: Callable[[int, int], None] | None, as_json: bool, lines: Mapping[str, Callable[[dict], str]]
) -> Callable[[dict], None]:
    """The ``log`` a ``train ...`` command hands its trainer: feature extraction drives the progress bar,
    and each event named in ``lines`` prints the line made from it on stderr (never with ``--json``,
    whose stdout is the summary alone, nor with ``--quiet``)."""

    def log(e: dict) -> None:
        event: str = e.get("event", "")
        if event == "features" and prog:
            prog(e["done"], e["total"])
        elif event in lines and not as_json:
            note.print(lines[event](e), highlight=False)

    return log


def skipped_line(e: dict) -> str:
    """A photo the trainer could not read (it trains on without it)."""
    from rich.markup import escape

    return f"[yellow]skipped[/] {escape(str(e['reason']))}"
