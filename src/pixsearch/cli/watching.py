"""``--watch`` for ``pixsearch index`` (on the main thread, until Ctrl+C) and ``pixsearch serve`` (a
background thread with a Library of its own): the watcher (``indexing/watch.py``) wired to a Library and
to the terminal, one line per batch.

Why the server's watcher is its own writer and not the server's writer thread: it is then one more
writing process as far as the library is concerned (the write lock, a committed generation that the
server's readers pick up before their next call, ``api/worker.py``), and the server's upload and delete
routes stay as they are. Neither side waits for the other for ever: the watcher tries for the lock for
``WatchConfig.lock_wait`` seconds and retries later; a server write that finds the watcher writing is a
409 ``busy`` like any other concurrent write.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer

from pixsearch.cli._common import EXIT_INTERRUPTED
from pixsearch.cli.output import err, note, print_phrases

if TYPE_CHECKING:
    from pixsearch.config import Settings
    from pixsearch.indexing.watch import WatchBatch, WatchConfig

__all__ = ["BackgroundWatch", "check_watch_paths", "print_batch", "watch_here"]

JOIN_WAIT = 120.0  # seconds a stopping server gives its watcher to end the batch in flight


def print_batch(b: WatchBatch, as_json: bool = False) -> None:
    """One line on stdout: the batch's counts (JSON with ``--json``); each failed file on stderr."""
    from rich.markup import escape

    from pixsearch.results import shown

    failed = [{"path": shown(p), "reason": shown(r)} for p, r in b.failed]
    if as_json:
        d = {"added": b.added, "changed": b.changed, "removed": b.removed, "failed": failed}
        print(json.dumps({**d, "interrupted": b.report.interrupted}, ensure_ascii=False), flush=True)
        return
    what = ["added", "changed", "removed", "failed"]
    counts = [b.added, b.changed, b.removed, len(failed)]
    phrases = [f"{w} {n}" for w, n in zip(what, counts, strict=True)]
    phrases[0] = f"{time.strftime('%H:%M:%S')} {phrases[0]}"  # a long watch: when each batch landed
    print_phrases(phrases)
    for f in failed:
        note.print(f"  [yellow]failed[/] {escape(f['path'])}: {escape(f['reason'])}", highlight=False)


def _said(msg: str) -> None:
    note.print(msg, style="yellow", markup=False, highlight=False)


def _watching(paths: Sequence[Path]) -> str:
    names = ", ".join(str(p) for p in paths)
    return f"watching {names} for new, changed and removed photos"


def watch_here(lib: Any, paths: Sequence[Path], config: WatchConfig, as_json: bool) -> None:
    """``index --watch``: watch on this thread, printing each batch, until Ctrl+C (exit 130, what was
    committed kept: each batch is a transaction)."""
    from pixsearch.indexing.watch import Watcher

    def ready() -> None:
        note.print(f"{_watching(paths)} (Ctrl+C stops)", markup=False, highlight=False)

    watcher = Watcher(
        lib, paths, config, on_batch=lambda b: print_batch(b, as_json), on_ready=ready, on_note=_said
    )
    try:
        watcher.run()
    except KeyboardInterrupt:
        note.print("stopped watching; what was committed is kept", markup=False, highlight=False)
        raise typer.Exit(EXIT_INTERRUPTED) from None


class BackgroundWatch:
    """``serve --watch``: a thread that opens its own Library (its SQLite connection and models live on
    that thread) and watches ``paths`` until :meth:`stop`; first it indexes what changed while no one
    watched (the catch-up), so a folder served for the first time gets indexed as the server runs."""

    def __init__(self, settings: Settings, paths: Sequence[Path], config: WatchConfig) -> None:
        self.settings, self.paths, self.config = settings, list(paths), config
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="pixsearch-watch", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        """Ask the watcher to end after the batch in flight (an index run stops between its committed
        batches) and wait for it; a daemon thread that overstays ``JOIN_WAIT`` dies with the process."""
        self._stop.set()
        self._thread.join(JOIN_WAIT)

    def _run(self) -> None:
        from pixsearch.errors import PixsearchError
        from pixsearch.indexing.watch import Watcher
        from pixsearch.library.facade import Library

        try:
            with Library.open(settings=self.settings) as lib:
                watcher = Watcher(
                    lib,
                    self.paths,
                    self.config,
                    on_batch=print_batch,
                    on_ready=lambda: note.print(_watching(self.paths), markup=False, highlight=False),
                    on_note=_said,
                )
                watcher.run(self._stop)
        except (PixsearchError, OSError) as exc:  # the server goes on; the watch is what stopped
            why = str(exc)
        except Exception as exc:  # noqa: BLE001 - a bug: one line, the server goes on serving
            why = f"unexpected {type(exc).__name__}: {exc}"
        else:
            return
        err.print(f"error: watching stopped: {why}", markup=False, highlight=False)


def check_watch_paths(paths: Sequence[Path]) -> list[Path]:
    """The folders (or files) to watch, absolute; a missing one is a one-line error before anything runs."""
    from pixsearch.errors import NotFoundError

    out_paths = [p.expanduser().absolute() for p in paths]
    for p in out_paths:
        if not p.exists():
            raise NotFoundError(f"cannot watch {p}: no such file or folder")
    return out_paths
