"""The photo side of the content policy: is a person under 16 shown? Decided at index time, stored.

Three signals, any one flags the photo (a missed child is a legal failure, a hidden dog an annoyance):

1. ``classifier``: ``models/weights/policy-minors-v<N>`` (``classifier.py``: the newest one trained on
   the library's encoder's features; v3 for ``lite02-minilm-v2``, v2 for ``lite0-minilm-v1``, none for
   another encoder: fail closed), trained on Flickr8k captions' labels (``minor_words.py``); it sees
   children from behind or far away, where no face is usable. It stacks three signals with a logistic
   regression: a small MLP on the encoder's frozen ``pooled`` + ``embedding`` features, a
   nearest-neighbour vote among the training photos' joint embeddings (photos much like a labelled one,
   e.g. the same kind of scene, get its label), and the photo's faces summarised by
   ``faces.face_summary`` (ages weighted by face size x detector score). Its threshold was calibrated
   on val for recall >= 0.995 of the combined rule. A v1 card (MLP only, no faces) still loads.
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

import io
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from typing import TYPE_CHECKING, Any

import numpy as np

from pixsearch.errors import ModelError
from pixsearch.policy.classifier import (  # re-exported: trainers and evaluation import them from here
    CLASSIFIER_PREFIX,
    MinorsClassifier,
    feature_matrix,
    knn_vote,
    shipped_classifiers,
)
from pixsearch.policy.faces import FACE_FEATURES, Face, FaceAges, age_model_dir, face_summary
from pixsearch.policy.verdicts import MINORS

if TYPE_CHECKING:
    from pixsearch.policy.rules import Policy

__all__ = [
    "CLASSIFIER_PREFIX",
    "MinorsClassifier",
    "PhotoChecker",
    "PhotoVerdict",
    "feature_matrix",
    "knn_vote",
    "photo_checker",
    "rgb_of_thumbnail",
    "shipped_classifiers",
]


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
        classifier_error: str | None = None,
    ) -> None:
        self.policy = policy
        # False: once one signal flags a photo the others are skipped (same verdict, ~5x cheaper at
        # index time since most flagged photos are caught by the classifier); True: every signal runs.
        self.full_evidence = full_evidence
        self.classifier = classifier
        self.faces = faces
        self.errors: dict[str, str] = {}
        if classifier is None:
            self.errors["classifier"] = classifier_error or "policy classifier not installed"
        elif encoder_name is not None and classifier.encoder and classifier.encoder != encoder_name:
            self.errors["classifier"] = (
                f"policy classifier was trained on {classifier.encoder} features, library uses {encoder_name}"
            )
        card = classifier.card if classifier is not None else {}
        self.needs_faces = classifier is not None and classifier.needs_faces
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
        if self.needs_faces and "faces" in self.errors and "classifier" not in self.errors:
            self.errors["classifier"] = "policy classifier reads the face summary, and the face model failed"

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
        return "photo-v2|" + "|".join(p for p in parts if p)

    def pixel_evidence(
        self, features: Mapping[str, np.ndarray], images: Sequence[np.ndarray | None]
    ) -> list[dict[str, Any]]:
        """The catalog-free half of ``check`` (classifier, faces): the costly part, which an engine's
        workers run next to the encoder (``indexing/enrichers/policy.py``). A stacked classifier reads
        the faces, so they are found on every photo first; otherwise only where the classifier passed."""
        probs: np.ndarray | None = None
        found: list[list[Face] | None] = [None] * len(images)
        clf_ok = self.classifier is not None and "classifier" not in self.errors
        if clf_ok and self.needs_faces and self.faces is not None:
            found = [self.faces.faces(img) if img is not None else None for img in images]
            rows = (
                np.stack(
                    [
                        face_summary(f or [], img.shape if img is not None else (1, 1))
                        for f, img in zip(found, images, strict=True)
                    ]
                )
                if images
                else np.zeros((0, len(FACE_FEATURES)), np.float32)
            )
            probs = self.classifier.scores(features, rows) if self.classifier is not None else None
        elif clf_ok and self.classifier is not None:
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
                and (self.full_evidence or not ev["reasons"] or found[i] is not None)
            ):  # faces already found for the classifier are recorded (and ruled on) at no extra cost
                if img is None:
                    ev["reasons"].append("no-pixels")  # nothing to look at: fail closed
                else:
                    here = found[i]
                    if here is None:
                        here = self.faces.faces(img)
                    ev["faces"] = [f.to_dict() for f in here]
                    if any(f.p_minor >= self.face_threshold for f in here):
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
    """The shipped checker for a library on ``encoder_name``: the newest classifier trained on that
    encoder's features (None: the newest shipped). None that fits, or one that does not load, is recorded
    as an error (fail closed)."""
    error = None
    try:
        clf: MinorsClassifier | None = (
            MinorsClassifier.for_encoder(encoder_name) if encoder_name else MinorsClassifier.shipped()
        )
    except ModelError as exc:
        clf, error = None, str(exc)
    limit = (clf.card.get("thresholds", {}).get("face_age_limit") if clf else None) or 18.0
    try:
        age_model_dir()
        faces: FaceAges | None = FaceAges(limit=float(limit))
    except ModelError:  # no [policy] extra: recorded in the evidence, and a restricted region fails closed
        faces = None
    return PhotoChecker(policy, clf, faces, encoder_name, classifier_error=error)
