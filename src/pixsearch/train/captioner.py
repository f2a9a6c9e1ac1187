"""Training the captioner on the encoder's cached spatial features, resumable, with ONNX export.

Teacher forcing with label smoothing; AdamW with linear warmup and cosine decay; every batch holds whole
images with all their captions (cross-attention keys/values are computed once per image). After each
epoch the validation split is captioned with the runtime's own beam search (NumPy, over the torch net)
and scored with BLEU/CIDEr-D; the best epoch (``select``) is kept, training stops after ``patience`` epochs
without improvement. Checkpoints (safetensors + JSON, no pickle) hold model, optimiser and RNG state and
batch order is a pure function of (seed, epoch), so ``resume`` continues the exact same run. The run
ends by exporting the best epoch to ``OUT/export`` (ONNX graphs + vocabulary + card) that
``create_captioner(OUT)`` loads.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import shutil
import time
from collections import Counter
from dataclasses import asdict, dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
import torch

from pixsearch.errors import DatasetError, PixsearchError
from pixsearch.evaluation.captions import caption_scores
from pixsearch.models.captioner import beam_search
from pixsearch.models.vocab import BOS, PAD, SPECIALS, Vocab, tokenize
from pixsearch.train._loop import Log, ResumableTrainer, jsonable, plot_epochs
from pixsearch.train.caption_model import CaptionNet, NetConfig, export_onnx

__all__ = ["CaptionTrainConfig", "train_captioner", "build_vocab", "ship_captioner"]


@dataclass(frozen=True)
class CaptionTrainConfig:
    data: Path
    out: Path
    encoder: str | None = None  # default encoder
    net: NetConfig = field(default_factory=NetConfig)
    epochs: int = 2  # sized for a 2-core machine shared by many jobs (docs/model.md)
    batch_images: int = 50  # x ~5 captions each
    lr: float = 1e-3
    weight_decay: float = 0.05
    label_smoothing: float = 0.1
    warmup_steps: int = 30
    min_count: int = 5
    seed: int = 0
    patience: int = 3
    select: str = "bleu4"  # or "cider"
    val_beam: int = 3
    alpha: float = 0.7  # length normalisation exponent of beam search
    checkpoint_every: int = 20
    train_split: str = "train"
    val_split: str = "val"
    limit: int = 0  # only the first N train images (tests, quick runs)
    val_limit: int = 0


def build_vocab(captions: list[list[str]], min_count: int) -> Vocab:
    """Words seen at least ``min_count`` times, most frequent first; none at all is a DatasetError."""
    counts = Counter(w for c in captions for w in c)
    words = sorted((w for w, n in counts.items() if n >= min_count), key=lambda w: (-counts[w], w))
    if not words:
        raise DatasetError(
            f"empty vocabulary: no word occurs {min_count}+ times in {len(captions)} training captions"
        )
    return Vocab([*SPECIALS, *words])


@dataclass
class _Split:
    names: list[str]
    spatial: np.ndarray  # (N, 49, 1280) float16
    refs: list[list[str]]  # raw captions per image


def load_split(cfg: CaptionTrainConfig, split: str, limit: int, encoder: Any, log: Log) -> _Split:
    from pixsearch.corpus.datasets import load_dataset
    from pixsearch.corpus.features import FeatureCache
    from pixsearch.corpus.splits import resolve_split

    ds = resolve_split(load_dataset(cfg.data), split)  # a dataset without split files still trains
    by_img = ds.captions_by_image()
    names = [n for n in ds.images if by_img.get(n)]
    names = names[:limit] if limit else names
    if not names:
        raise DatasetError(f"split {split!r} of {cfg.data} has no captioned images")

    def prog(d: int, n: int) -> None:
        log({"event": "features", "split": split, "done": d, "total": n})

    f = FeatureCache().encoder_features(encoder, [ds.image_path(n) for n in names], "spatial", prog)
    for err in f.errors:
        log({"event": "skipped", "reason": str(err)})
    keep = np.flatnonzero(f.ok)
    return _Split(
        [names[i] for i in keep],
        f.arrays["spatial"][keep],
        [[c.text for c in by_img[names[i]]] for i in keep],
    )


def encode_captions(s: _Split, vocab: Vocab, max_len: int) -> np.ndarray:
    """Token ids (images, G, max_len + 1): each image's captions (G = the most any image has), each
    ``<bos> words <eos>`` padded with ``<pad>``; an image with fewer captions gets all-pad rows (no loss)."""
    per = [[vocab.encode(w, max_len) for w in map(tokenize, refs) if w] for refs in s.refs]
    g = max((len(p) for p in per), default=0)
    if g == 0:
        raise DatasetError("no training caption has a word")
    tokens = np.full((len(per), g, max_len + 1), PAD, dtype=np.int64)
    for i, seqs in enumerate(per):
        for j, q in enumerate(seqs):
            tokens[i, j, : len(q)] = q
    return tokens


class CaptionTrainer(ResumableTrainer):
    def __init__(self, cfg: CaptionTrainConfig, log: Log) -> None:
        from pixsearch.models.encoder import create_encoder

        self.cfg, self.log = cfg, log
        threads = int(os.environ.get("PIXSEARCH_THREADS", "0") or 0)
        if threads:  # on a busy shared CPU one thread beats two that wait on each other
            torch.set_num_threads(threads)
        torch.manual_seed(cfg.seed)
        self.encoder = create_encoder(cfg.encoder)
        self.train = load_split(cfg, cfg.train_split, cfg.limit, self.encoder, log)
        self.val = load_split(cfg, cfg.val_split, cfg.val_limit, self.encoder, log)
        self.vocab = build_vocab([tokenize(r) for refs in self.train.refs for r in refs], cfg.min_count)
        self.tokens = encode_captions(self.train, self.vocab, cfg.net.max_len)
        self.net = CaptionNet(cfg.net, len(self.vocab))
        decay = [p for n, p in self.net.named_parameters() if p.ndim >= 2 and "pos" not in n]
        rest = [p for n, p in self.net.named_parameters() if not (p.ndim >= 2 and "pos" not in n)]
        self.opt = torch.optim.AdamW(
            [{"params": decay, "weight_decay": cfg.weight_decay}, {"params": rest, "weight_decay": 0.0}],
            lr=cfg.lr,
        )
        self.steps_per_epoch = math.ceil(len(self.train.names) / cfg.batch_images)
        self.total_steps = self.steps_per_epoch * cfg.epochs
        self.state: dict[str, Any] = {"epoch": 0, "step": 0, "best": -1.0, "best_epoch": -1, "bad_epochs": 0}

    def module(self) -> torch.nn.Module:
        return self.net

    def batches(self, epoch: int) -> list[np.ndarray]:
        return self.epoch_batches(epoch, len(self.train.names), self.cfg.batch_images)

    def step(self, idx: np.ndarray) -> float:
        tok = self.tokens[np.sort(idx)].reshape(-1, self.tokens.shape[-1])
        t = int((tok != PAD).sum(1).max())
        tok = torch.from_numpy(tok[:, :t])
        self.net.train()
        logits = self.net(torch.from_numpy(self.train.spatial[np.sort(idx)]), tok[:, :-1])
        loss = torch.nn.functional.cross_entropy(
            logits.reshape(-1, logits.shape[-1]),
            tok[:, 1:].reshape(-1),
            ignore_index=PAD,
            label_smoothing=self.cfg.label_smoothing,
        )
        self.opt.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(self.net.parameters(), 1.0)
        self.opt.step()
        return float(loss.detach())

    def generate(self, spatial: np.ndarray, beam: int, batch: int = 100) -> list[str]:
        """The runtime's beam search over the torch net (validation during training)."""
        net = self.net.eval()

        def init(x: np.ndarray) -> tuple[np.ndarray, Any]:
            with torch.inference_mode():
                out = net.init(torch.from_numpy(x), BOS)
            return out[0].numpy(), tuple(o.numpy() for o in out[1:])

        def step(tokens: np.ndarray, pos: int, st: Any) -> tuple[np.ndarray, Any]:
            with torch.inference_mode():
                args = [torch.from_numpy(np.ascontiguousarray(a)) for a in st]
                logp, k, v = net.step(torch.from_numpy(tokens), torch.tensor([pos]), *args)
            return logp.numpy(), (k.numpy(), v.numpy(), st[2], st[3])

        res: list[str] = []
        for s in range(0, len(spatial), batch):
            x = spatial[s : s + batch].astype(np.float32)
            ids = beam_search(init, step, x, beam, len(self.vocab), self.cfg.net.max_len, self.cfg.alpha)
            res += [self.vocab.decode(i) for i in ids]
        return res

    def validate(self) -> dict:
        hyps = self.generate(self.val.spatial, self.cfg.val_beam)
        return {**caption_scores(hyps, self.val.refs), "sample": hyps[:3]}

    def save_best(self, val: dict) -> None:
        from safetensors.torch import save_file

        out = self.cfg.out
        save_file({k: v.detach().clone() for k, v in self.net.state_dict().items()}, str(out / "best.tmp"))
        (out / "best.tmp").replace(out / "best.safetensors")
        (out / "best.json").write_text(json.dumps({"epoch": self.state["epoch"], "val": val}))

    # -- main loop ------------------------------------------------------------------------------------
    def run(self, resume: bool) -> dict:
        cfg = self.cfg
        metrics = self.start_run(resume)
        (cfg.out / "vocab.json").write_text(self.vocab.to_json(min_count=cfg.min_count))
        start = time.perf_counter()
        while self.running():
            epoch = self.state["epoch"]
            # running loss of the epoch lives in the checkpointed state: a resumed epoch logs the same mean
            if self.state.get("loss_epoch") != epoch:
                self.state.update(loss_epoch=epoch, loss_sum=0.0, loss_n=0)
            self.train_epoch(self.batches(epoch), self._add_loss)
            val = self.validate()
            row = {
                "epoch": epoch + 1,
                "step": self.state["step"],
                "loss": self.state["loss_sum"] / self.state["loss_n"] if self.state["loss_n"] else None,
                "lr": self.lr_at(self.state["step"] - 1),
                "val": val,
                "seconds": round(time.perf_counter() - start, 2),
            }
            self.finish_epoch(metrics, row, val[cfg.select], "best", partial(self.save_best, val))
        plot_caption_metrics(metrics, cfg.out / "metrics.png")
        export = self.export()
        return {
            "best_epoch": self.state["best_epoch"],
            f"best_{cfg.select}": self.state["best"],
            "export": export,
        }

    def _add_loss(self, loss: float) -> None:
        self.state["loss_sum"] += loss
        self.state["loss_n"] += 1

    def export(self) -> str:
        """Best epoch -> OUT/export: init/step ONNX (fp16 weights), vocab, card with sha256 of each file."""
        from safetensors.torch import load_file

        cfg = self.cfg
        best = cfg.out / "best.safetensors"
        if best.is_file():
            self.net.load_state_dict(load_file(str(best)))
        dst = cfg.out / "export"
        export_onnx(self.net, BOS, dst)
        (dst / "vocab.json").write_text((cfg.out / "vocab.json").read_text())
        info = json.loads((cfg.out / "best.json").read_text()) if (cfg.out / "best.json").is_file() else {}
        val = {k: v for k, v in info.get("val", {}).items() if k != "sample"}
        card = {
            "format": "pixsearch-captioner/1",
            "encoder": {
                "name": self.encoder.name,
                "fingerprint": self.encoder.fingerprint,
                "maps": self.encoder.maps_fingerprint,
            },
            "net": cfg.net.to_dict(),
            "vocab_size": len(self.vocab),
            "decode": {"alpha": cfg.alpha, "beam": cfg.val_beam},
            "data": {
                "dataset": str(cfg.data),
                "train_split": cfg.train_split,
                "val_split": cfg.val_split,
                "train_images": len(self.train.names),
                "train_captions": int((self.tokens[:, :, 0] != PAD).sum()),
            },
            "training": {
                k: v for k, v in jsonable(asdict(cfg)).items() if k not in ("net", "data", "out", "encoder")
            },
            "best_epoch": info.get("epoch"),
            "metrics": {cfg.val_split: val},
            "date": time.strftime("%Y-%m-%d"),
        }
        write_card(dst, card)
        return str(dst)


def write_card(folder: Path, card: dict) -> None:
    card = dict(card)
    card["sha256"] = {
        f: hashlib.sha256((folder / f).read_bytes()).hexdigest()
        for f in ("init.onnx", "step.onnx", "vocab.json")
    }
    (folder / "card.json").write_text(json.dumps(card, indent=2))


def ship_captioner(run: Path, name: str, dest: Path, metrics: dict | None = None) -> Path:
    """Copy a run's export to ``dest/name`` (the shipped captioners folder), merging extra metrics."""
    src = run / "export" if (run / "export" / "card.json").is_file() else run
    if not (src / "card.json").is_file():
        raise PixsearchError(f"no exported captioner in {run}; train it first")
    out = dest / name
    out.mkdir(parents=True, exist_ok=True)
    for f in ("init.onnx", "step.onnx", "vocab.json"):
        shutil.copyfile(src / f, out / f)
    card = json.loads((src / "card.json").read_text())
    card["name"] = name
    card["metrics"] = {**card.get("metrics", {}), **(metrics or {})}
    write_card(out, card)
    return out


def plot_caption_metrics(metrics: Path, png: Path) -> None:
    """Loss and validation BLEU-4 / CIDEr-D per epoch."""
    plot_epochs(metrics, png, "train loss (label-smoothed CE)", "validation", _caption_curves)


def _caption_curves(val: dict) -> dict[str, float]:
    return {"bleu1": val["bleu1"], "bleu4": val["bleu4"], "CIDEr-D x100": 100 * val["cider"]}


def train_captioner(cfg: CaptionTrainConfig, resume: bool = False, log: Log | None = None) -> dict:
    """Train a captioner; returns a summary. Raises DatasetError/PixsearchError on bad input."""
    if cfg.epochs < 1 or cfg.batch_images < 1:
        raise PixsearchError("epochs and batch size must be >= 1")
    if cfg.select not in ("bleu4", "cider"):
        raise PixsearchError("the select metric must be bleu4 or cider")
    if not cfg.data.exists():
        raise DatasetError(f"dataset not found: {cfg.data}")
    return CaptionTrainer(cfg, log or (lambda _e: None)).run(resume)
