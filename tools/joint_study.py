"""Search model v2 study (docs/model.md): train one phase-1 variant of the joint heads and print its row.

Each run trains from the feature cache with ``train_joint`` (the shipped recipe unless flags change it),
then prints one JSON line: the variant, best epoch and val metrics of ``best``; ``--flip-eval`` adds val
metrics with each photo's features averaged with its mirror's (``feat``: before the head, ``emb``: the
two joint vectors averaged), ``--test`` the held-out test split once (for the final pick only).

    python tools/joint_study.py n15
    python tools/joint_study.py hn03m02 --hard-negative-weight 0.3 --margin 0.2
    python tools/joint_study.py cat --extra lite2 --flip-eval --test
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import torch

from pixsearch.corpus.datasets import load_dataset
from pixsearch.corpus.features import FeatureCache
from pixsearch.evaluation.retrieval import retrieval_metrics
from pixsearch.models.backbones import image_backbone
from pixsearch.models.heads import HeadsConfig
from pixsearch.train.data import FeatureSet, load_features
from pixsearch.train.joint import TrainConfig, train_joint
from pixsearch.train.modules import JointHeads

DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "flickr8k"


def _heads(cfg: TrainConfig, dim: int) -> JointHeads:
    from safetensors.torch import load_file

    state = load_file(str(cfg.out / "best.safetensors"))
    model = JointHeads(cfg.heads, dim, dropout=cfg.dropout)
    model.load_state_dict(
        {k: v for k, v in state.items() if k.split(".")[0] in ("image", "text", "logit_scale")}
    )
    return model.eval()


def _flipped(cfg: TrainConfig, fs: FeatureSet, split: str) -> np.ndarray:
    """Standardised pooled features of the mirrored images of ``fs`` (all backbones, same order)."""
    ds = load_dataset(cfg.data).split(split)
    paths = [ds.image_path(n) for n in fs.images]
    parts = [
        FeatureCache().image_features(image_backbone(b), paths, flip=True).pooled
        for b in (cfg.heads.image_backbone, *cfg.extra_backbones)
    ]
    return ((np.concatenate(parts, axis=1) - fs.pooled_mean) / fs.pooled_std).astype(np.float32)


@torch.inference_mode()
def evaluate(cfg: TrainConfig, train: FeatureSet, split: str, flip: bool) -> dict:
    fs = load_features(cfg.data, split, cfg.heads, stats_from=train, extra=cfg.extra_backbones)
    model = _heads(cfg, fs.image_x.shape[1])
    txt = model.text(torch.from_numpy(fs.text_x)).numpy()
    img = model.image(torch.from_numpy(fs.image_x)).numpy()
    res = {"plain": retrieval_metrics(txt @ img.T, fs.caption_image)}
    if flip:
        fx = _flipped(cfg, fs, split)
        avg = model.image(torch.from_numpy((fs.image_x + fx) / 2)).numpy()
        res["flip_feat"] = retrieval_metrics(txt @ avg.T, fs.caption_image)
        emb = img + model.image(torch.from_numpy(fx)).numpy()
        emb /= np.linalg.norm(emb, axis=1, keepdims=True)
        res["flip_emb"] = retrieval_metrics(txt @ emb.T, fs.caption_image)
    return res


def _row(m: dict) -> dict:
    return {
        "t2i": [m["t2i"][f"R@{k}"] for k in (1, 5, 10)],
        "i2t": [m["i2t"][f"R@{k}"] for k in (1, 5, 10)],
        "rsum": m["rsum"],
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("name")
    ap.add_argument("--out-root", type=Path, default=Path("runs/study"))
    ap.add_argument("--data", type=Path, default=DATA)
    ap.add_argument("--hard-negative-weight", type=float, default=0.0)
    ap.add_argument("--margin", type=float, default=0.2)
    ap.add_argument("--temperature", type=float, default=0.0)
    ap.add_argument("--backbone", default="lite0")
    ap.add_argument("--extra", default="", help="comma-separated backbones concatenated to --backbone")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--eval-only", action="store_true", help="evaluate an existing run")
    ap.add_argument("--flip-eval", action="store_true")
    ap.add_argument("--test", action="store_true")
    a = ap.parse_args()
    cfg = TrainConfig(
        data=a.data,
        out=a.out_root / a.name,
        heads=HeadsConfig(image_backbone=a.backbone),
        hard_negative_weight=a.hard_negative_weight,
        margin=a.margin,
        temperature=a.temperature,
        extra_backbones=tuple(b for b in a.extra.split(",") if b),
        seed=a.seed,
    )
    if not a.eval_only:
        train_joint(cfg)
    rows = [json.loads(x) for x in (cfg.out / "metrics.jsonl").read_text().splitlines()]
    best = max(rows, key=lambda r: r["val"]["rsum"])
    out: dict = {"run": a.name, "best_epoch": best["epoch"], "temperature": best["temperature"]}
    out["val"] = _row(best["val"])
    if a.flip_eval or a.test:
        train = load_features(cfg.data, cfg.train_split, cfg.heads, extra=cfg.extra_backbones)
        if a.flip_eval:
            res = evaluate(cfg, train, cfg.val_split, flip=True)
            out.update({f"val_{k}": _row(v) for k, v in res.items() if k != "plain"})
        if a.test:
            res = evaluate(cfg, train, "test", flip=a.flip_eval)
            out.update({f"test_{k}": _row(v) for k, v in res.items()})
    print(json.dumps(out))


if __name__ == "__main__":
    main()
