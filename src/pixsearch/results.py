"""What the Library returns: ranked photos and captions, each able to turn itself into JSON for the CLI
and the REST API (one shape for both)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

__all__ = ["Result", "CaptionResult"]


@dataclass(frozen=True)
class Result:
    """One ranked image: its score, the per-signal scores, its paths and captions."""

    image_id: int
    score: float
    paths: tuple[str, ...]
    captions: tuple[str, ...]
    scores: dict[str, float] = field(default_factory=dict)
    matched_caption: str | None = None
    width: int = 0
    height: int = 0
    match: float | None = None  # calibrated 0..1 match score (models/scorer.py), set for a page

    @property
    def path(self) -> str:
        return self.paths[0] if self.paths else ""

    def to_dict(self) -> dict[str, Any]:
        return {
            "image_id": self.image_id,
            "path": self.path,
            "paths": list(self.paths),
            "score": round(self.score, 4),
            "scores": {k: round(v, 4) for k, v in self.scores.items()},
            "matched_caption": self.matched_caption,
            "captions": list(self.captions),
            "width": self.width,
            "height": self.height,
            **({} if self.match is None else {"match": round(self.match, 4)}),  # absent: not scored
        }


@dataclass(frozen=True)
class CaptionResult:
    """A library caption that fits a query image, with the image it belongs to."""

    caption: str
    score: float
    image_id: int
    path: str
    match: float | None = None  # calibrated 0..1: does this caption describe the query photo?

    def to_dict(self) -> dict[str, Any]:
        return {
            "caption": self.caption,
            "score": round(self.score, 4),
            "image_id": self.image_id,
            "path": self.path,
            **({} if self.match is None else {"match": round(self.match, 4)}),  # absent: not scored
        }
