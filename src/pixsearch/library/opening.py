"""Opening a library directory: its settings and catalog, the model it was built with, its vector set.

Why apart from the facade: ``Library.open`` decides whether a directory may be opened at all (a read-only
command must not create an empty library on a mistyped ``-L``) and with which model (another model's
vectors would give wrong results silently); each refusal is a one-line error naming the fix.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from pixsearch.config import Settings, load_settings
from pixsearch.errors import LibraryNotFoundError, ModelMismatchError
from pixsearch.models.encoder import JointEncoder, default_encoder_name
from pixsearch.storage.catalog import Catalog
from pixsearch.storage.lock import LibraryLock
from pixsearch.storage.store import opener_for, resolve_store
from pixsearch.storage.vectorset import IndexSpec, VectorSet

__all__ = ["ensure_model", "model_not_installed", "open_catalog", "vector_set"]


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
    catalog = Catalog.open(s.library / "catalog.db")
    try:
        return resolve_store(s, catalog, moving=moving), catalog
    except BaseException:
        catalog.close()
        raise


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
    return VectorSet(
        s.library, catalog, specs, fp, s.vector_backend, s.vector_dtype, lock, opener_for(s, fp)
    )
