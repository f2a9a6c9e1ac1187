"""``pixsearch duplicates``: groups of copies of one photo (exact, and resized, re-encoded, cropped or
edited ones), the copy to keep first. It only reports: nothing is ever deleted or moved.

Registered on the shared app; ``COMMANDS`` in ``cli/__init__.py`` names this module.
"""

from __future__ import annotations

import json
from typing import Annotated, Any

import typer

from pixsearch.cli._common import JsonOpt, LibraryOpt, RegionOpt, StoreOpt, app, errors, open_library
from pixsearch.cli.output import out, progress
from pixsearch.cli.tables import shown_path

__all__ = ["duplicates"]


@app.command()
def duplicates(
    threshold: Annotated[
        float | None,
        typer.Option(
            "--threshold",
            min=0.0,
            max=1.0,
            help="How alike two photos must look to be called copies, 0..1 (default 0.54): higher finds "
            "fewer, surer copies.",
            show_default=False,
        ),
    ] = None,
    prefer: Annotated[
        str,
        typer.Option("--prefer", help="Which copy to suggest keeping: largest (most pixels) or oldest."),
    ] = "largest",
    library: LibraryOpt = None,
    region: RegionOpt = None,
    store: StoreOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Find duplicate photos: exact copies and edited ones (resized, re-saved, cropped, retouched).

    Different shots of one scene are not duplicates. Nothing is deleted: the suggested copy to keep is
    listed first in each group."""
    with errors(as_json):
        lib = open_library(library, region=region, store=store)
        with progress(not as_json, "comparing photos"):
            found = lib.duplicates(threshold, prefer)
        if as_json:
            print(json.dumps(found.to_dict(), ensure_ascii=False))
            return
        _print(found, lib.roots())


def _print(found: Any, roots: dict[int, str]) -> None:
    groups = found.groups
    if not groups:
        out.print(f"no duplicates among {found.photos} photos")
        return
    from rich.table import Table

    near = sum(1 for g in groups if g.kind == "near")
    files = sum(len(g.photos) - 1 for g in groups)
    t = Table(show_edge=False, pad_edge=False)
    paths = [shown_path(p.path, roots) for g in groups for p in g.photos]
    # the path gets its whole width first (a file name is never cut to "…"; a very narrow terminal
    # folds it onto more lines), the other columns share what is left
    widest = max(len(p) for p in paths)
    for name, right in (("#", True), ("", False)):
        t.add_column(name, justify="right" if right else "left", no_wrap=True)
    t.add_column("path", overflow="fold", min_width=min(widest, max(20, out.width - 50)))
    for name in ("pixels", "size"):
        t.add_column(name, justify="right", no_wrap=True)
    t.add_column("taken", no_wrap=True)
    t.add_column("alike", justify="right")
    for n, g in enumerate(groups, 1):
        for i, p in enumerate(g.photos):
            alike = "same bytes" if g.kind == "exact" or p.similarity == 1.0 else f"{p.similarity:.0%}"
            t.add_row(
                str(n) if i == 0 else "",
                "keep" if i == g.best else "",
                shown_path(p.path, roots),
                f"{p.width}x{p.height}",
                _bytes(p.bytes),
                _taken(p),
                "" if i == g.best else alike,
                end_section=i == len(g.photos) - 1,
            )
    out.print(t)
    out.print(
        f"{len(groups)} {'group' if len(groups) == 1 else 'groups'} of duplicates ({near} near, "
        f"{len(groups) - near} exact) among {found.photos} photos; {files} "
        f"{'file' if files == 1 else 'files'} could go. Nothing was deleted.",
        highlight=False,
    )


def _taken(p: Any) -> str:
    """The capture time to the minute, when the file says it (not a modification time)."""
    return p.taken_at[:16].replace("T", " ") if p.taken_at and p.taken_from == "exif" else ""


def _bytes(n: int) -> str:
    if n < 1024:
        return f"{n} B"
    return f"{n / 1024:.0f} KB" if n < 1024**2 else f"{n / 1024**2:.1f} MB"
