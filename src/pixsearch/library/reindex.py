"""``Library.reindex``: re-encode a whole library with another model without ever leaving it broken.

A complete new catalog is built beside the old one (``.reindex/``, itself incremental, so a crash resumes
there) and swapped in as one SQLite transaction on the live catalog. Kept apart from the facade so it
stays a facade; :func:`rebuild` takes the live library's parts and a way to open the new one beside it.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import sqlite3
from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager
from dataclasses import replace
from pathlib import Path
from typing import Protocol

from pixsearch.config import Settings
from pixsearch.errors import MediaError, PixsearchError
from pixsearch.indexing.indexer import Indexer
from pixsearch.indexing.report import IndexReport, Progress
from pixsearch.media import load_image
from pixsearch.models.backbones import decode_size
from pixsearch.models.encoder import JointEncoder
from pixsearch.storage.catalog import Catalog
from pixsearch.storage.store import opener_for
from pixsearch.storage.vectorset import VectorSet

__all__ = ["NewLibrary", "rebuild"]


class NewLibrary(Protocol):
    """The library being built in ``.reindex/`` (a Library opened there): what the rebuild uses of it."""

    catalog: Catalog
    vectors: VectorSet

    def add(self, paths: Sequence[Path | str], *, progress: Progress | None = None) -> IndexReport: ...

    def remove(self, paths: Sequence[Path | str]) -> int: ...

    def writing(self) -> AbstractContextManager[None]: ...

    def close(self) -> None: ...


def rebuild(
    catalog: Catalog,
    settings: Settings,
    vectors: VectorSet,
    enc: JointEncoder,
    open_new: Callable[[Settings, JointEncoder], NewLibrary],
    progress: Progress | None,
) -> IndexReport:
    """The body of ``Library.reindex`` (which holds the write lock): build ``.reindex/`` with ``enc`` (a
    library opened by ``open_new``), then swap it into the live ``catalog`` and index files. The caller
    switches to ``enc`` when the report is not ``interrupted`` (the swap happened)."""
    work = settings.library / ".reindex"
    paths = catalog.all_paths(ordered=True)
    caps = catalog.human_captions_by_path()  # generated ones: the new library's enrichers redo them
    new = open_new(replace(settings, library=work), enc)
    try:
        report = new.add([Path(p) for p in paths], progress=progress)
        if report.interrupted:
            return report
        with new.writing():
            _keep_unreadable(catalog, new.catalog, enc, report)
            live = set(paths)  # paths forgotten here since an interrupted run began stay forgotten
            new.remove([p for p in new.catalog.all_paths() if p not in live])
            idx = Indexer(new.catalog, new.vectors, enc, settings.batch_size)
            todo: dict[tuple[int, str], str] = {}  # (new image id, text) -> source
            for p, text, source in caps:
                iid = new.catalog.image_for_path(p)
                if iid is not None:
                    todo.setdefault((iid, text), source)
            items = list(todo.items())
            for s in range(0, len(items), 512):  # big batches: caption encoding runs on torch here
                chunk = items[s : s + 512]
                rows = idx.caption_rows([t for (_, t), _ in chunk])
                with new.catalog.transaction():
                    for ((iid, text), source), (_, _, emb, joint) in zip(chunk, rows, strict=True):
                        added = new.catalog.add_captions(iid, [(text, source, emb, joint)])
                        report.captions_added += len(added)
                    new.catalog.bump_generation()
            new.vectors.save()  # the writer's save brings every index file in line with the catalog
        new.catalog.checkpoint("TRUNCATE")
    finally:
        new.close()
    old_cid, old_fp = catalog.catalog_id, catalog.get_meta("encoder_fingerprint") or ""
    old_store = replace(settings, store=catalog.get_meta("store"))
    old_specs = list(vectors.specs.values())
    _swap_in(catalog, settings.library, work)
    try:  # the old model's Milvus collections (files went in the swap); the new catalog is live already
        old = VectorSet(settings.library, catalog, old_specs, old_fp)
        old.opener = opener_for(old_store, old_fp)
        old.discard(old_cid)
    except PixsearchError as exc:
        report.warnings.append(f"could not drop the old vectors in {old_store.store}: {exc}")
    return report


def _keep_unreadable(live: Catalog, new: Catalog, enc: JointEncoder, report: IndexReport) -> None:
    """Photos of the old library whose file failed this time (gone, unmounted, unreadable) are not
    dropped: their row moves over with a vector computed from the stored thumbnail; ``mtime_ns = -1``
    makes the next ``index`` read the file again when it is back."""
    failed, report.failed = report.failed, []
    for p, why in failed:
        row = live.get_path(p)
        old = live.images([row.image_id]).get(row.image_id) if row else None
        if row is None or old is None:
            report.failed.append((p, why))
            continue
        iid = new.image_id_for_hash(old.hash)
        if iid is None:
            thumb = live.thumbnail(row.image_id)
            try:
                if thumb is None:
                    raise MediaError(p, "no stored thumbnail")
                img = load_image(thumb, name=p, draft=decode_size(enc.resolution))
            except MediaError as exc:
                report.failed.append((p, f"{why}; cannot keep it ({exc.reason}), dropped"))
                continue
            vec = enc.encode_image_arrays(enc.preprocess(img)[None])[0]
            with new.transaction():
                iid = new.add_image(old.hash, old.width, old.height, thumb, vec)
                new.bump_generation()
        with new.transaction():
            new.set_path(p, iid, row.size, -1)
            new.bump_generation()
        report.kept.append((p, why))


def _swap_in(live: Catalog, root: Path, work: Path) -> None:
    """Replace the live catalog's content with ``work``'s in one transaction, then its index files.

    Between the two steps readers find index files stamped with the old ``catalog_id`` and rebuild
    them from the (new) catalog; a crash there leaves a new catalog with files that get repaired.
    """
    live.replace_content(work / "catalog.db")
    exts = (".usearch", ".exact", ".usearch.json", ".exact.json", ".milvus.json")
    moved = set()
    for f in sorted(work.iterdir()):  # "x.usearch" sorts before "x.usearch.json": file, then stamp
        if f.is_file() and f.name.endswith(exts) and not f.name.startswith("."):
            os.replace(f, root / f.name)
            moved.add(f.name)
    for f in root.iterdir():  # the old model's files that the new one has no counterpart for
        if f.is_file() and f.name.endswith(exts) and f.name not in moved and not f.name.startswith("."):
            f.unlink(missing_ok=True)
    shutil.rmtree(work, ignore_errors=True)
    with contextlib.suppress(sqlite3.Error):
        live.checkpoint("PASSIVE")
