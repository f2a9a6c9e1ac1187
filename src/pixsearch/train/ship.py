"""Turn a training run's best heads into a shipped, named model (``models/weights/NAME.*``).

Weights are stored as float16 (half the size; the encoder computes in float32 and the recall change is
below 0.1 point), the card gains the model's name and any extra metrics measured on other splits.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from ..errors import ModelError
from ..models.encoder import WEIGHTS_DIR

__all__ = ["ship_heads"]


def ship_heads(run: Path, name: str, out_dir: Path = WEIGHTS_DIR, metrics: dict | None = None) -> Path:
    from safetensors.numpy import load_file, save_file

    src = run / "best.safetensors" if run.is_dir() else run
    if not src.is_file() or not src.with_suffix(".json").is_file():
        raise ModelError(f"no trained heads (best.safetensors + best.json) at {run}")
    params = load_file(str(src))
    half = {k: (v.astype(np.float16) if v.dtype == np.float32 else v) for k, v in params.items()}
    card = json.loads(src.with_suffix(".json").read_text())
    card["name"] = name
    if metrics:
        card.setdefault("metrics", {}).update(metrics)
    out_dir.mkdir(parents=True, exist_ok=True)
    dst = out_dir / f"{name}.safetensors"
    save_file(half, str(dst))
    dst.with_suffix(".json").write_text(json.dumps(card, indent=2) + "\n")
    return dst
