"""A tiny real fit of the multilingual query tower: 40 train + 30 val Flickr8k photos, their English and
Chinese captions, one epoch. It must write safetensors + a JSON card (nothing pickled) that the run-time
tower loads and uses."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("torch")

from pixsearch.errors import DatasetError, ModelError  # noqa: E402
from pixsearch.models.encoder import DEFAULT_ENCODER  # noqa: E402
from pixsearch.models.multilingual import FORMAT, QueryTower, query_tower  # noqa: E402
from pixsearch.models.shipped import WEIGHTS_DIR  # noqa: E402
from pixsearch.train.multilingual import MultilingualConfig, ship_tower, train_multilingual  # noqa: E402
from tests.conftest import flickr8k_subset  # noqa: E402

CN = Path(__file__).resolve().parents[3].parent / "shared" / "data" / "flickr8k-cn"


@pytest.fixture(scope="module")
def tiny(flickr8k: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    if not (CN / "captions_zh.csv").is_file():
        pytest.skip(f"Flickr8K-CN not found at {CN} (shared/data)")
    return flickr8k_subset(flickr8k, tmp_path_factory.mktemp("f8k"), 40, 30)


def test_tiny_fit_writes_safetensors_and_card_the_runtime_loads(tiny: Path, tmp_path: Path) -> None:
    events: list[dict] = []
    cfg = MultilingualConfig(data=tiny, cn=CN, out=tmp_path / "run", epochs=1, batch_size=16)
    summary = train_multilingual(cfg, log=events.append)
    files = sorted(p.name for p in (tmp_path / "run").iterdir())
    assert files == ["metrics.jsonl", "multilingual.json", "multilingual.safetensors"]
    assert not any(p.suffix in (".pt", ".pth", ".pkl", ".pickle") for p in (tmp_path / "run").iterdir())
    card = json.loads((tmp_path / "run" / "multilingual.json").read_text(encoding="utf-8"))
    assert card["format"] == FORMAT and card["config"]["encoders"] == ["use-m3"]
    assert card["joint"]["model"] == DEFAULT_ENCODER and len(card["joint"]["heads_sha256"]) == 12
    assert card["metrics"]["val"]["images"] == 30 and "cn_routed" in card["metrics"]["val"]
    assert summary["agreement"] == card["routing"]["agreement"]
    assert [e["epoch"] for e in events if e.get("event") == "epoch"] == [1]
    shipped = ship_tower(tmp_path / "run", DEFAULT_ENCODER, tmp_path / "weights")
    tower = query_tower(WEIGHTS_DIR / f"{DEFAULT_ENCODER}.safetensors", tmp_path / "weights")
    assert tower is not None and tower.weights == shipped  # found by the joint model's name
    v = tower.encode(["一只狗在雪地里", "un perro en la nieve", "a dog in the snow"])
    assert v.shape == (3, 256) and np.allclose(np.linalg.norm(v, axis=1), 1.0, atol=1e-4)
    assert tower.fingerprint.startswith(f"{DEFAULT_ENCODER}.multilingual:")
    with pytest.raises(ModelError, match="trained for joint heads"):  # another model's heads: refused
        QueryTower(shipped, WEIGHTS_DIR / "lite0-minilm-v1.safetensors").encode(["狗"])
    # the saved sentence map must be the fitted one (a strided array once saved transposed garbage)
    from pixsearch.models.encoder import create_encoder

    caps = [ln.split(",", 1)[1] for ln in (tiny / "captions.csv").read_text().splitlines()[1:6]]
    s, _ = tower.encode_both(caps)
    assert s is not None and (s * create_encoder().encode_captions(caps)).sum(1).mean() > 0.5


def test_captions_that_name_no_train_photo_are_an_error(tiny: Path, tmp_path: Path) -> None:
    other = tmp_path / "other.csv"
    other.write_text("image,caption\nnot-a-photo.jpg,一只狗\n", encoding="utf-8")
    cfg = MultilingualConfig(data=tiny, cn=other, out=tmp_path / "run", epochs=1)
    with pytest.raises(DatasetError, match="no caption names a train photo"):
        train_multilingual(cfg)
