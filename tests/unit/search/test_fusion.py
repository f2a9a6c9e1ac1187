"""Vectorised fusion (``fuse_many``) gives the per-candidate fusion's scores (``fuse``, and the old
``TextSearch`` that called it once per candidate: ``fused_expected.json``, see record_fused.py)."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest

from pixsearch.config import FusionWeights
from pixsearch.search.fusion import CALIBRATION, LABEL_SIGNAL, fuse, fuse_many, squash

EXPECTED = Path(__file__).with_name("fused_expected.json")
SIGNALS = ("dense", "caption", "bm25", "generated", LABEL_SIGNAL)


def shipped_weights() -> dict[str, float]:
    w = FusionWeights()
    return {k: float(getattr(w, k)) for k in SIGNALS}


def columns(rows: list[dict[str, float]]) -> dict[str, np.ndarray]:
    """Per-photo signal dicts as the arrays ``fuse_many`` takes (NaN: the photo lacks the signal)."""
    return {k: np.array([r.get(k, np.nan) for r in rows]) for k in SIGNALS}


def test_fuse_many_gives_the_recorded_per_candidate_scores() -> None:
    """Every (signals, score) the old per-candidate path returned on a real library (photos with and
    without human captions, generated captions, labels): ``fuse`` and ``fuse_many`` give the same score."""
    recorded = [r for rs in json.loads(EXPECTED.read_text())["results"].values() for r in rs]
    assert len(recorded) >= 200
    kinds = {frozenset(r[2]) for r in recorded}
    assert len(kinds) >= 4  # photos lack different signals: every path of the fusion is taken
    w = shipped_weights()
    rows = [r[2] for r in recorded]
    want = np.array([r[1] for r in recorded])
    assert [fuse(r, w) for r in rows] == pytest.approx(want, rel=1e-12, abs=1e-300)
    np.testing.assert_allclose(fuse_many(columns(rows), w, len(rows)), want, rtol=1e-12, atol=0)


def test_fuse_many_edge_cases_match_fuse() -> None:
    w = shipped_weights()
    rows: list[dict[str, float]] = [
        {},  # nothing: 0
        {LABEL_SIGNAL: 0.0},  # a label with no evidence and nothing else: 0
        {LABEL_SIGNAL: 0.6},  # a label alone: its evidence is the whole score
        {"dense": 3.0},  # far beyond the clip: exactly 1
        {"dense": -3.0},
        {"dense": 0.3, "generated": 0.5, LABEL_SIGNAL: 0.2},
        {"caption": 0.7, "bm25": 0.0},
    ]
    got = fuse_many(columns(rows), w, len(rows))
    assert got.tolist() == pytest.approx([fuse(r, w) for r in rows], rel=1e-12, abs=0)
    assert got[0] == 0.0 and got[1] == 0.0 and got[3] == 1.0
    assert got[2] == pytest.approx(squash(w[LABEL_SIGNAL] * 0.6))
    # a signal with zero weight (or none) is left out, not counted as 0
    only = {"dense": 0.5}
    assert fuse_many(columns([{"dense": 0.5, "caption": 0.1}]), only, 1)[0] == pytest.approx(fuse(only, only))
    assert fuse(only, only) == pytest.approx(
        1 / (1 + math.exp(-(CALIBRATION["dense"][0] * 0.5 + CALIBRATION["dense"][1])))
    )
