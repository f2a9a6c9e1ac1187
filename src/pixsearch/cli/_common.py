"""Shared parts of the ``pixsearch`` command: the Typer apps, options, error mapping, opening a library.

The ``cli`` package is the only place that prints or exits; what it prints is made in ``output``.
Nothing here imports NumPy, Rich or the library at module level: ``pixsearch --help`` and the parsing of
every command stay cheap, and each command imports what it uses when it runs.
"""

from __future__ import annotations

import json
import math
import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any

import typer

from pixsearch.cli.output import err, note, out, set_quiet
from pixsearch.cli.parsing import FastGroup
from pixsearch.errors import EXIT_ERROR, BlockedError, PixsearchError

# rich_markup_mode=None: help and usage errors in click's plain text. Rich help would import Rich and
# markdown-it (~50 ms) before the command is even known, for boxes around the same words.
# FastGroup: plain parameters parse without pydantic (parsing.py).
app = typer.Typer(
    cls=FastGroup,
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_show_locals=False,
    rich_markup_mode=None,
    help="Offline text <-> image search for photo libraries.",
)


def group(help: str) -> typer.Typer:
    """A group of subcommands (``train``, ``eval``, ``policy``), built like ``app``."""
    return typer.Typer(cls=FastGroup, no_args_is_help=True, rich_markup_mode=None, help=help)


train_app = group("Train pixsearch's own models.")
eval_app = group("Evaluate models; prints JSON with --json.")
app.add_typer(train_app, name="train")
app.add_typer(eval_app, name="eval")


@app.callback()
def _root() -> None:
    """Offline text <-> image search for photo libraries.

    A callback keeps the app a group of commands even when ``pixsearch.cli.main`` registered only the
    one command asked for (Typer makes a lone command the whole program)."""


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
WaitOpt = Annotated[
    bool, typer.Option("--wait", help="If another process is writing to the library, wait for it to finish.")
]
ResumeOpt = Annotated[bool, typer.Option("--resume", help="Continue exactly from the last checkpoint.")]
TrainLimitOpt = Annotated[int, typer.Option("--limit", help="Use only the first N train images.")]
VerboseOpt = Annotated[
    bool, typer.Option("--verbose", "-v", help="Also show the raw ranking signals behind each match.")
]


def _quiet(value: bool) -> bool:
    set_quiet(value)  # at parse time: everything the command prints after this is quiet
    return value


QuietOpt = Annotated[
    bool,
    typer.Option(
        "--quiet", "-q", callback=_quiet, help="Print nothing but errors (and what --json asks for)."
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


def _sqlite_error(exc: Exception) -> str | None:
    """The one-line message for a SQLite error (sqlite3 is looked up, not imported: a command that
    never opened a catalog has none)."""
    sqlite3 = sys.modules.get("sqlite3")
    if sqlite3 is None or not isinstance(exc, sqlite3.Error):
        return None
    if isinstance(exc, sqlite3.OperationalError):
        return f"catalog database error: {exc} (another program holding it? disk full?)"
    return f"catalog database error: {exc}; `pixsearch doctor` checks the library"


def _is_exit(exc: BaseException) -> bool:
    """An exit or usage error the command chose itself (typer's or click's, whichever typer is built on:
    typer 0.29 carries its own click, older versions use click's)."""
    return type(exc).__module__.split(".")[0] in ("typer", "click")


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
    except OSError as exc:
        fail(_os_message(exc), EXIT_ERROR)
    except Exception as exc:  # a bug: still one line, the traceback only on request
        if _is_exit(exc):
            raise
        msg = _sqlite_error(exc)
        if msg is not None:
            fail(msg, EXIT_ERROR)
        if os.environ.get("PIXSEARCH_DEBUG"):
            raise
        fail(f"unexpected {type(exc).__name__}: {exc} (set PIXSEARCH_DEBUG=1 for a traceback)", EXIT_ERROR)


def on_wait(msg: str) -> None:
    """Told once when a write starts waiting for another writer (``--wait``)."""
    note.print(msg, style="yellow", markup=False, highlight=False)


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
    lib.on_wait = on_wait
    if model is None:
        _upgrade_note(lib.encoder.name)
    return lib


def _upgrade_note(name: str) -> None:
    """A library on an older shipped model keeps working on it; say once that ``reindex`` moves it to
    the default (its vectors cannot be compared with another model's, so nothing is mixed)."""
    from pixsearch.models.encoder import available_encoders, default_encoder_name

    new = default_encoder_name()
    if name != new and name in available_encoders() and not name.endswith("-raw"):
        msg = f"this library uses {name}; `pixsearch reindex` re-encodes it with {new}, the default"
        note.print(msg, markup=False, highlight=False)
