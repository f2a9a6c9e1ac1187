"""Where a library's vectors live: its own files (usearch / exact) or a Milvus store.

Why a seam rather than ``isinstance`` checks in ``vectorset.py``: the self-repairing logic (generation
stamps, key diffs against the catalog) is the same for every store; only opening, creating and dropping a
named index differ. A library records its store in catalog meta (``store``) the first time it is created
with one, so later commands without ``--store`` use it, and a command asking for another store is refused
(moving is ``pixsearch reindex --store NEW``, which writes every vector again): vectors of one library never
end up split over two stores.

Milvus collections are named ``<COLLECTION>_<index>_<catalog id prefix>``: ``reindex`` builds a new catalog
(new id) and so writes the new model's vectors to fresh collections, never mixing two models, and drops
the old ones once the new catalog is live.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

from pixsearch.config import LOCAL, parse_store
from pixsearch.errors import CatalogError, ConfigError
from pixsearch.storage.milvus import MilvusIndex
from pixsearch.storage.vectors import VectorIndex, create_index, load_index

if TYPE_CHECKING:
    from pixsearch.config import Settings
    from pixsearch.storage.catalog import Catalog

__all__ = ["IndexOpener", "FileOpener", "MilvusOpener", "opener_for", "resolve_store"]

_TAG = 12  # hex digits of the catalog id in a collection name: unique per reindex, short enough to read


class IndexOpener(Protocol):
    """Opens the named indexes of one library. ``suffix`` names the stamp file ``<name>.<suffix>.json``;
    ``external`` stores can change behind the library's back (another client deleted rows), so an open
    also compares their row count with the catalog before trusting the stamp."""

    @property
    def suffix(self) -> str: ...
    @property
    def external(self) -> bool: ...

    def load(self, name: str, dim: int, path: Path, catalog_id: str) -> VectorIndex | None: ...
    def create(self, name: str, dim: int, catalog_id: str) -> VectorIndex: ...
    def discard(self, name: str, dim: int, catalog_id: str) -> None: ...


@dataclass(frozen=True)
class FileOpener:
    """usearch / exact files in the library dir (``reindex`` moves and deletes them itself)."""

    backend: str
    dtype: str
    external: bool = False

    @property
    def suffix(self) -> str:
        return self.backend

    def load(self, name: str, dim: int, path: Path, catalog_id: str) -> VectorIndex | None:
        if not path.is_file():
            return None
        try:
            return load_index(self.backend, path, dim, self.dtype)
        except Exception:  # a torn or corrupt derived file: the caller rebuilds it from the catalog
            return None

    def create(self, name: str, dim: int, catalog_id: str) -> VectorIndex:
        return create_index(self.backend, dim, self.dtype)

    def discard(self, name: str, dim: int, catalog_id: str) -> None:
        return None


@dataclass(frozen=True)
class MilvusOpener:
    """One Milvus collection per named index and catalog lineage. Errors (unreachable server, another
    model's or dimension's collection) propagate: they are the user's to fix, not a cache to rebuild."""

    spec: str
    fingerprint: str
    suffix: str = "milvus"
    external: bool = True

    def _index(self, name: str, dim: int, catalog_id: str) -> MilvusIndex:
        # Errors are ours to report in one line: pymilvus logs a WARNING for every key listing on Milvus
        # Lite (no server timestamp), and Milvus Lite a traceback when another process holds the file.
        logging.getLogger("pymilvus").setLevel(logging.ERROR)
        logging.getLogger("milvus_lite").setLevel(logging.CRITICAL)
        store = parse_store(self.spec)
        try:
            return MilvusIndex(store, f"{name}_{catalog_id[:_TAG]}", dim, self.fingerprint)
        except CatalogError as exc:
            if store.lite and "cannot reach" in str(exc):
                raise CatalogError(f"{exc} (Milvus Lite opens a file in one process at a time)") from exc
            raise

    def load(self, name: str, dim: int, path: Path, catalog_id: str) -> VectorIndex | None:
        return self._index(name, dim, catalog_id)  # type: ignore[return-value]

    def create(self, name: str, dim: int, catalog_id: str) -> VectorIndex:
        return self._index(name, dim, catalog_id)  # type: ignore[return-value]

    def discard(self, name: str, dim: int, catalog_id: str) -> None:
        self._index(name, dim, catalog_id).drop()


def opener_for(settings: Settings, fingerprint: str) -> IndexOpener:
    if settings.store and settings.store != LOCAL:
        return MilvusOpener(settings.store, fingerprint)
    return FileOpener(settings.vector_backend, settings.vector_dtype)


def resolve_store(settings: Settings, catalog: Catalog, moving: bool = False) -> Settings:
    """The store this command uses: the one asked for, else the one the library recorded.

    Asking for another store than the recorded one (or a Milvus store for a library whose vectors are
    in its own files) is a ConfigError unless ``moving`` (``reindex``, which rewrites every vector).
    """
    stored = catalog.get_meta("store")
    recorded = stored or LOCAL  # no record: the library's own files
    if settings.store is None:
        return replace(settings, store=None if recorded == LOCAL else recorded)
    if moving or settings.store == recorded:
        return settings
    if stored is None and catalog.is_empty():
        return settings  # a new library: Library.open records it
    where = recorded if recorded != LOCAL else f"its own {settings.vector_backend} files"
    raise ConfigError(
        f"library {settings.library} keeps its vectors in {where}, not {settings.store}; "
        f"to move them run `pixsearch reindex --store {settings.store}`"
    )
