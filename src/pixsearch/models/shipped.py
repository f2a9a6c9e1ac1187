"""Where the model files that ship inside the package live: one directory, read-only at run time.

Every loader (encoders, captioners, the match scorer, the photo policy's classifier and face models)
finds its shipped files here, so moving them is a one-line change.
"""

from __future__ import annotations

from pathlib import Path

__all__ = ["WEIGHTS_DIR", "CAPTIONERS_DIR", "SCORERS_DIR"]

WEIGHTS_DIR = Path(__file__).resolve().parent / "weights"  # encoders' heads + ONNX files, policy models
CAPTIONERS_DIR = WEIGHTS_DIR / "captioners"  # one folder per captioner
SCORERS_DIR = WEIGHTS_DIR / "scorers"  # card + caption bank per scorer (apart: not encoders' heads files)
