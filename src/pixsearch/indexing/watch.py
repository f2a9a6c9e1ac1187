"""Keeping a library current: watch folders and index what appears, changes or goes, batch by batch.

Why ``watchfiles``: the OS tells us what changed (inotify, FSEvents, ReadDirectoryChangesW) and its
debounce groups a burst of events into one set, so a camera card copied in is a few batches, not a
full re-scan per file. Each batch goes through the library's normal writer (``add`` for new and changed
files: the same metadata, labels, captions and policy flags as ``pixsearch index``; ``remove`` for
deleted ones), so readers (the REST server, another ``search``) see it as one more committed generation.

What the watcher leaves alone: names that are not photos, hidden names below a root (as ``scan`` does:
editors' ``.name.swp``, rsync's ``.name.XXXX``), temporary names (``.tmp``, ``.part``, ``~``, ...), the
library's own folder, and files still being written: a file is indexed once its size and mtime have
stayed the same for ``settle`` seconds (an empty file waits for its first bytes). A deleted path forgets
only what is indexed at or under it and really gone (``scan.vanished``); a root that vanished as a whole
(an unmounted disk looks like that) forgets nothing, as ``index --prune`` refuses it.

One writer: every batch holds the library's write lock, taken with a timeout (``lock_wait``); when
another writer (``pixsearch index``, a server's upload) has it, the batch stays pending and is retried
``retry`` seconds later, so neither side ever waits on the other for ever. Stopping: ``stop.set()`` ends
``run`` after the batch in flight (an index run stops between its committed batches); Ctrl-C on the main
thread raises KeyboardInterrupt from ``run`` after the same: what was committed is kept, and the library
is consistent (each batch is a transaction; the vector index follows its generation).
"""

from __future__ import annotations

import os
import stat
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

from pixsearch.errors import BusyError
from pixsearch.indexing.report import IndexReport
from pixsearch.indexing.scan import scan, vanished
from pixsearch.media import is_image_path

if TYPE_CHECKING:
    from pixsearch.config import Settings
    from pixsearch.indexing.report import Progress
    from pixsearch.storage.catalog import Catalog

__all__ = ["WatchBatch", "WatchConfig", "WatchTarget", "Watcher", "is_temporary"]

# Names that programs write to before renaming them into place, or leave behind as backups.
_TEMP_SUFFIXES = frozenset(
    {".tmp", ".temp", ".part", ".partial", ".crdownload", ".download", ".filepart", ".swp", ".swx", ".bak"}
)


def is_temporary(name: str) -> bool:
    """A file name that is somebody's work in progress, never a photo to index (any of its suffixes)."""
    low = name.lower()
    if low.startswith((".", "~", "#")) or low.endswith(("~", "#")):
        return True
    return any(s in _TEMP_SUFFIXES for s in Path(low).suffixes)


@dataclass(frozen=True)
class WatchConfig:
    """How the watcher groups and checks what it sees (seconds)."""

    debounce: float = 1.0  # events are grouped for at most this long (watchfiles' debounce)
    step: float = 0.25  # a group ends after this long without events (watchfiles' step); also the tick
    settle: float = 1.0  # a file's size and mtime stay the same this long before it is indexed
    max_delay: float = 5.0  # settled files wait for others still being written at most this long
    lock_wait: float = 2.0  # each try for the write lock; then the batch waits ``retry`` and tries again
    retry: float = 1.0
    catch_up: bool = True  # index the roots once as soon as the watch is in place (what changed before)
    generate_captions: bool | None = None  # as ``index --caption``; None: the library's setting
    follow_links: bool = False  # as ``index --follow-links`` (for the catch-up and new folders)
    ocr: bool | None = None  # as ``index --ocr``; None: the library's setting
    force_polling: bool | None = None  # None: watchfiles decides (polls on WSL; WATCHFILES_FORCE_POLLING)


@dataclass(frozen=True)
class WatchBatch:
    """What one batch did: the index report of the files added or changed, and the paths forgotten."""

    report: IndexReport = field(default_factory=IndexReport)
    files: tuple[str, ...] = ()  # files given to ``add`` (empty for the catch-up: the roots were)
    forgotten: tuple[str, ...] = ()  # indexed paths whose files were deleted
    catch_up: bool = False

    @property
    def added(self) -> int:
        return self.report.added + self.report.duplicates  # a new path to known bytes is a new photo here

    @property
    def changed(self) -> int:
        return self.report.updated

    @property
    def removed(self) -> int:
        return len(self.forgotten)

    @property
    def failed(self) -> list[tuple[str, str]]:
        return self.report.failed

    def __bool__(self) -> bool:
        return bool(self.added or self.changed or self.removed or self.failed or self.report.interrupted)


class WatchTarget(Protocol):
    """What the watcher writes through: a Library (its ``add`` and ``remove`` take the write lock)."""

    settings: Settings
    catalog: Catalog

    def writing(self, wait: float | None = None) -> AbstractContextManager[None]: ...

    def add(
        self,
        paths: Sequence[Path | str],
        *,
        progress: Progress | None = None,
        generate_captions: bool | None = None,
        follow_links: bool = False,
        ocr: bool | None = None,
    ) -> IndexReport: ...

    def remove(self, paths: Sequence[Path | str]) -> int: ...


class StopEvent(Protocol):
    def is_set(self) -> bool: ...


class _Stopped(KeyboardInterrupt):
    """Raised from the index run's progress callback once ``stop`` is set: the indexer ends a run between
    two committed batches on KeyboardInterrupt (``Indexer.run``), which is exactly how a stop must end."""


@dataclass
class _Look:
    size: int
    mtime_ns: int
    since: float  # when this size and mtime were first seen


class Watcher:
    """Watches ``roots`` (folders or files) and writes each settled batch through ``library``.

    ``on_batch`` is told every batch that did something (added, changed, removed, failed, interrupted);
    ``on_ready`` once the watch is in place and the catch-up done; ``on_note`` one-line notes (another
    writer is busy, a root vanished); ``on_unsettled`` each file seen still changing (size or mtime not
    yet stable). None of them may raise. Nothing is printed here."""

    def __init__(
        self,
        library: WatchTarget,
        roots: Sequence[Path | str],
        config: WatchConfig | None = None,
        *,
        on_batch: Callable[[WatchBatch], None] | None = None,
        on_ready: Callable[[], None] | None = None,
        on_note: Callable[[str], None] | None = None,
        on_unsettled: Callable[[Path], None] | None = None,
    ) -> None:
        self.library = library
        self.roots = [Path(r).expanduser().absolute() for r in roots]
        self.config = config or WatchConfig()
        self._on_batch, self._on_ready = on_batch, on_ready
        self._on_note, self._on_unsettled = on_note, on_unsettled
        lib = Path(library.settings.library).expanduser().absolute()
        self._library_dirs = {str(lib), os.path.realpath(lib)}
        self._pending: dict[Path, _Look | None] = {}  # seen changing, not yet settled (None: not looked at)
        self._ready: dict[Path, float] = {}  # settled, waiting to be written (-> when it settled)
        self._gone: dict[Path, float] = {}  # deleted paths (files or folders) -> when seen
        self._noted: set[str] = set()
        self._busy = False  # the last try found another writer (said once per busy spell)

    # -- which paths matter ---------------------------------------------------------------------
    def _root_of(self, p: Path) -> Path | None:
        for r in self.roots:
            if p == r or p.is_relative_to(r):
                return r
        return None

    def ignored(self, path: str | Path) -> bool:
        """The library's own folder, anything hidden or temporary below a root, and what lies outside
        every root. Whether a name is a photo is decided later: a new folder is not, but is walked."""
        p = Path(path)
        s = str(p)
        if any(s == d or s.startswith(d.rstrip(os.sep) + os.sep) for d in self._library_dirs):
            return True
        root = self._root_of(p)
        if root is None:
            return True
        parts = p.relative_to(root).parts
        return any(part.startswith(".") for part in parts) or (bool(parts) and is_temporary(parts[-1]))

    def _filter(self, change: object, path: str) -> bool:  # watchfiles' watch_filter: True keeps it
        return not self.ignored(path)

    # -- the loop ---------------------------------------------------------------------------------
    def run(self, stop: StopEvent | None = None) -> None:
        """Watch until ``stop`` is set (or Ctrl-C on the main thread: KeyboardInterrupt, after the batch in
        flight). The first thing done once the OS watch is in place is the catch-up, if configured."""
        import watchfiles

        stop = stop if stop is not None else threading.Event()
        c = self.config
        tick = max(1, int(c.step * 1000))
        catch_up, next_try = c.catch_up, 0.0
        changes: Iterator[set[tuple[watchfiles.Change, str]]] = watchfiles.watch(
            *self.roots,
            watch_filter=self._filter,
            debounce=max(tick, int(c.debounce * 1000)),
            step=tick,
            stop_event=stop,
            rust_timeout=tick,
            yield_on_timeout=True,  # a tick without events still looks at files settling
            raise_interrupt=True,
            force_polling=c.force_polling,
            ignore_permission_denied=True,  # an unreadable folder is skipped, not the end of the watch
        )
        ready_told = False
        for group in changes:  # the first group (often empty) comes once the OS watch is in place
            now = time.monotonic()
            for change, raw in group:
                self._seen(Path(raw), change.name, now)
            self._look(now)
            if now >= next_try and (catch_up or self._due(now)):
                try:
                    self._write(catch_up, stop)
                except BusyError:
                    next_try = now + c.retry
                    continue
                catch_up = False
            if not ready_told and not catch_up:
                ready_told = True
                if self._on_ready:
                    self._on_ready()
            if stop.is_set():
                return

    def _seen(self, p: Path, change: str, now: float) -> None:
        if change == "modified" and p.is_dir():
            return  # a folder's own times change with its files; its files have events of their own
        if change == "deleted":
            self._pending.pop(p, None)
            self._ready.pop(p, None)
            self._gone.setdefault(p, now)
        else:  # added or modified: looked at on every tick until it settles
            self._gone.pop(p, None)
            self._ready.pop(p, None)
            self._pending.setdefault(p, None)

    def _look(self, now: float) -> None:
        """Move files whose size and mtime stayed the same for ``settle`` s to ready; walk new folders."""
        for p, look in list(self._pending.items()):
            try:
                st = os.stat(p)
            except OSError:  # gone again (a deletion event tells the rest), or unreadable
                del self._pending[p]
                continue
            if stat.S_ISDIR(st.st_mode):  # a folder created or moved in: its photos, each to settle
                del self._pending[p]
                found = IndexReport()
                for f in scan([p], found, self.config.follow_links):
                    if not self.ignored(f):
                        self._pending.setdefault(f, None)
                continue
            if not (stat.S_ISREG(st.st_mode) and is_image_path(p)) or st.st_size == 0:
                del self._pending[p]  # not a photo; or not written yet (its first bytes bring it back)
                continue
            if look is None or (look.size, look.mtime_ns) != (st.st_size, st.st_mtime_ns):
                self._pending[p] = _Look(st.st_size, st.st_mtime_ns, now)
                if self._on_unsettled:
                    self._on_unsettled(p)
            elif now - look.since >= self.config.settle:
                del self._pending[p]
                self._ready[p] = now

    def _due(self, now: float) -> bool:
        """Write what is ready once nothing else is settling, or when the oldest has waited long enough
        (a long copy still going must not hold back the photos it already finished)."""
        waiting = list(self._ready.values()) + list(self._gone.values())
        if not waiting:
            return False
        return not self._pending or now - min(waiting) >= self.config.max_delay

    # -- writing ----------------------------------------------------------------------------------
    def _write(self, catch_up: bool, stop: StopEvent) -> None:
        """One batch through the library's writer, under one hold of its write lock (BusyError: another
        writer kept it past ``lock_wait``; everything stays pending for the next try)."""
        lib, c = self.library, self.config
        files = sorted(p for p in self._ready if p.is_file())
        gone = sorted(self._gone)
        if not (catch_up or files or self._forgettable(gone)):  # e.g. a temp file deleted: no write at all
            self._ready.clear()
            self._gone.clear()
            return

        def progress(done: int, total: int) -> None:
            if stop.is_set():
                raise _Stopped

        report = IndexReport()
        forgotten: list[str] = []
        try:
            with lib.writing(wait=c.lock_wait):
                todo = list(self.roots) if catch_up else files
                if todo:  # new paths first: a photo renamed keeps its image (and its human captions)
                    report = lib.add(
                        todo,
                        progress=progress,
                        generate_captions=c.generate_captions,
                        follow_links=c.follow_links,
                        ocr=c.ocr,
                    )
                if gone and not report.interrupted:
                    forgotten = self._forgettable(gone)  # again, under the lock: what is true now
                    if forgotten:
                        lib.remove(forgotten)
        except _Stopped:  # stopped before the run began: nothing was written
            return
        except BusyError:
            if not self._busy:
                self._busy = True
                self._note(f"another writer holds the library; retrying every {c.retry:g} s")
            raise
        self._busy = False
        self._ready.clear()
        if not report.interrupted:
            self._gone.clear()
        batch = WatchBatch(report, () if catch_up else tuple(map(str, files)), tuple(forgotten), catch_up)
        if batch and self._on_batch:
            self._on_batch(batch)
        if report.interrupted and not stop.is_set():
            raise KeyboardInterrupt  # Ctrl-C during the run: the indexer kept what it committed

    def _forgettable(self, gone: list[Path]) -> list[str]:
        """Indexed paths at or under the deleted ``gone`` whose files are really gone; none under a root
        that vanished as a whole (an unmounted disk must not empty the library)."""
        out: list[str] = []
        for p in gone:
            root = self._root_of(p)
            if root is None or p == root:
                continue
            if not root.exists():
                self._note(f"{root} is gone (unmounted disk?): its photos stay indexed", once=True)
                continue
            out += vanished(self.library.catalog, [p])
        return sorted(set(out))

    def _note(self, msg: str, once: bool = False) -> None:
        if once and msg in self._noted:
            return
        self._noted.add(msg)
        if self._on_note:
            self._on_note(msg)
