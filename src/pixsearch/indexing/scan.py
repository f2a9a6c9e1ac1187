"""Which files an index run looks at, and which indexed paths it may forget.

Kept apart from the indexer because pruning is where a library can lose data: an unmounted disk or an
empty folder looks exactly like "every photo was deleted", so the guards live here, next to the walk.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING

from pixsearch.errors import NotFoundError
from pixsearch.media import is_image_path

if TYPE_CHECKING:
    from pixsearch.indexing.report import IndexReport
    from pixsearch.storage.catalog import Catalog

__all__ = ["check_prune_roots", "scan", "vanished"]


def scan(roots: Iterable[Path], report: IndexReport) -> list[Path]:
    """Image files under ``roots`` (files or directories), absolute, sorted, hidden dirs skipped."""
    out: set[Path] = set()
    for root in roots:
        root = root.expanduser().absolute()
        if root.is_file():
            out.add(root)
        elif root.is_dir():
            for p in root.rglob("*"):
                if any(part.startswith(".") for part in p.relative_to(root).parts):
                    continue
                if is_image_path(p) and p.is_file():
                    out.add(p)
        elif root.exists():
            report.failed.append((str(root), "not a regular file or folder"))
        else:
            report.failed.append((str(root), "no such file or directory"))
    return sorted(out)


def check_prune_roots(catalog: Catalog, roots: list[Path], files: list[Path]) -> None:
    """Refuse to prune a root that is missing or holds no photo while photos are indexed under it."""
    for root in roots:
        r = root.expanduser().absolute()
        indexed = len(catalog.paths_at(str(r)))
        if not indexed:
            continue
        if not r.exists():
            raise NotFoundError(
                f"refusing to prune {r}: it does not exist (unmounted disk?) and {indexed} indexed "
                "photo(s) are under it; pass --force to forget them"
            )
        if r.is_dir() and not any(f.is_relative_to(r) for f in files):
            raise NotFoundError(
                f"refusing to prune {r}: it holds no photos but {indexed} are indexed under it "
                "(unmounted disk?); pass --force to forget them"
            )


def vanished(catalog: Catalog, roots: list[Path]) -> list[str]:
    """Indexed paths under ``roots`` whose file is gone."""
    out: list[str] = []
    for root in roots:
        out += [p for p in catalog.paths_at(str(root.expanduser().absolute())) if not Path(p).is_file()]
    return out
