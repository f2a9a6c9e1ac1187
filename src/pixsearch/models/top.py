"""The fine-tunable top of an EfficientNet-Lite (phase 2): last MBConv block + 1x1 head conv + pooling.

Lives with the models, not the trainer, because a phase-2 heads file carries these weights and the
encoder runs them at index time.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping

import numpy as np
import torch
from torch import nn

from pixsearch.errors import ModelError
from pixsearch.models.backbones import ImageBackbone

__all__ = ["ImageTop", "load_top"]


class ImageTop(nn.Module):
    """Last block + head conv + BN + activation + global pooling of an EfficientNet-Lite."""

    def __init__(self, backbone: ImageBackbone, drop_connect: float = 0.0) -> None:
        super().__init__()
        m = backbone.model
        self.block = copy.deepcopy(m._blocks[-1])
        self.conv = copy.deepcopy(m._conv_head)
        self.bn = copy.deepcopy(m._bn1)
        self.act = copy.deepcopy(m._swish)
        self.drop_connect = drop_connect
        for p in self.bn.parameters():
            p.requires_grad_(False)

    def train(self, mode: bool = True) -> ImageTop:
        super().train(mode)
        self.bn.eval()  # frozen statistics, always
        for mod in self.block.modules():
            if isinstance(mod, nn.BatchNorm2d):
                mod.eval()
        return self

    def feature_map(self, mid: torch.Tensor) -> torch.Tensor:
        """The final (N, 1280, 7, 7) conv map before pooling: what the captioner attends over."""
        x = self.block(mid, drop_connect_rate=self.drop_connect if self.training else None)
        return self.act(self.bn(self.conv(x)))

    def forward(self, mid: torch.Tensor) -> torch.Tensor:
        return self.feature_map(mid).mean(dim=(2, 3))


def load_top(backbone: ImageBackbone, params: Mapping[str, np.ndarray]) -> ImageTop:
    """An ImageTop with the fine-tuned weights of a phase-2 heads file (``top.*`` tensors)."""
    top = ImageTop(backbone)
    state = {
        k[4:]: torch.from_numpy(np.asarray(v, dtype=np.float32))
        for k, v in params.items()
        if k.startswith("top.")
    }
    missing, unexpected = top.load_state_dict(state, strict=False)
    if unexpected or any(not k.endswith("num_batches_tracked") for k in missing):
        raise ModelError(f"phase-2 weights do not fit {backbone.spec.name}: missing {missing[:3]}")
    return top.eval()
