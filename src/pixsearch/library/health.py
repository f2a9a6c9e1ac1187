"""What a library holds and whether it is sound: ``Library.stats`` and ``Library.doctor``.

Why apart from the facade: neither is part of finding photos; ``doctor`` runs every model once and
reads every path, and a report must never raise (each check says what failed instead). The functions take
the parts of the library they report on.
"""

from __future__ import annotations

import contextlib
from pathlib import Path
from typing import Any

from pixsearch.config import Settings
from pixsearch.models.encoder import JointEncoder
from pixsearch.storage.catalog import Catalog
from pixsearch.storage.vectorset import VectorSet

__all__ = ["library_checks", "library_stats"]


def library_stats(catalog: Catalog, encoder: JointEncoder, settings: Settings) -> dict[str, Any]:
    """Counts from the catalog (``stats --json`` keys: images, captions, human/generated captions; photos
    with metadata, a camera capture time, GPS, a place; keywords), the model, the vector store and the
    bytes the library dir takes."""
    with catalog.snapshot():  # one committed state for all the counts
        counts = catalog.counts()
        counts |= catalog.photo_meta.counts()
        counts["keywords"] = catalog.photo_texts.counts()["keyword"]
    size = 0
    for f in settings.library.iterdir():
        with contextlib.suppress(OSError):  # a writer's temp file may vanish while we look
            size += f.stat().st_size if f.is_file() else 0
    return {
        "library": str(settings.library),
        "model": encoder.name,
        "cross_modal": encoder.cross_modal,
        "vector_backend": settings.vector_backend,
        "store": settings.store or "local",  # local: usearch/exact files in the library dir
        **counts,
        "bytes_on_disk": size,
    }


def library_checks(catalog: Catalog, enc: JointEncoder, vectors: VectorSet) -> list[tuple[str, bool, str]]:
    """(check, ok, detail) rows: models load, catalog opens and is sane, indexes match the catalog."""
    checks: list[tuple[str, bool, str]] = []
    ok = catalog.integrity_ok()
    checks.append(("catalog integrity", ok, str(catalog.path)))
    try:
        enc.encode_captions(["a test"])
        if enc.cross_modal:
            enc.encode_text(["a test"])
        checks.append(("text model loads", True, enc.name))
    except Exception as exc:  # doctor reports, it does not raise
        checks.append(("text model loads", False, str(exc)))
    try:
        _ = enc.encode_image_arrays(enc.blank_input())
        checks.append(("image model loads", True, enc.name))
    except Exception as exc:
        checks.append(("image model loads", False, str(exc)))
    for name, good in vectors.consistent().items():
        checks.append((f"vectors '{name}' match catalog", good, f"{len(vectors.get(name))} vectors"))
    orphans = catalog.orphan_count()
    checks.append(
        ("every photo has a path", not orphans, f"{orphans} photos without a path" if orphans else "yes")
    )
    missing = [p for p in catalog.all_paths() if not Path(p).is_file()]
    checks.append(
        (
            "indexed files present",
            not missing,
            f"{len(missing)} missing (run `pixsearch index --prune`)" if missing else "all present",
        )
    )
    return checks
