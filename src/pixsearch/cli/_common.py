"""Shared parts of the ``pixsearch`` command: the Typer apps, options, error mapping, progress, output.

The ``cli`` package is the only place that prints or exits. Human output is a Rich table on a TTY;
``--json`` prints one JSON document on stdout. Progress bars
show only on an interactive terminal and never with ``--json``.
"""

from __future__ import annotations

import json
import math
import os
import sqlite3
import sys
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any

import click
import typer

from pixsearch.errors import EXIT_ERROR, BlockedError, PixsearchError
from pixsearch.results import Result, Withheld, shown

app = typer.Typer(
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_show_locals=False,
    help="Offline text <-> image search for photo libraries.",
)
train_app = typer.Typer(no_args_is_help=True, help="Train pixsearch's own models.")
eval_app = typer.Typer(no_args_is_help=True, help="Evaluate models; prints JSON with --json.")
app.add_typer(train_app, name="train")
app.add_typer(eval_app, name="eval")


class LazyConsole:
    """A rich ``Console`` built on first use (attributes pass through to it).

    Why: importing rich costs ~20 ms that a ``--json`` command, a cold ``search`` above all, never needs.
    """

    def __init__(self, **options: Any) -> None:
        self._options = options
        self._console: Any = None

    @property
    def console(self) -> Any:
        """The real Console (for APIs that want one, e.g. ``rich.progress.Progress(console=...)``)."""
        if self._console is None:
            from rich.console import Console

            self._console = Console(**self._options)
        return self._console

    def __getattr__(self, name: str) -> Any:
        return getattr(self.console, name)


out = LazyConsole()
err = LazyConsole(stderr=True, soft_wrap=True)  # one error, one line: never hard-wrapped

LibraryOpt = Annotated[
    Path | None,
    typer.Option(
        "--library",
        "-L",
        help="Library dir (env PIXSEARCH_LIBRARY).",
        envvar="PIXSEARCH_LIBRARY",
        show_default=False,
    ),
]
ModelOpt = Annotated[str | None, typer.Option("--model", "-m", help="Model name or heads .safetensors path.")]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON on stdout.")]
KOpt = Annotated[int, typer.Option("-k", "--top-k", help="Number of results.", min=1)]
RegionOpt = Annotated[
    str | None,
    typer.Option(
        "--region",
        help="Content-policy region (env PIXSEARCH_REGION): default, restricted, or your policy's.",
        show_default=False,
    ),
]

StoreOpt = Annotated[
    str | None,
    typer.Option(
        "--store",
        help="Vector store (env PIXSEARCH_STORE): milvus-lite:PATH.db, milvus://HOST:PORT/COLLECTION or "
        "local (the library's own files); default: the library's recorded one, else local.",
        show_default=False,
    ),
]

# Exit codes (documented in README, "Exit codes"): scripts may rely on them. A pixsearch error exits
# with its class's ``exit_code`` (errors.py); these are the failures that are not pixsearch errors.
EXIT_INTERRUPTED = 130  # Ctrl-C / SIGINT; what was committed is kept


def fail(msg: str, code: int = 1) -> None:
    from rich.markup import escape

    line = " ".join(str(msg).split())  # one line, whatever the message held
    err.print(f"[bold red]error:[/] {escape(line)}", highlight=False)
    raise typer.Exit(code)


def _os_message(exc: OSError) -> str:
    what = exc.strerror or type(exc).__name__
    return f"{exc.filename}: {what}" if exc.filename else f"I/O error: {exc}"


def blocked(exc: BlockedError, as_json: bool) -> None:
    """A request the region's policy forbids: the disclaimer instead of results, exit 0."""
    if as_json:
        doc = {"blocked": True, "disclaimer": exc.disclaimer, "results": []}
        print(json.dumps(doc, ensure_ascii=False))
    else:
        out.print(exc.disclaimer, highlight=False, markup=False, soft_wrap=True)
    raise typer.Exit(0)


@contextmanager
def errors(as_json: bool = False) -> Iterator[None]:
    """Typed errors -> one line on stderr and an exit code; BlockedError -> the disclaimer (exit 0)."""
    try:
        yield
    except BlockedError as exc:
        blocked(exc, as_json)
    except PixsearchError as exc:
        fail(str(exc), exc.exit_code)
    except KeyboardInterrupt:
        fail("interrupted; what was committed is kept, run the same command to resume", EXIT_INTERRUPTED)
    except sqlite3.OperationalError as exc:
        fail(f"catalog database error: {exc} (another program holding it? disk full?)", EXIT_ERROR)
    except sqlite3.Error as exc:
        fail(f"catalog database error: {exc}; `pixsearch doctor` checks the library", EXIT_ERROR)
    except OSError as exc:
        fail(_os_message(exc), EXIT_ERROR)
    except (typer.Exit, typer.Abort, click.exceptions.Exit, click.exceptions.Abort, click.ClickException):
        raise  # exits and usage errors the command chose itself
    except Exception as exc:  # a bug: still one line, the traceback only on request
        if os.environ.get("PIXSEARCH_DEBUG"):
            raise
        fail(f"unexpected {type(exc).__name__}: {exc} (set PIXSEARCH_DEBUG=1 for a traceback)", EXIT_ERROR)


@contextmanager
def progress(enabled: bool, label: str) -> Iterator[Callable[[int, int], None] | None]:
    if not (enabled and sys.stderr.isatty()):
        yield None
        return
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TaskProgressColumn,
        TextColumn,
        TimeRemainingColumn,
    )

    cols = (
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TaskProgressColumn(),
        TextColumn("{task.fields[rate]}"),
        TimeRemainingColumn(),
    )
    with Progress(*cols, console=err.console, transient=True) as bar:
        task = bar.add_task(label, total=None, rate="")

        def update(done: int, total: int) -> None:
            t = bar.tasks[0]
            rate = f"{t.speed:.1f}/s" if t.speed else ""
            bar.update(task, completed=done, total=total, rate=rate)

        yield update


def trainer_log(
    prog: Callable[[int, int], None] | None, as_json: bool, lines: Mapping[str, Callable[[dict], str]]
) -> Callable[[dict], None]:
    """The ``log`` a ``train ...`` command hands its trainer: feature extraction drives the progress bar,
    and each event named in ``lines`` prints the line made from it on stderr (never with ``--json``,
    whose stdout is the summary alone). One place, so every trainer reports the same way."""

    def log(e: dict) -> None:
        event: str = e.get("event", "")
        if event == "features" and prog:
            prog(e["done"], e["total"])
        elif event in lines and not as_json:
            err.print(lines[event](e), highlight=False)

    return log


def skipped_line(e: dict) -> str:
    """A photo the trainer could not read (it trains on without it)."""
    return f"[yellow]skipped[/] {e['reason']}"


ResumeOpt = Annotated[bool, typer.Option("--resume", help="Continue exactly from the last checkpoint.")]
TrainLimitOpt = Annotated[int, typer.Option("--limit", help="Use only the first N train images.")]


def open_library(
    library: Path | None, model: str | None = None, *, create: bool = False, wait: bool = False, **kw: Any
) -> Any:
    """Only ``index`` (and ``serve``) pass ``create=True``: elsewhere a missing library is an error
    ("no library at ..."), never a new empty one. ``wait``: writes wait for another writer (else busy)."""
    from pixsearch.config import load_settings
    from pixsearch.library.facade import Library

    settings = load_settings(library=library, model=model, **kw)
    lib = Library.open(settings=settings, create=create)
    lib.lock_wait = math.inf if wait else 0.0
    lib.on_wait = lambda msg: err.print(msg, style="yellow", markup=False, highlight=False)
    return lib


WaitOpt = Annotated[
    bool, typer.Option("--wait", help="If another process is writing to the library, wait for it to finish.")
]


def short(path: str) -> str:
    """Paths under the working directory print relative: tables stay readable in narrow terminals. A
    name that is not UTF-8 prints with U+FFFD (``results.shown``): stdout cannot take it as it is."""
    import os

    rel = os.path.relpath(path) if path else path
    return shown(rel if rel and not rel.startswith("..") else path)


def emit_results(results: Sequence[Result | Withheld], as_json: bool, title: str) -> None:
    if as_json:
        print(json.dumps({"results": [r.to_dict() for r in results]}, ensure_ascii=False))
        return
    from rich.table import Table

    if not results:
        out.print("no results")
        return
    t = Table(title=title, show_lines=False)
    t.add_column("#", justify="right")
    t.add_column("score", justify="right")
    t.add_column("match", justify="right")  # calibrated 0..1 (models/scorer.py), when computed
    t.add_column("path")
    t.add_column("best caption")
    for i, r in enumerate(results, 1):
        if isinstance(r, Withheld):  # the content policy hides this photo: the disclaimer, nothing else
            t.add_row(str(i), "", "", "", r.disclaimer)
            continue
        cap = r.matched_caption or (r.captions[0] if r.captions else "")
        m = r.match
        t.add_row(str(i), f"{r.score:.3f}", "" if m is None else f"{m:.2f}", short(r.path), cap)
    out.print(t)
