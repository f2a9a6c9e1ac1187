"""The frozen backbones load offline from their packages and behave as the originals."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from pixsearch.models.backbones import image_backbone


def test_query_and_pixel_paths_import_neither_torch_nor_onnx(gallery_subset: Path) -> None:
    """The shipped model encodes text and pixels on onnxruntime alone."""
    photo = sorted((gallery_subset / "photos").glob("*.jpg"))[0]
    code = (
        "import sys; from pixsearch.media import load_image; "
        "from pixsearch.models.encoder import create_encoder; "
        "e = create_encoder(); e.encode_captions(['a dog']); e.encode_text(['a dog']); "
        f"e.encode_image_arrays(e.preprocess(load_image({str(photo)!r}))[None]); "
        "print(sorted(m for m in ('torch', 'onnx', 'onnxscript', 'onnxruntime') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "['onnxruntime']"


def test_image_backbone_features_and_imagenet_sense(gallery_subset: Path) -> None:
    pytest.importorskip("torch")
    from pixsearch.media import load_image

    bb = image_backbone("lite0")
    photos = sorted((gallery_subset / "photos").glob("*.jpg"))[:4]
    arr = np.stack([bb.preprocess(load_image(p)) for p in photos])
    assert arr.shape == (4, 3, 224, 224)
    out = bb.encode(arr)
    assert out["pooled"].shape == (4, 1280) and out["logits"].shape == (4, 1000)
    again = bb.encode(arr[:1])
    assert np.allclose(out["pooled"][:1], again["pooled"], atol=1e-4)  # batch-independent (eval mode)
    assert bb.fingerprint.startswith("lite0:")


def test_encode_image_features_contract(gallery_subset: Path) -> None:
    """``JointEncoder.encode_image_features``: embedding / logits / spatial / pooled, consistent with
    each other and with ``encode_image_arrays``; ``spatial`` is the fine-tuned top's 7x7 map that
    ``pooled`` averages."""
    pytest.importorskip("torch")
    from pixsearch.media import load_image
    from pixsearch.models.encoder import create_encoder

    enc = create_encoder()
    photos = sorted((gallery_subset / "photos").glob("*.jpg"))[:3]
    arr = np.stack([enc.preprocess(load_image(p)) for p in photos])
    f = enc.encode_image_features(arr)
    assert f["embedding"].shape == (3, enc.dim) and f["logits"].shape == (3, 1000)
    assert f["spatial"].shape == (3, 49, 1280) and f["pooled"].shape == (3, 1280)
    assert all(v.dtype == np.float32 for v in f.values())
    assert np.allclose(f["spatial"].mean(1), f["pooled"], atol=1e-5)
    assert np.allclose(np.linalg.norm(f["embedding"], axis=1), 1.0, atol=1e-5)
    assert np.allclose(enc.encode_image_arrays(arr), f["embedding"], atol=1e-5)
    # the fine-tuned top really is in the map: the frozen backbone's pooled features differ
    main, *more = enc.unpack(arr)
    frozen = image_backbone("lite0").encode(main)["pooled"]
    assert np.abs(frozen - f["pooled"]).max() > 1e-2
    # the default model also reads Lite2's pooled features (its own 260 px input), beside Lite0's maps
    assert enc.extra_backbones == ("lite2",) and [m.shape[1:] for m in more] == [(3, 260, 260)]
    assert set(f) == {"embedding", "logits", "spatial", "pooled"}
