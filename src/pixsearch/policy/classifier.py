"""The photo policy's classifier: shows a person under 16? Scored in NumPy at index time.

``MinorsClassifier`` reads one shipped ``policy-minors-v<N>`` (weights + model card); the card names the
encoder whose features it was trained on, and ``MinorsClassifier.for_encoder`` picks the newest one that
fits a library's encoder (another encoder's features are noise to it). ``photo.py`` combines its score
with the face and caption signals.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from pixsearch.errors import ModelError
from pixsearch.policy.faces import FACE_FEATURES

__all__ = [
    "CLASSIFIER_PREFIX",
    "MinorsClassifier",
    "feature_matrix",
    "knn_vote",
    "shipped_classifiers",
]

CLASSIFIER_PREFIX = "policy-minors-v"  # shipped classifiers: policy-minors-v<N>.{safetensors,json}


def _weights_dir() -> Path:
    from pixsearch.models.shipped import WEIGHTS_DIR

    return WEIGHTS_DIR


def feature_matrix(features: Mapping[str, np.ndarray], spec: str) -> np.ndarray:
    """``"pooled+embedding"`` -> those encoder outputs side by side, as float32 rows."""
    names = spec.split("+")
    missing = [n for n in names if n not in features]
    if missing:
        raise ModelError(f"policy classifier needs encoder feature(s) {', '.join(missing)}")
    return np.concatenate([np.asarray(features[n], dtype=np.float32) for n in names], axis=1)


def knn_vote(
    query: np.ndarray, memory: np.ndarray, labels: np.ndarray, k: int, temperature: float
) -> np.ndarray:
    """Soft k-nearest-neighbour label per query row: the k most cosine-similar memory rows vote, each
    with weight exp((sim - best sim) / temperature). Flickr-style photo sets hold many near-alike scenes
    (the same party, the same playground), and a neighbour's caption label carries over to them better
    than a global linear boundary does (val AP 0.84 vs 0.81 for the MLP alone)."""
    q = np.asarray(query, np.float32)
    q = q / np.maximum(np.linalg.norm(q, axis=1, keepdims=True), 1e-12)
    m = np.asarray(memory, np.float32)
    m = m / np.maximum(np.linalg.norm(m, axis=1, keepdims=True), 1e-12)
    sim = q @ m.T
    k = max(1, min(k, m.shape[0]))
    idx = np.argpartition(-sim, k - 1, axis=1)[:, :k]
    top = np.take_along_axis(sim, idx, 1)
    wts = np.exp((top - top.max(1, keepdims=True)) / temperature)
    return np.asarray((wts * labels[idx]).sum(1) / wts.sum(1), np.float32)


def _logit(p: np.ndarray) -> np.ndarray:
    p = np.clip(p, 1e-3, 1 - 1e-3)
    return np.asarray(np.log(p / (1 - p)), np.float32)


class MinorsClassifier:
    """Logistic head or one-hidden-layer MLP over standardised encoder features, in NumPy; a v2 card
    adds a stacking layer over (MLP logit, kNN vote, face summary).

    Files: ``NAME.safetensors`` (mean, std, w1, b1[, w2, b2]; v2 also knn_memory, knn_labels,
    stack_mean, stack_std, stack_w, stack_b) and ``NAME.json`` (model card: the feature it reads, the
    encoder it was trained on, the stack's inputs, its calibrated thresholds and measured figures).
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        try:
            from safetensors.numpy import load_file

            self.params = {k: v.astype(np.float32) for k, v in load_file(str(path)).items()}
            self.card: dict[str, Any] = json.loads(path.with_suffix(".json").read_text())
        except Exception as exc:
            raise ModelError(f"policy classifier {path} does not load: {exc}") from exc
        need = ["mean", "std", "w1", "b1"]
        if self.stack_inputs:
            need += ["stack_mean", "stack_std", "stack_w", "stack_b"]
            if "knn" in self.stack_inputs:
                need += ["knn_memory", "knn_labels"]
            unknown = [n for n in self.stack_inputs if n not in ("mlp", "knn", *FACE_FEATURES)]
            if unknown:
                raise ModelError(f"policy classifier {path}: unknown stack input(s) {', '.join(unknown)}")
        for k in need:
            if k not in self.params:
                raise ModelError(f"policy classifier {path}: missing tensor {k!r}")
        self.digest = hashlib.sha256(path.read_bytes()).hexdigest()[:12]

    @classmethod
    def shipped(cls, name: str | None = None) -> MinorsClassifier:
        """The shipped classifier ``name`` (default: the newest one shipped)."""
        if name is None:
            names = [n for n, _ in shipped_classifiers()]
            if not names:
                raise ModelError(f"no policy classifier ({CLASSIFIER_PREFIX}<N>) in {_weights_dir()}")
            name = names[0]
        return cls(_weights_dir() / f"{name}.safetensors")

    @classmethod
    def for_encoder(cls, encoder_name: str) -> MinorsClassifier:
        """The newest shipped classifier whose card names ``encoder_name``: a classifier reads one
        encoder's features, and another encoder's are noise to it. ModelError when none fits (the
        checker then fails closed) or the one that fits does not load."""
        shipped = shipped_classifiers()
        for name, enc in shipped:
            if enc == encoder_name:
                return cls.shipped(name)
        have = ", ".join(f"{n} ({e or '?'})" for n, e in shipped) or "none"
        raise ModelError(
            f"no shipped policy classifier was trained on {encoder_name} features (shipped: {have})"
        )

    @property
    def fingerprint(self) -> str:
        return f"{self.path.stem}:{self.digest}"

    @property
    def feature(self) -> str:
        return str(self.card.get("feature", "pooled"))

    @property
    def encoder(self) -> str:
        """Name of the encoder whose features it was trained on (features of another one are noise)."""
        return str(self.card.get("encoder", ""))

    @property
    def threshold(self) -> float:
        return float(self.card["thresholds"]["combined"])

    @property
    def stack_inputs(self) -> list[str]:
        """The stacking layer's inputs in order (empty for a v1 card: the MLP alone)."""
        return [str(n) for n in self.card.get("stack", {}).get("inputs", [])]

    @property
    def needs_faces(self) -> bool:
        """Whether scoring reads the photo's face summary (then the face model must run on every photo)."""
        return any(n in FACE_FEATURES for n in self.stack_inputs)

    def logits(self, x: np.ndarray) -> np.ndarray:
        p = self.params
        h = (np.asarray(x, dtype=np.float32) - p["mean"]) / p["std"]
        h = h @ p["w1"] + p["b1"]
        if "w2" in p:
            h = np.maximum(h, 0.0) @ p["w2"] + p["b2"]
        return np.asarray(h.reshape(len(h)), dtype=np.float32)

    def stack_columns(
        self, features: Mapping[str, np.ndarray], faces: np.ndarray | None = None
    ) -> dict[str, np.ndarray]:
        """The stack's input columns by name: ``mlp`` (logit), ``knn`` (logit of the vote) and, from
        ``faces`` (rows of :data:`FACE_FEATURES`), the face columns."""
        cols = {"mlp": self.logits(feature_matrix(features, self.feature))}
        if "knn" in self.stack_inputs:
            knn = self.card.get("knn", {})
            q = feature_matrix(features, str(knn.get("feature", "embedding")))
            vote = knn_vote(
                q,
                self.params["knn_memory"],
                self.params["knn_labels"],
                int(knn.get("k", 30)),
                float(knn.get("temperature", 0.1)),
            )
            cols["knn"] = _logit(vote)
        if self.needs_faces:
            if faces is None:
                raise ModelError(f"policy classifier {self.path.stem} needs the photos' faces")
            for j, name in enumerate(FACE_FEATURES):
                cols[name] = np.asarray(faces, np.float32)[:, j]
        return cols

    def scores(self, features: Mapping[str, np.ndarray], faces: np.ndarray | None = None) -> np.ndarray:
        """P(shows a minor) per row of the encoder features named by ``self.feature`` (and, for a stacked
        classifier, row i of ``faces``: ``face_summary`` of photo i)."""
        if self.stack_inputs:
            cols = self.stack_columns(features, faces)
            x = np.stack([cols[n] for n in self.stack_inputs], axis=1)
            p = self.params
            z = ((x - p["stack_mean"]) / p["stack_std"]) @ p["stack_w"] + p["stack_b"]
        else:
            z = self.logits(feature_matrix(features, self.feature))
        z = np.clip(np.asarray(z, np.float32).reshape(-1), -50, 50)
        return np.asarray(1.0 / (1.0 + np.exp(-z)), dtype=np.float32)


def shipped_classifiers() -> list[tuple[str, str]]:
    """(name, encoder on its card) of each shipped ``policy-minors-v<N>``, newest (highest N: v10 after v9)
    first. Only the small JSON cards are read; the weights load once one is picked, so a card without
    its weights is picked and then fails to load (an error that names it). A card that does not parse
    is listed with encoder "": no library picks it."""
    found: list[tuple[int, str, str]] = []
    for card in _weights_dir().glob(f"{CLASSIFIER_PREFIX}*.json"):
        version = card.stem[len(CLASSIFIER_PREFIX) :]
        if not version.isdigit():
            continue
        try:
            enc = str(json.loads(card.read_text()).get("encoder", ""))
        except (OSError, ValueError, AttributeError):
            enc = ""
        found.append((int(version), card.stem, enc))
    return [(name, enc) for _, name, enc in sorted(found, reverse=True)]
