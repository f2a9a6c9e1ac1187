"""The library's ANN indexes, kept as a derived cache of the vectors stored in the catalog.

Write order makes crashes harmless: vectors are committed to SQLite first (bumping ``vectors_gen``), the
index files are saved afterwards with a sidecar JSON naming the catalog (``catalog_id``), the model and
the generation the *in-memory index reflects* (not the catalog's generation at save time: a Ctrl-C between
a commit and the in-memory update must not stamp a stale index as fresh). An index whose stamp disagrees
with the catalog is repaired by diffing keys (ids are never reused, so a key present in both is correct),
and only registered once the repair has finished.

A full disk: the writer's :meth:`save` raises a StorageError (its command fails in one line, what the
catalog committed stays); a repaired index that cannot be saved is used from memory, said once through
the ``pixsearch`` logger (with no logging set up, Python's last-resort handler writes it on stderr), so
``search`` and ``doctor`` still answer on a full disk.

Concurrency: only the process holding the library's write lock saves index files (readers repair in
memory and save only if the lock happens to be free). Files are replaced atomically, index file first and
sidecar second, and readers read the sidecar before the file, so a file is never older than its stamp.
Long-lived readers (the REST server) call :meth:`refresh`, and every :meth:`get` catches up with commits
made by other processes since.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from pixsearch.errors import ModelMismatchError, StorageError
from pixsearch.storage.catalog import Catalog
from pixsearch.storage.failures import storage_error
from pixsearch.storage.store import FileOpener, IndexOpener
from pixsearch.storage.vectors import VectorIndex

if TYPE_CHECKING:
    from pixsearch.storage.lock import LibraryLock

__all__ = ["IndexSpec", "VectorSet"]

log = logging.getLogger("pixsearch.storage.vectorset")


@dataclass(frozen=True)
class IndexSpec:
    name: str  # file stem: images / captions / caption_joint
    dim: int


@dataclass(frozen=True)
class _State:
    gen: int
    catalog_id: str
    fingerprint: str | None


def _int(v: Any) -> int:
    try:
        return int(v)
    except (TypeError, ValueError):
        return -1


class VectorSet:
    """Lazily loaded, self-repairing indexes over one catalog."""

    def __init__(
        self,
        root: Path,
        catalog: Catalog,
        specs: list[IndexSpec],
        fingerprint: str,
        backend: str = "usearch",
        dtype: str = "f16",
        lock: LibraryLock | None = None,
        opener: IndexOpener | None = None,
    ) -> None:
        self.root = root
        self.catalog = catalog
        self.specs = {s.name: s for s in specs}
        self.fingerprint = fingerprint
        self.backend = backend
        self.dtype = dtype
        self.lock = lock
        self.opener: IndexOpener = opener or FileOpener(backend, dtype)  # files, or Milvus (store.py)
        self.writer = False  # True while this process holds the write lock (set by Library.writing)
        self._open: dict[str, VectorIndex] = {}
        self._gen: dict[str, int] = {}  # catalog generation each open index reflects
        self._saved: dict[str, tuple[int, str]] = {}  # (generation, catalog id) of the file on disk
        self._catalog_id = ""
        self.repaired: list[str] = []
        self.unsaved: list[str] = []  # repaired indexes the disk could not take: used from memory

    def _file(self, name: str) -> Path:
        return self.root / f"{name}.{self.opener.suffix}"

    def _sidecar(self, name: str) -> Path:
        return self.root / f"{name}.{self.opener.suffix}.json"

    def _state(self) -> _State:
        keys = ("vectors_gen", "catalog_id", "encoder_fingerprint")
        meta = self.catalog.meta_values(keys)
        return _State(_int(meta.get("vectors_gen") or 0), meta.get("catalog_id") or "", meta.get(keys[2]))

    def _catalog_keys(self, name: str) -> np.ndarray:
        if name == "images":
            return self.catalog.image_ids()
        return self.catalog.caption_ids("joint" if name == "caption_joint" else "embedding")

    def _catalog_vectors(self, name: str, ids: list[int] | None) -> tuple[np.ndarray, np.ndarray]:
        dim = self.specs[name].dim
        if name == "images":
            return self.catalog.image_vectors(dim, ids)
        return self.catalog.caption_vectors(dim, ids, "joint" if name == "caption_joint" else "embedding")

    def _read_sidecar(self, name: str) -> dict[str, Any]:
        try:
            meta = json.loads(self._sidecar(name).read_text())
            return meta if isinstance(meta, dict) else {}
        except (OSError, ValueError):
            return {}

    # -- reading ------------------------------------------------------------------------------------
    def get(self, name: str) -> VectorIndex:
        state = self._state()
        if (
            self._open
            and not self.writer
            and (state.catalog_id != self._catalog_id or any(g != state.gen for g in self._gen.values()))
        ):
            self._catch_up(state)
        if name in self._open:
            return self._open[name]
        spec = self.specs[name]
        meta = self._read_sidecar(name)  # before the file: the file is never older than its stamp
        same_model = meta.get("fingerprint") == self.fingerprint
        fresh = (
            same_model
            and _int(meta.get("generation")) == state.gen
            and meta.get("catalog_id", "") == state.catalog_id
        )
        idx = None
        if same_model:  # None: no file, or a torn or corrupt one: rebuild it from the catalog
            idx = self.opener.load(name, spec.dim, self._file(name), state.catalog_id)
        if idx is None:
            idx = self.opener.create(name, spec.dim, state.catalog_id)
            fresh = False
        elif fresh and self.opener.external and len(idx) != len(self._catalog_keys(name)):
            fresh = False  # a store others can write to lost or gained rows since the stamp
        if not fresh:
            self._repair(name, idx)  # an interrupted repair leaves nothing registered
        self._open[name] = idx
        self._gen[name] = state.gen
        self._catalog_id = state.catalog_id
        self._saved[name] = (
            (_int(meta.get("generation")), str(meta.get("catalog_id", ""))) if same_model else (-1, "")
        )
        if not fresh:
            self.repaired.append(name)
            self._persist_repair(name)
        return idx

    def _persist_repair(self, name: str) -> None:
        """Save a repair so the next process need not redo it; a read must not fail because the disk is
        full, so then the repaired index serves from memory (said once per process; a writer says
        nothing here: its own :meth:`save` at the end fails and tells)."""
        try:
            self._persist([name])
        except StorageError as exc:
            if not self.unsaved and not self.writer:
                log.warning(
                    "warning: could not save the repaired vector index (%s); using it from memory", exc.reason
                )
            self.unsaved.append(name)

    def view(self, name: str) -> VectorIndex:
        """``get`` for queries: vectors of keys the catalog has but the index does not (yet) come from
        the catalog, so a commit landing between a reader's refresh and its lookup is no KeyError."""
        return _CatalogBacked(self.get(name), self, name)  # type: ignore[return-value]

    def refresh(self) -> None:
        """Catch up with commits made since the indexes were loaded (by this or another process)."""
        self._catch_up(self._state())

    def _catch_up(self, state: _State, check_model: bool = True) -> None:
        if check_model and state.fingerprint is not None and state.fingerprint != self.fingerprint:
            raise ModelMismatchError(
                "the library was re-indexed with another model while open; open it again"
            )
        if state.catalog_id != self._catalog_id:  # reindex swapped in a new catalog: start over
            self._open.clear()
            self._gen.clear()
            self._catalog_id = state.catalog_id
            return
        for n, idx in list(self._open.items()):
            if self._gen[n] != state.gen:
                self._repair(n, idx)
                self._gen[n] = state.gen

    def _counts_agree(self, name: str) -> bool:
        """Only for stores outside the library: listing a Milvus collection's keys costs a scan of it
        (seconds at 1M rows) on every batch, so the writer repairs only when the counts disagree (every
        add goes through this set, so an unreported delete always shows up as one row too many)."""
        return self.opener.external and len(self._open[name]) == len(self._catalog_keys(name))

    def _repair(self, name: str, idx: VectorIndex) -> None:
        if self.opener.external and not self.writer and self.lock is not None:
            # A shared store (Milvus): a reader's key diff could race a writer that has committed the
            # catalog but not yet the store and delete its fresh rows, so only a lock holder changes it.
            with self.lock.try_hold() as got:
                if got:
                    self._fix(name, idx)
            return
        self._fix(name, idx)

    def _fix(self, name: str, idx: VectorIndex) -> None:
        want = self._catalog_keys(name)
        have = idx.keys() if len(idx) else np.zeros(0, dtype=np.int64)
        extra = np.setdiff1d(have, want)
        if len(extra):
            idx.remove(extra)
        missing = np.setdiff1d(want, have)
        for s in range(0, len(missing), 4096):
            keys, vecs = self._catalog_vectors(name, missing[s : s + 4096].tolist())
            if len(keys):
                idx.add(keys, vecs)

    # -- writing (the caller holds the write lock) --------------------------------------------------
    def add(self, name: str, keys: list[int], vectors: np.ndarray) -> None:
        if keys:
            self.get(name).add(np.asarray(keys, dtype=np.int64), np.asarray(vectors, dtype=np.float32))

    def remove(self, name: str, keys: list[int]) -> None:
        if keys:
            self.get(name).remove(np.asarray(keys, dtype=np.int64))

    def forget(self, image_ids: list[int], caption_ids: list[int]) -> None:
        """Drop deleted images and captions from every index that holds them."""
        self.remove("images", image_ids)
        for n in ("captions", "caption_joint"):
            if n in self.specs:
                self.remove(n, caption_ids)

    def mark(self, generation: int) -> None:
        """The caller has applied every change up to catalog ``generation`` to the open indexes."""
        for n in self._open:
            self._gen[n] = generation

    def sync(self, check_model: bool = True) -> None:
        """On taking the write lock: catch up with what other writers committed before us (and refuse to
        write with our model into a library another process has just re-indexed with another one)."""
        self._catch_up(self._state(), check_model)

    def save(self, name: str | None = None) -> None:
        """Persist open indexes, each stamped with the generation it reflects.

        The writer first brings every open index in line with the catalog (rows deleted by code that
        did not tell the index, e.g. replaced generated captions, go too) and opens the ones not loaded
        yet, so that all files end the write fresh and readers do not each repair them.
        """
        names = [name] if name else list(self.specs)
        if self.writer:
            state = self._state()
            for n in names:
                if n in self._open:
                    if not self._counts_agree(n):
                        self._repair(n, self._open[n])
                    self._gen[n] = state.gen
                else:
                    self.get(n)
        self._persist([n for n in names if n in self._open])

    def _persist(self, names: list[str]) -> None:
        if self.writer or self.lock is None:
            self._write(names)
            return
        with self.lock.try_hold() as got:  # a reader saves its repair only when no writer is busy
            if got and self._state().catalog_id == self._catalog_id:
                self._write(names)

    def _write(self, names: list[str]) -> None:
        for n in names:
            gen, cid = self._gen[n], self._catalog_id
            if self._saved.get(n) == (gen, cid):
                continue
            on_disk = self._read_sidecar(n)
            if on_disk.get("catalog_id") == cid and _int(on_disk.get("generation")) > gen:
                continue  # never replace a newer file with an older view
            idx = self._open[n]
            idx.save(self._file(n))  # StorageError when the disk is full
            stamp = {"generation": gen, "catalog_id": cid, "fingerprint": self.fingerprint, "count": len(idx)}
            try:
                _write_json(self._sidecar(n), stamp)
            except OSError as exc:  # the file is saved, its stamp is not: readers rebuild it, never trust it
                what = f"the vector index stamp {self._sidecar(n).name}"
                raise storage_error(what, exc, self.root) from exc
            self._saved[n] = (gen, cid)

    def discard(self, catalog_id: str) -> None:
        """After ``reindex`` swapped in a new catalog: drop what the old lineage kept outside the library
        dir (Milvus collections; files are replaced by the swap itself)."""
        for s in self.specs.values():
            self.opener.discard(s.name, s.dim, catalog_id)
        self._open.clear()

    def consistent(self) -> dict[str, bool]:
        """For ``doctor``: does each index hold exactly the catalog's keys?"""
        out = {}
        for n in self.specs:
            idx = self.get(n)
            out[n] = bool(np.array_equal(np.sort(idx.keys()), np.sort(self._catalog_keys(n))))
        return out


def _write_json(path: Path, data: dict[str, Any]) -> None:
    """Atomic, with a unique temp name: two processes (or threads) saving at once never share a temp file."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w") as f:
            f.write(json.dumps(data))
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


class _CatalogBacked:
    """A read view of one index whose ``get`` falls back to the catalog for keys the index lacks."""

    def __init__(self, idx: VectorIndex, owner: VectorSet, name: str) -> None:
        self._idx, self._owner, self._name = idx, owner, name
        self.dim = idx.dim

    def __getattr__(self, attr: str) -> Any:
        return getattr(self._idx, attr)

    def __len__(self) -> int:
        return len(self._idx)

    def __contains__(self, key: int) -> bool:
        return key in self._idx

    def get(self, keys: np.ndarray) -> np.ndarray:
        want = np.asarray(keys, dtype=np.int64).reshape(-1)
        try:
            return self._idx.get(want)
        except KeyError:
            pass
        have = np.array([int(k) in self._idx for k in want.tolist()], dtype=bool)
        out = np.zeros((len(want), self.dim), dtype=np.float32)
        if have.any():
            out[have] = self._idx.get(want[have])
        got_keys, got = self._owner._catalog_vectors(self._name, want[~have].tolist())
        rows = dict(zip(got_keys.tolist(), got, strict=True))
        for i in np.flatnonzero(~have).tolist():
            k = int(want[i])
            if k not in rows:
                raise KeyError(k)  # in neither: really unknown
            out[i] = rows[k]
        return out
