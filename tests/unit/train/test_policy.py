"""The photo-policy trainer: threshold calibration on hand-made scores, the stacking regression, and a
full run on a tiny real Flickr8k slice (features, faces, folds, kNN, stack, model files)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from pixsearch.evaluation.thresholds import average_precision, pr_at, pr_curve, recall_threshold
from pixsearch.train.policy import fit_logistic, knn_leave_one_out
from tests.conftest import flickr8k_subset

# scores, best first; positives at 0.9, 0.7, 0.6 and 0.4
SCORES = np.array([0.9, 0.8, 0.7, 0.6, 0.5, 0.4, 0.1])
LABELS = np.array([1, 0, 1, 1, 0, 1, 0], dtype=bool)


@pytest.mark.parametrize(
    ("target", "threshold"), [(0.5, 0.7), (0.75, 0.6), (0.99, 0.4), (1.0, 0.4), (0.25, 0.9)]
)
def test_recall_threshold_keeps_the_target_recall(target: float, threshold: float) -> None:
    t = recall_threshold(SCORES, LABELS, target)
    assert t == threshold
    m = pr_at(SCORES, LABELS, t)
    assert m["recall"] >= target
    # the largest such threshold: one step higher loses recall
    higher = SCORES[SCORES > t]
    if len(higher):
        assert pr_at(SCORES, LABELS, float(higher.min()))["recall"] < target


def test_recall_threshold_counts_forced_flags() -> None:
    forced = np.zeros(len(SCORES), bool)
    forced[5] = True  # the face rule catches the 0.4 positive: the classifier need only reach 0.6
    assert recall_threshold(SCORES, LABELS, 1.0, forced) == 0.6
    assert pr_at(SCORES, LABELS, 0.6, forced) == {"precision": 0.8, "recall": 1.0, "flagged": 5}
    assert recall_threshold(SCORES, LABELS, 0.99, np.ones(len(SCORES), bool)) == 1.0  # all forced


def test_recall_threshold_is_exact_at_round_targets() -> None:
    """0.99 x 100 positives is 99 (not 100 through float rounding)."""
    y = np.ones(100, bool)
    s = np.arange(100, 0, -1) / 100.0  # 1.00 ... 0.01
    assert recall_threshold(s, y, 0.99) == pytest.approx(0.02)


def test_pr_curve_and_average_precision() -> None:
    rows = pr_curve(SCORES, LABELS, (0.5, 1.0))
    assert [r["threshold"] for r in rows] == [0.7, 0.4]
    assert rows[1] == {
        "target_recall": 1.0,
        "threshold": 0.4,
        "precision": 0.6667,
        "recall": 1.0,
        "flagged": 6,
    }
    # AP: hits at ranks 1, 3, 4, 6 -> (1 + 2/3 + 3/4 + 4/6) / 4
    assert average_precision(SCORES, LABELS) == pytest.approx((1 + 2 / 3 + 3 / 4 + 4 / 6) / 4)


def test_fit_logistic_finds_the_informative_input() -> None:
    rng = np.random.default_rng(0)
    x = rng.normal(size=(400, 3)).astype(np.float32)
    y = (x[:, 1] + 0.3 * rng.normal(size=400)) > 0
    p = fit_logistic(x, y, l2=1.0)
    assert set(p) == {"stack_mean", "stack_std", "stack_w", "stack_b"}
    w = p["stack_w"]
    assert w[1] > 2.0 and abs(w[0]) < 0.5 and abs(w[2]) < 0.5
    z = ((x - p["stack_mean"]) / p["stack_std"]) @ w + p["stack_b"]
    assert ((z > 0) == y).mean() > 0.85  # the noise caps it near 0.9


def test_knn_leave_one_out_never_votes_for_itself() -> None:
    mem = np.array([[1, 0], [1, 0.01], [0, 1], [0.01, 1]], np.float32)
    lab = np.array([1, 1, 0, 0], np.float32)
    v = knn_leave_one_out(mem, lab, k=1, temperature=0.1)
    assert v.tolist() == [1, 1, 0, 0]  # each row's nearest *other* row has its label
    lab2 = np.array([1, 0, 0, 0], np.float32)
    assert knn_leave_one_out(mem, lab2, k=1, temperature=0.1)[0] == 0  # not its own 1


def test_train_policy_on_a_tiny_real_slice(flickr8k: Path, tmp_path: Path) -> None:
    from safetensors.numpy import load_file

    from pixsearch.models.encoder import DEFAULT_ENCODER
    from pixsearch.policy.faces import FACE_FEATURES
    from pixsearch.policy.photo import MinorsClassifier
    from pixsearch.train.policy import PolicyTrainConfig, train_policy

    (tmp_path / "tiny").mkdir()
    data = flickr8k_subset(flickr8k, tmp_path / "tiny", 120, 40)
    out = tmp_path / "run"
    events: list[dict] = []
    cfg = PolicyTrainConfig(data=data, out=out, name="policy-test", epochs=2, folds=2, knn_k=5, hidden=16)
    res = train_policy(cfg, log=events.append)
    files = sorted(p.name for p in out.iterdir())
    assert files == ["metrics.json", "policy-test.json", "policy-test.safetensors"]  # no pickle
    tensors = load_file(str(out / "policy-test.safetensors"))
    assert tensors["knn_memory"].shape == (120, 256) and tensors["knn_labels"].shape == (120,)
    card = json.loads((out / "policy-test.json").read_text())
    assert card["stack"]["inputs"] == ["mlp", "knn", *FACE_FEATURES]
    # the card names the encoder (the index-time lookup picks by it); the default run is the shipped v3's
    assert card["encoder"] == DEFAULT_ENCODER == "lite02-minilm-v2"
    assert PolicyTrainConfig(data=data, out=out).name == "policy-minors-v3"
    assert tensors["stack_w"].shape == (len(card["stack"]["inputs"]),)
    assert 0.0 < card["thresholds"]["combined"] <= 1.0
    assert res["combined"]["recall"] >= 0.995 or res["classifier_only"]["recall"] >= 0.995
    assert {e["event"] for e in events} >= {"data", "epoch", "best", "fold", "done"}
    clf = MinorsClassifier(out / "policy-test.safetensors")
    assert clf.needs_faces and clf.stack_inputs == card["stack"]["inputs"]
    feats = {"pooled": np.zeros((2, 1280), np.float32), "embedding": np.ones((2, 256), np.float32)}
    s = clf.scores(feats, np.zeros((2, len(FACE_FEATURES)), np.float32))
    assert s.shape == (2,) and np.all((s >= 0) & (s <= 1))


def test_train_policy_cli(flickr8k: Path, tmp_path: Path) -> None:
    """``pixsearch train policy`` (cli/policy_train.py): its options reach the trainer, it writes only the
    model files and metrics, and ``--json`` ends with one JSON document naming the calibrated threshold; a
    dataset without the split files is a one-line error (exit 1), not a traceback."""
    from typer.testing import CliRunner

    from pixsearch.cli import app

    (tmp_path / "tiny").mkdir()
    data = flickr8k_subset(flickr8k, tmp_path / "tiny", 120, 40)
    out = tmp_path / "run"
    args = ["train", "policy", "--data", str(data), "--out", str(out), "--name", "cli-test"]
    res = CliRunner().invoke(
        app, [*args, "--epochs", "1", "--hidden", "8", "--folds", "2", "--no-knn", "--json"]
    )
    assert res.exit_code == 0, res.output
    assert sorted(p.name for p in out.iterdir()) == ["cli-test.json", "cli-test.safetensors", "metrics.json"]
    card = json.loads((out / "cli-test.json").read_text())
    assert card["stack"]["inputs"][:1] == ["mlp"] and "knn" not in card["stack"]["inputs"]  # --no-knn
    assert 0.0 < card["thresholds"]["combined"] <= 1.0
    bad = CliRunner().invoke(app, ["train", "policy", "--data", str(tmp_path / "nowhere"), "--out", str(out)])
    assert bad.exit_code == 1 and "no such file or folder" in bad.output and "Traceback" not in bad.output
