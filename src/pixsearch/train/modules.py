"""Torch modules for training the projection heads; ``models.heads.mlp`` mirrors their forward in NumPy."""

from __future__ import annotations

import math

import torch
from torch import nn

from pixsearch.models.heads import HeadsConfig

__all__ = ["ProjectionHead", "JointHeads"]


class ProjectionHead(nn.Module):
    """``depth`` GELU layers + output layer, plus an optional linear shortcut from the input."""

    def __init__(
        self, in_dim: int, hidden: int, out_dim: int, depth: int, skip: bool, dropout: float
    ) -> None:
        super().__init__()
        dims = [in_dim] + [hidden] * depth
        self.layers = nn.ModuleList(nn.Linear(a, b) for a, b in zip(dims[:-1], dims[1:], strict=True))
        self.out = nn.Linear(dims[-1], out_dim)
        self.skip = nn.Linear(in_dim, out_dim, bias=False) if skip else None
        self.drop = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = x
        for layer in self.layers:
            h = self.drop(nn.functional.gelu(layer(h)))
        y = self.out(h)
        if self.skip is not None:
            y = y + self.skip(x)
        return nn.functional.normalize(y, dim=-1)


class JointHeads(nn.Module):
    """Image and text heads plus CLIP's learnable temperature (``logit_scale`` = log 1/T)."""

    def __init__(
        self, cfg: HeadsConfig, image_in: int, dropout: float = 0.1, init_temp: float = 0.05
    ) -> None:
        super().__init__()
        self.image = ProjectionHead(image_in, cfg.hidden, cfg.out_dim, cfg.depth, cfg.skip, dropout)
        self.text = ProjectionHead(cfg.text_in, cfg.hidden, cfg.out_dim, cfg.depth, cfg.skip, dropout)
        self.logit_scale = nn.Parameter(torch.tensor([math.log(1.0 / init_temp)]))

    def scale(self) -> torch.Tensor:
        return self.logit_scale.clamp(max=math.log(100.0)).exp()
