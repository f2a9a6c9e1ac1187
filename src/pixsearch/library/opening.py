"""Opening a library directory: its settings and catalog, the model it was built with, its vector set.

Why apart from the facade: ``Library.open`` decides whether a directory may be opened at all (a read-only
command must not create an empty library on a mistyped ``-L``) and with which model (another model's
vectors would give wrong results silently); each refusal is a one-line error naming the fix.
"""

from __future__ import annotations

import os
import stat
from dataclasses import replace
from pathlib import Path

from pixsearch.config import Settings, load_settings
from pixsearch.errors import LibraryNotFoundError, ModelMismatchError
from pixsearch.models.encoder import JointEncoder, default_encoder_name
from pixsearch.storage.catalog import Catalog
from pixsearch.storage.lock import LibraryLock
from pixsearch.storage.store import opener_for, resolve_store
from pixsearch.storage.vectorset import IndexSpec, VectorSet

__all__ = ["ensure_model", "model_not_installed", "open_catalog", "owner_only", "vector_set"]

CATALOG_FILES = ("catalog.db", "catalog.db-wal", "catalog.db-shm")


def open_catalog(
    path: Path | str | None, settings: Settings | None, create: bool, moving: bool
) -> tuple[Settings, Catalog]:
    """The settings (``path`` wins over ``settings.library``; the recorded store unless one is asked for,
    another one only when ``moving``, i.e. for reindex) and the open catalog. ``create=False`` refuses a
    directory without a catalog (LibraryNotFoundError)."""
    s = settings or load_settings(library=Path(path).expanduser() if path else None)
    if path is not None:
        s = replace(s, library=Path(path).expanduser())
    if not create and not (s.library / "catalog.db").is_file():
        raise LibraryNotFoundError(f"no library at {s.library} (`pixsearch index` creates one)")
    owner_only(s.library, create)
    catalog = Catalog.open(s.library / "catalog.db")
    try:
        return resolve_store(s, catalog, moving=moving), catalog
    except BaseException:
        catalog.close()
        raise


def owner_only(library: Path, create: bool) -> None:
    """Take group and others' access to the library directory and its catalog files away (0700 and
    0600 as created here; a new catalog is created so).

    Why: the catalog holds every photo's path, captions and thumbnail, and the directory the uploads
    and the API token; on a shared machine other users must not read them. SQLite gives the -wal and
    -shm files the mode of the database file, so a 0600 catalog keeps them 0600 too. Only what this
    user owns is changed (a library shared read-only by another user is left as it is), never the
    process umask; a file system that refuses chmod is not an error.
    """
    if create:
        library.mkdir(parents=True, exist_ok=True, mode=0o700)
        try:  # an empty file is a new SQLite database: created owner-only before SQLite writes to it
            os.close(os.open(library / CATALOG_FILES[0], os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
        except FileExistsError:
            pass
    for path in (library, *(library / n for n in CATALOG_FILES)):
        try:
            st = path.stat()
            if st.st_uid == os.getuid() and stat.S_IMODE(st.st_mode) & 0o077:
                os.chmod(path, stat.S_IMODE(st.st_mode) & ~0o077)  # group and others lose every bit
        except OSError:  # gone meanwhile, or a file system without modes
            continue


def model_not_installed(s: Settings, stored_name: str) -> ModelMismatchError:
    return ModelMismatchError(
        f"library {s.library} was built with model {stored_name}, which is not installed; "
        f"run `pixsearch reindex` to re-encode it with {default_encoder_name()}"
    )


def ensure_model(s: Settings, catalog: Catalog, encoder: JointEncoder, create: bool) -> None:
    """ModelMismatchError when the library holds vectors of another model; else (when ``create``) record
    ``encoder`` and a newly named store as the library's, so later commands use them. The catalog is
    closed when this raises."""
    stored_name = catalog.get_meta("encoder")
    stored_fp = catalog.get_meta("encoder_fingerprint")
    if stored_fp is not None and stored_fp != encoder.fingerprint and not catalog.is_empty():
        catalog.close()
        raise ModelMismatchError(
            f"library {s.library} was built with model {stored_name} ({stored_fp.split('|')[0]}), not "
            f"{encoder.name} ({encoder.fingerprint.split('|')[0]}); "
            f"run `pixsearch reindex --model {encoder.name}`"
        )
    new_store = s.store is not None and catalog.get_meta("store") != s.store
    if (stored_fp != encoder.fingerprint or new_store) and create:
        try:
            with LibraryLock(s.library).hold(), catalog.transaction():
                catalog.set_meta("encoder", encoder.name)
                catalog.set_meta("encoder_fingerprint", encoder.fingerprint)
                if new_store and s.store is not None:  # later commands without --store use it
                    catalog.set_meta("store", s.store)
        except BaseException:
            catalog.close()
            raise


def vector_set(s: Settings, catalog: Catalog, encoder: JointEncoder, lock: LibraryLock) -> VectorSet:
    """The library's vector indexes for ``encoder``: its own files, or Milvus (``storage/store.py``)."""
    specs = [IndexSpec("images", encoder.dim), IndexSpec("captions", encoder.caption_dim)]
    if encoder.cross_modal:
        specs.append(IndexSpec("caption_joint", encoder.dim))
    fp = encoder.fingerprint
    return VectorSet(s.library, catalog, specs, fp, s.vector_backend, s.vector_dtype, lock, opener_for(s, fp))
