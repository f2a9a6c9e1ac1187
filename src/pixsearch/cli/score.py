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
    app,
    err,
    errors,
    eval_app,
    open_library,
    out,
    train_app,
)


@app.command()
def score(
    photo: Annotated[str, typer.Argument(help="Image file (in the library or not).")],
    text: Annotated[str, typer.Argument(help="The text to check against the photo.")],
    pixels_only: Annotated[
        bool, typer.Option("--pixels-only", help="Ignore the photo's human captions even if it has some.")
    ] = False,
    library: LibraryOpt = None,
    region: RegionOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """How likely a person would say TEXT describes PHOTO: a calibrated 0..1 match score."""
    with errors(as_json):
        lib = open_library(library, region=region)
        m = lib.score(Path(photo), text, references=not pixels_only)
        if as_json:
            print(json.dumps(m.to_dict(), ensure_ascii=False))
            return
        verdict = "match" if m.score >= 0.5 else "no match"
        out.print(f"{m.score:.2f}  ({verdict}; {m.mode} mode)", highlight=False)
        sig = ", ".join(f"{k} {v:.3f}" for k, v in m.signals.items())
        out.print(f"signals: {sig}", highlight=False)
        if m.low_confidence:
            err.print(f"[yellow]low confidence:[/] {'; '.join(m.reasons)}", highlight=False)


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
                err.print(f"{e['event']} {e.get('split', '')}", highlight=False)

        cfg = ScorerConfig(data, out_dir, judged_split, pair_split, bank_limit=bank_limit)
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

        res = eval_score(data, split, scorer, limit)
        print(json.dumps(res)) if as_json else out.print_json(json.dumps(res))
