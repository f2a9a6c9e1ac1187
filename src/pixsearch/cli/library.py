"""Commands that change or check a library: index, remove, reindex, stats, doctor."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer

from pixsearch.cli._common import (
    JsonOpt,
    LibraryOpt,
    ModelOpt,
    QuietOpt,
    StoreOpt,
    WaitOpt,
    app,
    errors,
    fail,
    on_wait,
    open_library,
)
from pixsearch.cli.output import next_steps, note, out, print_phrases, progress
from pixsearch.results import shown


def _problems(d: dict[str, Any], warnings: bool = True) -> None:
    """Each failed (and kept) file on its own stderr line, then the first warnings."""
    from rich.markup import escape

    for key in ("kept", "failed"):
        for f in d.get(key, []):
            where = " (from its thumbnail)" if key == "kept" else ""
            why = escape(shown(f["reason"]))
            note.print(f"  [yellow]{key}[/] {escape(f['path'])}{where}: {why}", highlight=False)
    for w in d.get("warnings", [])[:20] if warnings else []:
        note.print(f"  [yellow]warning[/] {escape(w)}", highlight=False)


def _report_dict(rep: Any) -> dict[str, Any]:
    d: dict[str, Any] = rep.to_dict()
    for key in ("failed", "kept"):  # a name that is not UTF-8 shows with U+FFFD (valid JSON)
        d[key] = [{**f, "path": shown(f["path"])} for f in d[key]]
    d["warnings"] = [shown(w) for w in d["warnings"]]
    return d


@app.command()
def index(
    paths: Annotated[
        list[Path], typer.Argument(metavar="PATH", help="Files or folders to index (recursive).")
    ],
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
    ocr: Annotated[
        bool | None,
        typer.Option(
            "--ocr/--no-ocr",
            help="Read text in photos (signs, shirts) so search finds it; needs the ocr extra (default: off, "
            "or config ocr).",
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
    watch: Annotated[
        bool,
        typer.Option(
            "--watch",
            help="Then keep watching PATHS: new and changed photos are indexed, deleted ones forgotten, "
            "one line per batch (Ctrl+C stops).",
        ),
    ] = False,
    library: LibraryOpt = None,
    model: ModelOpt = None,
    store: StoreOpt = None,
    wait: WaitOpt = False,
    as_json: JsonOpt = False,
    quiet: QuietOpt = False,
) -> None:
    """Add images (and their captions) to the library; unchanged files are skipped.

    Photos get labels and, with --caption, a generated caption (with --ocr, the text read in them);
    photos done with older models are redone."""
    with errors():
        if engine not in ("local", "ray"):
            fail(f"--engine must be local or ray, not {engine!r}", 2)
        if watch and sample is not None:
            fail("--watch keeps all of PATHS current: it cannot be used with --sample", 2)
        from pixsearch.config import load_settings
        from pixsearch.indexing.ray_engine import RayEngine

        where = load_settings(library=library, model=model, store=store).library
        first = not (where / "catalog.db").is_file()  # a new library: say what to type next
        eng = RayEngine(address, workers) if engine == "ray" else None  # None: the local engine
        lib = open_library(library, model, create=True, wait=wait, store=store)
        with progress(not as_json, "indexing") as prog:
            rep = lib.add(
                paths,
                captions,
                sample,
                seed,
                prune,
                prog,
                force=force,
                generate_captions=caption,
                engine=eng,
                follow_links=follow_links,
                ocr=ocr,
            )
        d = _report_dict(rep)
        if as_json:
            print(json.dumps(d, ensure_ascii=False))
        else:
            counts = [
                ("added", rep.added),
                ("updated", rep.updated),
                ("unchanged", rep.unchanged),
                ("duplicates", rep.duplicates),
                ("removed", rep.removed),
                ("captions", rep.captions_added),
                ("failed", len(rep.failed)),
            ]
            print_phrases([f"{what} {n}" for what, n in counts])
            _problems(d)
            if rep.interrupted:
                note.print("interrupted: what was committed is kept; run the same command to resume")
            elif first and (rep.added or rep.duplicates):
                next_steps(lib.settings.library, library is not None)
        if rep.interrupted:
            raise typer.Exit(130)
        if watch:  # indexing/watch.py; the watcher's batches use the local engine
            from pixsearch.cli.watching import check_watch_paths, watch_here
            from pixsearch.indexing.watch import WatchConfig

            config = WatchConfig(generate_captions=caption, follow_links=follow_links, ocr=ocr)
            watch_here(lib, check_watch_paths(paths), config, as_json)
        if rep.failed and not (rep.added or rep.updated or rep.unchanged or rep.duplicates):
            raise typer.Exit(1)


@app.command()
def stats(library: LibraryOpt = None, store: StoreOpt = None, as_json: JsonOpt = False) -> None:
    """What the library holds."""
    with errors():
        s = open_library(library, store=store).stats()
        if as_json:
            print(json.dumps(s))
        else:
            for key, v in s.items():
                out.print(f"{key:>20}: {v}", highlight=False, markup=False)


@app.command()
def remove(
    paths: Annotated[
        list[Path],
        typer.Argument(metavar="PATH", help="Files or folders to forget (files on disk are untouched)."),
    ],
    library: LibraryOpt = None,
    store: StoreOpt = None,
    wait: WaitOpt = False,
    as_json: JsonOpt = False,
    quiet: QuietOpt = False,
) -> None:
    """Remove paths from the library (exact paths, case-sensitive; a folder removes what is under it)."""
    with errors():
        n = open_library(library, wait=wait, store=store).remove(paths)
        if as_json:
            print(json.dumps({"removed": n}))
        else:
            print_phrases([f"removed {n} path{'' if n == 1 else 's'}"])
        if n == 0:
            raise typer.Exit(1)


@app.command()
def reindex(
    library: LibraryOpt = None,
    model: ModelOpt = None,
    store: StoreOpt = None,
    wait: WaitOpt = False,
    as_json: JsonOpt = False,
    quiet: QuietOpt = False,
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
        lib.on_wait = on_wait
        with progress(not as_json, "re-encoding") as prog:
            rep = lib.reindex(progress=prog)
        d = _report_dict(rep)
        if as_json:
            print(json.dumps(d))
        else:
            n = rep.added + rep.duplicates + rep.unchanged
            print_phrases(
                [
                    f"re-encoded {n} path{'' if n == 1 else 's'}",
                    f"with {lib.encoder.name}",
                    f"kept {len(rep.kept)} unreadable",
                    f"failed {len(rep.failed)}",
                ]
            )
            _problems(d, warnings=False)
        if rep.interrupted:
            if not as_json:
                note.print("interrupted: the library is unchanged; run reindex again to resume")
            raise typer.Exit(130)


@app.command()
def doctor(library: LibraryOpt = None, store: StoreOpt = None, as_json: JsonOpt = False) -> None:
    """Check that models load, the library opens, and catalog and vectors agree."""
    with errors():
        checks = open_library(library, store=store).doctor()
        if as_json:
            print(json.dumps([{"check": c, "ok": ok, "detail": d} for c, ok, d in checks]))
        else:
            from rich.markup import escape

            for c, ok, d in checks:
                mark = "[green]ok[/]" if ok else "[red]FAIL[/]"
                out.print(f"{mark}  {escape(c)}: {escape(str(d))}", highlight=False)
        if not all(ok for _, ok, _ in checks):
            raise typer.Exit(1)
