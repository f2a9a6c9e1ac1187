"""The shipped ONNX files give the torch path's vectors on real photos and texts (needs the [train] extra).

Parity says nothing about whether the shipped weights are any good (two equally broken paths agree):
their quality is pinned through the ONNX path by the floors in tests/unit/evaluation/ (retrieval on
val-200: test_retrieval.py; captions: test_captions.py; match score: test_match_score.py; natural
queries: test_natural_queries.py). Measured once through the torch path on the same val-200 slice
(the shipped heads with the card's ``onnx`` entry removed, ``eval_retrieval``): t2i R@1/5/10 39.3 /
72.9 / 85.1, rsum 402.8, identical to the ONNX path.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("torch")
pytest.importorskip("efficientnet_lite_pytorch")

pytestmark = pytest.mark.slow  # torch export and parity runs: ~20 s

from pixsearch.media import load_image  # noqa: E402
from pixsearch.models.backbones import decode_size  # noqa: E402
from pixsearch.models.encoder import HeadsEncoder, OnnxEncoder, create_encoder  # noqa: E402
from pixsearch.models.shipped import WEIGHTS_DIR  # noqa: E402

MIN_COSINE = 0.9999


@pytest.fixture(scope="module")
def encoders() -> tuple[HeadsEncoder, OnnxEncoder]:
    onnx_enc = create_encoder()
    assert isinstance(onnx_enc, OnnxEncoder)
    f = WEIGHTS_DIR / f"{onnx_enc.name}.safetensors"
    card = json.loads(f.with_suffix(".json").read_text())
    card.pop("onnx")
    return HeadsEncoder(onnx_enc.name, f, card), onnx_enc  # same weights, torch path


def _pixels(enc: OnnxEncoder, photos: list[Path]) -> np.ndarray:
    return np.stack([enc.preprocess(load_image(p, draft=decode_size(enc.resolution))) for p in photos])


def _check_images(encoders: tuple[HeadsEncoder, OnnxEncoder], photos: list[Path]) -> None:
    torch_enc, onnx_enc = encoders
    x = _pixels(onnx_enc, photos)
    ref, got = torch_enc.encode_image_features(x), onnx_enc.encode_image_features(x)
    assert set(got) == {"embedding", "logits", "spatial", "pooled"}
    cos = (ref["embedding"] * got["embedding"]).sum(1)
    assert cos.min() >= MIN_COSINE, cos.min()
    for k in ("pooled", "spatial", "logits"):  # per image, the whole array as one vector
        assert got[k].shape == ref[k].shape and got[k].dtype == np.float32
        a, b = ref[k].reshape(len(x), -1), got[k].reshape(len(x), -1)
        c = (a * b).sum(1) / np.linalg.norm(a, axis=1) / np.linalg.norm(b, axis=1)
        assert c.min() >= MIN_COSINE, (k, c.min())
    assert (ref["logits"].argmax(1) == got["logits"].argmax(1)).mean() >= 0.9


def test_image_parity_on_gallery_photos(
    encoders: tuple[HeadsEncoder, OnnxEncoder], gallery_subset: Path
) -> None:
    _check_images(encoders, sorted((gallery_subset / "photos").glob("*.jpg"))[:8])


def test_image_parity_on_flickr8k_test_photos(
    encoders: tuple[HeadsEncoder, OnnxEncoder], flickr8k: Path
) -> None:
    names = (flickr8k / "test.txt").read_text().split()[:8]  # test images keep their aspect ratio
    _check_images(encoders, [flickr8k / "images" / n for n in names])


def test_text_parity_with_sentence_transformers(
    encoders: tuple[HeadsEncoder, OnnxEncoder], monkeypatch: pytest.MonkeyPatch
) -> None:
    st = pytest.importorskip("sentence_transformers")
    from pixsearch.models.backbones import minilm_dir

    torch_enc, onnx_enc = encoders
    # the MiniLM graph itself: the multilingual tower (which takes the Unicode text below as a foreign
    # query, models/multilingual.py) is tested in tests/unit/models/test_multilingual.py
    monkeypatch.setattr(onnx_enc, "tower", None)
    texts = [
        "A dog catches a frisbee in the park .",
        "two dogs pulling a sled",
        "x",
        "Ünïcode café ☃ " * 60,  # longer than 256 tokens: truncated the same way
        "a man in a red jacket climbs a rock wall while another man holds the rope",
    ]
    ref = np.asarray(
        st.SentenceTransformer(str(minilm_dir()), device="cpu").encode(texts, normalize_embeddings=True)
    )
    sent, joint = onnx_enc.encode_texts(texts)
    assert (ref * sent).sum(1).min() >= MIN_COSINE
    assert np.allclose(sent, onnx_enc.encode_captions(texts), atol=1e-6)
    ref_joint = torch_enc.text_from_embeddings(ref)
    assert (ref_joint * joint).sum(1).min() >= MIN_COSINE
    assert np.allclose(joint, onnx_enc.encode_text(texts), atol=1e-6)
    # batching and padding do not change a text's vector
    alone = np.concatenate([onnx_enc.encode_captions([t]) for t in texts])
    assert np.abs(alone - sent).max() < 1e-4


def test_fingerprint_unchanged_from_torch_path(encoders: tuple[HeadsEncoder, OnnxEncoder]) -> None:
    """Libraries indexed on torch open unchanged (docs/model.md): same weights, same identity."""
    torch_enc, onnx_enc = encoders
    assert torch_enc.fingerprint == onnx_enc.fingerprint


def test_export_writes_verified_files_that_match_the_shipped_ones(
    tmp_path: Path, gallery_subset: Path
) -> None:
    """`pixsearch train export`'s ONNX step, run on a copy of the shipped heads: same vectors, hashed card."""
    import shutil

    from pixsearch.train.ship import export_onnx

    name = "lite0-minilm-v1"
    for suffix in (".safetensors", ".json"):
        shutil.copy(WEIGHTS_DIR / f"{name}{suffix}", tmp_path / f"{name}{suffix}")
    photos = sorted((gallery_subset / "photos").glob("*.jpg"))[:4]
    entry = export_onnx(tmp_path / f"{name}.safetensors", photos)
    assert entry["parity"]["image"]["min_cosine"] >= MIN_COSINE
    card = json.loads((tmp_path / f"{name}.json").read_text())
    for key in ("image", "text", "tokenizer"):
        data = (tmp_path / card["onnx"][key]["file"]).read_bytes()
        assert card["onnx"][key]["sha256"] == hashlib.sha256(data).hexdigest()
    fresh, shipped = create_encoder(tmp_path / f"{name}.safetensors"), create_encoder(name)
    assert isinstance(fresh, OnnxEncoder)
    x = _pixels(shipped, photos)
    assert (fresh.encode_image_arrays(x) * shipped.encode_image_arrays(x)).sum(1).min() >= MIN_COSINE
    t = ["a dog in the snow", "people at a market"]
    assert (fresh.encode_text(t) * shipped.encode_text(t)).sum(1).min() >= MIN_COSINE
