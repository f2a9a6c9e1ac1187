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
from pixsearch.results import Result, Withheld, shown

_F = "Filters"
AfterOpt = Annotated[
    str | None,
    typer.Option(
        "--after", help="Taken in or after this period: 2024, 2024-05 or 2024-05-17.", rich_help_panel=_F
    ),
]
BeforeOpt = Annotated[
    str | None,
    typer.Option(
        "--before", help="Taken before this period starts (--before 2024: up to 2023).", rich_help_panel=_F
    ),
]
CameraOpt = Annotated[
    str | None,
    typer.Option("--camera", help="Camera make or model contains this: canon, 'eos 5d'.", rich_help_panel=_F),
]
FolderOpt = Annotated[
    list[Path] | None,
    typer.Option("--folder", help="Only photos below this folder (repeatable).", rich_help_panel=_F),
]
NearOpt = Annotated[
    str | None,
    typer.Option(
        "--near",
        metavar="LAT,LON[,KM]",
        help="Taken within KM (default 5) of a GPS position.",
        rich_help_panel=_F,
    ),
]
PlaceOpt = Annotated[
    str | None,
    typer.Option(
        "--place", help="Taken in or near this town or country: paris, 'new york'.", rich_help_panel=_F
    ),
]
SortOpt = Annotated[
    str | None,
    typer.Option(
        "--sort",
        metavar="relevance|date|-date",
        help="Order: best match first (with a query), date (oldest first), -date (newest first; the default "
        "without a query).",
    ),
]
PathsOpt = Annotated[
    bool,
    typer.Option("--paths-only", "-p", help="Print only the photos' paths, one a line (for xargs, scripts)."),
]
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
    query: Annotated[
        list[str] | None,
        typer.Argument(
            metavar="[QUERY]...",
            help="What to look for, in words; none: list the photos the filters keep. Compose with + and -: "
            "'a dog' + snow - grass; weigh a term with 2:snow; a term naming an image file is that photo.",
        ),
    ] = None,
    k: KOpt = 10,
    offset: Annotated[int, typer.Option("--offset", min=0)] = 0,
    threshold: Annotated[
        float | None,
        typer.Option("--threshold", help="Keep results whose match score (0..1) reaches this, e.g. 0.5."),
    ] = None,
    after: AfterOpt = None,
    before: BeforeOpt = None,
    camera: CameraOpt = None,
    folder: FolderOpt = None,
    near: NearOpt = None,
    place: PlaceOpt = None,
    sort: SortOpt = None,
    paths_only: PathsOpt = False,
    library: LibraryOpt = None,
    model: ModelOpt = None,
    region: RegionOpt = None,
    store: StoreOpt = None,
    verbose: VerboseOpt = False,
    preview: PreviewOpt = False,
    as_json: JsonOpt = False,
) -> None:
    """Text -> images, optionally only those taken when, where and with what the filters say.

    Without a query, lists the photos the filters keep, newest first: pixsearch search --after 2024-05
    --before 2024-06 --place paris. A composed query (+, -) ranks by the joint space alone: no match %."""
    from pixsearch.search.filters import Filters
    from pixsearch.search.terms import parse_terms

    with errors(as_json):
        filters = Filters.parse(after, before, camera, folder or None, near, place)
        terms = parse_terms(query or [])
        lib = open_library(library, model, region=region, store=store)
        res: Sequence[Result | Withheld]
        if not terms:  # no words at all: a listing (blank words are an empty query, an error)
            res, title = lib.browse(filters, sort or "-date", k, offset), "photos"
        elif len(terms) > 1:
            res, title = lib.compose(terms, k, offset, filters), " ".join(query or [])
        else:
            text = str(terms[0].text)
            found = lib.search(text, k, offset, threshold, filters, sort or "relevance")
            if found.no_confident_match:  # nothing passed the match threshold
                _below(lib, text, found, as_json, paths_only, verbose, preview)
                return
            res, title = found, f"'{text}'"
        if paths_only:
            _paths(res)
        elif as_json:
            emit_results(res, True, "")
        elif not res and filters.active:  # say why there is nothing, and what to change
            out.print("no photo passes these filters (dates, camera, folder, place): loosen one of them")
        else:
            _show(lib, res, title, verbose, preview)


def _paths(res: Sequence[Result | Withheld]) -> None:
    """One absolute path a line (withheld photos have none to give)."""
    for r in res:
        if isinstance(r, Result) and r.path:
            print(shown(r.path))


def _below(
    lib: Any, query: str, res: Any, as_json: bool, paths_only: bool, verbose: bool, preview: bool
) -> None:
    """A threshold nothing passed: say so, and show the best few below it (never for --paths-only: a
    script gets no paths that did not pass)."""
    below = res.below_threshold
    if as_json:
        d = {"results": [], "no_confident_match": True, "threshold": res.threshold}
        print(json.dumps({**d, "below_threshold": [r.to_dict() for r in below]}, ensure_ascii=False))
    elif not paths_only:
        out.print(f"no confident match (match >= {res.threshold:.0%}); best below the line:")
        _show(lib, below, f"'{query}' (below threshold)", verbose, preview)


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
