"""The encoders behind the JointEncoder seam (``joint_encoder.py``), and the registry of named models.

Search and storage see only the protocol, so trained heads drop in without touching them. The registry is
built in a function (not at import) from what is installed. A library records its encoder's
``fingerprint`` and refuses to be searched with another one."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from functools import lru_cache, partial
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from pixsearch.errors import ModelError
from pixsearch.models.backbones import (
    IMAGE_BACKBONES,
    ImageBackbone,
    TextBackbone,
    image_backbone,
    image_fingerprint,
    text_fingerprint,
)
from pixsearch.models.heads import Heads, l2n, load_heads
from pixsearch.models.joint_encoder import JointEncoder
from pixsearch.models.onnx_runtime import OnnxModel
from pixsearch.models.pixels import pack_pixels, unpack_pixels
from pixsearch.models.shipped import WEIGHTS_DIR

if TYPE_CHECKING:
    from PIL import Image

    from pixsearch.models.multilingual import QueryTower

__all__ = [
    "JointEncoder",
    "RawEncoder",
    "HeadsEncoder",
    "OnnxEncoder",
    "DEFAULT_ENCODER",
    "available_encoders",
    "create_encoder",
    "default_encoder_name",
    "default_text_backbone",
]

DEFAULT_ENCODER = "lite02-minilm-v2"


class _Base:
    """Shared lazy backbones: torch is imported only when pixels are encoded. With extra backbones,
    ``preprocess`` packs one input per backbone resolution into a row (``pixels.pack_pixels``)."""

    caption_dim = TextBackbone.dim
    runs_on_onnx = False

    def __init__(self, backbone: str, extra: tuple[str, ...] = ()) -> None:
        for name in (backbone, *extra):
            if name not in IMAGE_BACKBONES:
                raise ModelError(f"unknown image backbone {name!r}")
        self.backbone_name = backbone
        self.extra_backbones = tuple(extra)
        self.input_resolutions = tuple(IMAGE_BACKBONES[b].resolution for b in (backbone, *extra))
        self.resolution = max(self.input_resolutions)

    @property
    def image_backbone(self) -> ImageBackbone:
        return image_backbone(self.backbone_name)

    @property
    def text_backbone(self) -> TextBackbone:
        return default_text_backbone()

    @property
    def has_top(self) -> bool:
        return False

    @property
    def maps_fingerprint(self) -> str:
        return image_fingerprint(self.backbone_name)

    def fine_tuned_top(self) -> Any:
        """The fine-tuned backbone top (``models.top.ImageTop``), or None where the frozen one runs."""
        return None

    def preprocess(self, img: Image.Image) -> np.ndarray:
        return pack_pixels(img, self.input_resolutions)

    def unpack(self, arrays: np.ndarray) -> list[np.ndarray]:
        """One contiguous (N, 3, R, R) float32 array per backbone from a batch of ``preprocess`` rows."""
        return unpack_pixels(arrays, self.input_resolutions)

    def blank_input(self) -> np.ndarray:
        from PIL import Image

        return self.preprocess(Image.new("RGB", (self.resolution, self.resolution)))[None]

    def encode_captions(self, texts: list[str]) -> np.ndarray:
        return self.text_backbone.encode(texts)

    def encode_image_arrays(self, arrays: np.ndarray) -> np.ndarray:
        return self.encode_image_features(arrays)["embedding"]

    def encode_image_features(self, arrays: np.ndarray) -> dict[str, np.ndarray]:
        """pooled / logits / spatial of the main backbone, the stored ``embedding`` from all of them."""
        import torch

        main, *more = self.unpack(arrays)
        with torch.inference_mode():
            res = self.image_backbone.forward(torch.from_numpy(main), top=self.fine_tuned_top(), spatial=True)
            extra = [
                image_backbone(b).forward(torch.from_numpy(x))["pooled"].numpy()
                for b, x in zip(self.extra_backbones, more, strict=True)
            ]
        out = {k: np.ascontiguousarray(v.numpy(), dtype=np.float32) for k, v in res.items()}
        more_pooled = np.concatenate(extra, axis=1).astype(np.float32) if extra else None
        out["embedding"] = self.image_from_features(out["pooled"], out["logits"], more_pooled)
        return out

    def image_from_features(
        self, pooled: np.ndarray, logits: np.ndarray, extra: np.ndarray | None = None
    ) -> np.ndarray:
        raise NotImplementedError

    def pooled_from_mid(self, mid: np.ndarray) -> np.ndarray:
        import torch

        top = self.fine_tuned_top()
        with torch.inference_mode():
            return self.image_backbone.top(torch.from_numpy(mid.astype(np.float32)), top)["pooled"].numpy()


class RawEncoder(_Base):
    """No trained heads: image->image on raw pooled features; no text->image dense score."""

    cross_modal = False

    def __init__(self, backbone: str = "lite0") -> None:
        super().__init__(backbone)
        self.name = f"{backbone}-raw"
        self.dim = IMAGE_BACKBONES[backbone].dim

    @property
    def fingerprint(self) -> str:
        return f"{self.name}|{image_fingerprint(self.backbone_name)}|{text_fingerprint()}"

    def image_from_features(
        self, pooled: np.ndarray, logits: np.ndarray, extra: np.ndarray | None = None
    ) -> np.ndarray:
        return l2n(pooled).astype(np.float32)

    def _no_joint_space(self) -> ModelError:
        return ModelError(
            f"encoder {self.name} has no joint text space; use a trained encoder such as {DEFAULT_ENCODER}"
        )

    def encode_text(self, texts: list[str]) -> np.ndarray:
        raise self._no_joint_space()

    def encode_texts(self, texts: list[str]) -> tuple[np.ndarray, np.ndarray]:
        raise self._no_joint_space()

    def text_from_embeddings(self, emb: np.ndarray) -> np.ndarray:
        raise self._no_joint_space()


class HeadsEncoder(_Base):
    """Frozen backbones + trained projection heads: text and images share one space.

    This class runs pixels on torch (a fresh training run, or a model exported without ONNX files);
    shipped models run as :class:`OnnxEncoder`.
    """

    cross_modal = True

    def __init__(self, name: str, weights: Path, card: dict | None = None) -> None:
        self._weights = weights
        self._heads: Heads | None = None
        self._top: Any = None
        self.name = name
        self.card = _read_card(weights) if card is None else card
        cfg = self.card.get("config", {})
        super().__init__(cfg.get("image_backbone", "lite0"), tuple(cfg.get("extra_backbones", ())))
        self.dim = int(cfg.get("out_dim", 256))

    def _image_fp(self) -> str:
        return image_fingerprint(self.backbone_name)

    def _extra_fps(self) -> list[str]:
        return [image_fingerprint(b) for b in self.extra_backbones]

    def _text_fp(self) -> str:
        return text_fingerprint()

    @property
    def heads(self) -> Heads:
        if self._heads is None:
            self._heads = load_heads(self._weights, (self._image_fp(), self._text_fp()))
        return self._heads

    @property
    def fingerprint(self) -> str:
        more = "".join(f"|{fp}" for fp in self._extra_fps())
        return f"{self.name}:{self.heads.digest}|{self._image_fp()}|{self._text_fp()}{more}"

    def image_from_features(
        self, pooled: np.ndarray, logits: np.ndarray, extra: np.ndarray | None = None
    ) -> np.ndarray:
        return self.heads.image(pooled, logits, extra)

    @property
    def has_top(self) -> bool:
        return self.heads.config.top

    @property
    def maps_fingerprint(self) -> str:
        if not self.has_top:
            return self._image_fp()
        h = hashlib.sha256()
        for k in sorted(k for k in self.heads.params if k.startswith("top.")):
            h.update(k.encode() + np.asarray(self.heads.params[k], dtype=np.float16).tobytes())
        return f"{self._image_fp()}+top:{h.hexdigest()[:12]}"

    def fine_tuned_top(self) -> Any:
        if not self.has_top:
            return None
        if self._top is None:
            from pixsearch.models.top import load_top

            self._top = load_top(self.image_backbone, self.heads.params)
        return self._top

    def text_from_embeddings(self, emb: np.ndarray) -> np.ndarray:
        return self.heads.text(emb)

    def encode_texts(self, texts: list[str]) -> tuple[np.ndarray, np.ndarray]:
        emb = self.encode_captions(texts)
        return emb, self.text_from_embeddings(emb)

    def encode_text(self, texts: list[str]) -> np.ndarray:
        return self.text_from_embeddings(self.text_backbone.encode(texts))


class OnnxEncoder(HeadsEncoder):
    """A model whose card lists ONNX files: pixels and text run on ONNX Runtime, never torch.

    The fingerprint is the torch path's, character for character: the ONNX files are a derived,
    hash-checked serialisation of the same weights and give the same vectors (cosine >= 0.9999,
    ``tests/unit/train/test_onnx_export.py``), so libraries indexed before the switch open unchanged
    (docs/model.md).
    """

    runs_on_onnx = True
    tower: QueryTower | None = None  # queries MiniLM cannot read go here (models/multilingual.py)

    def __init__(self, name: str, weights: Path, card: dict) -> None:
        super().__init__(name, weights, card)
        entries = card.get("onnx")
        if not isinstance(entries, dict) or not {"image", "text"} <= set(entries):
            raise ModelError(f"model card of {name} lists no image and text ONNX files")
        self.image_graph = OnnxModel(weights.parent, entries["image"])
        self.text_graph = OnnxModel(weights.parent, entries["text"])
        # "numpy": the text graph is another model's MiniLM (shared file), this model's head runs here
        self._numpy_head = entries["text"].get("head") == "numpy"
        # "numpy" here too: the image graph gives the maps (maybe another model's graph), this model's
        # head reads them and the extra backbones' pooled graphs (models with extra backbones).
        self._numpy_image_head = entries["image"].get("head") == "numpy"
        extra = entries.get("image_extra") or {}
        if set(extra) != set(self.extra_backbones) or (extra and not self._numpy_image_head):
            raise ModelError(
                f"model card of {name} lists graphs for {sorted(extra)}, not its extra backbones"
            )
        self.extra_graphs = {b: OnnxModel(weights.parent, e) for b, e in extra.items()}
        self._text_bb: TextBackbone | None = None

    def _backbone_fp(self, side: str) -> str:
        fp = self.card.get("backbones", {}).get(side)
        if not isinstance(fp, str):
            raise ModelError(f"model card of {self.name} does not name its {side} backbone")
        return fp

    def _image_fp(self) -> str:
        return self._backbone_fp("image")

    def _text_fp(self) -> str:
        return self._backbone_fp("text")

    def _extra_fps(self) -> list[str]:
        fps = self.card.get("backbones", {}).get("extra", [])
        if len(fps) != len(self.extra_backbones) or not all(isinstance(f, str) for f in fps):
            raise ModelError(f"model card of {self.name} does not name its extra backbones")
        return list(fps)

    @property
    def text_backbone(self) -> TextBackbone:
        if self._text_bb is None:
            tok = self.card["onnx"].get("tokenizer")
            if not isinstance(tok, dict) or "file" not in tok:
                raise ModelError(f"model card of {self.name} lists no tokenizer")
            self._text_bb = TextBackbone(self.text_graph, self._weights.parent / tok["file"], self._text_fp())
        return self._text_bb

    def encode_image_features(self, arrays: np.ndarray) -> dict[str, np.ndarray]:
        """Runs the image graph ``IMAGE_CHUNK`` photos at a time: EfficientNet's early feature maps of
        8 photos fit the CPU caches, those of 32 do not (measured on 2 cores: ~25% less CPU a photo)."""
        parts = self.unpack(arrays)
        out = self.image_graph.run_chunked(IMAGE_CHUNK, {"pixels": parts[0]})
        if not self._numpy_image_head:
            return out
        more = [
            self.extra_graphs[b].run_chunked(IMAGE_CHUNK, {"pixels": x})["pooled"]
            for b, x in zip(self.extra_backbones, parts[1:], strict=True)
        ]
        extra = np.concatenate(more, axis=1) if more else None
        out["embedding"] = self.image_from_features(out["pooled"], out["logits"], extra)
        return out

    def encode_text(self, texts: list[str]) -> np.ndarray:
        if not texts:
            return np.zeros((0, self.dim), np.float32)
        return self.encode_texts(texts)[1]

    def encode_texts(self, texts: list[str]) -> tuple[np.ndarray, np.ndarray]:
        """(MiniLM caption vectors, joint-space vectors) from one forward pass."""
        if not texts:
            return np.zeros((0, self.caption_dim), np.float32), np.zeros((0, self.dim), np.float32)
        out = self.text_backbone.encode_both(texts)
        joint = self.heads.text(out["sentence"]) if self._numpy_head else out["joint"]
        return self._routed(texts, out["sentence"], joint)

    def _routed(self, texts: list[str], m: np.ndarray, j: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        return (m, j) if self.tower is None else self.tower.route(texts, m, j, self.text_backbone.tok)


IMAGE_CHUNK = 8  # photos per image-graph run (OnnxEncoder.encode_image_features)


def _read_card(weights: Path) -> dict:
    card_file = weights.with_suffix(".json")
    if not card_file.is_file():
        return {}
    try:
        card = json.loads(card_file.read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise ModelError(f"cannot read model card {card_file}: {exc}") from exc
    return card if isinstance(card, dict) else {}


def _heads_encoder(name: str, weights: Path) -> HeadsEncoder:
    """ONNX Runtime when the card lists ONNX files, torch otherwise (a training run's heads)."""
    card = _read_card(weights)
    if "onnx" in card:
        from pixsearch.models.multilingual import query_tower  # a file check: loads on first use

        enc = OnnxEncoder(name, weights, card)
        enc.tower = query_tower(weights)
        return enc
    return HeadsEncoder(name, weights, card)


@lru_cache(maxsize=1)
def default_text_backbone() -> TextBackbone:
    """The default model's MiniLM, for callers without a model of their own (training, raw encoders)."""
    enc = create_encoder(DEFAULT_ENCODER)
    if not enc.runs_on_onnx:
        raise ModelError(f"{DEFAULT_ENCODER} ships no ONNX text graph; reinstall pixsearch")
    return enc.text_backbone


def available_encoders(weights_dir: Path = WEIGHTS_DIR) -> dict[str, Callable[[], JointEncoder]]:
    """Name -> factory, from the backbones we know and the heads files shipped in ``weights_dir``."""
    reg: dict[str, Callable[[], JointEncoder]] = {}
    for bb in IMAGE_BACKBONES:
        reg[f"{bb}-raw"] = partial(RawEncoder, bb)
    for f in sorted(weights_dir.glob("*.safetensors")):
        reg[f.stem] = partial(_heads_encoder, f.stem, f)
    return reg


def default_encoder_name() -> str:
    return DEFAULT_ENCODER if (WEIGHTS_DIR / f"{DEFAULT_ENCODER}.safetensors").is_file() else "lite0-raw"


def create_encoder(name_or_path: str | Path | None = None) -> JointEncoder:
    """An encoder by registry name, or from a heads ``.safetensors`` path (e.g. a fresh training run)."""
    name = str(name_or_path or default_encoder_name())
    path = Path(name)
    if path.suffix == ".safetensors" or path.is_dir():
        f = path if path.suffix == ".safetensors" else path / "best.safetensors"
        if not f.is_file():
            raise ModelError(f"no heads file at {f}")
        return _heads_encoder(str(f.absolute()), f)  # the path is the name: a library can find it again
    reg = available_encoders()
    if name not in reg:
        raise ModelError(f"unknown model {name!r}; available: {', '.join(sorted(reg))}")
    return reg[name]()
