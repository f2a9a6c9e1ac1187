"""Search model v2 study (docs/model.md): a learned attention pooling over Lite0's final 7x7 map.

The phase-2 cache (the last block's input, float16) runs once through the frozen last block + head conv
to the (N, 49, 1280) map; a linear scorer, zero-initialised so training starts at exactly the global
average, weights the 49 positions per photo (no query involved: photos are indexed before any query).
Everything else is the phase-1 recipe (``TrainConfig`` defaults, or the flags). Study only: the runtime
cannot load these heads.

    python tools/joint_attention_study.py att
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import torch
from torch import nn

from pixsearch.corpus.datasets import load_dataset
from pixsearch.corpus.features import FeatureCache
from pixsearch.models.backbones import image_backbone
from pixsearch.models.top import ImageTop
from pixsearch.train.joint import TrainConfig, Trainer
from pixsearch.train.modules import JointHeads

DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "flickr8k"


class _AttnModel(nn.Module):
    def __init__(self, heads: JointHeads, mean: np.ndarray, std: np.ndarray, bound: float) -> None:
        super().__init__()
        self.heads = heads
        self.bound = bound
        self.score = nn.Linear(mean.shape[0], 1)
        nn.init.zeros_(self.score.weight)
        nn.init.zeros_(self.score.bias)
        self.register_buffer("mean", torch.from_numpy(mean))
        self.register_buffer("std", torch.from_numpy(std))

    def pooled_std(self, fmap: torch.Tensor) -> torch.Tensor:
        tokens = (fmap - self.mean) / self.std  # (N, 49, C), standardised like the pooled features
        # Bounded scores (weights within e^(2 bound) of each other): unbounded ones sharpen onto one spot,
        # the pooled vector's scale grows and the feature noise stops regularising (measured: rsum 200).
        scores = self.score(tokens)
        if self.bound:
            scores = self.bound * torch.tanh(scores)
        weights = torch.softmax(scores, dim=1)
        return (weights * tokens).sum(1)

    def text(self, t: torch.Tensor) -> torch.Tensor:
        return self.heads.text(t)

    def scale(self) -> torch.Tensor:
        return self.heads.scale()


class AttentionTrainer(Trainer):
    bound = 0.0  # > 0: scores squashed to [-bound, bound]; 0: unbounded linear scores

    def setup(self) -> None:
        cfg = self.cfg
        heads = JointHeads(cfg.heads, self.train.image_x.shape[1], dropout=cfg.dropout)
        self.model = _AttnModel(heads, self.train.pooled_mean, self.train.pooled_std, self.bound)
        self.train_x = _fmap(cfg, self.train.images, cfg.train_split)
        self.val_x = _fmap(cfg, self.val.images, cfg.val_split)

    def image_embed(self, x: np.ndarray, train: bool) -> torch.Tensor:
        z = self.model.pooled_std(torch.from_numpy(x.astype(np.float32)))
        return self.model.heads.image(self.noisy(z, train))

    def export(self, path: Path, val: dict) -> None:
        from safetensors.torch import save_file

        save_file({k: v.contiguous() for k, v in self.model.state_dict().items()}, str(path))


@torch.inference_mode()
def _fmap(cfg: TrainConfig, names: list[str], split: str) -> np.ndarray:
    """(N, 49, 1280) float16 final maps, kept next to the run (computed once from the phase-2 cache)."""
    keep = cfg.out.parent / f"fmap-{split}-{len(names)}.npy"
    if keep.is_file():
        return np.load(keep)
    ds = load_dataset(cfg.data)
    bb = image_backbone(cfg.heads.image_backbone)
    mid = FeatureCache().image_features(bb, [ds.image_path(n) for n in names], mid=True).mid
    top = ImageTop(bb).eval()
    out = [
        top.feature_map(torch.from_numpy(mid[s : s + 128].astype(np.float32))).flatten(2).transpose(1, 2)
        for s in range(0, len(mid), 128)
    ]
    arr = torch.cat(out).numpy().astype(np.float16)
    keep.parent.mkdir(parents=True, exist_ok=True)
    np.save(keep, arr)
    return arr


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("name")
    ap.add_argument("--out-root", type=Path, default=Path("runs/study"))
    ap.add_argument("--hard-negative-weight", type=float, default=0.0)
    ap.add_argument("--margin", type=float, default=0.2)
    ap.add_argument("--bound", type=float, default=0.0, help="squash scores to [-bound, bound]")
    a = ap.parse_args()
    AttentionTrainer.bound = a.bound
    cfg = TrainConfig(
        data=DATA, out=a.out_root / a.name, hard_negative_weight=a.hard_negative_weight, margin=a.margin
    )
    AttentionTrainer(cfg, lambda _e: None).run(resume=False)
    rows = [json.loads(x) for x in (cfg.out / "metrics.jsonl").read_text().splitlines()]
    best = max(rows, key=lambda r: r["val"]["rsum"])
    v = best["val"]
    print(
        json.dumps(
            {
                "run": a.name,
                "best_epoch": best["epoch"],
                "temperature": best["temperature"],
                "val": {
                    "t2i": [v["t2i"][f"R@{k}"] for k in (1, 5, 10)],
                    "i2t": [v["i2t"][f"R@{k}"] for k in (1, 5, 10)],
                    "rsum": v["rsum"],
                },
            }
        )
    )


if __name__ == "__main__":
    main()
