"""The calibrated match score's commands: ``pixsearch score``, ``train scorer`` and ``eval score``."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from pixsearch.cli._common import (
    JsonOpt,
    LibraryOpt,
    RegionOpt,
    VerboseOpt,
    app,
    errors,
    eval_app,
    open_library,
    train_app,
)
from pixsearch.cli.output import note, out, progress
from pixsearch.cli.tables import percent


@app.command()
def score(
    photo: Annotated[str, typer.Argument(metavar="PHOTO", help="Image file (in the library or not).")],
    text: Annotated[str, typer.Argument(metavar="TEXT", help="The text to check against the photo.")],
    pixels_only: Annotated[
        bool, typer.Option("--pixels-only", help="Ignore the photo's human captions even if it has some.")
    ] = False,
    library: LibraryOpt = None,
    region: RegionOpt = None,
    verbose: VerboseOpt = False,
    as_json: JsonOpt = False,
) -> None:
    """How likely a person would say TEXT describes PHOTO: a calibrated 0..1 match score.

    Needs no library: a photo that a library holds (-L) is also judged by its human captions."""
    with errors(as_json):
        from pixsearch.errors import LibraryNotFoundError

        try:
            lib = open_library(library, region=region)
        except LibraryNotFoundError:
            if library is not None:  # a library named but not there: a typo, not "no library wanted"
                raise
            lib = None
        if lib is not None:
            m = lib.score(Path(photo), text, references=not pixels_only)
        else:
            from pixsearch.config import load_settings
            from pixsearch.library.standalone import score_outside

            m = score_outside(Path(photo), text, load_settings(region=region))
        if as_json:
            print(json.dumps(m.to_dict(), ensure_ascii=False))
            return
        odds = "likely" if m.score >= 0.5 else "unlikely"
        line = f"{percent(m.score)} match ({odds} that a person would say the text describes the photo)"
        out.print(line, highlight=False, markup=False)
        if verbose:
            sig = ", ".join(f"{k} {v:.3f}" for k, v in m.signals.items())
            out.print(f"{m.mode} mode; signals: {sig}", highlight=False, markup=False)
        if m.low_confidence:
            note.print(f"[yellow]low confidence:[/] {'; '.join(m.reasons)}", highlight=False)


@train_app.command("scorer")
def train_scorer_cmd(
    data: Annotated[Path, typer.Option("--data", help="Dataset dir with expert/crowd judgments.")],
    out_dir: Annotated[Path, typer.Option("--out", help="Run dir: scorer.json (card) + scorer.safetensors.")],
    judged_split: Annotated[str, typer.Option("--judged-split")] = "test",
    pair_split: Annotated[
        str, typer.Option("--pair-split", help="True/false pairs from this split.")
    ] = "val",
    bank_limit: Annotated[
        int, typer.Option("--bank-limit", min=1, help="Caption-bank captions per bank split (train, val).")
    ] = 8192,
    as_json: JsonOpt = False,
) -> None:
    """Fit the calibrated match score; prints cross-validated figures (grouped by image)."""
    with errors(as_json):
        from pixsearch.train.scorer import ScorerConfig, train_scorer

        def log(e: dict) -> None:
            if not as_json:
                note.print(f"{e['event']} {e.get('split', '')}", highlight=False, markup=False)

        cfg = ScorerConfig(data, out_dir, judged_split, pair_split, bank_limit=bank_limit)
        with progress(not as_json, "fitting the scorer"):
            res = train_scorer(cfg, log=log)
        print(json.dumps(res)) if as_json else out.print_json(json.dumps(res))


@eval_app.command("score")
def eval_score_cmd(
    data: Annotated[Path, typer.Option("--data")],
    split: Annotated[str, typer.Option("--split")] = "test",
    scorer: Annotated[str | None, typer.Option("--scorer", help="Scorer name or card path.")] = None,
    limit: Annotated[int, typer.Option("--limit", help="Only the first N judged images.")] = 0,
    as_json: JsonOpt = False,
) -> None:
    """Agreement of the match score with human judgments (Kendall tau, CLIPScore protocol)."""
    with errors(as_json):
        from pixsearch.evaluation.match_score import eval_score

        with progress(not as_json, "scoring"):
            res = eval_score(data, split, scorer, limit)
        print(json.dumps(res)) if as_json else out.print_json(json.dumps(res))
