"""``pixsearch train policy``: the photo policy's classifier, stacked over encoder features, a
nearest-neighbour vote and the photo's faces.

Labels come from human captions by one documented rule (``minor_words.photo_is_positive``). Features are
the *runtime* encoder's outputs (``pooled``, ``embedding``: what the indexer hands the policy enricher)
and the face summary of the stored thumbnail (``faces.face_summary``: what the index-time face check
sees). The model has two levels, both small enough to run in NumPy at index time:

1. an MLP on ``pooled`` + ``embedding`` (class-weighted BCE, AdamW, early stopping on average precision
   of a 10% dev slice of *train*), and a k-nearest-neighbour vote among the training photos' embeddings;
2. a logistic regression over (MLP logit, kNN logit, face summary). It is fitted on *out-of-fold* level-1
   scores of train (K folds for the MLP, leave-one-out for the vote): fitted on in-sample scores it would
   trust the level-1 models more than they deserve on new photos.

Val is never trained on: its only use is calibrating the decision threshold, for the *combined* rule the
product applies (classifier OR face age OR caption check; here pixels only: classifier OR face), at
recall >= ``target_recall``. The output dir gets ``NAME.safetensors`` + ``NAME.json`` (model card) and
``metrics.json``; copy both model files into ``models/weights/`` to ship. The card names the encoder, and
the index-time checker picks the newest shipped classifier whose card names the library's encoder.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, cast

import numpy as np

from pixsearch.corpus.splits import derived_features, split_pooled
from pixsearch.evaluation.policy_photos import split_labels, thumbnails
from pixsearch.evaluation.thresholds import average_precision, pr_at, pr_curve, recall_threshold
from pixsearch.train._loop import Log

__all__ = [
    "PolicyTrainConfig",
    "average_precision",
    "fit_logistic",
    "pr_at",
    "pr_curve",
    "recall_threshold",
    "train_policy",
]


@dataclass(frozen=True)
class PolicyTrainConfig:
    data: Path
    out: Path
    name: str = "policy-minors-v3"  # v3: lite02-minilm-v2 features; v2 stays for lite0-minilm-v1
    model: str | None = None  # encoder (default: the shipped one); its name goes on the card
    feature: str = "pooled+embedding"  # encoder outputs the MLP reads, side by side
    hidden: int = 256
    epochs: int = 10
    lr: float = 1e-3
    weight_decay: float = 1e-2
    dropout: float = 0.3
    target_recall: float = 0.995  # the 0.99 target plus a margin (val-calibrated 0.99 gave test 0.985 in v1)
    faces: bool = True  # face summary in the stack + face rule calibration (face model on every photo)
    knn: bool = True  # nearest-neighbour vote in the stack (ships the train embeddings: ~3 MB)
    knn_feature: str = "embedding"
    knn_k: int = 30
    knn_temperature: float = 0.1
    folds: int = 5  # out-of-fold MLP scores for fitting the stack
    stack_l2: float = 1.0  # ridge penalty of the stacking logistic regression (on standardised inputs)
    seed: int = 0


def _fit(
    cfg: PolicyTrainConfig, x: np.ndarray, y: np.ndarray, xv: np.ndarray, yv: np.ndarray, log: Log
) -> dict:
    """Level-1 MLP; the state of the epoch with the best average precision on (xv, yv), a dev slice
    of train."""
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
        ap = average_precision(sv, yv)
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


def _mlp_logits(state: dict[str, np.ndarray], x: np.ndarray) -> np.ndarray:
    h = (x - state["mean"]) / state["std"]
    h = np.maximum(h @ state["w1"] + state["b1"], 0.0) @ state["w2"] + state["b2"]
    return np.asarray(h.reshape(-1), np.float32)


def _dev_slice(n: int, seed: int) -> np.ndarray:
    return np.random.default_rng(seed).random(n) < 0.1


def out_of_fold_mlp(cfg: PolicyTrainConfig, x: np.ndarray, y: np.ndarray, log: Log) -> np.ndarray:
    """MLP logits for every training row from a model that did not see it (``cfg.folds`` folds; each
    fold's model early-stops on a 10% dev slice of its own training part)."""
    rng = np.random.default_rng(cfg.seed + 1)
    fold = np.empty(len(y), np.int64)
    for cls in (False, True):  # stratified: each fold gets its share of positives
        idx = np.flatnonzero(y == cls)
        fold[rng.permutation(idx)] = np.arange(len(idx)) % cfg.folds
    out = np.zeros(len(y), np.float32)
    quiet: Log = lambda _e: None  # noqa: E731
    for k in range(cfg.folds):
        tr = np.flatnonzero(fold != k)
        dev = _dev_slice(len(tr), cfg.seed + 2 + k)
        state = _fit(cfg, x[tr[~dev]], y[tr[~dev]], x[tr[dev]], y[tr[dev]], quiet)
        out[fold == k] = _mlp_logits(state, x[fold == k])
        log({"event": "fold", "fold": k, "folds": cfg.folds})
    return out


def knn_leave_one_out(memory: np.ndarray, labels: np.ndarray, k: int, temperature: float) -> np.ndarray:
    """``photo.knn_vote`` of every memory row among the *other* rows (its own label would leak)."""
    m = np.asarray(memory, np.float32)
    m = m / np.maximum(np.linalg.norm(m, axis=1, keepdims=True), 1e-12)
    out = np.zeros(len(m), np.float32)
    k = max(1, min(k, len(m) - 1))
    for s in range(0, len(m), 1024):
        sim = m[s : s + 1024] @ m.T
        sim[np.arange(len(sim)), np.arange(s, s + len(sim))] = -np.inf
        idx = np.argpartition(-sim, k - 1, axis=1)[:, :k]
        top = np.take_along_axis(sim, idx, 1)
        w = np.exp((top - top.max(1, keepdims=True)) / temperature)
        out[s : s + len(sim)] = (w * labels[idx]).sum(1) / w.sum(1)
    return out


def fit_logistic(x: np.ndarray, y: np.ndarray, l2: float = 1.0, iters: int = 50) -> dict[str, np.ndarray]:
    """L2-penalised logistic regression on standardised ``x`` by Newton's method (a few dozen inputs:
    exact, deterministic, no solver dependency). Returns stack_mean, stack_std, stack_w, stack_b."""
    x = np.asarray(x, np.float64)
    mean, std = x.mean(0), x.std(0) + 1e-6
    a = np.concatenate([(x - mean) / std, np.ones((len(x), 1))], axis=1)
    t = np.asarray(y, np.float64)
    w = np.zeros(a.shape[1])
    pen = np.full(a.shape[1], l2)
    pen[-1] = 0.0  # the intercept is not penalised
    for _ in range(iters):
        p = 1.0 / (1.0 + np.exp(-np.clip(a @ w, -50, 50)))
        grad = a.T @ (p - t) + pen * w
        hess = (a * (p * (1 - p))[:, None]).T @ a + np.diag(pen + 1e-9)
        step = np.linalg.solve(hess, grad)
        w -= step
        if np.abs(step).max() < 1e-8:
            break
    return {
        "stack_mean": mean.astype(np.float32),
        "stack_std": std.astype(np.float32),
        "stack_w": w[:-1].astype(np.float32),
        "stack_b": np.array([w[-1]], np.float32),
    }


THRESHOLD_SLACK = 0.02  # logit units the shipped threshold sits below the last positive it must keep


def with_slack(t: float, slack: float = THRESHOLD_SLACK) -> float:
    """``t`` lowered by ``slack`` in logit space. The calibrated threshold is *exactly* the score of a val
    positive; the index-time encoder (ONNX Runtime) gives features that differ from the training side's
    in the last digits, which could drop that positive. 0.02 logits costs at most a photo or two of
    precision on val."""
    if not 0.0 < t < 1.0:
        return t
    z = float(np.log(t / (1 - t))) - slack
    return float(1.0 / (1.0 + np.exp(-z)))


FACE_LIMITS = [16.0, 22.0]
FACE_THRESHOLDS = [0.5, 0.7, 0.9]


def split_faces(data: Path, names: list[str], log: Log | None = None) -> tuple[np.ndarray, np.ndarray, float]:
    """(photos x FACE_FEATURES face summaries, photos x FACE_LIMITS largest P(age < limit) over each
    photo's faces, seconds per photo) on the stored-thumbnail pixels the index-time check sees. A photo
    that does not decode gets mass 1.0 (fail closed). Cached under the feature cache dir, keyed by the
    face models' fingerprint and the photo names."""
    import time

    from pixsearch.corpus.features import default_cache_dir
    from pixsearch.policy.faces import FACE_FEATURES, FaceAges, face_summary

    fa = FaceAges()
    fa.load()
    key = hashlib.sha256((fa.fingerprint + str(data.resolve()) + "\n".join(names)).encode()).hexdigest()[:16]
    cache = default_cache_dir() / "policy-faces" / f"{key}.npz"
    if cache.is_file():
        z = np.load(cache)
        return z["summary"], z["mass"], float(z["seconds"])
    summ = np.zeros((len(names), len(FACE_FEATURES)), np.float32)
    mass = np.ones((len(names), len(FACE_LIMITS)), np.float32)
    spent = 0.0
    for s in range(0, len(names), 256):
        imgs = thumbnails(data, names[s : s + 256])
        t = time.perf_counter()
        for i, im in enumerate(imgs):
            if im is None:
                continue
            faces = fa.faces(im)
            summ[s + i] = face_summary(faces, im.shape)
            mass[s + i] = [max((f.p16 for f in faces), default=0.0), max((f.p22 for f in faces), default=0.0)]
        spent += time.perf_counter() - t
        if log:
            log({"event": "faces", "done": min(len(names), s + 256), "total": len(names)})
    per = spent / max(1, len(names))
    cache.parent.mkdir(parents=True, exist_ok=True)
    np.savez(cache, summary=summ, mass=mass, seconds=np.float64(per))
    return summ, mass, per


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
    from pixsearch.policy.classifier import MinorsClassifier, feature_matrix, knn_vote
    from pixsearch.policy.faces import FACE_FEATURES

    say: Log = log or (lambda _e: None)
    enc = create_encoder(cfg.model)
    names_t, pt, et = split_pooled(cfg.data, "train", enc, say)
    names_v, pv, ev = split_pooled(cfg.data, "val", enc, say)
    ft, fv = derived_features(enc, pt, et), derived_features(enc, pv, ev)
    lab_t = dict(zip(*split_labels(cfg.data, "train"), strict=True))
    lab_v = dict(zip(*split_labels(cfg.data, "val"), strict=True))
    y = np.array([lab_t[n] for n in names_t], dtype=bool)
    yv = np.array([lab_v[n] for n in names_v], dtype=bool)
    say(
        {
            "event": "data",
            "train": len(y),
            "train_pos": int(y.sum()),
            "val": len(yv),
            "val_pos": int(yv.sum()),
        }
    )

    # Level 1. The shipped MLP early-stops on a 10% dev slice of train; val only calibrates.
    x = feature_matrix(ft, cfg.feature)
    dev = _dev_slice(len(y), cfg.seed)
    state = _fit(cfg, x[~dev], y[~dev], x[dev], y[dev], say)
    inputs = ["mlp"]
    cols_t = [out_of_fold_mlp(cfg, x, y, say)]
    tensors: dict[str, np.ndarray] = dict(state)
    if cfg.knn:
        memory = feature_matrix(ft, cfg.knn_feature)
        memory = memory / np.maximum(np.linalg.norm(memory, axis=1, keepdims=True), 1e-12)
        tensors["knn_memory"] = memory.astype(np.float16)
        tensors["knn_labels"] = y.astype(np.float32)
        vote = knn_leave_one_out(tensors["knn_memory"], tensors["knn_labels"], cfg.knn_k, cfg.knn_temperature)
        cols_t.append(np.log(np.clip(vote, 1e-3, 1 - 1e-3) / (1 - np.clip(vote, 1e-3, 1 - 1e-3))))
        inputs.append("knn")
    faces_v: np.ndarray | None = None
    mass_v: np.ndarray | None = None
    metrics: dict[str, Any] = {}
    if cfg.faces:
        faces_t, _, per_t = split_faces(cfg.data, names_t, say)
        faces_v, mass_v, per_v = split_faces(cfg.data, names_v, say)
        metrics["face_seconds_per_photo"] = round(per_v or per_t, 4)
        cols_t += list(faces_t.T)
        inputs += list(FACE_FEATURES)

    # Level 2 on out-of-fold level-1 scores.
    tensors.update(fit_logistic(np.stack(cols_t, axis=1), y, cfg.stack_l2))
    cfg.out.mkdir(parents=True, exist_ok=True)
    wfile = cfg.out / f"{cfg.name}.safetensors"
    save_file({k: np.ascontiguousarray(v) for k, v in tensors.items()}, str(wfile))
    card: dict[str, Any] = {
        "name": cfg.name,
        "task": "photo shows a person under 16 (content policy, topic minors)",
        "feature": cfg.feature,
        "encoder": enc.name,
        "encoder_fingerprint": enc.fingerprint,
        "architecture": (
            f"stack: logistic regression over [{', '.join(inputs)}] (standardised); "
            f"mlp: standardise -> Linear({x.shape[1]},{cfg.hidden}) -> ReLU -> Linear(1); "
            + (
                f"knn: {cfg.knn_k} nearest of {len(y)} train {cfg.knn_feature} vectors (cosine), "
                f"weights exp((sim - max)/{cfg.knn_temperature:g}), logit of the weighted label mean; "
                if cfg.knn
                else ""
            )
            + ("faces: pixsearch.policy.faces.face_summary of the stored thumbnail" if cfg.faces else "")
        ),
        "stack": {"inputs": inputs, "fitted_on": f"out-of-fold level-1 scores of train ({cfg.folds} folds)"},
        "knn": {"feature": cfg.knn_feature, "k": cfg.knn_k, "temperature": cfg.knn_temperature},
        "labels": "pixsearch.policy.minor_words.photo_is_positive over the photo's human captions",
        "training": {k: str(v) if isinstance(v, Path) else v for k, v in asdict(cfg).items()},
        "thresholds": {"combined": 0.5, "face": 1.0, "face_age_limit": None},
        "licence": (
            "trained on Flickr8k (research use); holds the train photos' joint embeddings and labels "
            "(the kNN memory); weights: same terms as pixsearch"
        ),
    }
    if not cfg.knn:
        del card["knn"]
    wfile.with_suffix(".json").write_text(json.dumps(card, indent=2))

    # Calibration on val, through the product's own scoring code.
    clf = MinorsClassifier(wfile)
    sv = clf.scores(fv, faces_v)
    metrics["val_ap"] = round(average_precision(sv, yv), 4)
    metrics["val_ap_mlp_only"] = round(
        average_precision(_mlp_logits(state, feature_matrix(fv, cfg.feature)), yv), 4
    )
    if cfg.knn:
        kv = knn_vote(
            feature_matrix(fv, cfg.knn_feature),
            tensors["knn_memory"],
            tensors["knn_labels"],
            cfg.knn_k,
            cfg.knn_temperature,
        )
        metrics["val_ap_knn_only"] = round(average_precision(kv, yv), 4)
    t_alone = recall_threshold(sv, yv, cfg.target_recall)
    metrics["classifier_only"] = {"threshold": t_alone, **pr_at(sv, yv, t_alone)}
    metrics["val_curve"] = pr_curve(sv, yv)
    combined, face_limit, face_t = t_alone, None, 1.0
    if mass_v is not None:
        face_limit, face_t, combined, m = choose_face_rule(sv, yv, mass_v, cfg.target_recall)
        for j, lim in enumerate(FACE_LIMITS):
            metrics[f"face_only_lt{lim:g}_p0.5"] = pr_at(mass_v[:, j], yv, 0.5)
        metrics["combined"] = {"threshold": combined, "face_limit": face_limit, "face_threshold": face_t, **m}
    # never rounded up: that could drop the last positive the threshold was chosen to keep
    combined = with_slack(combined)
    forced = None
    if mass_v is not None and face_limit is not None:
        forced = mass_v[:, FACE_LIMITS.index(face_limit)] >= face_t
    metrics["shipped"] = {"threshold": combined, **pr_at(sv, yv, combined, forced)}
    card["thresholds"] = {"combined": combined, "face": face_t, "face_age_limit": face_limit}
    card["metrics_val"] = metrics
    wfile.with_suffix(".json").write_text(json.dumps(card, indent=2))
    (cfg.out / "metrics.json").write_text(json.dumps(metrics, indent=2))
    say({"event": "done", **{k: v for k, v in metrics.items() if k != "val_curve"}})
    return {"weights": str(wfile), **metrics}
