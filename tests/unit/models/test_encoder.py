"""The shipped encoder's image side on real photos: the fast preprocessing gives the training pixels bit
for bit, and the image graph runs a few photos at a time with the vectors one photo alone gets."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from pixsearch.media import load_image
from pixsearch.models.backbones import decode_size, preprocess_image
from pixsearch.models.encoder import IMAGE_CHUNK, OnnxEncoder, create_encoder
from pixsearch.models.pixels import preprocess_pixels
from tests.conftest import GALLERY

PHOTOS = sorted((GALLERY / "images").glob("*.jpg"))


@pytest.fixture(scope="module")
def encoder() -> OnnxEncoder:
    enc = create_encoder()
    assert isinstance(enc, OnnxEncoder), "the shipped model is not installed"
    return enc


def test_fast_preprocessing_is_the_training_input_bit_for_bit(flickr8k: Path) -> None:
    names = (flickr8k / "test.txt").read_text().split()[:12]  # aspect kept, sizes vary
    images = [load_image(flickr8k / "images" / n, draft=decode_size(224)) for n in names]
    images += [load_image(p) for p in PHOTOS[:6]]
    images += [images[0].convert("L"), images[1].convert("P"), images[2].convert("RGBA")]  # other modes
    for img in images:
        for res in (224, 260):
            want = preprocess_image(img, res)
            got = preprocess_pixels(img, res)
            assert got.dtype == np.float32 and got.shape == (3, res, res) and got.flags.c_contiguous
            np.testing.assert_array_equal(got, want)


def test_image_graph_runs_a_few_photos_at_a_time_with_the_same_vectors(encoder: OnnxEncoder) -> None:
    arrays = np.stack([encoder.preprocess(load_image(p)) for p in PHOTOS[:19]])
    sizes: list[int] = []
    run = encoder.image_graph.run

    def spy(feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        sizes.append(len(feeds["pixels"]))
        return run(feeds)

    encoder.image_graph.run = spy  # type: ignore[method-assign]
    try:
        out = encoder.encode_image_features(arrays)
    finally:
        del encoder.image_graph.run
    assert sizes == [IMAGE_CHUNK, IMAGE_CHUNK, 19 - 2 * IMAGE_CHUNK]
    assert out["embedding"].shape == (19, encoder.dim) and out["logits"].shape == (19, 1000)
    assert out["spatial"].shape == (19, 49, 1280) and out["pooled"].shape == (19, 1280)
    alone = np.concatenate([encoder.encode_image_features(a[None])["embedding"] for a in arrays])
    assert (alone * out["embedding"]).sum(1).min() > 0.99999
