"""Commands that read a library: search (words -> photos), similar (photo -> photos), describe (photo ->
the library's captions). Tables are made in ``tables``."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Annotated, Any

import typer

from pixsearch.cli._common import (
    JsonOpt,
    KOpt,
    LibraryOpt,
    ModelOpt,
    RegionOpt,
    StoreOpt,
    VerboseOpt,
    app,
    errors,
    open_library,
)
from pixsearch.cli.output import out
from pixsearch.cli.tables import emit_description, emit_results
from pixsearch.results import Result, Withheld

PreviewOpt = Annotated[
    bool,
    typer.Option(
        "--preview", help="Show each photo's thumbnail, in a terminal that shows images (kitty, Sixel)."
    ),
]


def _show(lib: Any, res: Sequence[Result | Withheld], title: str, verbose: bool, preview: bool) -> None:
    """A page of results as a table, or with ``--preview`` as a list with thumbnails where the terminal
    shows images (``preview``; a line on stderr says why not where it does not)."""
    roots = lib.roots()
    if preview:
        from pixsearch.cli.preview import emit_previews, image_renderer, why_not
        from pixsearch.cli.tables import MATCH_NOTE, shown_path

        render = image_renderer()
        if render is not None and res:
            emit_previews(res, lib.thumbnail, render, lambda p: shown_path(p, roots))
            if any(isinstance(r, Result) and r.match is not None for r in res):
                out.print(MATCH_NOTE, style="dim", highlight=False)
            return
        if render is None:
            why_not()
    emit_results(res, False, title, roots, verbose)


@app.command()
def search(
    query: Annotated[str, typer.Argument(metavar="QUERY", help="What to look for, in words.")],
    k: KOpt = 10,
    offset: Annotated[int, typer.Option("--offset", min=0)] = 0,
    threshold: Annotated[
        float | None,
        typer.Option("--threshold", help="Keep results whose match score (0..1) reaches this, e.g. 0.5."),
    ] = None,
    library: LibraryOpt = None,
    model: ModelOpt = None,
    region: RegionOpt = None,
    store: StoreOpt = None,
    verbose: VerboseOpt = False,
    preview: PreviewOpt = False,
    as_json: JsonOpt = False,
) -> None:
    """Text -> images."""
    with errors(as_json):
        lib = open_library(library, model, region=region, store=store)
        res = lib.search(query, k, offset, threshold)
        if res.no_confident_match:  # nothing passed the match threshold
            below = res.below_threshold
            if as_json:
                d = {"results": [], "no_confident_match": True, "threshold": res.threshold}
                print(json.dumps({**d, "below_threshold": [r.to_dict() for r in below]}, ensure_ascii=False))
                return
            out.print(f"no confident match (match >= {res.threshold:.0%}); best below the line:")
            _show(lib, below, f"'{query}' (below threshold)", verbose, preview)
        elif as_json:
            emit_results(res, True, "")
        else:
            _show(lib, res, f"'{query}'", verbose, preview)


@app.command()
def similar(
    image: Annotated[str, typer.Argument(metavar="PHOTO", help="Image file (in the library or not).")],
    k: KOpt = 10,
    offset: Annotated[int, typer.Option("--offset", min=0)] = 0,
    library: LibraryOpt = None,
    region: RegionOpt = None,
    store: StoreOpt = None,
    verbose: VerboseOpt = False,
    preview: PreviewOpt = False,
    as_json: JsonOpt = False,
) -> None:
    """Image -> similar images in the library."""
    with errors(as_json):
        lib = open_library(library, region=region, store=store)
        res = lib.similar(Path(image), k, offset)
        if as_json:
            emit_results(res, True, "")
        else:
            _show(lib, res, f"like {image}", verbose, preview)


@app.command()
def describe(
    image: Annotated[str, typer.Argument(metavar="PHOTO", help="Image file (in the library or not).")],
    k: KOpt = 5,
    library: LibraryOpt = None,
    region: RegionOpt = None,
    store: StoreOpt = None,
    verbose: VerboseOpt = False,
    as_json: JsonOpt = False,
) -> None:
    """Image -> the library's captions that fit it best, with their images."""
    with errors(as_json):
        lib = open_library(library, region=region, store=store)
        res = lib.describe(Path(image), k)
        gen = res.generated
        if as_json:
            d = {"generated": gen, "results": [r.to_dict() for r in res]}
            print(json.dumps(d, ensure_ascii=False))
            return
        if gen:
            out.print(f"generated: {gen}", highlight=False, markup=False)
        emit_description(res, image, lib.roots(), verbose)
