"""``pixsearch train policy``: the photo policy's classifier (trainer imported only when run).

``pixsearch train policy --data DIR --out RUN`` reproduces the shipped ``policy-minors-v3``
(``--model lite02-minilm-v2``; ``--model lite0-minilm-v1 --name policy-minors-v2``: v2): level-1 MLP
+ nearest-neighbour vote + face summary, stacked, threshold calibrated on val."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from pixsearch.cli._common import JsonOpt, ModelOpt, errors, train_app
from pixsearch.cli.output import out, progress
from pixsearch.cli.trainers import trainer_log


@train_app.command("policy")
def train_policy_cmd(
    data: Annotated[Path, typer.Option("--data", help="Dataset dir with train and val splits.")],
    out_dir: Annotated[
        Path, typer.Option("--out", help="Run dir: NAME.safetensors, NAME.json, metrics.json.")
    ],
    name: Annotated[str, typer.Option("--name", help="Model name.")] = "policy-minors-v3",
    model: ModelOpt = None,
    epochs: Annotated[int, typer.Option("--epochs", min=1)] = 10,
    hidden: Annotated[int, typer.Option("--hidden", min=1)] = 256,
    target_recall: Annotated[float, typer.Option("--target-recall", min=0.5, max=1.0)] = 0.995,
    no_faces: Annotated[
        bool,
        typer.Option(
            "--no-faces", help="No face summary in the stack and no face rule (skip the face model)."
        ),
    ] = False,
    no_knn: Annotated[
        bool,
        typer.Option("--no-knn", help="No nearest-neighbour vote in the stack (no train vectors shipped)."),
    ] = False,
    folds: Annotated[int, typer.Option("--folds", min=2, help="Out-of-fold MLP scores for the stack.")] = 5,
    seed: Annotated[int, typer.Option("--seed")] = 0,
    as_json: JsonOpt = False,
) -> None:
    """Train the photo classifier (shows a person under 16?) and calibrate it on val for recall."""
    with errors():
        from pixsearch.train.policy import PolicyTrainConfig, train_policy

        cfg = PolicyTrainConfig(
            data=data,
            out=out_dir,
            name=name,
            model=model,
            epochs=epochs,
            hidden=hidden,
            target_recall=target_recall,
            faces=not no_faces,
            knn=not no_knn,
            folds=folds,
            seed=seed,
        )
        with progress(not as_json, "features") as prog:
            lines = {"epoch": json.dumps, "best": json.dumps, "data": json.dumps, "fold": json.dumps}
            summary = train_policy(cfg, log=trainer_log(prog, as_json, lines))
        print(json.dumps(summary)) if as_json else out.print_json(json.dumps(summary))
