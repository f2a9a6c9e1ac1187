"""What a library holds and whether it is sound: ``Library.stats`` and ``Library.doctor``.

Why apart from ``library.py``: neither is part of finding photos; ``doctor`` runs every model once and
reads every path, and a report must never raise (each check says what failed instead). The functions take
the Library they report on.
"""

from __future__ import annotations

import contextlib
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from pixsearch.models.encoder import HeadsEncoder

if TYPE_CHECKING:
    from pixsearch.library.facade import Library

__all__ = ["library_checks", "library_stats"]


def library_stats(lib: Library) -> dict[str, Any]:
    """Counts from the catalog (``stats --json`` keys: images, captions, human/generated captions), the
    model, the vector store and the bytes the library dir takes."""
    counts = lib.catalog.counts()
    size = 0
    for f in lib.settings.library.iterdir():
        with contextlib.suppress(OSError):  # a writer's temp file may vanish while we look
            size += f.stat().st_size if f.is_file() else 0
    return {
        "library": str(lib.settings.library),
        "model": lib.encoder.name,
        "cross_modal": lib.encoder.cross_modal,
        "vector_backend": lib.settings.vector_backend,
        "store": lib.settings.store or "local",  # local: usearch/exact files in the library dir
        **counts,
        "bytes_on_disk": size,
    }


def library_checks(lib: Library) -> list[tuple[str, bool, str]]:
    """(check, ok, detail) rows: models load, catalog opens and is sane, indexes match the catalog."""
    enc = lib.encoder
    checks: list[tuple[str, bool, str]] = []
    ok = lib.catalog.db.execute("PRAGMA quick_check").fetchone()[0] == "ok"
    checks.append(("catalog integrity", ok, str(lib.catalog.path)))
    try:
        enc.encode_captions(["a test"])
        if isinstance(enc, HeadsEncoder):
            enc.encode_text(["a test"])
        checks.append(("text model loads", True, enc.name))
    except Exception as exc:  # doctor reports, it does not raise
        checks.append(("text model loads", False, str(exc)))
    try:
        _ = enc.encode_image_arrays(np.zeros((1, 3, enc.resolution, enc.resolution), dtype=np.float32))
        checks.append(("image model loads", True, enc.name))
    except Exception as exc:
        checks.append(("image model loads", False, str(exc)))
    for name, good in lib.vectors.consistent().items():
        checks.append((f"vectors '{name}' match catalog", good, f"{len(lib.vectors.get(name))} vectors"))
    missing = [p for (p,) in lib.catalog.db.execute("SELECT path FROM paths") if not Path(p).is_file()]
    checks.append(
        (
            "indexed files present",
            not missing,
            f"{len(missing)} missing (run `pixsearch index --prune`)" if missing else "all present",
        )
    )
    return checks
