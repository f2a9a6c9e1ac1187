"""Which files an index run looks at, and which indexed paths it may forget.

Kept apart from the indexer because pruning is where a library can lose data: an unmounted disk or an
empty folder looks exactly like "every photo was deleted", so the guards live here, next to the walk.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING

from pixsearch.errors import NotFoundError
from pixsearch.media import is_image_path

if TYPE_CHECKING:
    from pixsearch.indexing.report import IndexReport
    from pixsearch.storage.catalog import Catalog

__all__ = ["check_prune_roots", "scan", "vanished"]


def scan(roots: Iterable[Path], report: IndexReport, follow_links: bool = False) -> list[Path]:
    """Image files under ``roots`` (files or directories), absolute, sorted, hidden names skipped below a
    root. A root is taken as given, link or not (the user named it); below it, symbolic links (to files
    or folders) are followed only where they point inside the root, unless ``follow_links``: a link out
    of a photo folder would otherwise put any file the indexing user can read into the library, and a
    server in front of it. Each real file and folder is taken once, under its own path when that path is
    found too (so a link inside the root adds nothing, and a loop ends). An entry that cannot be read is
    reported in ``report.failed`` and skipped, never the end of the run."""
    out: set[Path] = set()
    for root in roots:
        try:
            root = root.expanduser().absolute()
            if root.is_file():
                out.add(root)
            elif root.is_dir():
                out |= _walk(root, report, follow_links)
            elif root.exists():
                report.failed.append((str(root), "not a regular file or folder"))
            else:
                report.failed.append((str(root), "no such file or directory"))
        except (OSError, ValueError) as exc:
            report.failed.append((str(root), f"cannot read: {_why(exc)}"))
    return sorted(out)


def _why(exc: BaseException) -> str:
    return (exc.strerror if isinstance(exc, OSError) else None) or str(exc) or type(exc).__name__


def _inside(real: str, real_root: str) -> bool:
    return real == real_root or real.startswith(real_root.rstrip(os.sep) + os.sep)


def _walk(root: Path, report: IndexReport, follow_links: bool) -> set[Path]:
    """The image files below the folder ``root``: real folders first, then the folders that links lead
    to (each real folder once), so a file reachable both ways keeps its own path."""
    real_root = os.path.realpath(root)
    seen_dirs = {real_root}
    files: dict[str, tuple[bool, Path]] = {}  # real path -> (found through a link, path to index)
    stack: list[tuple[Path, str]] = [(root, real_root)]  # (folder, its real path)
    linked: list[tuple[Path, str]] = []  # folders behind links, walked once the real tree is done
    outside = 0
    while stack or linked:
        if not stack:
            folder, real = linked.pop(0)
            if real in seen_dirs:
                continue
            seen_dirs.add(real)
            stack.append((folder, real))
        folder, real_dir = stack.pop()
        try:
            entries = sorted(os.scandir(folder), key=lambda e: e.name)
        except OSError as exc:
            report.failed.append((str(folder), f"cannot list: {_why(exc)}"))
            continue
        for e in entries:
            path = folder / e.name
            try:
                if e.name.startswith("."):
                    continue
                if e.is_symlink():
                    target = os.path.realpath(path)
                    if not os.path.exists(target):
                        continue  # dangling
                    is_dir = os.path.isdir(target)
                    if not (is_dir or (is_image_path(path) and os.path.isfile(target))):
                        continue
                    if not (follow_links or _inside(target, real_root)):
                        outside += 1
                        continue
                    if is_dir:
                        linked.append((path, target))
                    elif files.get(target, (True,))[0] and (target not in files or path < files[target][1]):
                        files[target] = (True, path)
                elif e.is_dir(follow_symlinks=False):
                    real = os.path.join(real_dir, e.name)
                    if real not in seen_dirs:
                        seen_dirs.add(real)
                        stack.append((path, real))
                elif is_image_path(path) and e.is_file(follow_symlinks=False):
                    files[os.path.join(real_dir, e.name)] = (False, path)
            except (OSError, ValueError) as exc:  # one odd entry is reported; the walk goes on
                report.failed.append((str(path), f"cannot read: {_why(exc)}"))
    if outside:
        report.warnings.append(
            f"skipped {outside} symbolic link(s) under {root} that lead out of it "
            "(pass --follow-links to index what they point to)"
        )
    return {p for _, p in files.values()}


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
