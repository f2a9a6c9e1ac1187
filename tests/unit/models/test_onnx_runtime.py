"""ONNX Runtime sessions: hash-checked model files, threads from the environment, one-line errors."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from pixsearch.errors import ConfigError, ModelError
from pixsearch.models.encoder import OnnxEncoder, create_encoder
from pixsearch.models.onnx_runtime import intra_op_threads
from pixsearch.models.shipped import WEIGHTS_DIR

NAME = "lite0-minilm-v1"


def _copy_model(tmp_path: Path) -> Path:
    for f in WEIGHTS_DIR.glob(f"{NAME}.*"):
        shutil.copy(f, tmp_path / f.name)
    return tmp_path / f"{NAME}.safetensors"


def test_shipped_model_runs_on_onnx_and_card_lists_hashes() -> None:
    enc = create_encoder()
    assert isinstance(enc, OnnxEncoder)
    card = json.loads((WEIGHTS_DIR / f"{NAME}.json").read_text())
    for key in ("image", "text", "tokenizer"):
        assert len(card["onnx"][key]["sha256"]) == 64
        assert (WEIGHTS_DIR / card["onnx"][key]["file"]).is_file()
    v = enc.encode_text(["a dog on the beach", "two children"])
    assert v.shape == (2, enc.dim) and np.allclose(np.linalg.norm(v, axis=1), 1, atol=1e-5)
    assert enc.encode_text([]).shape == (0, enc.dim) and enc.encode_captions([]).shape == (0, 384)


@pytest.mark.parametrize("damage", ["truncate", "flip"])
def test_damaged_onnx_file_is_one_line_model_error(tmp_path: Path, damage: str) -> None:
    weights = _copy_model(tmp_path)
    f = tmp_path / f"{NAME}.text.onnx"
    data = f.read_bytes()
    f.write_bytes(data[: len(data) // 2] if damage == "truncate" else data[:-10] + bytes(10))
    enc = create_encoder(weights)
    with pytest.raises(ModelError) as exc:
        enc.encode_text(["a dog"])
    msg = str(exc.value)
    assert "\n" not in msg and "sha256" in msg and "reinstall pixsearch" in msg


def test_corrupt_onnx_with_matching_hash_is_one_line_model_error(tmp_path: Path) -> None:
    """A card updated to a broken file's hash still fails cleanly when the session is built."""
    import hashlib

    weights = _copy_model(tmp_path)
    f = tmp_path / f"{NAME}.image.onnx"
    f.write_bytes(f.read_bytes()[:5000])
    card_file = weights.with_suffix(".json")
    card = json.loads(card_file.read_text())
    card["onnx"]["image"]["sha256"] = hashlib.sha256(f.read_bytes()).hexdigest()
    card_file.write_text(json.dumps(card))
    enc = create_encoder(weights)
    with pytest.raises(ModelError) as exc:
        enc.encode_image_arrays(np.zeros((1, 3, 224, 224), np.float32))
    assert "not a usable ONNX model" in str(exc.value) and "\n" not in str(exc.value)


def test_missing_onnx_file_is_named(tmp_path: Path) -> None:
    weights = _copy_model(tmp_path)
    (tmp_path / f"{NAME}.image.onnx").unlink()
    with pytest.raises(ModelError, match="model file missing"):
        create_encoder(weights)


@pytest.mark.parametrize("raw", ["abc", "0", "-2", "1.5"])
def test_bad_threads_env_is_config_error(raw: str) -> None:
    with pytest.raises(ConfigError, match="PIXSEARCH_THREADS"):
        intra_op_threads({"PIXSEARCH_THREADS": raw})
    assert intra_op_threads({"PIXSEARCH_THREADS": "1"}) == 1
    assert intra_op_threads({}) >= 1


def test_threads_reach_the_session_and_bad_value_fails_cli(tmp_path: Path) -> None:
    code = (
        "from pixsearch.models.encoder import create_encoder; e = create_encoder(); "
        "print(e.text_graph.session.get_session_options().intra_op_num_threads)"
    )
    env = {**__import__("os").environ, "PIXSEARCH_THREADS": "1"}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, check=True)
    assert out.stdout.strip() == "1"
    env["PIXSEARCH_THREADS"] = "lots"
    r = subprocess.run(
        [sys.executable, "-m", "pixsearch.cli", "search", "a dog", "-L", str(tmp_path / "lib")],
        capture_output=True,
        text=True,
        env=env,
    )
    assert r.returncode != 0 and "PIXSEARCH_THREADS" in r.stderr
    assert len(r.stderr.strip().splitlines()) == 1, r.stderr


def test_missing_onnxruntime_names_the_install() -> None:
    code = (
        "import sys; sys.modules['onnxruntime'] = None\n"
        "from pixsearch.models.encoder import create_encoder\n"
        "try:\n    create_encoder().encode_text(['a dog'])\n"
        "except Exception as e:\n    print(type(e).__name__, e)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.startswith("ModelError onnxruntime is not installed: pip install")


def test_train_command_without_the_extra_names_the_install(tmp_path: Path) -> None:
    code = (
        "import sys; sys.modules['torch'] = None\n"
        f"sys.argv = ['pixsearch', 'train', 'joint', '--data', {str(tmp_path)!r}, "
        f"'--out', {str(tmp_path / 'o')!r}]\n"
        "from pixsearch.cli import main\nmain()"
    )
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert r.returncode != 0
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and "pip install torch==2.13.0 && pip install 'pixsearch[train]'" in lines[0], (
        r.stderr
    )
