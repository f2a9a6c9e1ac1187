"""Calibrated match score: the probability that a person would say a text describes a photo (0..1).

Raw cosines mean nothing to a user (a perfect match shows 0.47) and cannot be thresholded. This module
turns a handful of *signals* into one calibrated number with a tiny logistic model fitted on human
judgments (``pixsearch train scorer``; the recipe and the rows used are in the model card):

* ``dense``: cosine of text and photo in the joint space (pixels only);
* ``bank_joint`` / ``bank_text``: mean similarity (joint space / MiniLM) of the text with the captions
  of a shipped caption bank (human captions of *other* photos, train and val splits) that lie nearest
  the photo in the joint space (the ``BANK_K`` nearest / the nearer half of them): a retrieved "what
  would people say about photos like this" (pixels only: never the photo's own captions). Measured on
  the expert judgments, dense alone gives tau-c 45, dense + bank about 50 (cross-validated);
* ``generated``: MiniLM cosine of the text with the photo's generated caption, when a captioner is
  shipped and the model was fitted with it;
* ``ref_max`` / ``ref_mean``: MiniLM cosine of the text with the photo's own human captions
  (``references`` mode).

A model is fitted per subset of optional signals; at scoring time the largest fitted subset that the
evidence at hand offers is used, and ``mode`` says whether references were among them.

Text checks: an empty text is a :class:`QueryError`; a long text is cut by the encoder to its first
``MAX_TOKENS`` word pieces (so a 10,000-character text scores its beginning, and is flagged
``low_confidence``); a text that does not look English (the encoders were trained on English
captions) gets a valid score flagged ``low_confidence``.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np

from pixsearch.errors import ModelError, QueryError
from pixsearch.models.shipped import SCORERS_DIR

__all__ = [
    "MatchScore",
    "PhotoEvidence",
    "TextCheck",
    "Scorer",
    "check_text",
    "load_scorer",
    "shipped_scorers",
    "scorer_for",
    "DEFAULT_SCORER",
    "MAX_TOKENS",
    "BANK_K",
    "PIXEL_SIGNALS",
    "REF_SIGNALS",
    "LogisticModel",
    "parse_models",
]

# The default encoder's scorer (models/encoder.py DEFAULT_ENCODER): what ``load_scorer()`` gives when no
# encoder is named. A library asks for its own encoder's scorer (``scorer_for``); match-v1 stays shipped
# for libraries indexed with lite0-minilm-v1.
DEFAULT_SCORER = "match-v2"
MAX_TOKENS = 256  # MiniLM's tokenizer truncation (models/backbones.py): the rest of a text is not read
LONG_CHARS = 1000  # beyond this many characters a text is flagged low-confidence (captions are ~60)
BANK_K = 50
SAME_TEXT = 0.9999  # MiniLM cosine at which a reference is the scored text itself
PIXEL_SIGNALS = ("dense", "bank_joint", "bank_text", "generated")
REF_SIGNALS = ("ref_max", "ref_mean")

# A tiny language heuristic: function words of English versus those of frequent other languages.
_EN = frozenset(
    "a an the of in on at with and is are to his her their its into by for from while as who that this "
    "there some two three man woman men women dog boy girl people child children person".split()
)
_OTHER = frozenset(
    "le la les un une des du et est dans sur avec der die das und ein eine mit im ist auf el los las "
    "y en con una del il di che sul nel o um uma com na no do da op het een en zijn och att är på".split()
)
_WORD = re.compile(r"[^\W\d_]+", re.UNICODE)


@dataclass(frozen=True)
class TextCheck:
    text: str
    low_confidence: bool
    reasons: tuple[str, ...] = ()


def check_text(text: str) -> TextCheck:
    """Validate a text before scoring; see the module docstring for the documented behaviour."""
    t = " ".join(str(text).split())
    if not t:
        raise QueryError("empty text: give some words to score against the photo")
    reasons = []
    if len(t) > LONG_CHARS:
        reasons.append(f"long text: only its first {MAX_TOKENS} word pieces are read")
    words = [w.lower() for w in _WORD.findall(t)]
    letters = "".join(words)
    if not letters:
        reasons.append("no letters: not a description")
    else:
        ascii_share = sum(ch.isascii() for ch in letters) / len(letters)
        en = sum(w in _EN for w in words)
        other = sum(w in _OTHER for w in words)
        if ascii_share < 0.8 or (other > en and other >= 1) or (len(words) >= 5 and en == 0):
            reasons.append("does not look like English: the models were trained on English captions")
    return TextCheck(t, bool(reasons), tuple(reasons))


@dataclass(frozen=True)
class MatchScore:
    """What a caller gets for one (text, photo): ``score`` 0..1, the ``signals`` it used, ``mode``
    pixels|references, and whether the text check lowered confidence (``reasons``)."""

    score: float
    signals: dict[str, float]
    mode: str
    low_confidence: bool
    reasons: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        d: dict[str, Any] = {
            "score": round(self.score, 4),
            "mode": self.mode,
            "signals": {k: round(v, 4) for k, v in self.signals.items()},
            "low_confidence": self.low_confidence,
        }
        if self.reasons:
            d["reasons"] = list(self.reasons)
        return d


@dataclass(frozen=True)
class PhotoEvidence:
    """What is known about one photo: its joint vector, and optionally a generated caption's MiniLM
    vector and its human captions' MiniLM vectors (rows, unit)."""

    embedding: np.ndarray
    generated: np.ndarray | None = None
    references: np.ndarray | None = None


@dataclass(frozen=True)
class LogisticModel:
    """One fitted subset of signals: standardise, dot, sigmoid (the card's ``models`` entries)."""

    features: tuple[str, ...]
    mean: np.ndarray
    scale: np.ndarray
    coef: np.ndarray
    intercept: float

    def __call__(self, x: np.ndarray) -> np.ndarray:
        z = ((x - self.mean) / self.scale) @ self.coef + self.intercept
        return 1.0 / (1.0 + np.exp(-np.clip(z, -30, 30)))


@dataclass
class Scorer:
    """Signals -> calibrated probability. Built by :func:`load_scorer`; stateless per call."""

    name: str
    models: dict[frozenset[str], LogisticModel]
    bank_joint: np.ndarray  # (N, joint dim) unit, the bank captions in the joint space
    # (N, 384) unit, the same captions in MiniLM space; may stay float16 as shipped: a photo reads only its
    # neighbours' rows, converted when read (the same float32 values; a cold search skips converting 5 M)
    bank_text: np.ndarray
    card: dict = field(default_factory=dict)
    bank_k: int = BANK_K

    @property
    def fingerprint(self) -> str:
        return f"{self.name}:{self.card.get('digest', '')}"

    def signals(
        self,
        text_minilm: np.ndarray,
        text_joint: np.ndarray,
        photos: Sequence[PhotoEvidence],
        exclude: np.ndarray | None = None,
    ) -> list[dict[str, float]]:
        """Every signal the evidence offers, per photo, for one text (vectors unit, 1-D).

        ``exclude`` masks bank rows (training: a photo's own captions must not be retrieved).
        """
        if not photos:
            return []
        emb = np.stack([p.embedding for p in photos]).astype(np.float32)
        nb = self.neighbours(emb, exclude)
        return [self.pair_signals(text_minilm, text_joint, p, nb[:, j]) for j, p in enumerate(photos)]

    def neighbours(self, emb: np.ndarray, exclude: np.ndarray | None = None) -> np.ndarray:
        """(k, photos) bank rows nearest each photo (joint space), nearest first."""
        near = np.atleast_2d(emb).astype(np.float32) @ self.bank_joint.T  # (photos, N), rows contiguous
        if exclude is not None:
            near[:, exclude] = -np.inf
        k = min(self.bank_k, near.shape[1])
        top = np.argpartition(-near, k - 1, axis=1)[:, :k]
        order = np.argsort(-np.take_along_axis(near, top, axis=1), axis=1)
        return np.take_along_axis(top, order, axis=1).T

    def pair_signals(
        self, text_minilm: np.ndarray, text_joint: np.ndarray, p: PhotoEvidence, nb: np.ndarray
    ) -> dict[str, float]:
        near_text = self.bank_text[nb[: max(1, len(nb) // 2)]].astype(np.float32, copy=False)
        s = {
            "dense": float(p.embedding @ text_joint),
            "bank_joint": float((self.bank_joint[nb] @ text_joint).mean()),
            "bank_text": float((near_text @ text_minilm).mean()),
        }
        if p.generated is not None:
            s["generated"] = float(p.generated @ text_minilm)
        if p.references is not None and len(p.references):
            r = p.references @ text_minilm
            r = r[r < SAME_TEXT]  # the text itself is no reference for itself (as in training)
            if len(r):
                s["ref_max"], s["ref_mean"] = float(r.max()), float(r.mean())
        return s

    def predict(self, signals: dict[str, float], references: bool = True) -> float:
        m = self.model_for(set(signals), references)
        return float(m(np.array([[signals[f] for f in m.features]], dtype=np.float64))[0])

    def model_for(self, available: set[str], references: bool = True) -> LogisticModel:
        """The largest fitted subset of the available signals (references only if allowed)."""
        usable = available if references else available - set(REF_SIGNALS)
        fits = [m for key, m in self.models.items() if key <= usable]
        if not fits:
            raise ModelError(f"scorer {self.name} has no model for signals {sorted(available)}")
        return max(fits, key=lambda m: len(m.features))

    def combine(self, signals: dict[str, float], check: TextCheck, references: bool = True) -> MatchScore:
        m = self.model_for(set(signals), references)
        x = np.array([signals[f] for f in m.features], dtype=np.float64)
        p = float(m(x[None])[0])
        used = {f: signals[f] for f in m.features}
        mode = "references" if any(f in REF_SIGNALS for f in m.features) else "pixels"
        return MatchScore(p, used, mode, check.low_confidence, check.reasons)


def parse_models(card: dict) -> dict[frozenset[str], LogisticModel]:
    """A card's ``models`` list, keyed by the set of signals each one reads."""
    models = {}
    for m in card.get("models", []):
        feats = tuple(m["features"])
        models[frozenset(feats)] = LogisticModel(
            feats,
            np.asarray(m["mean"], dtype=np.float64),
            np.asarray(m["scale"], dtype=np.float64),
            np.asarray(m["coef"], dtype=np.float64),
            float(m["intercept"]),
        )
    if not models:
        raise ModelError("scorer card has no models")
    return models


def _version_key(name: str) -> tuple:
    """``match-v10`` sorts after ``match-v9``: digits compare as numbers."""
    return tuple(int(p) if p.isdigit() else p for p in re.split(r"(\d+)", name))


@lru_cache(maxsize=4)
def shipped_scorers(directory: Path | None = None) -> tuple[tuple[str, str, str], ...]:
    """(name, encoder name, encoder fingerprint) of every scorer shipped in ``directory`` (default: the
    package's), newest first. A card without its bank, or that does not read, is skipped here (loading
    it by name still says why)."""
    out = []
    for card_path in (directory or SCORERS_DIR).glob("*.json"):
        try:
            card = json.loads(card_path.read_text())
        except (OSError, json.JSONDecodeError):
            continue
        if isinstance(card, dict) and card_path.with_suffix(".safetensors").is_file():
            fp = str(card.get("encoder_fingerprint") or "")
            out.append((card_path.stem, str(card.get("encoder") or ""), fp))
    return tuple(sorted(out, key=lambda c: _version_key(c[0]), reverse=True))


def scorer_for(encoder_name: str, fingerprint: str | None = None, directory: Path | None = None) -> str:
    """The shipped scorer fitted for an encoder: the newest whose card names its ``fingerprint``, else
    the newest fitted for a model of that name, else :data:`DEFAULT_SCORER`.

    Why a fallback at all: the scorer's caption bank and joint-space signal belong to one encoder, and
    ``Matcher.usable`` compares fingerprints, so a scorer that does not fit gives no calibrated score
    (rather than a wrong one) and its card names the model it needs, for the error message.
    """
    cards = shipped_scorers(directory)
    by_fp = [c[0] for c in cards if fingerprint and c[2] == fingerprint]
    by_name = [c[0] for c in cards if c[1] == encoder_name]
    return (by_fp or by_name or [DEFAULT_SCORER])[0]


def load_scorer(
    name_or_path: str | None = None, encoder: str | None = None, fingerprint: str | None = None
) -> Scorer:
    """A shipped scorer by name (``match-v2``) or from a card path (``RUN/scorer.json``); with no name,
    the one fitted for the model named ``encoder`` with ``fingerprint`` (:func:`scorer_for`), or
    without one the default encoder's (:data:`DEFAULT_SCORER`)."""
    if name_or_path:
        return _load(name_or_path)
    return _load(scorer_for(encoder, fingerprint) if encoder else DEFAULT_SCORER)


@lru_cache(maxsize=4)
def _load(name: str) -> Scorer:
    """One copy per scorer (its bank is 17 MB), however it was asked for."""
    from safetensors import SafetensorError
    from safetensors.numpy import load_file

    card_path = Path(name) if name.endswith(".json") else SCORERS_DIR / f"{name}.json"
    bank_path = card_path.with_suffix(".safetensors")
    if not card_path.is_file() or not bank_path.is_file():
        raise ModelError(f"scorer {name!r} not found (expected {card_path} and {bank_path.name})")
    try:
        card = json.loads(card_path.read_text())
        bank = load_file(str(bank_path))
        if "bank_text" not in bank and card.get("bank_text_from"):
            # MiniLM vectors of the same bank captions: another scorer's file holds them (shipped once)
            other = card_path.with_name(f"{card['bank_text_from']}.safetensors")
            bank["bank_text"] = load_file(str(other))["bank_text"]
    except (OSError, json.JSONDecodeError, SafetensorError) as exc:
        raise ModelError(f"cannot read scorer {name!r}: {exc}") from exc
    if {"bank_joint", "bank_text"} - set(bank) or len(bank["bank_text"]) != len(bank["bank_joint"]):
        raise ModelError(f"scorer {name!r} has no caption bank of matching joint and MiniLM rows")
    return Scorer(
        name=card.get("name", card_path.stem),
        models=parse_models(card),
        bank_joint=bank["bank_joint"].astype(np.float32),
        bank_text=bank["bank_text"],
        card=card,
        bank_k=int(card.get("bank_k", BANK_K)),
    )
