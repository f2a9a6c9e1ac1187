"""The photo side of the content policy: is a person under 16 shown? Decided at index time, stored.

Three signals, any one flags the photo (a missed child is a legal failure, a hidden dog an annoyance):

1. ``classifier``: a small network on the encoder's frozen ``pooled`` features (``models/weights/
   policy-minors-v1``), trained on Flickr8k captions' labels (``minor_words.py``); it sees children from
   behind or far away, where no face is usable. Its threshold was calibrated on val for recall >= 0.99
   of the combined rule.
2. ``faces``: a face whose age distribution puts ``P(age < limit) >= face_threshold`` (``faces.py``).
3. ``captions``: any caption of the photo, human or generated, that the query check blocks for the
   ``minors`` topic (``Policy.check_text``).

Flags do not depend on the region (the REST API picks a region per request); enforcement does
(``enforcement.py``); ``indexing/enrichers/policy.py`` stores them at index time. A signal that cannot
run fails closed: the photo is flagged and the evidence says why. The stored ``policy`` fingerprint names
every model, threshold and the text policy, so a change to any of them makes the flags stale and
``pixsearch index`` recomputes them.
"""

from __future__ import annotations

import hashlib
import io
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from pixsearch.errors import ModelError
from pixsearch.policy.faces import FaceAges, age_model_dir
from pixsearch.policy.verdicts import MINORS

if TYPE_CHECKING:
    from pixsearch.policy.rules import Policy

__all__ = [
    "CLASSIFIER_NAME",
    "MinorsClassifier",
    "PhotoChecker",
    "PhotoVerdict",
    "photo_checker",
    "rgb_of_thumbnail",
]

CLASSIFIER_NAME = "policy-minors-v1"


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


class MinorsClassifier:
    """Logistic head or one-hidden-layer MLP over standardised encoder features, in NumPy.

    Files: ``NAME.safetensors`` (mean, std, w1, b1[, w2, b2]) and ``NAME.json`` (model card: the feature
    it reads, the encoder it was trained on, its calibrated thresholds and measured figures).
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        try:
            from safetensors.numpy import load_file

            self.params = {k: v.astype(np.float32) for k, v in load_file(str(path)).items()}
            self.card: dict[str, Any] = json.loads(path.with_suffix(".json").read_text())
        except Exception as exc:
            raise ModelError(f"policy classifier {path} does not load: {exc}") from exc
        for k in ("mean", "std", "w1", "b1"):
            if k not in self.params:
                raise ModelError(f"policy classifier {path}: missing tensor {k!r}")
        self.digest = hashlib.sha256(path.read_bytes()).hexdigest()[:12]

    @classmethod
    def shipped(cls, name: str = CLASSIFIER_NAME) -> MinorsClassifier:
        return cls(_weights_dir() / f"{name}.safetensors")

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

    def logits(self, x: np.ndarray) -> np.ndarray:
        p = self.params
        h = (np.asarray(x, dtype=np.float32) - p["mean"]) / p["std"]
        h = h @ p["w1"] + p["b1"]
        if "w2" in p:
            h = np.maximum(h, 0.0) @ p["w2"] + p["b2"]
        return np.asarray(h.reshape(len(h)), dtype=np.float32)

    def scores(self, features: Mapping[str, np.ndarray]) -> np.ndarray:
        """P(shows a minor) per row of the encoder features named by ``self.feature``."""
        z = np.clip(self.logits(feature_matrix(features, self.feature)), -50, 50)
        return np.asarray(1.0 / (1.0 + np.exp(-z)), dtype=np.float32)


@dataclass(frozen=True)
class PhotoVerdict:
    flagged: bool
    evidence: dict[str, Any] = field(default_factory=dict)


def rgb_of_thumbnail(data: bytes | None) -> np.ndarray | None:
    """The stored thumbnail (JPEG, <= 256 px) as RGB uint8: the pixels the face check looks at."""
    if not data:
        return None
    from PIL import Image

    try:
        with Image.open(io.BytesIO(data)) as im:
            return np.asarray(im.convert("RGB"), dtype=np.uint8)
    except OSError:
        return None


class PhotoChecker:
    """Combines the three signals into a verdict with its evidence. Built once per index run."""

    def __init__(
        self,
        policy: Policy | None,
        classifier: MinorsClassifier | None,
        faces: FaceAges | None,
        encoder_name: str | None = None,
        face_threshold: float | None = None,
        full_evidence: bool = False,
    ) -> None:
        self.policy = policy
        # False: once one signal flags a photo the others are skipped (same verdict, ~5x cheaper at
        # index time since most flagged photos are caught by the classifier); True: every signal runs.
        self.full_evidence = full_evidence
        self.classifier = classifier
        self.faces = faces
        self.errors: dict[str, str] = {}
        if classifier is None:
            self.errors["classifier"] = "policy classifier not installed"
        elif encoder_name is not None and classifier.encoder and classifier.encoder != encoder_name:
            self.errors["classifier"] = (
                f"policy classifier was trained on {classifier.encoder} features, library uses {encoder_name}"
            )
        card = classifier.card if classifier is not None else {}
        self.face_threshold = float(
            face_threshold if face_threshold is not None else card.get("thresholds", {}).get("face", 0.5)
        )
        if faces is None:
            self.errors["faces"] = "face model not installed"
        else:
            try:
                faces.load()
            except ModelError as exc:
                self.errors["faces"] = str(exc)

    @cached_property
    def fingerprint(self) -> str:
        parts = [
            self.classifier.fingerprint if self.classifier else "classifier:none",
            f"t{self.classifier.threshold:.4f}" if self.classifier else "",
            self.faces.fingerprint if self.faces else "faces:none",
            f"f{self.face_threshold:g}",
            self.policy.fingerprint if self.policy else "text:none",
            "err:" + ",".join(sorted(self.errors)) if self.errors else "",
        ]
        return "photo-v1|" + "|".join(p for p in parts if p)

    def pixel_evidence(
        self, features: Mapping[str, np.ndarray], images: Sequence[np.ndarray | None]
    ) -> list[dict[str, Any]]:
        """The catalog-free half of ``check`` (classifier, faces): the costly part, which an engine's
        workers run next to the encoder (``indexing/enrichers/policy.py``)."""
        probs: np.ndarray | None = None
        if self.classifier is not None and "classifier" not in self.errors:
            probs = self.classifier.scores(features)
        out = []
        for i, img in enumerate(images):
            ev: dict[str, Any] = {"reasons": []}
            if self.errors:
                ev["errors"] = dict(self.errors)
                ev["reasons"].append("fail-closed")
            if probs is not None and self.classifier is not None:
                ev["classifier"] = float(f"{probs[i]:.6g}")
                if probs[i] >= self.classifier.threshold:
                    ev["reasons"].append("classifier")
            if (
                self.faces is not None
                and "faces" not in self.errors
                and (self.full_evidence or not ev["reasons"])
            ):
                if img is None:
                    ev["reasons"].append("no-pixels")  # nothing to look at: fail closed
                else:
                    found = self.faces.faces(img)
                    ev["faces"] = [f.to_dict() for f in found]
                    if any(f.p_minor >= self.face_threshold for f in found):
                        ev["reasons"].append("face")
            out.append(ev)
        return out

    def check(
        self,
        features: Mapping[str, np.ndarray],
        images: Sequence[np.ndarray | None],
        captions: Sequence[Sequence[tuple[str, str]]] | None = None,
        pixels: Sequence[dict[str, Any]] | None = None,
    ) -> list[PhotoVerdict]:
        """Verdicts for a batch: row i of ``features``, ``images[i]`` (RGB, for faces) and
        ``captions[i]`` ((text, source) pairs; None to judge from pixels alone) are one photo.
        ``pixels``: ``pixel_evidence`` already computed elsewhere (then ``images`` is not looked at)."""
        evs = [dict(e) for e in pixels] if pixels is not None else self.pixel_evidence(features, images)
        out = []
        for i, ev in enumerate(evs):
            if captions is not None:
                ev["n_captions"] = len(captions[i])  # stale_ids: captions added later redo the photo
                # once flagged, the captions are not read (same verdict, cheaper) unless full evidence
                if self.full_evidence or not ev["reasons"]:
                    hits = self._caption_hits(captions[i])
                    if hits:
                        ev["captions"] = hits
                        ev["reasons"].append("caption")
            out.append(PhotoVerdict(bool(ev["reasons"]), ev))
        return out

    def _caption_hits(self, caps: Sequence[tuple[str, str]]) -> list[dict[str, str]]:
        hits = []
        for text, source in caps:
            if self.policy is None:
                from pixsearch.policy.minor_words import caption_mentions_minor

                blocked, reason = caption_mentions_minor(text), "rule"
            else:
                v = self.policy.check_text(text, MINORS)
                blocked, reason = v.blocked, v.reason
            if blocked:
                hits.append({"source": source, "reason": reason})
        return hits


def photo_checker(policy: Policy | None, encoder_name: str | None) -> PhotoChecker:
    """The shipped checker; a classifier that does not load is recorded as an error (fail closed)."""
    try:
        clf: MinorsClassifier | None = MinorsClassifier.shipped()
    except ModelError:
        clf = None
    limit = (clf.card.get("thresholds", {}).get("face_age_limit") if clf else None) or 18.0
    try:
        age_model_dir()
        faces: FaceAges | None = FaceAges(limit=float(limit))
    except ModelError:  # no [policy] extra: recorded in the evidence, and a restricted region fails closed
        faces = None
    return PhotoChecker(policy, clf, faces, encoder_name)
