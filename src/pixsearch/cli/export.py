"""``pixsearch export --xmp [PATH]``: generated captions and labels written to XMP sidecars
(``photo.jpg.xmp``) that digiKam, darktable and Lightroom read; the photos themselves are never touched and
the user's own descriptions and keywords are kept (``library/export.py``).

Registered on the shared app; ``COMMANDS`` in ``cli/__init__.py`` names this module.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from pixsearch.cli._common import JsonOpt, LibraryOpt, RegionOpt, StoreOpt, app, errors, fail, open_library
from pixsearch.cli.output import note, print_phrases

__all__ = ["export"]


@app.command()
def export(
    path: Annotated[
        Path | None,
        typer.Argument(
            metavar="PATH", help="Only photos under this folder (or this one photo).", show_default=False
        ),
    ] = None,
    xmp: Annotated[
        bool, typer.Option("--xmp", help="Write XMP sidecars (photo.jpg.xmp) beside the photos.")
    ] = False,
    library: LibraryOpt = None,
    region: RegionOpt = None,
    store: StoreOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Write generated captions and labels where photo managers see them.

    With --xmp: into each photo's sidecar (photo.jpg.xmp), merged with what is there: your own
    descriptions and keywords are kept, a caption goes in only where you wrote none, and running it again
    replaces only what pixsearch wrote. Photos are never changed."""
    with errors(as_json):
        if not xmp:
            fail("say what to export: --xmp (XMP sidecars) is the one format", 2)
        from rich.markup import escape

        lib = open_library(library, region=region, store=store, create=False)
        rep = lib.export_xmp(path)
        if as_json:
            print(json.dumps(rep.to_dict(), ensure_ascii=False))
            return
        print_phrases([f"written {rep.written}", f"unchanged {rep.unchanged}", f"skipped {len(rep.skipped)}"])
        for p, why in rep.skipped[:20]:
            note.print(f"  [yellow]skipped[/] {escape(p)}: {escape(why)}", highlight=False)
