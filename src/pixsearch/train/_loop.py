"""Scaffolding shared by the resumable trainers (joint heads in ``joint.py``, captioner in ``captioner.py``).

Both trainers promise the same thing: a run interrupted at any step and resumed from ``last`` replays
the exact same run. That promise rests on details that must not drift apart between them (batch order
a pure function of (seed, epoch), the learning rate a pure function of the step, checkpoints that hold
model, optimiser and RNG state, written atomically), so they live here once. What differs (the model,
the loss, the validation metric and what "best" exports) stays in each trainer.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from dataclasses import asdict
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    import torch

__all__ = ["Log", "ResumableTrainer", "append_jsonl", "jsonable", "plot_epochs"]

Log = Callable[[dict], None]  # what every trainer reports progress and events through


def jsonable(d: dict) -> dict:
    """``d`` with every value JSON can't hold (paths, ...) as its ``str``: configs go into JSON cards."""
    return json.loads(json.dumps(d, default=str))


def append_jsonl(path: Path, row: dict) -> None:
    """One line per epoch, appended: a resumed run continues the same metrics file."""
    with open(path, "a") as f:
        f.write(json.dumps(row) + "\n")


class ResumableTrainer:
    """Epoch/step loop, learning-rate schedule, batch order and checkpoints of a resumable trainer.

    A subclass sets ``cfg`` (with ``out``, ``seed``, ``lr``, ``warmup_steps``, ``checkpoint_every``),
    ``log``, ``opt``, ``state``, ``steps_per_epoch`` and ``total_steps``, and provides ``module`` (what the
    checkpoints hold) and ``step`` (one optimiser step on a batch of training indices).
    """

    cfg: Any
    log: Log
    opt: torch.optim.Optimizer
    state: dict[str, Any]
    steps_per_epoch: int
    total_steps: int

    def module(self) -> torch.nn.Module:
        raise NotImplementedError

    def step(self, idx: np.ndarray) -> float:
        raise NotImplementedError

    def lr_at(self, step: int) -> float:
        """Linear warmup to ``cfg.lr``, then cosine decay to 0 at ``total_steps``."""
        c = self.cfg
        if step < c.warmup_steps:
            return c.lr * (step + 1) / c.warmup_steps
        p = (step - c.warmup_steps) / max(1, self.total_steps - c.warmup_steps)
        return c.lr * 0.5 * (1 + math.cos(math.pi * min(1.0, p)))

    def epoch_batches(self, epoch: int, n: int, batch: int) -> list[np.ndarray]:
        """Batches of indices into ``n`` training items; the order depends on (seed, epoch) only."""
        perm = np.random.default_rng([self.cfg.seed, epoch]).permutation(n)
        return [perm[s : s + batch] for s in range(0, len(perm), batch)]

    # -- checkpoints ---------------------------------------------------------------------------------
    def save_checkpoint(self, name: str) -> None:
        """Model, optimiser and RNG state to ``name.safetensors`` and the loop state to ``name.json``
        (safetensors + JSON, no pickle), each written to a temporary file first: a crash never leaves
        half a checkpoint."""
        import torch
        from safetensors.torch import save_file

        t = {f"model.{k}": v.detach().clone() for k, v in self.module().state_dict().items()}
        for pid, st in self.opt.state_dict()["state"].items():
            for k, v in st.items():
                t[f"opt.{pid}.{k}"] = torch.as_tensor(v).clone()
        t["rng"] = torch.get_rng_state()
        out = self.cfg.out
        save_file(t, str(out / f"{name}.tmp"))
        (out / f"{name}.tmp").replace(out / f"{name}.safetensors")
        (out / f"{name}.json.tmp").write_text(json.dumps(self.state))
        (out / f"{name}.json.tmp").replace(out / f"{name}.json")

    def load_checkpoint(self, name: str) -> None:
        import torch
        from safetensors.torch import load_file

        t = load_file(str(self.cfg.out / f"{name}.safetensors"))
        self.module().load_state_dict({k[6:]: v for k, v in t.items() if k.startswith("model.")})
        opt = self.opt.state_dict()
        for pid in range(sum(len(g["params"]) for g in opt["param_groups"])):
            keys = [k for k in t if k.startswith(f"opt.{pid}.")]
            if keys:
                opt["state"][pid] = {k.split(".", 2)[2]: t[k] for k in keys}
        self.opt.load_state_dict(opt)
        torch.set_rng_state(t["rng"])
        self.state = json.loads((self.cfg.out / f"{name}.json").read_text())

    # -- main loop ------------------------------------------------------------------------------------
    def start_run(self, resume: bool) -> Path:
        """Resume from ``last`` (or start afresh, dropping old metrics), write ``config.json``; returns
        the metrics file."""
        cfg = self.cfg
        cfg.out.mkdir(parents=True, exist_ok=True)
        metrics: Path = cfg.out / "metrics.jsonl"
        if resume and (cfg.out / "last.safetensors").is_file():
            self.load_checkpoint("last")
            self.log({"event": "resumed", **self.state})
        elif metrics.exists():
            metrics.unlink()
        (cfg.out / "config.json").write_text(json.dumps(jsonable(asdict(cfg)), indent=2))
        return metrics

    def running(self) -> bool:
        """Epochs left and early stopping not yet triggered."""
        return bool(self.state["epoch"] < self.cfg.epochs and self.state["bad_epochs"] < self.cfg.patience)

    def train_epoch(self, batches: list[np.ndarray], on_loss: Callable[[float], None]) -> None:
        """The steps of the current epoch not yet done (all but after a mid-epoch resume), each at its
        scheduled learning rate (times a param group's ``lr_scale``), with a checkpoint every
        ``checkpoint_every`` steps. ``on_loss`` sees each loss before that step's checkpoint."""
        done = self.state["step"] - self.state["epoch"] * self.steps_per_epoch
        for b in batches[done:]:
            for g in self.opt.param_groups:
                g["lr"] = self.lr_at(self.state["step"]) * g.get("lr_scale", 1.0)
            on_loss(self.step(b))
            self.state["step"] += 1
            if self.state["step"] % self.cfg.checkpoint_every == 0:
                self.save_checkpoint("last")
            self.log({"event": "step", "step": self.state["step"], "total": self.total_steps})

    def finish_epoch(
        self, metrics: Path, row: dict, score: float, best_key: str, on_best: Callable[[], None]
    ) -> None:
        """Record the epoch ``row``; a ``score`` above ``state[best_key]`` is the new best (``on_best``
        saves it), any other counts towards early stopping; then checkpoint ``last`` and log."""
        append_jsonl(metrics, row)
        self.state["epoch"] = row["epoch"]
        if score > self.state[best_key]:
            self.state.update({best_key: score, "best_epoch": row["epoch"], "bad_epochs": 0})
            on_best()
        else:
            self.state["bad_epochs"] += 1
        self.save_checkpoint("last")
        self.log({"event": "epoch", **row})


def plot_epochs(
    metrics: Path, png: Path, loss_title: str, val_title: str, val_curves: Callable[[dict], dict[str, float]]
) -> None:
    """Train loss (left) and the validation curves ``val_curves(row["val"])`` (right) per epoch, so a
    run can be judged at a glance; nothing where there are no metrics yet."""
    if not metrics.is_file():
        return
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = [json.loads(line) for line in metrics.read_text().splitlines() if line.strip()]
    if not rows:
        return
    ep = [r["epoch"] for r in rows]
    fig, (a, b) = plt.subplots(1, 2, figsize=(10, 4))
    a.plot(ep, [r["loss"] for r in rows], marker="o")
    a.set(title=loss_title, xlabel="epoch")
    curves = [val_curves(r["val"]) for r in rows]
    for label in curves[0]:
        b.plot(ep, [c[label] for c in curves], marker=".", label=label)
    b.set(title=val_title, xlabel="epoch")
    b.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(png, dpi=100)
    plt.close(fig)
