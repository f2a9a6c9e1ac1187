"""What the ``pixsearch`` command prints for people: consoles, progress, reports and next-step hints.

Three consoles: ``out`` (stdout: results, reports), ``note`` (stderr: warnings, hints, progress; silent
with ``--quiet``) and ``err`` (stderr: the one error line, never silent). Rich is imported when one of
them first prints, so a ``--json`` command never loads it. ``NO_COLOR`` (no-color.org) turns off every
escape code, bold and hyperlinks included, not only colours as Rich alone would.
"""

from __future__ import annotations

import os
import shlex
import sys
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

__all__ = ["LazyConsole", "err", "note", "out", "set_quiet", "progress", "phrase_lines", "print_phrases"]
__all__ += ["next_steps"]


class LazyConsole:
    """A rich ``Console`` built on first use (attributes pass through to it).

    Why: importing rich costs ~40 ms that a ``--json`` command, a cold ``search`` above all, never needs.
    """

    def __init__(self, quietable: bool = True, **options: Any) -> None:
        self._options = options
        self._quietable = quietable
        self._console: Any = None

    @property
    def console(self) -> Any:
        """The real Console (for APIs that want one, e.g. ``rich.progress.Progress(console=...)``)."""
        if self._console is None:
            from rich.console import Console

            opts = dict(self._options)
            if os.environ.get("NO_COLOR"):  # Rich's own no_color keeps bold, underline and links
                opts["color_system"] = None
            self._console = Console(quiet=self._quietable and _quiet[0], **opts)
        return self._console

    def set_quiet(self, quiet: bool) -> None:
        if self._console is not None and self._quietable:
            self._console.quiet = quiet

    def __getattr__(self, name: str) -> Any:
        return getattr(self.console, name)


_quiet = [False]
out = LazyConsole()
note = LazyConsole(stderr=True, soft_wrap=True)
err = LazyConsole(quietable=False, stderr=True, soft_wrap=True)  # one error, one line: never hard-wrapped


def set_quiet(quiet: bool) -> None:
    """``--quiet``: stdout's human output, warnings, hints and progress say nothing; errors still do."""
    _quiet[0] = quiet
    out.set_quiet(quiet)
    note.set_quiet(quiet)


def is_quiet() -> bool:
    return _quiet[0]


@contextmanager
def progress(enabled: bool, label: str) -> Iterator[Callable[[int, int], None] | None]:
    """A progress bar on stderr while the block runs, on a terminal only (never with ``--json``,
    ``--quiet`` or a pipe). The callback it yields sets done/total; a step that never calls it shows a
    pulsing bar and the time taken, so a long wait is never a silent one."""
    if not (enabled and not _quiet[0] and sys.stderr.isatty()):
        yield None
        return
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TaskProgressColumn,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )

    cols = (
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TaskProgressColumn(),
        TextColumn("{task.fields[rate]}"),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
    )
    with Progress(*cols, console=note.console, transient=True) as bar:
        task = bar.add_task(label, total=None, rate="")

        def update(done: int, total: int) -> None:
            t = bar.tasks[0]
            rate = f"{t.speed:.1f}/s" if t.speed else ""
            bar.update(task, completed=done, total=total, rate=rate)

        yield update


def phrase_lines(phrases: Sequence[str], width: int, sep: str = ", ") -> list[str]:
    """``phrases`` joined by ``sep`` into lines of at most ``width`` characters, broken only between
    phrases: "failed 0" never ends one line and starts the next (a phrase longer than a line has one
    to itself)."""
    lines: list[str] = []
    cur = ""
    for i, p in enumerate(phrases):
        piece = p + (sep.rstrip() if i < len(phrases) - 1 else "")
        if cur and len(cur) + 1 + len(piece) > width:
            lines.append(cur)
            cur = piece
        else:
            cur = f"{cur} {piece}" if cur else piece
    if cur:
        lines.append(cur)
    return lines


def print_phrases(phrases: Sequence[str]) -> None:
    """A report line on stdout, wrapped between phrases to the terminal's width (``phrase_lines``)."""
    width = max(20, out.width)
    for line in phrase_lines(phrases, width):
        out.print(line, highlight=False, markup=False, soft_wrap=True)


def next_steps(library: Path, given: bool) -> None:
    """After a library's first index, the commands to type next (stderr, so stdout stays the report).
    ``given``: the library was named (``-L`` / env), so the hints name it too."""
    from rich.markup import escape

    lib = f" -L {shlex.quote(str(library))}" if given else ""
    note.print("next:", style="bold", highlight=False)
    for cmd, what in (
        (f'pixsearch search "a dog on a beach"{lib}', "find photos by words"),
        (f"pixsearch serve{lib}", "browse and search in a web page"),
    ):
        note.print(f"  {escape(cmd)}    [dim]# {what}[/]", highlight=False, soft_wrap=True)
