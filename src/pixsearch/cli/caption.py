"""Caption commands: ``caption``, ``train captioner``, ``train ship-captioner``, ``eval caption``."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer

from pixsearch.cli._common import (
    JsonOpt,
    LibraryOpt,
    RegionOpt,
    ResumeOpt,
    TrainLimitOpt,
    app,
    errors,
    eval_app,
    fail,
    open_library,
    train_app,
)
from pixsearch.cli.output import out, progress
from pixsearch.cli.tables import shown_path
from pixsearch.cli.trainers import skipped_line, trainer_log

BeamOpt = Annotated[int, typer.Option("--beam", min=1, help="Beam width (clamped to the vocabulary size).")]
CaptionerOpt = Annotated[
    str | None, typer.Option("--captioner", help="Captioner name or folder (default: the shipped one).")
]


@app.command()
def caption(
    photos: Annotated[
        list[str], typer.Argument(metavar="PHOTO", help="Photo files, or ids of photos in the library.")
    ],
    beam: BeamOpt = 3,
    library: LibraryOpt = None,
    region: RegionOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Write a caption for each photo (files work without a library; ids need one).

    The region applies as in every read: where it withholds photos, a photo of a child gets the
    disclaimer, not a caption (with or without a library; a pinned library's region is its floor)."""
    with errors(as_json):
        from pixsearch.config import load_settings
        from pixsearch.errors import LibraryNotFoundError
        from pixsearch.library.photo import caption_outside

        try:
            lib = open_library(library, region=region)
        except LibraryNotFoundError:
            if any(p.isdigit() and not Path(p).exists() for p in photos):
                raise
            lib = None  # plain files: no library needed, the region's photo check all the same
        settings = load_settings(library=library, region=region) if lib is None else None
        results = []
        for p in photos:
            if lib is not None:
                photo: str | int = int(p) if p.isdigit() and not Path(p).exists() else p
                text = lib.caption(photo, beam=beam)
            else:
                assert settings is not None
                text = caption_outside(Path(p), settings, beam=beam)
            results.append({"path": p, "caption": text})
        if as_json:
            print(json.dumps({"results": results}, ensure_ascii=False))
        else:
            for r in results:
                out.print(f"{shown_path(r['path'], None)}: {r['caption']}", highlight=False, markup=False)


@train_app.command("captioner")
def train_captioner_cmd(
    data: Annotated[Path, typer.Option("--data", help="Dataset dir (Flickr8k layout, or any --data).")],
    out_dir: Annotated[Path, typer.Option("--out", help="Run dir: checkpoints, metrics, export/.")],
    resume: ResumeOpt = False,
    epochs: Annotated[int | None, typer.Option("--epochs", min=1)] = None,
    batch_images: Annotated[
        int | None, typer.Option("--batch-images", min=1, help="Images per batch.")
    ] = None,
    lr: Annotated[float | None, typer.Option("--lr")] = None,
    d: Annotated[int | None, typer.Option("--d", help="Model width.")] = None,
    layers: Annotated[int | None, typer.Option("--layers", help="Decoder layers.")] = None,
    enc_layers: Annotated[int | None, typer.Option("--enc-layers", help="Layers over image tokens.")] = None,
    dropout: Annotated[float | None, typer.Option("--dropout")] = None,
    min_count: Annotated[
        int | None, typer.Option("--min-count", help="Vocabulary: minimum word count.")
    ] = None,
    select: Annotated[str | None, typer.Option("--select", help="bleu4 or cider.")] = None,
    limit: TrainLimitOpt = 0,
    val_limit: Annotated[int, typer.Option("--val-limit", help="Validate on the first N images.")] = 0,
    checkpoint_every: Annotated[int | None, typer.Option("--checkpoint-every", min=1)] = None,
    seed: Annotated[int, typer.Option("--seed")] = 0,
    as_json: JsonOpt = False,
) -> None:
    """Train a captioner on the default encoder's spatial features; exports OUT/export when done."""
    with errors():
        from dataclasses import replace

        from pixsearch.train.caption_model import NetConfig
        from pixsearch.train.captioner import CaptionTrainConfig, train_captioner

        sizes: dict[str, Any] = {"d": d, "layers": layers, "enc_layers": enc_layers, "dropout": dropout}
        net = replace(NetConfig(), **{k: v for k, v in sizes.items() if v is not None})
        given = dict(  # keywords, not a literal: layout_check reads a "select" key as SQL
            epochs=epochs,
            batch_images=batch_images,
            lr=lr,
            min_count=min_count,
            select=select,
            checkpoint_every=checkpoint_every,
        )
        cfg = CaptionTrainConfig(
            data=data,
            out=out_dir,
            net=net,
            seed=seed,
            limit=limit,
            val_limit=val_limit,
            **{k: v for k, v in given.items() if v is not None},  # type: ignore[arg-type]
        )
        with progress(not as_json, "features") as prog:
            lines = {"epoch": _epoch_line, "skipped": skipped_line}
            summary = train_captioner(cfg, resume=resume, log=trainer_log(prog, as_json, lines))
        print(json.dumps(summary)) if as_json else out.print(summary)


def _epoch_line(e: dict) -> str:
    v = e["val"]
    return (
        f"epoch {e['epoch']}: loss {e['loss']:.3f}  val BLEU-1/4 {v['bleu1']}/{v['bleu4']}  "
        f"CIDEr-D {v['cider']}  e.g. '{v['sample'][0]}'"
    )


@train_app.command("ship-captioner")
def ship_captioner_cmd(
    run: Annotated[Path, typer.Argument(metavar="RUN", help="Training run dir (or its export/).")],
    name: Annotated[str, typer.Option("--name", help="Captioner name, e.g. lite0-cap-v1.")],
    out_dir: Annotated[
        Path | None, typer.Option("--out", help="Default: the package's captioners dir.")
    ] = None,
    eval_data: Annotated[
        Path | None, typer.Option("--eval-data", help="Also score val and test of this dataset.")
    ] = None,
) -> None:
    """Ship a run's exported captioner under NAME (with its model card)."""
    with errors():
        from pixsearch.evaluation.captions import eval_caption
        from pixsearch.models.shipped import CAPTIONERS_DIR
        from pixsearch.train.captioner import ship_captioner

        metrics = {}
        if eval_data is not None:
            for split in ("val", "test"):
                res = eval_caption(eval_data, split, str(run))
                metrics[split] = {
                    k: res[k] for k in ("n_images", "bleu1", "bleu2", "bleu3", "bleu4", "cider")
                }
        dst = ship_captioner(run, name, out_dir or CAPTIONERS_DIR, metrics)
        out.print(f"shipped {dst}")


@eval_app.command("caption")
def eval_caption_cmd(
    data: Annotated[Path, typer.Option("--data")],
    split: Annotated[str, typer.Option("--split")] = "test",
    captioner: CaptionerOpt = None,
    beam: BeamOpt = 3,
    as_json: JsonOpt = False,
) -> None:
    """BLEU-1..4 (0-100) and CIDEr-D of generated captions against a split's human captions."""
    with errors():
        from pixsearch.evaluation.captions import eval_caption

        with progress(not as_json, "features") as prog:
            res = eval_caption(data, split, captioner, beam, prog)
        if res["n_images"] == 0:
            fail("no image of the split could be read")
        print(json.dumps(res)) if as_json else out.print_json(json.dumps(res))
