"""Library commands: index, search, similar, describe, stats, remove, reindex, doctor."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from pixsearch.cli._common import (
    JsonOpt,
    KOpt,
    LibraryOpt,
    ModelOpt,
    RegionOpt,
    StoreOpt,
    WaitOpt,
    app,
    emit_results,
    err,
    errors,
    fail,
    open_library,
    out,
    progress,
    short,
)
from pixsearch.results import Withheld, shown


@app.command()
def index(
    paths: Annotated[list[Path], typer.Argument(help="Files or folders to index (recursive).")],
    captions: Annotated[Path | None, typer.Option("--captions", help="CSV with image,caption rows.")] = None,
    sample: Annotated[
        int | None, typer.Option("--sample", help="Index a seeded random sample of N images.")
    ] = None,
    seed: Annotated[int, typer.Option("--seed")] = 0,
    prune: Annotated[
        bool, typer.Option("--prune", help="Forget indexed files under PATHS that vanished.")
    ] = False,
    force: Annotated[
        bool,
        typer.Option("--force", help="With --prune: prune a PATH even if missing or empty (unmounted?)."),
    ] = False,
    follow_links: Annotated[
        bool,
        typer.Option(
            "--follow-links", help="Also index what symbolic links under PATHS point to outside them."
        ),
    ] = False,
    caption: Annotated[
        bool | None,
        typer.Option(
            "--caption/--no-caption",
            help="Generate a caption for each photo without one (default: off, or config generate_captions).",
        ),
    ] = None,
    engine: Annotated[
        str,
        typer.Option(
            "--engine", help="local, or ray: decode, encode, caption and check photos on a Ray cluster."
        ),
    ] = "local",
    address: Annotated[
        str | None,
        typer.Option("--address", help="With --engine ray: 'auto' or ray://HEAD:10001 (default: start one)."),
    ] = None,
    workers: Annotated[
        int | None,
        typer.Option("--workers", min=1, help="With --engine ray: worker actors (default: one per CPU)."),
    ] = None,
    library: LibraryOpt = None,
    model: ModelOpt = None,
    store: StoreOpt = None,
    wait: WaitOpt = False,
    as_json: JsonOpt = False,
) -> None:
    """Add images (and their captions) to the library; unchanged files are skipped.

    Photos get labels and, with --caption, a generated caption; photos done with older models are
    redone."""
    with errors():
        if engine not in ("local", "ray"):
            fail(f"--engine must be local or ray, not {engine!r}", 2)
        from pixsearch.indexing.ray_engine import RayEngine

        eng = RayEngine(address, workers) if engine == "ray" else None  # None: the local engine
        lib = open_library(library, model, create=True, wait=wait, store=store)
        with progress(not as_json, "indexing") as prog:
            gen = caption
            rep = lib.add(
                paths,
                captions,
                sample,
                seed,
                prune,
                prog,
                force=force,
                generate_captions=gen,
                engine=eng,
                follow_links=follow_links,
            )
        d = rep.to_dict()
        for key in ("failed", "kept"):  # a name that is not UTF-8 shows with U+FFFD (valid JSON)
            d[key] = [{**f, "path": shown(f["path"])} for f in d[key]]
        d["warnings"] = [shown(w) for w in d["warnings"]]
        if as_json:
            print(json.dumps(d, ensure_ascii=False))
        else:
            out.print(
                f"added {rep.added}, updated {rep.updated}, unchanged {rep.unchanged}, duplicates "
                f"{rep.duplicates}, removed {rep.removed}, captions {rep.captions_added}, "
                f"failed {len(rep.failed)}"
            )
            from rich.markup import escape

            for f in d["failed"]:
                why = escape(shown(f["reason"]))
                err.print(f"  [yellow]failed[/] {escape(f['path'])}: {why}", highlight=False)
            for w in d["warnings"][:20]:
                err.print(f"  [yellow]warning[/] {escape(w)}", highlight=False)
            if rep.interrupted:
                err.print("interrupted: what was committed is kept; run the same command to resume")
        if rep.interrupted:
            raise typer.Exit(130)
        if rep.failed and not (rep.added or rep.updated or rep.unchanged or rep.duplicates):
            raise typer.Exit(1)


@app.command()
def search(
    query: Annotated[str, typer.Argument(help="What to look for, in words.")],
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
            out.print(f"no confident match (match score >= {res.threshold:g}); best below the line:")
            emit_results(below, False, f"'{query}' (below threshold)")
            return
        emit_results(res, as_json, f"'{query}'")


@app.command()
def similar(
    image: Annotated[str, typer.Argument(help="Image file (in the library or not).")],
    k: KOpt = 10,
    offset: Annotated[int, typer.Option("--offset", min=0)] = 0,
    library: LibraryOpt = None,
    region: RegionOpt = None,
    store: StoreOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Image -> similar images in the library."""
    with errors(as_json):
        lib = open_library(library, region=region, store=store)
        emit_results(lib.similar(Path(image), k, offset), as_json, f"like {image}")


@app.command()
def describe(
    image: Annotated[str, typer.Argument(help="Image file (in the library or not).")],
    k: KOpt = 5,
    library: LibraryOpt = None,
    region: RegionOpt = None,
    store: StoreOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Image -> the library's captions that fit it best, with their images."""
    with errors(as_json):
        res = open_library(library, region=region, store=store).describe(Path(image), k)
        gen = res.generated
        if as_json:
            d = {"generated": gen, "results": [r.to_dict() for r in res]}
            print(json.dumps(d, ensure_ascii=False))
            return
        if gen:
            out.print(f"generated: {gen}", highlight=False)
        from rich.table import Table

        t = Table(title=f"captions for {image}")
        for c in ("match", "caption", "image"):
            t.add_column(c)
        for r in res:
            if isinstance(r, Withheld):  # the content policy hides it: the disclaimer only
                t.add_row("", r.disclaimer, "")
                continue
            t.add_row("" if r.match is None else f"{r.match:.2f}", r.caption, short(r.path))
        out.print(t)


@app.command()
def stats(library: LibraryOpt = None, store: StoreOpt = None, as_json: JsonOpt = False) -> None:
    """What the library holds."""
    with errors():
        s = open_library(library, store=store).stats()
        if as_json:
            print(json.dumps(s))
        else:
            for key, v in s.items():
                out.print(f"{key:>20}: {v}", highlight=False)


@app.command()
def remove(
    paths: Annotated[
        list[Path], typer.Argument(help="Files or folders to forget (files on disk are untouched).")
    ],
    library: LibraryOpt = None,
    store: StoreOpt = None,
    wait: WaitOpt = False,
    as_json: JsonOpt = False,
) -> None:
    """Remove paths from the library (exact paths, case-sensitive; a folder removes what is under it)."""
    with errors():
        n = open_library(library, wait=wait, store=store).remove(paths)
        print(json.dumps({"removed": n})) if as_json else out.print(f"removed {n} path(s)")
        if n == 0:
            raise typer.Exit(1)


@app.command()
def reindex(
    library: LibraryOpt = None,
    model: ModelOpt = None,
    store: StoreOpt = None,
    wait: WaitOpt = False,
    as_json: JsonOpt = False,
) -> None:
    """Re-encode the whole library with MODEL (default: the default model); captions are kept.

    With --store, the new vectors go to that store (how a library moves to Milvus)."""
    with errors():
        import math

        from pixsearch.config import load_settings
        from pixsearch.library.facade import Library
        from pixsearch.models.encoder import create_encoder

        settings = load_settings(library=library, store=store)
        lib = Library.open(settings=settings, encoder=create_encoder(model), check_model=False, create=False)
        lib.lock_wait = math.inf if wait else 0.0
        lib.on_wait = lambda msg: err.print(msg, style="yellow", markup=False, highlight=False)
        with progress(not as_json, "re-encoding") as prog:
            rep = lib.reindex(progress=prog)
        if as_json:
            d = rep.to_dict()
            for key in ("failed", "kept"):  # a name that is not UTF-8 shows with U+FFFD
                d[key] = [{**f, "path": shown(f["path"])} for f in d[key]]
            print(json.dumps(d))
        else:
            from rich.markup import escape

            out.print(
                f"re-encoded {rep.added + rep.duplicates + rep.unchanged} path(s) with {lib.encoder.name}; "
                f"kept {len(rep.kept)} unreadable, failed {len(rep.failed)}"
            )
            for p, reason in rep.kept:
                line = f"{escape(shown(p))} (from its thumbnail): {escape(shown(reason))}"
                err.print(f"  [yellow]kept[/] {line}", highlight=False)
            for p, reason in rep.failed:
                err.print(f"  [yellow]failed[/] {escape(shown(p))}: {escape(shown(reason))}", highlight=False)
        if rep.interrupted:
            if not as_json:
                err.print("interrupted: the library is unchanged; run reindex again to resume")
            raise typer.Exit(130)


@app.command()
def doctor(library: LibraryOpt = None, store: StoreOpt = None, as_json: JsonOpt = False) -> None:
    """Check that models load, the library opens, and catalog and vectors agree."""
    with errors():
        checks = open_library(library, store=store).doctor()
        if as_json:
            print(json.dumps([{"check": c, "ok": ok, "detail": d} for c, ok, d in checks]))
        else:
            for c, ok, d in checks:
                out.print(f"{'[green]ok[/]' if ok else '[red]FAIL[/]'}  {c}: {d}", highlight=False)
        if not all(ok for _, ok, _ in checks):
            raise typer.Exit(1)
