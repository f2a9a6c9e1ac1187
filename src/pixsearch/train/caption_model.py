"""The captioner network (torch, training side) and its export to the two ONNX graphs the runtime runs.

A small pre-LN transformer decoder attending over the image encoder's 7x7 final conv map (49 tokens of
1280): LayerNorm + linear projection + learned positions, optional self-attention layers over the 49
tokens, then decoder layers (causal self-attention, cross-attention, GELU MLP) with tied input/output
embeddings. Cross-attention keys/values are computed once per image and gathered for its captions
(five per image in a batch), which is where most of the training compute would otherwise go.

Runtime graphs (``export_onnx``): ``init`` (spatial -> cross-attention K/V per layer + the decoder's
self-attention cache and log-probabilities after ``<bos>``) and ``step`` (one token per beam + caches ->
log-probabilities + grown cache). No zero-length tensors cross the graph boundary.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

__all__ = ["NetConfig", "CaptionNet", "export_onnx"]


@dataclass(frozen=True)
class NetConfig:
    d: int = 192
    heads: int = 4
    layers: int = 2
    enc_layers: int = 0  # self-attention layers over the 49 image tokens
    ff: int = 768
    dropout: float = 0.1
    feat_dropout: float = 0.1  # dropout on the projected image tokens
    feat_dim: int = 1280
    n_tokens: int = 49
    max_len: int = 16  # positions incl. <bos>: captions are cut to 15 words

    def to_dict(self) -> dict:
        return asdict(self)


class _Attn(nn.Module):
    def __init__(self, d: int, heads: int, dropout: float) -> None:
        super().__init__()
        self.h, self.hd = heads, d // heads
        self.q = nn.Linear(d, d)
        self.kv = nn.Linear(d, 2 * d)
        self.o = nn.Linear(d, d)
        self.p = dropout

    def split(self, x: torch.Tensor) -> torch.Tensor:
        return x.reshape(x.shape[0], x.shape[1], self.h, self.hd).transpose(1, 2)

    def kv_of(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        k, v = self.kv(x).chunk(2, dim=-1)
        return self.split(k), self.split(v)

    def attend(self, x: torch.Tensor, k: torch.Tensor, v: torch.Tensor, causal: bool) -> torch.Tensor:
        q = self.split(self.q(x))
        p = self.p if self.training else 0.0
        if torch.onnx.is_in_onnx_export():  # explicit math: exports on every opset without SDPA support
            a = torch.softmax(q @ k.transpose(-1, -2) / math.sqrt(self.hd), dim=-1)
            y = a @ v
        else:
            y = F.scaled_dot_product_attention(q, k, v, dropout_p=p, is_causal=causal)
        return self.o(y.transpose(1, 2).reshape(x.shape[0], x.shape[1], -1))


class _MLP(nn.Module):
    def __init__(self, d: int, ff: int, dropout: float) -> None:
        super().__init__()
        self.a, self.b, self.drop = nn.Linear(d, ff), nn.Linear(ff, d), nn.Dropout(dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.drop(self.b(F.gelu(self.a(x))))


class _EncLayer(nn.Module):
    def __init__(self, c: NetConfig) -> None:
        super().__init__()
        self.n1, self.att, self.n2 = nn.LayerNorm(c.d), _Attn(c.d, c.heads, c.dropout), nn.LayerNorm(c.d)
        self.mlp, self.drop = _MLP(c.d, c.ff, c.dropout), nn.Dropout(c.dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.n1(x)
        k, v = self.att.kv_of(h)
        x = x + self.drop(self.att.attend(h, k, v, causal=False))
        return x + self.mlp(self.n2(x))


class _DecLayer(nn.Module):
    def __init__(self, c: NetConfig) -> None:
        super().__init__()
        self.n1, self.self_att = nn.LayerNorm(c.d), _Attn(c.d, c.heads, c.dropout)
        self.n2, self.cross = nn.LayerNorm(c.d), _Attn(c.d, c.heads, c.dropout)
        self.n3, self.mlp, self.drop = nn.LayerNorm(c.d), _MLP(c.d, c.ff, c.dropout), nn.Dropout(c.dropout)

    def forward(
        self,
        x: torch.Tensor,
        mk: torch.Tensor,
        mv: torch.Tensor,
        past: tuple[torch.Tensor, torch.Tensor] | None = None,
        group: int = 1,
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Full causal sequence (``past`` None) or new tokens after a cache; returns (x, k, v) caches.

        ``group`` > 1: rows come in groups of that many captions of one image (``mk`` has one row per
        image); cross-attention then runs once per image over the group's tokens laid end to end, which
        is exact (each query attends to the image alone) and needs no per-caption copy of the keys.
        """
        h = self.n1(x)
        k, v = self.self_att.kv_of(h)
        if past is not None:
            k, v = torch.cat([past[0], k], 2), torch.cat([past[1], v], 2)
        x = x + self.drop(self.self_att.attend(h, k, v, causal=past is None))
        q = self.n2(x)
        if group > 1:
            m, t, d = q.shape
            c = self.cross.attend(q.reshape(m // group, group * t, d), mk, mv, causal=False).reshape(m, t, d)
        else:
            c = self.cross.attend(q, mk, mv, causal=False)
        x = x + self.drop(c)
        return x + self.mlp(self.n3(x)), k, v


class CaptionNet(nn.Module):
    def __init__(self, cfg: NetConfig, vocab_size: int) -> None:
        super().__init__()
        self.cfg = cfg
        c = cfg
        self.feat_norm = nn.LayerNorm(c.feat_dim)
        self.proj = nn.Linear(c.feat_dim, c.d)
        self.mem_pos = nn.Parameter(torch.randn(c.n_tokens, c.d) * 0.02)
        self.feat_drop = nn.Dropout(c.feat_dropout)
        self.enc = nn.ModuleList([_EncLayer(c) for _ in range(c.enc_layers)])
        self.mem_norm = nn.LayerNorm(c.d)
        self.emb = nn.Embedding(vocab_size, c.d)
        nn.init.normal_(self.emb.weight, std=0.02)
        self.pos = nn.Embedding(c.max_len, c.d)
        nn.init.normal_(self.pos.weight, std=0.02)
        self.emb_drop = nn.Dropout(c.dropout)
        self.layers = nn.ModuleList([_DecLayer(c) for _ in range(c.layers)])
        self.norm = nn.LayerNorm(c.d)
        self.out_bias = nn.Parameter(torch.zeros(vocab_size))

    def memory_kv(self, spatial: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(N, 49, 1280) -> cross-attention keys and values, each (L, N, H, 49, hd)."""
        x = self.feat_drop(self.proj(self.feat_norm(spatial.float())) + self.mem_pos)
        for layer in self.enc:
            x = layer(x)
        m = self.mem_norm(x)
        kvs = [layer.cross.kv_of(m) for layer in self.layers if isinstance(layer, _DecLayer)]
        return torch.stack([k for k, _ in kvs]), torch.stack([v for _, v in kvs])

    def logits(self, x: torch.Tensor) -> torch.Tensor:
        return self.norm(x) @ self.emb.weight.T + self.out_bias

    def forward(self, spatial: torch.Tensor, tokens: torch.Tensor) -> torch.Tensor:
        """Teacher forcing: ``tokens`` (N * G, T) start with <bos>; rows g*G .. g*G+G-1 caption image g."""
        mk, mv = self.memory_kv(spatial)
        group = tokens.shape[0] // spatial.shape[0]
        t = tokens.shape[1]
        x = self.emb_drop(self.emb(tokens) + self.pos.weight[:t])
        for i, layer in enumerate(self.layers):
            x, _, _ = layer(x, mk[i], mv[i], group=group)
        return self.logits(x)

    def step(
        self,
        token: torch.Tensor,
        pos: torch.Tensor,
        past_k: torch.Tensor,
        past_v: torch.Tensor,
        mk: torch.Tensor,
        mv: torch.Tensor,
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """One token per row (M,) at position ``pos`` (1-element int64) -> log-probs (M, V), caches."""
        x = self.emb(token)[:, None] + self.pos(pos)[None]
        ks, vs = [], []
        for i, layer in enumerate(self.layers):
            x, k, v = layer(x, mk[i], mv[i], (past_k[i], past_v[i]))
            ks.append(k)
            vs.append(v)
        return torch.log_softmax(self.logits(x[:, 0]), -1), torch.stack(ks), torch.stack(vs)

    def init(
        self, spatial: torch.Tensor, bos: int
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        """Per image: log-probs after <bos>, self-attention caches (L, N, H, 1, hd), cross K/V."""
        mk, mv = self.memory_kv(spatial)
        tok = torch.full((spatial.shape[0], 1), bos, dtype=torch.long)
        x = self.emb(tok) + self.pos.weight[:1]
        ks, vs = [], []
        for i, layer in enumerate(self.layers):
            x, k, v = layer(x, mk[i], mv[i])
            ks.append(k)
            vs.append(v)
        return torch.log_softmax(self.logits(x[:, 0]), -1), torch.stack(ks), torch.stack(vs), mk, mv


class _Init(nn.Module):
    def __init__(self, net: CaptionNet, bos: int) -> None:
        super().__init__()
        self.net, self.bos = net, bos

    def forward(self, spatial: torch.Tensor) -> tuple[torch.Tensor, ...]:
        return self.net.init(spatial, self.bos)


class _Step(nn.Module):
    def __init__(self, net: CaptionNet) -> None:
        super().__init__()
        self.net = net

    def forward(self, *args: torch.Tensor) -> tuple[torch.Tensor, ...]:
        return self.net.step(*args)


def export_onnx(net: CaptionNet, bos: int, out_dir: Path, fp16: bool = True) -> tuple[Path, Path]:
    """Write ``init.onnx`` and ``step.onnx`` (weights stored as float16 when ``fp16``; math stays fp32)."""
    import onnx

    net = net.eval()
    c = net.cfg
    out_dir.mkdir(parents=True, exist_ok=True)
    hd = c.d // c.heads
    init_p, step_p = out_dir / "init.onnx", out_dir / "step.onnx"
    spatial = torch.randn(2, c.n_tokens, c.feat_dim)
    with torch.no_grad():
        torch.onnx.export(
            _Init(net, bos).eval(),  # a wrapper left in train mode would put net back in train mode
            (spatial,),
            str(init_p),
            input_names=["spatial"],
            output_names=["logp", "past_k", "past_v", "mem_k", "mem_v"],
            dynamic_axes={
                "spatial": {0: "n"},
                "logp": {0: "n"},
                "past_k": {1: "n"},
                "past_v": {1: "n"},
                "mem_k": {1: "n"},
                "mem_v": {1: "n"},
            },
            opset_version=17,
            dynamo=False,
        )
        m, t = 3, 2
        args = (
            torch.zeros(m, dtype=torch.long),
            torch.tensor([t], dtype=torch.long),
            torch.randn(c.layers, m, c.heads, t, hd),
            torch.randn(c.layers, m, c.heads, t, hd),
            torch.randn(c.layers, m, c.heads, c.n_tokens, hd),
            torch.randn(c.layers, m, c.heads, c.n_tokens, hd),
        )
        torch.onnx.export(
            _Step(net).eval(),
            args,
            str(step_p),
            input_names=["token", "pos", "past_k", "past_v", "mem_k", "mem_v"],
            output_names=["logp", "new_k", "new_v"],
            dynamic_axes={
                "token": {0: "m"},
                "past_k": {1: "m", 3: "t"},
                "past_v": {1: "m", 3: "t"},
                "mem_k": {1: "m"},
                "mem_v": {1: "m"},
                "logp": {0: "m"},
                "new_k": {1: "m", 3: "t1"},
                "new_v": {1: "m", 3: "t1"},
            },
            opset_version=17,
            dynamo=False,
        )
    net.eval()
    if fp16:
        for p in (init_p, step_p):
            model = onnx.load(str(p))
            _weights_to_fp16(model)
            onnx.save(model, str(p))
    return init_p, step_p


def _weights_to_fp16(model: object) -> None:
    """Store large float initializers as float16 followed by a Cast to float32: half the file, fp32 math
    (ONNX Runtime folds the casts once at session start)."""
    import numpy as np
    from onnx import TensorProto, helper, numpy_helper

    g = model.graph  # type: ignore[attr-defined]
    casts = []
    for init in list(g.initializer):
        if init.data_type != TensorProto.FLOAT:
            continue
        arr = numpy_helper.to_array(init)
        if arr.size < 1024:
            continue
        name = init.name
        half = numpy_helper.from_array(arr.astype(np.float16), name + "_fp16")
        g.initializer.remove(init)
        g.initializer.append(half)
        casts.append(helper.make_node("Cast", [name + "_fp16"], [name], to=TensorProto.FLOAT))
    for node in reversed(casts):
        g.node.insert(0, node)
