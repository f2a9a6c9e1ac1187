"""The ``pixsearch`` command: parses, calls the Library, prints. The only place that exits.

Human output is a Rich table on a TTY; ``--json`` prints one JSON document on stdout. Progress bars
show only on an interactive terminal and never with ``--json``.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from .errors import ModelMismatchError, PixsearchError, QueryError

app = typer.Typer(
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_show_locals=False,
    help="Offline text <-> image search for photo libraries.",
)
train_app = typer.Typer(no_args_is_help=True, help="Train pixsearch's own models.")
eval_app = typer.Typer(no_args_is_help=True, help="Evaluate models; prints JSON with --json.")
app.add_typer(train_app, name="train")
app.add_typer(eval_app, name="eval")

out = Console()
err = Console(stderr=True, soft_wrap=True)  # one error, one line: never hard-wrapped

LibraryOpt = Annotated[
    Path | None,
    typer.Option(
        "--library",
        "-L",
        help="Library dir (env PIXSEARCH_LIBRARY).",
        envvar="PIXSEARCH_LIBRARY",
        show_default=False,
    ),
]
ModelOpt = Annotated[str | None, typer.Option("--model", "-m", help="Model name or heads .safetensors path.")]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON on stdout.")]
KOpt = Annotated[int, typer.Option("-k", "--top-k", help="Number of results.", min=1)]


def _fail(msg: str, code: int = 1) -> None:
    err.print(f"[bold red]error:[/] {msg}", highlight=False)
    raise typer.Exit(code)


@contextmanager
def _errors() -> Iterator[None]:
    try:
        yield
    except ModelMismatchError as exc:
        _fail(str(exc), 3)
    except QueryError as exc:
        _fail(str(exc), 2)
    except PixsearchError as exc:
        _fail(str(exc), 1)
    except KeyboardInterrupt:
        _fail("interrupted", 130)


@contextmanager
def _progress(enabled: bool, label: str) -> Iterator[Callable[[int, int], None] | None]:
    if not (enabled and sys.stderr.isatty()):
        yield None
        return
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TaskProgressColumn,
        TextColumn,
        TimeRemainingColumn,
    )

    cols = (
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TaskProgressColumn(),
        TextColumn("{task.fields[rate]}"),
        TimeRemainingColumn(),
    )
    with Progress(*cols, console=err, transient=True) as bar:
        task = bar.add_task(label, total=None, rate="")

        def update(done: int, total: int) -> None:
            t = bar.tasks[0]
            rate = f"{t.speed:.1f}/s" if t.speed else ""
            bar.update(task, completed=done, total=total, rate=rate)

        yield update


def _open(library: Path | None, model: str | None = None, **kw: Any) -> Any:
    from .config import load_settings
    from .library import Library

    settings = load_settings(library=library, model=model, **kw)
    return Library.open(settings=settings)


def _short(path: str) -> str:
    """Paths under the working directory print relative: tables stay readable in narrow terminals."""
    import os

    rel = os.path.relpath(path) if path else path
    return rel if rel and not rel.startswith("..") else path


def _emit_results(results: list, as_json: bool, title: str) -> None:
    if as_json:
        print(json.dumps({"results": [r.to_dict() for r in results]}, ensure_ascii=False))
        return
    if not results:
        out.print("no results")
        return
    t = Table(title=title, show_lines=False)
    t.add_column("#", justify="right")
    t.add_column("score", justify="right")
    t.add_column("path")
    t.add_column("best caption")
    for i, r in enumerate(results, 1):
        cap = getattr(r, "matched_caption", None) or (r.captions[0] if getattr(r, "captions", ()) else "")
        t.add_row(str(i), f"{r.score:.3f}", _short(r.path), cap)
    out.print(t)


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
    library: LibraryOpt = None,
    model: ModelOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Add images (and their captions) to the library; unchanged files are skipped."""
    with _errors():
        lib = _open(library, model)
        with _progress(not as_json, "indexing") as prog:
            rep = lib.add(paths, captions, sample, seed, prune, prog)
        d = rep.to_dict()
        if as_json:
            print(json.dumps(d, ensure_ascii=False))
        else:
            out.print(
                f"added {rep.added}, updated {rep.updated}, unchanged {rep.unchanged}, duplicates "
                f"{rep.duplicates}, removed {rep.removed}, captions {rep.captions_added}, "
                f"failed {len(rep.failed)}"
            )
            for p, reason in rep.failed:
                err.print(f"  [yellow]failed[/] {p}: {reason}", highlight=False)
            for w in rep.warnings[:20]:
                err.print(f"  [yellow]warning[/] {w}", highlight=False)
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
        float | None, typer.Option("--threshold", help="Drop results scoring below.")
    ] = None,
    library: LibraryOpt = None,
    model: ModelOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Text -> images."""
    with _errors():
        lib = _open(library, model)
        _emit_results(lib.search(query, k, offset, threshold), as_json, f"'{query}'")


@app.command()
def similar(
    image: Annotated[str, typer.Argument(help="Image file (in the library or not).")],
    k: KOpt = 10,
    offset: Annotated[int, typer.Option("--offset", min=0)] = 0,
    library: LibraryOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Image -> similar images in the library."""
    with _errors():
        _emit_results(_open(library).similar(Path(image), k, offset), as_json, f"like {image}")


@app.command()
def describe(
    image: Annotated[str, typer.Argument(help="Image file (in the library or not).")],
    k: KOpt = 5,
    library: LibraryOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Image -> the library's captions that fit it best, with their images."""
    with _errors():
        res = _open(library).describe(Path(image), k)
        if as_json:
            print(json.dumps({"results": [r.to_dict() for r in res]}, ensure_ascii=False))
            return
        t = Table(title=f"captions for {image}")
        for c in ("score", "caption", "image"):
            t.add_column(c)
        for r in res:
            t.add_row(f"{r.score:.3f}", r.caption, _short(r.path))
        out.print(t)


@app.command()
def stats(library: LibraryOpt = None, as_json: JsonOpt = False) -> None:
    """What the library holds."""
    with _errors():
        s = _open(library).stats()
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
    as_json: JsonOpt = False,
) -> None:
    """Remove paths from the library."""
    with _errors():
        n = _open(library).remove(paths)
        print(json.dumps({"removed": n})) if as_json else out.print(f"removed {n} path(s)")
        if n == 0:
            raise typer.Exit(1)


@app.command()
def reindex(library: LibraryOpt = None, model: ModelOpt = None, as_json: JsonOpt = False) -> None:
    """Re-encode the whole library with MODEL (default: the default model); captions are kept."""
    with _errors():
        from .config import load_settings
        from .library import Library
        from .models.encoder import create_encoder

        settings = load_settings(library=library)
        lib = Library.open(settings=settings, encoder=create_encoder(model), check_model=False)
        with _progress(not as_json, "re-encoding") as prog:
            rep = lib.reindex(progress=prog)
        if as_json:
            print(json.dumps(rep.to_dict()))
        else:
            out.print(
                f"re-encoded {rep.added + rep.duplicates} path(s) with {lib.encoder.name}; "
                f"failed {len(rep.failed)}"
            )


@app.command()
def doctor(library: LibraryOpt = None, as_json: JsonOpt = False) -> None:
    """Check that models load, the library opens, and catalog and vectors agree."""
    with _errors():
        checks = _open(library).doctor()
        if as_json:
            print(json.dumps([{"check": c, "ok": ok, "detail": d} for c, ok, d in checks]))
        else:
            for c, ok, d in checks:
                out.print(f"{'[green]ok[/]' if ok else '[red]FAIL[/]'}  {c}: {d}", highlight=False)
        if not all(ok for _, ok, _ in checks):
            raise typer.Exit(1)


@train_app.command("joint")
def train_joint_cmd(
    data: Annotated[
        Path, typer.Option("--data", help="Dataset dir (Flickr8k layout, seed-004 layout, or CSV).")
    ],
    out_dir: Annotated[Path, typer.Option("--out", help="Run dir: checkpoints, metrics.jsonl, metrics.png.")],
    phase: Annotated[
        int, typer.Option("--phase", min=1, max=2, help="2: also fine-tune the image backbone's top.")
    ] = 1,
    init: Annotated[
        Path | None, typer.Option("--init", help="Phase 2: phase-1 heads to start from (default OUT/best).")
    ] = None,
    resume: Annotated[
        bool, typer.Option("--resume", help="Continue exactly from the last checkpoint.")
    ] = False,
    epochs: Annotated[int | None, typer.Option("--epochs", min=1, help="Default 30 (phase 2: 8).")] = None,
    batch_size: Annotated[int | None, typer.Option("--batch-size", min=2, help="Default 128.")] = None,
    lr: Annotated[float | None, typer.Option("--lr", help="Default 1e-3 (phase 2: 3e-4).")] = None,
    feature_noise: Annotated[float | None, typer.Option("--feature-noise", help="Default 1.5.")] = None,
    seed: Annotated[int, typer.Option("--seed")] = 0,
    limit: Annotated[int, typer.Option("--limit", help="Use only the first N train images.")] = 0,
    checkpoint_every: Annotated[int, typer.Option("--checkpoint-every", min=1)] = 200,
    val_split: Annotated[str, typer.Option("--val-split")] = "val",
    train_split: Annotated[str, typer.Option("--train-split")] = "train",
    as_json: JsonOpt = False,
) -> None:
    """Train the joint image-text heads on frozen backbone features (phase 2: with the backbone top)."""
    with _errors():
        from .train.joint import PHASE2, TrainConfig, train_joint

        given = {"epochs": epochs, "batch_size": batch_size, "lr": lr, "feature_noise": feature_noise}
        base: dict[str, Any] = dict(PHASE2) if phase == 2 else {}
        base.update({k: v for k, v in given.items() if v is not None})
        cfg = TrainConfig(
            data=data,
            out=out_dir,
            phase=phase,
            init=init,
            seed=seed,
            limit=limit,
            checkpoint_every=checkpoint_every,
            val_split=val_split,
            train_split=train_split,
            **base,
        )
        with _progress(not as_json, "features") as prog:

            def log(e: dict) -> None:
                if e.get("event") == "features" and prog:
                    prog(e["done"], e["total"])
                elif e.get("event") == "epoch" and not as_json:
                    v = e["val"]
                    err.print(
                        f"epoch {e['epoch']}: loss {e['loss']:.3f}  t2i R@1/5/10 {v['t2i']['R@1']}/"
                        f"{v['t2i']['R@5']}/{v['t2i']['R@10']}  i2t R@5 {v['i2t']['R@5']}  rsum {v['rsum']}"
                    )
                elif e.get("event") == "skipped" and not as_json:
                    err.print(f"[yellow]skipped[/] {e['reason']}", highlight=False)

            summary = train_joint(cfg, resume=resume, log=log)
        print(json.dumps(summary)) if as_json else out.print(summary)


@train_app.command("export")
def train_export(
    run: Annotated[Path, typer.Argument(help="Training run dir (or its best.safetensors).")],
    name: Annotated[str, typer.Option("--name", help="Model name, e.g. lite0-minilm-v1.")],
    out_dir: Annotated[Path | None, typer.Option("--out", help="Default: the package's weights dir.")] = None,
    test_data: Annotated[
        Path | None, typer.Option("--eval-data", help="Also evaluate on this dataset's test split.")
    ] = None,
) -> None:
    """Ship a run's best heads as a named model (float16 safetensors + model card)."""
    with _errors():
        from .evaluate import eval_retrieval as run_eval
        from .train.ship import ship_heads

        metrics = None
        if test_data is not None:
            res = run_eval(test_data, "test", str(run / "best.safetensors" if run.is_dir() else run))
            metrics = {"test": {k: v for k, v in res.items() if k not in ("model", "split")}}
        kw = {"out_dir": out_dir} if out_dir else {}
        dst = ship_heads(run, name, metrics=metrics, **kw)
        out.print(f"shipped {dst}")


@eval_app.command("retrieval")
def eval_retrieval(
    data: Annotated[Path, typer.Option("--data")],
    split: Annotated[str, typer.Option("--split")] = "test",
    model: ModelOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Recall@K / MedR, standard 1K protocol, on a dataset split."""
    with _errors():
        from .evaluate import eval_retrieval as run

        res = run(data, split, model)
        print(json.dumps(res)) if as_json else out.print_json(json.dumps(res))


def main() -> None:
    app()


if __name__ == "__main__":  # pragma: no cover
    main()
