"""``pixsearch eval ...``: each prints one JSON object with --json."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from pixsearch.cli._common import JsonOpt, ModelOpt, errors, eval_app
from pixsearch.cli.output import out, progress


@eval_app.command("retrieval")
def eval_retrieval(
    data: Annotated[Path, typer.Option("--data")],
    split: Annotated[str, typer.Option("--split")] = "test",
    model: ModelOpt = None,
    captions: Annotated[
        Path | None,
        typer.Option("--captions", help="image,caption CSV replacing the split's captions (any language)."),
    ] = None,
    as_json: JsonOpt = False,
) -> None:
    """Recall@K / MedR, standard 1K protocol, on a dataset split."""
    with errors():
        from pixsearch.evaluation.retrieval import eval_retrieval as run

        with progress(not as_json, "evaluating"):
            res = run(data, split, model, captions)
        print(json.dumps(res)) if as_json else out.print_json(json.dumps(res))
