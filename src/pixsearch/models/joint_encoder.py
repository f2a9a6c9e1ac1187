"""The JointEncoder protocol: everything search, storage and indexing may ask of an encoder.

Apart from the encoders themselves (``models/encoder.py``) so that a reader of a seam sees only the
contract; the concrete classes and the registry of named models live there.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol, runtime_checkable

import numpy as np

if TYPE_CHECKING:
    from PIL import Image

    from pixsearch.models.backbones import ImageBackbone, TextBackbone

__all__ = ["JointEncoder"]


@runtime_checkable
class JointEncoder(Protocol):
    """Everything a caller may ask of an encoder; what one cannot do, it says (``cross_modal``) or
    refuses with a ModelError, so no caller needs to know the concrete class."""

    name: str
    dim: int  # size of stored image vectors
    caption_dim: int  # size of caption (MiniLM) vectors
    cross_modal: bool  # True when texts land in the image vectors' space (encode_text & co. work)
    runs_on_onnx: bool  # True when pixels and text run on ONNX Runtime alone (a shipped model): no torch
    resolution: int  # the largest side any backbone reads: what decoding must keep
    backbone_name: str  # the main image backbone, e.g. "lite0" (its maps feed captioner, labels, policy)
    extra_backbones: tuple[str, ...]  # more backbones whose pooled features only the image head reads

    @property
    def fingerprint(self) -> str: ...

    @property
    def maps_fingerprint(self) -> str:
        """What shapes the main backbone's ``spatial``/``pooled``/``logits``: its weights and any fine-tuned
        top. Models with equal maps share what reads them (the captioner), whatever their heads."""
        ...

    @property
    def image_backbone(self) -> ImageBackbone:
        """The torch image backbone (training and evaluation side: needs the ``[train]`` extra)."""
        ...

    @property
    def text_backbone(self) -> TextBackbone: ...

    @property
    def has_top(self) -> bool:
        """True when the model carries a fine-tuned backbone top (phase 2) that replaces the frozen one."""
        ...

    def preprocess(self, img: Image.Image) -> np.ndarray: ...

    def unpack(self, arrays: np.ndarray) -> list[np.ndarray]:
        """A batch of ``preprocess`` rows as one (N, 3, R, R) array per backbone (main first)."""
        ...

    def blank_input(self) -> np.ndarray:
        """A batch of one black photo, preprocessed: warm-ups and health checks."""
        ...

    def encode_image_arrays(self, arrays: np.ndarray) -> np.ndarray: ...

    def encode_image_features(self, arrays: np.ndarray) -> dict[str, np.ndarray]:
        """``embedding`` (N, dim) unit vectors, ``logits`` (N, 1000), ``spatial`` (N, 49, 1280) final conv
        map (after any fine-tuned top, before pooling), ``pooled`` (N, 1280), all float32; all but
        ``embedding`` are the main backbone's (extra backbones feed only the image head)."""
        ...

    def image_from_features(
        self, pooled: np.ndarray, logits: np.ndarray, extra: np.ndarray | None = None
    ) -> np.ndarray:
        """The stored image vectors from backbone features (``encode_image_features``' ``embedding``)."""
        ...

    def pooled_from_mid(self, mid: np.ndarray) -> np.ndarray:
        """Pooled features through the model's backbone top, from cached last-block inputs (torch)."""
        ...

    def encode_text(self, texts: list[str]) -> np.ndarray: ...

    def encode_captions(self, texts: list[str]) -> np.ndarray: ...

    def encode_texts(self, texts: list[str]) -> tuple[np.ndarray, np.ndarray]:
        """(MiniLM caption vectors, joint-space vectors) of ``texts``; ModelError without ``cross_modal``."""
        ...

    def text_from_embeddings(self, emb: np.ndarray) -> np.ndarray:
        """Joint-space vectors from MiniLM caption vectors; ModelError without ``cross_modal``."""
        ...
