"""Phase 2 (seed 003): fine-tune the top of the image backbone together with the heads.

Full backbone fine-tuning is out of reach on a 2-core CPU, so phase 2 unfreezes the part that matters
most and costs least: EfficientNet-Lite's last MBConv block and its 1x1 head conv. Their input (the
previous block's 7x7 map) is cached once, so an epoch runs the trainable part only. BatchNorm statistics
stay frozen (batches of one dataset's captions are too small to re-estimate them). Training starts from
phase-1 heads (``TrainConfig.init``); the text side stays MiniLM + text head.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import torch
from torch import nn

from pixsearch.corpus.features import FeatureCache
from pixsearch.errors import ModelError
from pixsearch.models.backbones import image_backbone
from pixsearch.models.top import ImageTop
from pixsearch.train.joint import Trainer, export_heads
from pixsearch.train.modules import JointHeads

__all__ = ["Phase2Trainer"]


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
        if train and self.cfg.feature_noise:
            z = z + self.cfg.feature_noise * torch.randn_like(z)
        return self.model.heads.image(z)

    def export(self, path: Path, val: dict) -> None:
        heads = self.model.heads
        export_heads(_WithTop(heads, self.model.top), self.train, self.cfg, val, path, top=True)


class _WithTop(nn.Module):
    """State-dict view for export: heads at the top level, backbone top under ``top.``."""

    def __init__(self, heads: JointHeads, top: ImageTop) -> None:
        super().__init__()
        self.image, self.text, self.logit_scale = heads.image, heads.text, heads.logit_scale
        self.top = top
