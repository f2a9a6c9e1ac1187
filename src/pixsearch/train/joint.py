"""Training the joint heads on cached backbone features (phase 1), then optionally the backbone's top
with them (phase 2), resumable.

Symmetric InfoNCE with a learnable temperature where every caption of an image is a positive: captions
rank the batch's images (softmax over images), images rank the batch's captions with all their own
captions as positives (SupCon-style mean over positives). Validation Recall@K after every epoch, early
stopping on R-sum, checkpoints (safetensors + JSON, no pickle) every N steps and at each epoch end.
Batch order is a pure function of (seed, epoch): ``resume`` from a mid-epoch checkpoint replays the run.
"""

from __future__ import annotations

import json
import math
import time
from dataclasses import asdict, dataclass, field, replace
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from pixsearch.corpus.features import FeatureCache
from pixsearch.errors import DatasetError, ModelError, PixsearchError
from pixsearch.evaluation.retrieval import retrieval_metrics
from pixsearch.models.backbones import image_backbone
from pixsearch.models.encoder import create_encoder
from pixsearch.models.heads import HeadsConfig
from pixsearch.models.top import ImageTop
from pixsearch.train._loop import Log, ResumableTrainer, jsonable, plot_epochs
from pixsearch.train.data import FeatureSet, flipped_image_x, load_features
from pixsearch.train.modules import JointHeads

__all__ = [
    "TrainConfig",
    "PHASE2",
    "Trainer",
    "Phase2Trainer",
    "train_joint",
    "export_heads",
    "max_violation",
]


@dataclass(frozen=True)
class TrainConfig:
    data: Path
    out: Path
    heads: HeadsConfig = field(default_factory=HeadsConfig)
    # Defaults are the shipped model's phase-1 recipe (docs/model.md); PHASE2 below for phase 2.
    epochs: int = 30
    batch_size: int = 128  # images per batch (with all their captions)
    lr: float = 1e-3
    weight_decay: float = 0.02
    dropout: float = 0.5
    feature_noise: float = 1.5  # Gaussian noise on standardised image features: the best regulariser found
    text_noise: float = 0.0
    flip_aug: bool = False  # phase 1: use the mirrored image's features half of the time
    warmup_steps: int = 100
    seed: int = 0
    patience: int = 4
    checkpoint_every: int = 200
    train_split: str = "train"
    val_split: str = "val"
    limit: int = 0  # use only the first N train images (tests, quick runs)
    phase: int = 1  # 2: also fine-tune the image backbone's last block + head conv (Phase2Trainer)
    init: Path | None = None  # phase 2 starts from these phase-1 heads
    top_lr_scale: float = 0.1  # backbone layers learn at lr * this
    # Study options (docs/model.md, "Search model v2"); the defaults reproduce the shipped recipe exactly.
    hard_negative_weight: float = 0.0  # > 0: add this times the max-violation hinge to InfoNCE
    margin: float = 0.2  # the hinge's cosine margin
    temperature: float = 0.0  # > 0: fixed softmax temperature instead of the learned one
    extra_backbones: tuple[str, ...] = ()  # pooled features of these backbones concatenated to the main one's
    # A phase-2 heads file whose fine-tuned backbone top stays frozen here: the main backbone's features are
    # that top's (the maps the captioner, labels and photo policy read), and the exported file carries it.
    frozen_top: Path | None = None


# Phase 2 starts from trained heads: shorter, gentler, smaller batches (the backbone top is in the graph).
PHASE2: dict[str, Any] = {"epochs": 8, "batch_size": 128, "lr": 3e-4, "warmup_steps": 20, "patience": 3}


def _loss(img: torch.Tensor, txt: torch.Tensor, owner: torch.Tensor, scale: torch.Tensor) -> torch.Tensor:
    logits = scale * txt @ img.T  # captions x images
    t2i = nn_ce(logits, owner)
    pos = (owner[None, :] == torch.arange(img.shape[0])[:, None]).float()  # images x captions
    lsm = torch.log_softmax(logits.T, dim=1)
    i2t = -((lsm * pos).sum(1) / pos.sum(1).clamp(min=1)).mean()
    return (t2i + i2t) / 2


def max_violation(img: torch.Tensor, txt: torch.Tensor, owner: torch.Tensor, margin: float) -> torch.Tensor:
    """VSE++'s hinge on the hardest negatives (Faghri et al., 2018), both directions, per positive pair.

    For caption c of image o, the most similar other image and the most similar caption of another image
    must both sit ``margin`` (cosine) below s(c, o); the mean cost over the batch's captions. InfoNCE
    spreads its gradient over all negatives; this term pushes on the one that ranks above the positive.
    """
    sim = txt @ img.T  # captions x images
    pos = sim.gather(1, owner[:, None]).squeeze(1)
    own = owner[:, None] == torch.arange(img.shape[0])[None, :]
    neg = sim.masked_fill(own, float("-inf"))
    hard_img = neg.max(1).values  # per caption: its hardest other image
    hard_cap = neg.max(0).values[owner]  # per caption: its image's hardest caption of another image
    relu = torch.nn.functional.relu
    return (relu(margin - pos + hard_img) + relu(margin - pos + hard_cap)).mean()


def nn_ce(logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    return torch.nn.functional.cross_entropy(logits, target)


class Trainer(ResumableTrainer):
    def __init__(self, cfg: TrainConfig, log: Log) -> None:
        self.cfg = cfg
        self.log = log
        torch.manual_seed(cfg.seed)
        extra = cfg.extra_backbones
        top = None if cfg.frozen_top is None else create_encoder(cfg.frozen_top)
        if top is not None and not top.has_top:
            raise PixsearchError(f"{cfg.frozen_top} carries no fine-tuned backbone top (phase 2)")
        self.train = load_features(
            cfg.data, cfg.train_split, cfg.heads, cfg.limit, log=log, extra=extra, top=top
        )
        self.val = load_features(
            cfg.data, cfg.val_split, cfg.heads, stats_from=self.train, log=log, extra=extra, top=top
        )
        self.train_x, self.val_x = self.train.image_x, self.val.image_x
        self.train_x_flip = (
            flipped_image_x(cfg.data, cfg.train_split, self.train, cfg.heads)
            if cfg.flip_aug and cfg.phase == 1
            else None
        )
        self.model: Any = JointHeads(cfg.heads, self.train.image_x.shape[1], dropout=cfg.dropout)
        self.setup()
        if cfg.temperature > 0:
            scale = next(p for n, p in self.model.named_parameters() if n.endswith("logit_scale"))
            with torch.no_grad():
                scale.fill_(math.log(1.0 / cfg.temperature))
            scale.requires_grad_(False)
        self.opt = torch.optim.AdamW(self.param_groups(), lr=cfg.lr, weight_decay=cfg.weight_decay)
        self.steps_per_epoch = math.ceil(len(self.train_x) / cfg.batch_size)
        self.total_steps = self.steps_per_epoch * cfg.epochs
        self.state: dict[str, Any] = {
            "epoch": 0,
            "step": 0,
            "best_rsum": -1.0,
            "best_epoch": -1,
            "bad_epochs": 0,
        }

    # -- hooks phase 2 overrides ------------------------------------------------------------------------
    def setup(self) -> None:
        """Phase 1 has nothing to add; phase 2 swaps in its inputs and model here."""

    def param_groups(self) -> list[dict]:
        return [{"params": list(self.model.parameters()), "lr_scale": 1.0}]

    def image_embed(self, x: np.ndarray, train: bool) -> torch.Tensor:
        return self.model.image(self.noisy(torch.from_numpy(x), train))

    def noisy(self, z: torch.Tensor, train: bool) -> torch.Tensor:
        """``z`` plus the Gaussian feature noise (the regulariser that matters most) while training."""
        return z + self.cfg.feature_noise * torch.randn_like(z) if train and self.cfg.feature_noise else z

    def export(self, path: Path, val: dict) -> None:
        export_heads(self.model, self.train, self.cfg, val, path)

    def module(self) -> torch.nn.Module:
        return self.model

    def batches(self, epoch: int) -> list[np.ndarray]:
        return self.epoch_batches(epoch, len(self.train_x), self.cfg.batch_size)

    def step(self, idx: np.ndarray) -> float:
        tr = self.train
        cap_idx = np.concatenate([tr.captions_of[i] for i in idx])
        owner = np.concatenate([np.full(len(tr.captions_of[i]), j) for j, i in enumerate(idx)])
        t = torch.from_numpy(tr.text_x[cap_idx])
        if self.cfg.text_noise:
            t = t + self.cfg.text_noise * torch.randn_like(t) / math.sqrt(t.shape[1])
        self.model.train()
        x = self.train_x[idx]
        if self.train_x_flip is not None:
            use = (torch.rand(len(idx)) < 0.5).numpy()
            x = np.where(use[:, None], self.train_x_flip[idx], x)
        img = self.image_embed(x, train=True)
        txt, own = self.model.text(t), torch.from_numpy(owner)
        loss = _loss(img, txt, own, self.model.scale())
        if self.cfg.hard_negative_weight:
            loss = loss + self.cfg.hard_negative_weight * max_violation(img, txt, own, self.cfg.margin)
        self.opt.zero_grad()
        loss.backward()
        self.opt.step()
        return float(loss.detach())

    @torch.inference_mode()
    def validate(self) -> dict:
        self.model.eval()
        v = self.val
        img = np.concatenate(
            [
                self.image_embed(self.val_x[s : s + 256], train=False).numpy()
                for s in range(0, len(self.val_x), 256)
            ]
        )
        txt = self.model.text(torch.from_numpy(v.text_x)).numpy()
        return retrieval_metrics(txt @ img.T, v.caption_image)

    # -- main loop ------------------------------------------------------------------------------------
    def run(self, resume: bool) -> dict:
        cfg = self.cfg
        metrics_path = self.start_run(resume)
        start = time.perf_counter()
        while self.running():
            epoch = self.state["epoch"]
            losses: list[float] = []
            self.train_epoch(self.batches(epoch), losses.append)
            val = self.validate()
            row = {
                "epoch": epoch + 1,
                "step": self.state["step"],
                "loss": float(np.mean(losses)) if losses else None,
                "temperature": float(1.0 / self.model.scale().detach()),
                "val": val,
                "seconds": round(time.perf_counter() - start, 2),
            }
            export = partial(self.export, cfg.out / "best.safetensors", val)
            self.finish_epoch(metrics_path, row, val["rsum"], "best_rsum", export)
        plot_metrics(metrics_path, cfg.out / "metrics.png")
        return {
            "best_epoch": self.state["best_epoch"],
            "best_rsum": self.state["best_rsum"],
            "out": str(cfg.out),
        }


_NOT_RECIPE = ("heads", "data", "out", "init", "frozen_top")  # paths or parsed elsewhere in the card


def export_heads(
    model: torch.nn.Module, feats: FeatureSet, cfg: TrainConfig, val: dict, path: Path, top: bool = False
) -> None:
    """Write the inference file (heads [+ fine-tuned backbone top] + feature statistics) and its card."""
    from safetensors.torch import save_file

    from pixsearch.models.backbones import image_fingerprint, text_fingerprint

    tensors = {k: v.detach().clone().contiguous() for k, v in model.state_dict().items()}
    tensors["image_mean"] = torch.from_numpy(feats.pooled_mean)
    tensors["image_std"] = torch.from_numpy(feats.pooled_std)
    if "bridge" in cfg.heads.image_inputs:
        tensors["class_text"] = torch.from_numpy(feats.class_text.astype(np.float16))
    if cfg.frozen_top is not None:  # carried unchanged, so the main backbone's maps stay that model's
        from safetensors.torch import load_file

        kept = load_file(str(cfg.frozen_top))
        tensors.update({k: v.float() for k, v in kept.items() if k.startswith("top.")})
        top = True
    heads_cfg = replace(
        cfg.heads, image_in=int(feats.image_x.shape[1]), top=top, extra_backbones=cfg.extra_backbones
    )
    backbones = {"image": image_fingerprint(cfg.heads.image_backbone), "text": text_fingerprint()}
    if cfg.extra_backbones:
        backbones["extra"] = [image_fingerprint(b) for b in cfg.extra_backbones]  # type: ignore[assignment]
    card = {
        "format": "pixsearch-heads/1",
        "config": heads_cfg.to_dict(),
        "backbones": backbones,
        "data": {
            "dataset": str(cfg.data),
            "train_split": cfg.train_split,
            "val_split": cfg.val_split,
            "train_images": int(len(feats.image_x)),
        },
        "training": {k: v for k, v in jsonable(asdict(cfg)).items() if k not in _NOT_RECIPE},
        "metrics": {cfg.val_split: val},
        "seed": cfg.seed,
        "date": time.strftime("%Y-%m-%d"),
    }
    tmp = path.with_suffix(".tmp")
    save_file(tensors, str(tmp))
    tmp.replace(path)
    path.with_suffix(".json").write_text(json.dumps(card, indent=2))


# -- phase 2 ------------------------------------------------------------------------------------------
# Full backbone fine-tuning is out of reach on a 2-core CPU, so phase 2 unfreezes the part that matters
# most and costs least: EfficientNet-Lite's last MBConv block and its 1x1 head conv. Their input (the
# previous block's 7x7 map) is cached once, so an epoch runs the trainable part only. BatchNorm statistics
# stay frozen (batches of one dataset's captions are too small to re-estimate them). Training starts from
# phase-1 heads (``TrainConfig.init``); the text side stays MiniLM + text head.


class _Phase2Model(nn.Module):
    def __init__(self, top: ImageTop, heads: JointHeads, mean: np.ndarray, std: np.ndarray) -> None:
        super().__init__()
        self.top = top
        self.heads = heads
        self.register_buffer("mean", torch.from_numpy(mean))
        self.register_buffer("std", torch.from_numpy(std))

    def pooled_std(self, mid: torch.Tensor) -> torch.Tensor:
        return (self.top(mid) - self.mean) / self.std

    def text(self, t: torch.Tensor) -> torch.Tensor:
        return self.heads.text(t)

    def scale(self) -> torch.Tensor:
        return self.heads.scale()


class Phase2Trainer(Trainer):
    def setup(self) -> None:
        cfg = self.cfg
        if "bridge" in cfg.heads.image_inputs:
            raise ModelError("phase 2 supports heads on pooled features only (no bridge input)")
        init = cfg.init or (cfg.out / "best.safetensors")
        if not Path(init).is_file():
            raise ModelError(f"phase 2 starts from phase-1 heads: {init} not found (pass --init)")
        from safetensors.torch import load_file

        state = load_file(str(init))
        card = json.loads(Path(init).with_suffix(".json").read_text())
        if card.get("config", {}).get("top"):
            raise ModelError(f"{init} is already a phase-2 model; start from phase-1 heads")
        bb = image_backbone(cfg.heads.image_backbone)
        heads = JointHeads(cfg.heads, self.train.image_x.shape[1], dropout=cfg.dropout)
        heads.load_state_dict(
            {k: v for k, v in state.items() if k.split(".")[0] in ("image", "text", "logit_scale")}
        )
        mean, std = state["image_mean"].numpy(), state["image_std"].numpy()
        self.train.pooled_mean, self.train.pooled_std = mean, std  # exported with the model
        self.model = _Phase2Model(ImageTop(bb, drop_connect=0.2 * 15 / 16), heads, mean, std)
        self.train_x = self._mid(self.train.images, self.cfg.train_split)
        self.val_x = self._mid(self.val.images, self.cfg.val_split)

    def _mid(self, names: list[str], split: str) -> np.ndarray:
        from pixsearch.corpus.datasets import load_dataset

        ds = load_dataset(self.cfg.data)
        paths = [ds.image_path(n) for n in names]

        def prog(d: int, n: int) -> None:
            self.log({"event": "features", "split": split, "done": d, "total": n})

        f = FeatureCache().image_features(
            image_backbone(self.cfg.heads.image_backbone), paths, prog, mid=True
        )
        if not f.ok.all():
            raise ModelError("some images decoded for phase 1 but not for phase 2; clear the feature cache")
        return f.mid

    def param_groups(self) -> list[dict]:
        top = [p for p in self.model.top.parameters() if p.requires_grad]
        return [
            {"params": list(self.model.heads.parameters()), "lr_scale": 1.0},
            {"params": top, "lr_scale": self.cfg.top_lr_scale},
        ]

    def image_embed(self, x: np.ndarray, train: bool) -> torch.Tensor:
        z = self.model.pooled_std(torch.from_numpy(x.astype(np.float32)))
        return self.model.heads.image(self.noisy(z, train))

    def export(self, path: Path, val: dict) -> None:
        heads = self.model.heads
        export_heads(_WithTop(heads, self.model.top), self.train, self.cfg, val, path, top=True)


class _WithTop(nn.Module):
    """State-dict view for export: heads at the top level, backbone top under ``top.``."""

    def __init__(self, heads: JointHeads, top: ImageTop) -> None:
        super().__init__()
        self.image, self.text, self.logit_scale = heads.image, heads.text, heads.logit_scale
        self.top = top


def plot_metrics(metrics: Path, png: Path) -> None:
    """Loss and validation recall per epoch, so a run can be judged at a glance."""
    plot_epochs(metrics, png, "train loss", "validation recall (%)", _recall_curves)


def _recall_curves(val: dict) -> dict[str, float]:
    return {f"{key} {k}": val[key][k] for key in ("t2i", "i2t") for k in ("R@1", "R@5", "R@10")}


def train_joint(cfg: TrainConfig, resume: bool = False, log: Log | None = None) -> dict:
    """Train heads; returns a summary. Raises DatasetError/PixsearchError on bad input."""
    if cfg.epochs < 1 or cfg.batch_size < 2:
        raise PixsearchError("epochs must be >= 1 and batch size >= 2")
    if not cfg.data.exists():
        raise DatasetError(f"dataset not found: {cfg.data}")
    if cfg.extra_backbones and (cfg.phase == 2 or cfg.flip_aug):
        raise PixsearchError("extra backbones train phase-1 heads only, without flip augmentation")
    trainer = Phase2Trainer if cfg.phase == 2 else Trainer
    return trainer(cfg, log or (lambda _e: None)).run(resume)
