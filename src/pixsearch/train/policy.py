"""``pixsearch train policy``: the photo policy's classifier on frozen encoder features.

Labels come from human captions by one documented rule (``minor_words.photo_is_positive``). Features are
the *runtime* encoder's ``pooled`` output (``JointEncoder.encode_image_features``), so what is trained on
is exactly what the indexer hands the policy enricher. The model is a one-hidden-layer MLP
(class-weighted BCE, AdamW, early stopping on val average precision), small enough to run in NumPy at
index time.

Its decision threshold is calibrated on val for the *combined* rule the product applies (classifier OR
face age OR caption check; here pixels only: classifier OR face), at recall >= ``target_recall``. The
output dir gets ``NAME.safetensors`` + ``NAME.json`` (model card) and ``metrics.json``; copy both model
files into ``models/weights/`` to ship.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, cast

import numpy as np

from pixsearch.corpus.splits import derived_features, split_pooled
from pixsearch.evaluation.policy_photos import split_labels, thumbnails
from pixsearch.train._loop import Log

__all__ = ["PolicyTrainConfig", "train_policy", "recall_threshold"]


@dataclass(frozen=True)
class PolicyTrainConfig:
    data: Path
    out: Path
    name: str = "policy-minors-v1"
    model: str | None = None  # encoder (default: the shipped one)
    feature: str = "pooled+embedding"  # encoder outputs the classifier reads, side by side
    hidden: int = 256
    epochs: int = 60
    lr: float = 1e-3
    weight_decay: float = 1e-2
    dropout: float = 0.3
    target_recall: float = 0.995  # the 0.99 target plus a margin (val-calibrated 0.99 gave test 0.985)
    faces: bool = True  # calibrate together with the face signal (slow: runs the face model on val)
    seed: int = 0


def recall_threshold(
    scores: np.ndarray, y: np.ndarray, target: float, forced: np.ndarray | None = None
) -> float:
    """Largest threshold t such that recall of (scores >= t OR forced) on labels ``y`` is >= target."""
    pos = np.flatnonzero(y)
    if len(pos) == 0:
        return 0.5
    caught = np.zeros(len(pos), bool) if forced is None else forced[pos].astype(bool)
    rest = np.sort(scores[pos][~caught])[::-1]  # positives only the classifier can catch
    need = int(np.ceil(target * len(pos))) - int(caught.sum())
    if need <= 0:
        return 1.0
    return float(rest[min(need, len(rest)) - 1])


def pr_at(scores: np.ndarray, y: np.ndarray, t: float, forced: np.ndarray | None = None) -> dict[str, float]:
    flag = scores >= t
    if forced is not None:
        flag |= forced
    tp = int((flag & y).sum())
    return {
        "precision": round(tp / max(1, int(flag.sum())), 4),
        "recall": round(tp / max(1, int(y.sum())), 4),
        "flagged": int(flag.sum()),
    }


def _average_precision(scores: np.ndarray, y: np.ndarray) -> float:
    order = np.argsort(-scores)
    hits = y[order].astype(np.float64)
    prec = np.cumsum(hits) / np.arange(1, len(hits) + 1)
    return float((prec * hits).sum() / max(1.0, hits.sum()))


def _fit(
    cfg: PolicyTrainConfig, x: np.ndarray, y: np.ndarray, xv: np.ndarray, yv: np.ndarray, log: Log
) -> dict:
    import torch

    torch.manual_seed(cfg.seed)
    mean, std = x.mean(0), x.std(0) + 1e-6
    xt = torch.from_numpy(((x - mean) / std).astype(np.float32))
    yt = torch.from_numpy(y.astype(np.float32))
    xvt = torch.from_numpy(((xv - mean) / std).astype(np.float32))
    net = torch.nn.Sequential(
        torch.nn.Dropout(0.1),
        torch.nn.Linear(x.shape[1], cfg.hidden),
        torch.nn.ReLU(),
        torch.nn.Dropout(cfg.dropout),
        torch.nn.Linear(cfg.hidden, 1),
    )
    opt = torch.optim.AdamW(net.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    pos_w = torch.tensor(float((~y).sum() / max(1, y.sum())))
    loss_fn = torch.nn.BCEWithLogitsLoss(pos_weight=pos_w)
    g = torch.Generator().manual_seed(cfg.seed)
    best: tuple[float, dict[str, np.ndarray], int] = (-1.0, {}, 0)
    for epoch in range(cfg.epochs):
        net.train()
        for idx in torch.randperm(len(xt), generator=g).split(128):
            opt.zero_grad()
            loss = loss_fn(net(xt[idx]).squeeze(1), yt[idx])
            loss.backward()
            opt.step()
        net.eval()
        with torch.no_grad():
            sv = torch.sigmoid(net(xvt).squeeze(1)).numpy()
        ap = _average_precision(sv, yv)
        log(
            {"event": "epoch", "epoch": epoch, "loss": round(float(loss.detach()), 4), "dev_ap": round(ap, 4)}
        )
        if ap > best[0]:
            lin1, lin2 = cast(torch.nn.Linear, net[1]), cast(torch.nn.Linear, net[4])
            state = {
                "mean": mean.astype(np.float32),
                "std": std.astype(np.float32),
                "w1": lin1.weight.detach().numpy().T.copy(),
                "b1": lin1.bias.detach().numpy().copy(),
                "w2": lin2.weight.detach().numpy().T.copy(),
                "b2": lin2.bias.detach().numpy().copy(),
            }
            best = (ap, state, epoch)
    log({"event": "best", "epoch": best[2], "dev_ap": round(best[0], 4)})
    return best[1]


FACE_LIMITS = [16.0, 18.0, 20.0, 22.0]
FACE_THRESHOLDS = [0.5, 0.7, 0.9]


def face_signal(data: Path, names: list[str]) -> tuple[np.ndarray, float]:
    """(photos x FACE_LIMITS) max P(age < limit) over each photo's faces (1.0 when the photo does not
    decode: fail closed), and seconds per photo of the face check."""
    import time

    from pixsearch.policy.faces import FaceAges

    fa = FaceAges()
    fa.load()
    imgs = thumbnails(data, names)
    t = time.perf_counter()
    out = np.stack(
        [fa.minor_mass(im, FACE_LIMITS) if im is not None else np.ones(len(FACE_LIMITS)) for im in imgs]
    )
    return out.astype(np.float32), (time.perf_counter() - t) / max(1, len(names))


def choose_face_rule(
    scores: np.ndarray, y: np.ndarray, mass: np.ndarray, target: float
) -> tuple[float | None, float, float, dict[str, Any]]:
    """The (age limit, face threshold) that, OR-ed with the classifier at the threshold that keeps
    recall >= target, gives the best precision on these labels; among equal precisions the rule whose
    faces alone catch the most positives (the most robust to a classifier miss on new photos).
    (None, 1.0, t) when every face rule costs precision."""
    t0 = recall_threshold(scores, y, target)
    base = pr_at(scores, y, t0)
    best: tuple[float | None, float, float, dict[str, Any]] = (None, 1.0, t0, base)
    key = (base["precision"], -1.0)
    for j, lim in enumerate(FACE_LIMITS):
        for ft in FACE_THRESHOLDS:
            forced = mass[:, j] >= ft
            t = recall_threshold(scores, y, target, forced)
            m = pr_at(scores, y, t, forced)
            k = (m["precision"], float((forced & y).sum()))
            if m["recall"] >= target and k > key:
                best, key = (lim, ft, t, m), k
    return best


def train_policy(cfg: PolicyTrainConfig, log: Log | None = None) -> dict:
    from safetensors.numpy import save_file

    from pixsearch.models.encoder import create_encoder
    from pixsearch.policy.photo import MinorsClassifier, feature_matrix

    say: Log = log or (lambda _e: None)
    enc = create_encoder(cfg.model)
    names_t, pt = split_pooled(cfg.data, "train", enc, say)
    names_v, pv = split_pooled(cfg.data, "val", enc, say)
    ft, fv = derived_features(enc, pt), derived_features(enc, pv)
    lab_t = dict(zip(*split_labels(cfg.data, "train"), strict=True))
    lab_v = dict(zip(*split_labels(cfg.data, "val"), strict=True))
    y = np.array([lab_t[n] for n in names_t])
    yv = np.array([lab_v[n] for n in names_v])
    say(
        {
            "event": "data",
            "train": len(y),
            "train_pos": int(y.sum()),
            "val": len(yv),
            "val_pos": int(yv.sum()),
        }
    )
    # Early stopping on a 10% dev slice of train: val is kept for calibrating the threshold only.
    dev = np.random.default_rng(cfg.seed).random(len(y)) < 0.1
    x = feature_matrix(ft, cfg.feature)
    state = _fit(cfg, x[~dev], y[~dev], x[dev], y[dev], say)
    cfg.out.mkdir(parents=True, exist_ok=True)
    wfile = cfg.out / f"{cfg.name}.safetensors"
    save_file(state, str(wfile))
    card: dict[str, Any] = {
        "name": cfg.name,
        "task": "photo shows a person under 16 (content policy, topic minors)",
        "feature": cfg.feature,
        "encoder": enc.name,
        "encoder_fingerprint": enc.fingerprint,
        "architecture": (f"standardise -> Linear({x.shape[1]},{cfg.hidden}) -> ReLU -> Linear(1) -> sigmoid"),
        "labels": "pixsearch.policy.minor_words.photo_is_positive over the photo's human captions",
        "training": {k: str(v) if isinstance(v, Path) else v for k, v in asdict(cfg).items()},
        "thresholds": {"combined": 0.5, "face": 1.0, "face_age_limit": None},
        "licence": "trained on Flickr8k (research use); weights: same terms as pixsearch",
    }
    wfile.with_suffix(".json").write_text(json.dumps(card, indent=2))
    clf = MinorsClassifier(wfile)
    sv = clf.scores(fv)
    metrics: dict[str, Any] = {"val_ap": round(_average_precision(sv, yv), 4)}
    t_alone = recall_threshold(sv, yv, cfg.target_recall)
    metrics["classifier_only"] = {"threshold": t_alone, **pr_at(sv, yv, t_alone)}
    combined, face_limit, face_t = t_alone, None, 1.0
    if cfg.faces:
        mass, per = face_signal(cfg.data, names_v)
        face_limit, face_t, combined, m = choose_face_rule(sv, yv, mass, cfg.target_recall)
        metrics["face_seconds_per_photo"] = round(per, 4)
        for j, lim in enumerate(FACE_LIMITS):
            metrics[f"face_only_lt{lim:g}_p0.5"] = pr_at(mass[:, j], yv, 0.5)
        metrics["combined"] = {"threshold": combined, "face_limit": face_limit, "face_threshold": face_t, **m}
    # exact float: rounding up could drop the last positive the threshold was chosen to keep
    card["thresholds"] = {"combined": combined, "face": face_t, "face_age_limit": face_limit}
    card["metrics_val"] = metrics
    wfile.with_suffix(".json").write_text(json.dumps(card, indent=2))
    (cfg.out / "metrics.json").write_text(json.dumps(metrics, indent=2))
    say({"event": "done", **metrics})
    return {"weights": str(wfile), **metrics}
