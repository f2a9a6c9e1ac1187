"""Projection heads: the small trained layers that map frozen backbone features into one joint space.

Trained in torch (``pixsearch.train``), run here in NumPy so a text query never imports torch. A heads file
is a safetensors file plus a JSON model card beside it (same stem); nothing is pickled. The card's
``config`` says how to rebuild the forward pass, ``backbones`` which frozen encoders the heads were trained
on, checked at load time so a file from another backbone fails loudly instead of returning noise.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterator, Mapping
from dataclasses import asdict, dataclass, field
from functools import lru_cache
from pathlib import Path

import numpy as np

from pixsearch.errors import ModelError, WeightsMismatchError

__all__ = ["HeadsConfig", "Heads", "Float32Params", "load_heads", "imagenet_class_prompts", "l2n"]


@dataclass(frozen=True)
class HeadsConfig:
    """Shape of a trained pair of heads; stored in the model card and parsed once on load."""

    image_backbone: str = "lite0"
    image_inputs: tuple[str, ...] = ("pooled",)  # "pooled", "bridge" (ImageNet softmax -> class-prompt mix)
    image_in: int = 1280
    text_in: int = 384
    hidden: int = 1024
    out_dim: int = 256
    depth: int = 1  # hidden layers per head
    skip: bool = True  # linear shortcut from input to output
    bridge_temperature: float = 1.0
    top: bool = False  # the file also carries a fine-tuned image backbone top (phase 2)
    # More frozen backbones whose pooled features follow the main one's in the image head's input, each
    # standardised with its own statistics (``image_mean``/``image_std`` span them all).
    extra_backbones: tuple[str, ...] = ()

    @classmethod
    def from_dict(cls, d: dict) -> HeadsConfig:
        known = {k: v for k, v in d.items() if k in cls.__dataclass_fields__}
        for key in ("image_inputs", "extra_backbones"):
            if key in known:
                known[key] = tuple(known[key])
        return cls(**known)

    def to_dict(self) -> dict:
        d = asdict(self)
        d["image_inputs"] = list(self.image_inputs)
        d["extra_backbones"] = list(self.extra_backbones)
        return d


def l2n(x: np.ndarray) -> np.ndarray:
    return x / np.maximum(np.linalg.norm(x, axis=-1, keepdims=True), 1e-12)


def _erf(x: np.ndarray) -> np.ndarray:
    # Abramowitz & Stegun 7.1.26 (|error| < 1.5e-7): NumPy has no erf and scipy costs import time.
    s = np.sign(x)
    # Clip: erf(4) == 1 in float32, and exp(-a*a) for larger a yields denormals that are ~100x slower.
    a = np.minimum(np.abs(x), 4.0)
    t = 1.0 / (1.0 + 0.3275911 * a)
    y = 1.0 - (
        (((1.061405429 * t - 1.453152027) * t + 1.421413741) * t - 0.284496736) * t + 0.254829592
    ) * t * np.exp(-a * a)
    return s * y


def _gelu(x: np.ndarray) -> np.ndarray:
    return 0.5 * x * (1.0 + _erf(x * (1.0 / math.sqrt(2.0))))


def mlp(params: Mapping[str, np.ndarray], prefix: str, x: np.ndarray, depth: int, skip: bool) -> np.ndarray:
    """Mirror of ``train.modules.ProjectionHead.forward`` (names must match its state_dict)."""
    h = x
    for i in range(depth):
        h = _gelu(h @ params[f"{prefix}.layers.{i}.weight"].T + params[f"{prefix}.layers.{i}.bias"])
    y = h @ params[f"{prefix}.out.weight"].T + params[f"{prefix}.out.bias"]
    if skip:
        y = y + x @ params[f"{prefix}.skip.weight"].T
    return y


class Float32Params(Mapping[str, np.ndarray]):
    """A heads file's tensors as float32, each converted on first read (then kept).

    Why: the file stores float16 (3.7 M values, with the image head and a phase-2 top); a text search
    reads only the text head's 0.75 M, and converting everything up front was ~15 ms of a cold search.
    """

    def __init__(self, raw: Mapping[str, np.ndarray]) -> None:
        self._raw = raw
        self._f32: dict[str, np.ndarray] = {}

    def __getitem__(self, key: str) -> np.ndarray:
        v = self._f32.get(key)
        if v is None:  # two threads may both convert a tensor: same values, either copy is kept
            v = self._f32[key] = self._raw[key].astype(np.float32)
        return v

    def __iter__(self) -> Iterator[str]:
        return iter(self._raw)

    def __len__(self) -> int:
        return len(self._raw)


@dataclass
class Heads:
    """Loaded heads: ``image(features)`` and ``text(minilm)`` give unit vectors in the joint space."""

    config: HeadsConfig
    params: Mapping[str, np.ndarray]
    card: dict = field(default_factory=dict)
    digest: str = ""

    def image_input(
        self, pooled: np.ndarray, logits: np.ndarray, extra: np.ndarray | None = None
    ) -> np.ndarray:
        """``extra``: the ``extra_backbones``' pooled features side by side (required when there are any)."""
        if self.config.extra_backbones:
            if extra is None:
                names = ", ".join(self.config.extra_backbones)
                raise WeightsMismatchError(f"these heads also need the pooled features of {names}")
            pooled = np.concatenate([pooled, extra], axis=1)
        parts = []
        for name in self.config.image_inputs:
            if name == "pooled":
                parts.append((pooled - self.params["image_mean"]) / self.params["image_std"])
            elif name == "bridge":
                parts.append(bridge(logits, self.params["class_text"], self.config.bridge_temperature))
            else:
                raise WeightsMismatchError(f"unknown image input {name!r}")
        return np.concatenate(parts, axis=1).astype(np.float32)

    def image(self, pooled: np.ndarray, logits: np.ndarray, extra: np.ndarray | None = None) -> np.ndarray:
        x = self.image_input(pooled, logits, extra)
        return l2n(mlp(self.params, "image", x, self.config.depth, self.config.skip)).astype(np.float32)

    def text(self, emb: np.ndarray) -> np.ndarray:
        return l2n(mlp(self.params, "text", emb, self.config.depth, self.config.skip)).astype(np.float32)


def bridge(logits: np.ndarray, class_text: np.ndarray, temperature: float = 1.0) -> np.ndarray:
    """Training-free image->text bridge: ImageNet class probabilities mixing class-prompt embeddings."""
    z = logits / temperature
    z = np.exp(z - z.max(1, keepdims=True))
    p = z / z.sum(1, keepdims=True)
    return l2n(p @ class_text.astype(np.float32))


def imagenet_class_prompts() -> list[str]:
    """One "a photo of a {class}" prompt per ImageNet-1k class, in logit order."""
    path = Path(__file__).resolve().parent.parent / "data" / "imagenet_classes.txt"
    lines = [ln for ln in path.read_text().splitlines() if "\t" in ln and not ln.startswith("#")]
    names = [ln.split("\t", 1)[1].split(",")[0].strip() for ln in lines]
    return [f"a photo of a {n}" for n in names]


@lru_cache(maxsize=4)
def load_heads(weights: Path, expect_backbones: tuple[str, str] | None = None) -> Heads:
    """Load a heads file + card; ``expect_backbones`` = (image fingerprint, text fingerprint) to enforce."""
    from safetensors import SafetensorError
    from safetensors.numpy import load_file

    if not weights.is_file():
        raise ModelError(f"heads file not found: {weights}")
    card_file = weights.with_suffix(".json")
    if not card_file.is_file():
        raise ModelError(f"model card missing beside {weights} (expected {card_file.name})")
    try:
        card = json.loads(card_file.read_text())
        params = load_file(str(weights))
    except (json.JSONDecodeError, SafetensorError, OSError) as exc:
        raise ModelError(f"cannot read heads {weights}: {exc}") from exc
    cfg = HeadsConfig.from_dict(card.get("config", {}))
    if expect_backbones is not None:
        have = (card.get("backbones", {}).get("image"), card.get("backbones", {}).get("text"))
        if have != expect_backbones:
            raise WeightsMismatchError(
                f"{weights.name} was trained on backbones {have[0]} / {have[1]}, "
                f"but this install has {expect_backbones[0]} / {expect_backbones[1]}"
            )
    in_dim = params.get("image.out.weight")
    if in_dim is None or "text.out.weight" not in params:
        raise WeightsMismatchError(f"{weights.name} is not a pixsearch heads file (no image/text heads)")
    import hashlib

    digest = hashlib.sha256(weights.read_bytes()).hexdigest()[:12]
    return Heads(cfg, Float32Params(params), card, digest)
