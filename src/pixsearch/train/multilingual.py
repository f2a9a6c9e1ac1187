"""Training the multilingual query tower (``models/multilingual.py``) into a shipped joint space.

The photos' vectors and the joint model stay as they are; only a small head is trained, from a frozen
multilingual sentence encoder (USE multilingual v3 by default) to the joint space. Per batch of train
photos, every English and every Chinese caption of them (Flickr8K-CN: native sentences, not
translations) ranks the batch's photos (InfoNCE against the frozen image vectors, learnable temperature),
and two distillation terms keep the head where MiniLM already works: an English caption's output should
equal MiniLM's joint vector of it (cosine), a Chinese caption's the mean of its photo's English caption
vectors. Other languages are never seen: they ride on the encoder's own cross-lingual alignment.

After training, the routing threshold is set on val English captions: the cosine between MiniLM's and
the tower's vectors that ``english_share`` of them reach (those stay on MiniLM at run time). Val and test
photos are never trained on; Chinese captions exist for train and val only, so Chinese is measured on val.

Runs in ~2 minutes from cached features (images: the encoder cache; texts: the text cache, keyed by
encoder version); deterministic for a seed, so there are no checkpoints to resume. Writes
``multilingual.safetensors`` + ``multilingual.json`` (card) + ``metrics.jsonl`` into ``out``.
"""

from __future__ import annotations

import json
import shutil
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import torch
from torch import nn

from pixsearch.corpus.bilingual import CachedModel, SplitFeatures, other_captions, split_features
from pixsearch.corpus.datasets import load_dataset
from pixsearch.corpus.features import FeatureCache
from pixsearch.errors import DatasetError, ModelError
from pixsearch.evaluation.retrieval import retrieval_metrics
from pixsearch.models.encoder import create_encoder
from pixsearch.models.heads import l2n
from pixsearch.models.multilingual import (
    FORMAT,
    MULTILINGUAL_DIR,
    clearly_english,
    model_identity,
    recall,
    sentence_model,
)
from pixsearch.train._loop import Log, append_jsonl, jsonable
from pixsearch.train.modules import ProjectionHead

if TYPE_CHECKING:
    from pixsearch.models.encoder import JointEncoder

__all__ = ["MultilingualConfig", "train_multilingual", "ship_tower", "USE_LANGUAGES"]

# USE multilingual v3's 16 training languages (its model card); e5 knows ~100.
USE_LANGUAGES = (
    "ar",
    "zh",
    "zh-TW",
    "en",
    "fr",
    "de",
    "it",
    "ja",
    "ko",
    "nl",
    "pl",
    "pt",
    "es",
    "th",
    "tr",
    "ru",
)


@dataclass(frozen=True)
class MultilingualConfig:
    """One run; defaults are the shipped tower's recipe (docs/model.md, "Multilingual queries")."""

    data: Path  # Flickr8k layout: images, English captions, splits
    cn: Path  # Flickr8K-CN: its folder (captions_zh.csv) or an image,caption CSV in any language
    out: Path
    model: str | None = None  # the joint model whose space the tower maps into (default: the shipped one)
    encoders: tuple[str, ...] = ("use-m3",)
    hidden: int = 1024
    depth: int = 1
    dropout: float = 0.5
    input_noise: float = 0.5  # Gaussian noise on standardised encoder inputs
    distill: float = 1.0  # weight of cos(tower, MiniLM) on English captions
    distill_cn: float = 0.5  # weight of cos(tower, mean English vector of the photo) on the other captions
    epochs: int = 20
    batch_size: int = 128  # photos per batch, each with all its captions
    lr: float = 1e-3
    weight_decay: float = 0.02
    english_share: float = 0.99  # of val English captions kept on MiniLM by the routing threshold
    memory_k: int = 10  # photo memory (``models.multilingual.recall``): neighbours per query
    memory_weight: float = 0.3  # its share of the tower's vector; 0: no memory shipped
    seed: int = 0
    limit: int = 0  # only the first N photos of each split (tests, quick runs)
    train_split: str = "train"
    val_split: str = "val"


def _groups(owner: np.ndarray, n: int) -> list[list[int]]:
    out: list[list[int]] = [[] for _ in range(n)]
    for i, o in enumerate(owner.tolist()):
        out[o].append(i)
    return out


def _r5(q: np.ndarray, img: np.ndarray, owner: np.ndarray) -> dict:
    return retrieval_metrics(q @ img.T, owner)["t2i"] if len(q) else {}


class _Tower(nn.Module):
    def __init__(self, cfg: MultilingualConfig, in_dim: int, mean: np.ndarray, std: np.ndarray) -> None:
        super().__init__()
        self.text = ProjectionHead(in_dim, cfg.hidden, 256, cfg.depth, True, cfg.dropout)
        self.input_mean, self.input_std = mean.astype(np.float32), std.astype(np.float32)
        self.mean, self.std = torch.from_numpy(self.input_mean), torch.from_numpy(self.input_std)
        self.logit_scale = nn.Parameter(torch.tensor([float(np.log(1 / 0.05))]))

    def forward(self, x: torch.Tensor, noise: float = 0.0) -> torch.Tensor:
        z = (x - self.mean) / self.std
        if noise:
            z = z + noise * torch.randn_like(z)
        return self.text(z)

    def numpy(self, x: np.ndarray) -> np.ndarray:
        self.eval()
        with torch.no_grad():
            out = self(torch.from_numpy(x)).numpy()
        self.train()
        return out


def _fit(
    cfg: MultilingualConfig, tr: SplitFeatures, va: SplitFeatures, log: Log
) -> tuple[_Tower, list[dict]]:
    torch.manual_seed(cfg.seed)
    rng = np.random.default_rng(cfg.seed)
    both = np.vstack([tr.en_x, tr.cn_x])
    tower = _Tower(cfg, both.shape[1], both.mean(0), both.std(0) + 1e-6)
    opt = torch.optim.AdamW(tower.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    n = len(tr.names)
    bs = min(cfg.batch_size, n)
    steps = cfg.epochs * max(1, n // bs)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, cfg.lr, total_steps=steps, pct_start=0.05)
    en_by, cn_by = _groups(tr.en_owner, n), _groups(tr.cn_owner, n)
    mean_en = np.zeros((n, 256), np.float32)
    np.add.at(mean_en, tr.en_owner, tr.en_joint)
    img, mean_t = torch.from_numpy(tr.img), torch.from_numpy(l2n(mean_en))
    en_x, cn_x, en_t = torch.from_numpy(tr.en_x), torch.from_numpy(tr.cn_x), torch.from_numpy(tr.en_joint)
    rows: list[dict] = []
    for epoch in range(1, cfg.epochs + 1):
        t0, total, count = time.perf_counter(), 0.0, 0
        perm = rng.permutation(n)
        for s in range(0, n - bs + 1, bs):
            ids = perm[s : s + bs]
            scale = tower.logit_scale.clamp(max=float(np.log(100.0))).exp()
            loss = torch.zeros(())
            for by, x, target in ((en_by, en_x, en_t), (cn_by, cn_x, None)):
                rows_i = [j for i in ids for j in by[i]]
                if not rows_i:
                    continue
                owner = torch.tensor([r for r, i in enumerate(ids) for _ in by[i]])
                out = tower(x[rows_i], cfg.input_noise)
                loss = loss + nn.functional.cross_entropy(scale * out @ img[ids].T, owner)
                if target is not None:
                    loss = loss + cfg.distill * (1 - (out * target[rows_i]).sum(1)).mean()
                else:
                    loss = loss + cfg.distill_cn * (1 - (out * mean_t[ids][owner]).sum(1)).mean()
            opt.zero_grad()
            loss.backward()
            opt.step()
            sched.step()
            total, count = total + loss.item(), count + 1
        row = {
            "epoch": epoch,
            "loss": round(total / max(count, 1), 4),
            "val_en": _r5(tower.numpy(va.en_x), va.img, va.en_owner),
            "val_cn": _r5(tower.numpy(va.cn_x), va.img, va.cn_owner),
            "seconds": round(time.perf_counter() - t0, 1),
        }
        rows.append(row)
        append_jsonl(cfg.out / "metrics.jsonl", row)
        log({"event": "epoch", **row})
    return tower, rows


def _english_flags(enc: JointEncoder, texts: list[str]) -> np.ndarray:
    encs = enc.text_backbone.tok.encode_batch(texts) if texts else []
    return np.array(
        [clearly_english(e.ids, e.tokens, t) for e, t in zip(encs, texts, strict=True)], dtype=bool
    )


def _memory(tower: _Tower, tr: SplitFeatures) -> tuple[np.ndarray, np.ndarray]:
    """(keys, values) of the photo memory: the head's vectors of each train photo's captions, all
    languages, averaged; and the photo's stored vector."""
    keys = np.zeros((len(tr.names), 256), np.float32)
    np.add.at(keys, tr.en_owner, tower.numpy(tr.en_x))
    if len(tr.cn_x):
        np.add.at(keys, tr.cn_owner, tower.numpy(tr.cn_x))
    return l2n(keys), tr.img


def _sentence_map(tower: _Tower, tr: SplitFeatures, ridge: float = 10.0) -> tuple[np.ndarray, np.ndarray]:
    """(weight, bias) of a ridge map from the standardised encoder inputs to MiniLM's sentence space:
    English captions to their own MiniLM vectors, the other language's to the mean of their photo's.
    Search compares that vector with the library's English captions and the match scorer's caption bank,
    so a query in Chinese meets English captions there too."""
    z = (np.vstack([tr.en_x, tr.cn_x]) - tower.input_mean) / tower.input_std
    mean_en = np.zeros((len(tr.names), tr.en_sentence.shape[1]), np.float32)
    np.add.at(mean_en, tr.en_owner, tr.en_sentence)
    y = np.vstack([tr.en_sentence, l2n(mean_en)[tr.cn_owner]])
    z1 = np.hstack([z, np.ones((len(z), 1), np.float32)]).astype(np.float32)
    a = (z1.T @ z1).astype(np.float64) + ridge * np.eye(z1.shape[1])
    a[-1, -1] -= ridge  # no penalty on the bias
    w = np.linalg.solve(a, (z1.T @ y).astype(np.float64))
    return np.ascontiguousarray(w[:-1].T, dtype=np.float32), w[-1].astype(np.float32)


def _final(
    cfg: MultilingualConfig, tower: _Tower, memory: tuple[np.ndarray, np.ndarray], x: np.ndarray
) -> np.ndarray:
    """The shipped tower's vectors (``QueryTower.head``): the head, plus the photo memory."""
    y = tower.numpy(x)
    if cfg.memory_weight:
        y = l2n(y + cfg.memory_weight * recall(y, *memory, k=cfg.memory_k))
    return y


def _routed(
    enc: JointEncoder, v: np.ndarray, texts: list[str], joint: np.ndarray, tau: float
) -> tuple[np.ndarray, float]:
    """What run time gives for ``texts`` (``QueryTower.route``) with tower vectors ``v``: MiniLM where the
    tokenizer reads plain English or the towers agree, the tower elsewhere; and the share sent there."""
    to_tower = ~_english_flags(enc, texts) & ((v * joint).sum(1) < tau)
    return np.where(to_tower[:, None], v, joint), float(to_tower.mean()) if len(texts) else 0.0


def train_multilingual(cfg: MultilingualConfig, log: Log | None = None) -> dict:
    """Fit the head, set the routing threshold, write the tower files; returns the summary (card metrics)."""
    log = log or (lambda e: None)
    enc = create_encoder(cfg.model)
    if not enc.cross_modal:
        raise ModelError(f"model {enc.name} has no joint text space to map into")
    unknown = [e for e in cfg.encoders if e not in ("use-m3", "e5-small")]
    if unknown or not cfg.encoders:
        raise ModelError(f"unknown sentence encoder(s) {unknown}; known: use-m3, e5-small")
    cfg.out.mkdir(parents=True, exist_ok=True)
    (cfg.out / "metrics.jsonl").unlink(missing_ok=True)
    ds = load_dataset(cfg.data)
    cn = other_captions(ds, cfg.cn)
    models = [CachedModel(sentence_model(e)) for e in cfg.encoders]
    tr = split_features(cfg.data, cfg.limit, enc, ds, cn, cfg.train_split, models, log)
    va = split_features(cfg.data, cfg.limit, enc, ds, cn, cfg.val_split, models, log)
    if not tr.cn:
        raise DatasetError(f"{cfg.cn}: no caption names a {cfg.train_split} photo of {cfg.data}")
    t0 = time.perf_counter()
    tower, rows = _fit(cfg, tr, va, log)
    memory = _memory(tower, tr)
    sentence = _sentence_map(tower, tr)
    v_en = _final(cfg, tower, memory, va.en_x)
    agree = (v_en * va.en_joint).sum(1)
    tau = float(np.quantile(agree, 1.0 - cfg.english_share))
    en_q, en_share = _routed(enc, v_en, va.en, va.en_joint, tau)
    metrics: dict = {
        "val": {
            "images": len(va.names),
            "en_minilm": _r5(va.en_joint, va.img, va.en_owner),
            "en_routed": _r5(en_q, va.img, va.en_owner),
            "en_head": rows[-1]["val_en"],
            "cn_head": rows[-1]["val_cn"],
            "en_tower": _r5(v_en, va.img, va.en_owner),
            "en_to_tower": round(en_share, 4),
        }
    }
    if va.cn:
        cn_joint = _minilm_joint(enc, va.cn)
        v_cn = _final(cfg, tower, memory, va.cn_x)
        cn_q, cn_share = _routed(enc, v_cn, va.cn, cn_joint, tau)
        metrics["val"].update(
            cn_minilm=_r5(cn_joint, va.img, va.cn_owner),
            cn_tower=_r5(v_cn, va.img, va.cn_owner),
            cn_routed=_r5(cn_q, va.img, va.cn_owner),
        )
        metrics["val"]["cn_to_tower"] = round(cn_share, 4)
    if va.cn:  # the other language's captions against the English ones, in MiniLM's space
        z = (va.cn_x - tower.input_mean) / tower.input_std
        s_cn = l2n(z @ sentence[0].T + sentence[1])
        best = np.full((len(s_cn), len(va.names)), -2.0, np.float32)
        sims = s_cn @ va.en_sentence.T
        for j in range(len(va.names)):
            cols = va.en_owner == j
            if cols.any():
                best[:, j] = sims[:, cols].max(1)
        metrics["val"]["cn_vs_en_captions"] = retrieval_metrics(best, va.cn_owner)["t2i"]
    summary = _write(cfg, enc, tower, (memory, sentence), tau, metrics, round(time.perf_counter() - t0, 1))
    log({"event": "done", **summary})
    return summary


def _minilm_joint(enc: JointEncoder, texts: list[str]) -> np.ndarray:
    """MiniLM's own joint vectors (no routing): what an English-only install gives these texts."""
    return enc.text_from_embeddings(FeatureCache().text_features(enc.text_backbone, texts)).astype(np.float32)


def _write(
    cfg: MultilingualConfig,
    enc: JointEncoder,
    tower: _Tower,
    extra: tuple[tuple[np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray]],
    tau: float,
    metrics: dict,
    secs: float,
) -> dict:
    from safetensors.numpy import save_file

    params = {f"text.{k}": v.detach().numpy().astype(np.float16) for k, v in tower.text.state_dict().items()}
    params["input_mean"], params["input_std"] = tower.input_mean, tower.input_std
    memory, sentence = extra
    params["sentence.weight"], params["sentence.bias"] = sentence[0].astype(np.float16), sentence[1]
    if cfg.memory_weight:
        params["memory_keys"], params["memory_values"] = (m.astype(np.float16) for m in memory)
    weights = cfg.out / "multilingual.safetensors"
    save_file({k: np.ascontiguousarray(v) for k, v in params.items()}, str(weights))  # no strided views
    heads_digest = getattr(getattr(enc, "heads", None), "digest", None)
    card: dict = {
        "format": FORMAT,
        "name": f"{enc.name}.multilingual",
        "joint": {"model": enc.name, "heads_sha256": heads_digest, "fingerprint": enc.fingerprint},
        "config": {
            "encoders": list(cfg.encoders),
            "in_dim": int(params["input_mean"].shape[0]),
            "hidden": cfg.hidden,
            "depth": cfg.depth,
            "skip": True,
            "out_dim": 256,
            "memory_k": cfg.memory_k,
            "memory_weight": cfg.memory_weight,
        },
        "encoder_versions": {e: model_identity(e) for e in cfg.encoders},
        "routing": {"agreement": round(tau, 4), "english_share": cfg.english_share},
        "languages": list(USE_LANGUAGES) if cfg.encoders == ("use-m3",) else "e5: ~100 languages",
        "data": {"dataset": str(cfg.data), "other_captions": str(cfg.cn), "train_split": cfg.train_split},
        "training": jsonable(asdict(cfg)),
        "metrics": metrics,
        "train_seconds": secs,
        "seed": cfg.seed,
        "date": time.strftime("%Y-%m-%d"),
    }
    (cfg.out / "multilingual.json").write_text(json.dumps(card, indent=2, ensure_ascii=False) + "\n")
    return {"out": str(cfg.out), "model": enc.name, "agreement": round(tau, 4), "metrics": metrics}


def ship_tower(run: Path, model: str, directory: Path = MULTILINGUAL_DIR) -> Path:
    """Copy a run's tower next to the package's models as the tower of ``model`` (a joint model name)."""
    src = run / "multilingual.safetensors" if run.is_dir() else run
    card = src.with_suffix(".json")
    if not src.is_file() or not card.is_file():
        raise ModelError(f"no multilingual.safetensors + multilingual.json in {run}")
    directory.mkdir(parents=True, exist_ok=True)
    dst = directory / f"{model}.safetensors"
    shutil.copyfile(src, dst)
    shutil.copyfile(card, dst.with_suffix(".json"))
    return dst
