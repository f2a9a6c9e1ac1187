"""``pixsearch train ...``: the trainer is imported only inside each command."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer

from pixsearch.cli._common import JsonOpt, ResumeOpt, TrainLimitOpt, errors, train_app
from pixsearch.cli.output import out, progress
from pixsearch.cli.trainers import skipped_line, trainer_log


@train_app.command("joint")
def train_joint_cmd(
    data: Annotated[
        Path, typer.Option("--data", help="Dataset dir (Flickr8k layout, judged-pairs layout, or CSV).")
    ],
    out_dir: Annotated[Path, typer.Option("--out", help="Run dir: checkpoints, metrics.jsonl, metrics.png.")],
    phase: Annotated[
        int, typer.Option("--phase", min=1, max=2, help="2: also fine-tune the image backbone's top.")
    ] = 1,
    init: Annotated[
        Path | None, typer.Option("--init", help="Phase 2: phase-1 heads to start from (default OUT/best).")
    ] = None,
    resume: ResumeOpt = False,
    epochs: Annotated[int | None, typer.Option("--epochs", min=1, help="Default 30 (phase 2: 8).")] = None,
    batch_size: Annotated[int | None, typer.Option("--batch-size", min=2, help="Default 128.")] = None,
    lr: Annotated[float | None, typer.Option("--lr", help="Default 1e-3 (phase 2: 3e-4).")] = None,
    feature_noise: Annotated[float | None, typer.Option("--feature-noise", help="Default 1.5.")] = None,
    seed: Annotated[int, typer.Option("--seed")] = 0,
    extra: Annotated[
        list[str] | None,
        typer.Option("--extra-backbone", help="Also feed this backbone's pooled features (e.g. lite2)."),
    ] = None,
    hard_negative_weight: Annotated[
        float,
        typer.Option("--hard-negative-weight", min=0, help="Weight of the VSE++ hardest-negative hinge."),
    ] = 0.0,
    margin: Annotated[float, typer.Option("--margin", help="The hinge's cosine margin.")] = 0.2,
    frozen_top: Annotated[
        Path | None,
        typer.Option("--frozen-top", help="Keep this phase-2 model's backbone top (its features, frozen)."),
    ] = None,
    limit: TrainLimitOpt = 0,
    checkpoint_every: Annotated[int, typer.Option("--checkpoint-every", min=1)] = 200,
    val_split: Annotated[str, typer.Option("--val-split")] = "val",
    train_split: Annotated[str, typer.Option("--train-split")] = "train",
    as_json: JsonOpt = False,
) -> None:
    """Train the joint image-text heads on frozen backbone features (phase 2: with the backbone top)."""
    with errors():
        from pixsearch.train.joint import PHASE2, TrainConfig, train_joint

        given = {"epochs": epochs, "batch_size": batch_size, "lr": lr, "feature_noise": feature_noise}
        base: dict[str, Any] = dict(PHASE2) if phase == 2 else {}
        base.update({k: v for k, v in given.items() if v is not None})
        cfg = TrainConfig(
            data=data,
            out=out_dir,
            phase=phase,
            init=init,
            seed=seed,
            extra_backbones=tuple(extra or ()),
            hard_negative_weight=hard_negative_weight,
            margin=margin,
            frozen_top=frozen_top,
            limit=limit,
            checkpoint_every=checkpoint_every,
            val_split=val_split,
            train_split=train_split,
            **base,
        )
        with progress(not as_json, "features") as prog:
            lines = {"epoch": _epoch_line, "skipped": skipped_line}
            summary = train_joint(cfg, resume=resume, log=trainer_log(prog, as_json, lines))
        print(json.dumps(summary)) if as_json else out.print(summary)


def _epoch_line(e: dict) -> str:
    v = e["val"]
    return (
        f"epoch {e['epoch']}: loss {e['loss']:.3f}  t2i R@1/5/10 {v['t2i']['R@1']}/"
        f"{v['t2i']['R@5']}/{v['t2i']['R@10']}  i2t R@5 {v['i2t']['R@5']}  rsum {v['rsum']}"
    )


@train_app.command("export")
def train_export(
    run: Annotated[Path, typer.Argument(metavar="RUN", help="Training run dir (or its best.safetensors).")],
    name: Annotated[str, typer.Option("--name", help="Model name, e.g. lite0-minilm-v1.")],
    out_dir: Annotated[Path | None, typer.Option("--out", help="Default: the package's weights dir.")] = None,
    test_data: Annotated[
        Path | None, typer.Option("--eval-data", help="Also evaluate on this dataset's test split.")
    ] = None,
    share: Annotated[
        str | None,
        typer.Option("--share", help="Run this shipped model's MiniLM and Lite0 graphs (heads in NumPy)."),
    ] = None,
) -> None:
    """Ship a run's best heads as a named model (float16 safetensors + model card)."""
    with errors():
        from pixsearch.evaluation.retrieval import eval_retrieval as run_eval
        from pixsearch.train.ship import ship_heads

        metrics = None
        if test_data is not None:
            res = run_eval(test_data, "test", str(run / "best.safetensors" if run.is_dir() else run))
            metrics = {"test": {k: v for k, v in res.items() if k not in ("model", "split")}}
        kw = {"out_dir": out_dir} if out_dir else {}
        dst = ship_heads(run, name, metrics=metrics, share=share, **kw)
        out.print(f"shipped {dst}")


@train_app.command("multilingual")
def train_multilingual_cmd(
    data: Annotated[Path, typer.Option("--data", help="Flickr8k-layout dataset: photos, English captions.")],
    cn: Annotated[Path, typer.Option("--cn", help="Flickr8K-CN dir or image,caption CSV.")],
    out_dir: Annotated[Path, typer.Option("--out", help="Run dir: multilingual.safetensors + .json.")],
    model: Annotated[str | None, typer.Option("--model", help="Joint model (default: shipped).")] = None,
    encoders: Annotated[str, typer.Option("--encoders", help="use-m3, e5-small or both.")] = "use-m3",
    epochs: Annotated[int, typer.Option("--epochs", min=1)] = 20,
    seed: Annotated[int, typer.Option("--seed")] = 0,
    limit: TrainLimitOpt = 0,
    ship: Annotated[bool, typer.Option("--ship", help="Install as the model's tower.")] = False,
    as_json: JsonOpt = False,
) -> None:
    """Train the multilingual query tower into a joint model's space (English + Chinese captions)."""
    with errors():
        from pixsearch.train.multilingual import MultilingualConfig, ship_tower, train_multilingual

        cfg = MultilingualConfig(
            data=data, cn=cn, out=out_dir, model=model, epochs=epochs, seed=seed, limit=limit,
            encoders=tuple(e.strip() for e in encoders.split(",") if e.strip()),
        )  # fmt: skip
        with progress(not as_json, "features") as prog:
            lines = {"epoch": _ml_epoch_line, "skipped": skipped_line}
            summary = train_multilingual(cfg, log=trainer_log(prog, as_json, lines))
        if ship:
            summary["shipped"] = str(ship_tower(out_dir, summary["model"]))
        print(json.dumps(summary)) if as_json else out.print(summary)


def _ml_epoch_line(e: dict) -> str:
    en, other = e["val_en"]["R@5"], e["val_cn"]["R@5"]
    return f"epoch {e['epoch']}: loss {e['loss']:.3f}  val t2i R@5 English {en}  other language {other}"
