"""Every model pixsearch ships is in the package and loads: a packaging regression fails here.

Several tests elsewhere skip when a shipped model is missing ("no trained heads shipped", "no shipped
captioner in this build", "the score model is not installed in this build"), and outside CI a skip is
green. The checks below make the same conditions failures, so a build that lost a model file (or a
package-data glob that stopped covering one) cannot pass as a handful of skips.
"""

from __future__ import annotations

import fnmatch
import tomllib
from dataclasses import replace
from pathlib import Path

import numpy as np

from pixsearch.models.shipped import CAPTIONERS_DIR, SCORERS_DIR, WEIGHTS_DIR

ROOT = Path(__file__).resolve().parents[3]
PACKAGE = ROOT / "src" / "pixsearch"

# What this release ships (docs/model.md, docs/score.md, docs/policy.md): a file missing here is a bug.
SHIPPED = [
    "lite0-minilm-v1.safetensors",
    "lite0-minilm-v1.json",
    "lite0-minilm-v1.image.onnx",
    "lite0-minilm-v1.text.onnx",
    "lite0-minilm-v1.tokenizer.json",
    "lite02-minilm-v2.safetensors",
    "lite02-minilm-v2.json",
    "lite02-minilm-v2.lite2.onnx",
    "captioners/lite0-cap-v1/card.json",
    "captioners/lite0-cap-v1/init.onnx",
    "captioners/lite0-cap-v1/step.onnx",
    "captioners/lite0-cap-v1/vocab.json",
    "scorers/match-v1.json",
    "scorers/match-v1.safetensors",
    "scorers/match-v2.json",
    "scorers/match-v2.safetensors",
    "policy-minors-v1.json",
    "policy-minors-v1.safetensors",
    "policy-minors-v2.json",
    "policy-minors-v2.safetensors",
    "policy-minors-v3.json",
    "policy-minors-v3.safetensors",
    "blazeface-full-range.tflite",
]


def test_every_shipped_model_file_is_there_and_packaged() -> None:
    globs = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["package-data"]
    globs = globs["pixsearch"]
    for rel in SHIPPED:
        f = WEIGHTS_DIR / rel
        assert f.is_file() and f.stat().st_size > 0, f"shipped model file missing: {rel}"
        # setuptools' package-data globs: '*' does not cross '/', so match part by part
        inside = f.relative_to(PACKAGE).as_posix()
        assert any(
            len(g.split("/")) == len(inside.split("/"))
            and all(fnmatch.fnmatchcase(a, b) for a, b in zip(inside.split("/"), g.split("/"), strict=True))
            for g in globs
        ), f"{inside} is not covered by [tool.setuptools.package-data]: the wheel would lack it"
    # and nothing under weights/ is left out of the wheel either
    for f in WEIGHTS_DIR.rglob("*"):
        if f.is_file() and "__pycache__" not in f.parts:
            inside = f.relative_to(PACKAGE).as_posix()
            assert any(
                len(g.split("/")) == len(inside.split("/"))
                and all(
                    fnmatch.fnmatchcase(a, b) for a, b in zip(inside.split("/"), g.split("/"), strict=True)
                )
                for g in globs
            ), inside


def test_default_models_load_and_answer() -> None:
    """The conditions other tests skip on, asserted: heads shipped (cross-modal encoder), a captioner, a
    scorer, the photo-policy classifier; each loads (hash-checked) and answers."""
    from pixsearch.api.words import features
    from pixsearch.config import load_settings
    from pixsearch.indexing.enrichers.registry import enrichers
    from pixsearch.models.captioner import DEFAULT_CAPTIONER, available_captioners, create_captioner
    from pixsearch.models.encoder import create_encoder
    from pixsearch.models.scorer import DEFAULT_SCORER, load_scorer
    from pixsearch.policy.photo import MinorsClassifier

    enc = create_encoder()
    assert enc.name == "lite02-minilm-v2" and enc.cross_modal and enc.runs_on_onnx
    t = enc.encode_text(["a dog runs on the beach"])
    assert t.shape == (1, enc.dim) and abs(float(np.linalg.norm(t)) - 1.0) < 1e-3
    assert features() == {"caption": True, "score": True}
    assert DEFAULT_CAPTIONER in available_captioners() and (CAPTIONERS_DIR / DEFAULT_CAPTIONER).is_dir()
    create_captioner().check_encoder(enc)
    on = replace(load_settings(), generate_captions=True)
    assert [e.name for e in enrichers(on, enc)] == ["metadata", "captions", "labels", "policy"]
    scorer = load_scorer()
    assert scorer.name == DEFAULT_SCORER and (SCORERS_DIR / f"{DEFAULT_SCORER}.json").is_file()
    assert scorer.card["encoder"] == enc.name
    clf = MinorsClassifier.for_encoder(enc.name)
    assert clf.fingerprint.startswith("policy-minors-v3:") and clf.encoder == enc.name
