"""The feature cache: keyed by content, resumable after an interruption, reports bad images."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest

from pixsearch.corpus.features import FeatureCache
from pixsearch.models.backbones import image_backbone
from pixsearch.models.encoder import default_text_backbone


def test_cache_resumes_and_dedups_by_content(gallery_subset: Path, tmp_path: Path) -> None:
    src = sorted((gallery_subset / "photos").glob("*.jpg"))[:6]
    photos = tmp_path / "p"
    photos.mkdir()
    paths = []
    for p in src:
        shutil.copy(p, photos / p.name)
        paths.append(photos / p.name)
    shutil.copy(src[0], photos / "renamed-copy.jpg")  # same bytes: must not be encoded twice
    paths.append(photos / "renamed-copy.jpg")
    (photos / "broken.jpg").write_bytes(b"\xff\xd8\xff\xe0 not really")
    paths.append(photos / "broken.jpg")

    cache = FeatureCache(tmp_path / "cache", shard_size=2)
    bb = image_backbone("lite0")

    class Stop(Exception):
        pass

    def stop_midway(done: int, total: int) -> None:
        if done >= 4:
            raise Stop

    with pytest.raises(Stop):
        cache.image_features(bb, paths, progress=stop_midway)
    shards = sorted((tmp_path / "cache" / "features").glob("*/shard-*.safetensors"))
    assert shards, "finished shards survive an interruption"

    seen: list[tuple[int, int]] = []
    f = cache.image_features(bb, paths, progress=lambda d, n: seen.append((d, n)))
    assert seen[0][0] >= 2  # resumed: the first report already counts cached images
    assert f.ok.tolist() == [True] * 7 + [False]
    assert len(f.errors) == 1 and "broken.jpg" in str(f.errors[0])
    assert np.array_equal(f.pooled[0], f.pooled[6])  # the renamed copy reads the same row
    again = cache.image_features(bb, paths)
    assert np.array_equal(again.pooled, f.pooled)
    # the values, not only their shapes and keys: the cached rows are the backbone's own output for each
    # photo (in order), and the broken photo's row is zeros
    from pixsearch.models.backbones import prepared_batches

    ok, arrays, failed = next(iter(prepared_batches(bb.preprocess, bb.spec.resolution, paths[:6])))
    assert ok == list(range(6)) and not failed and arrays is not None
    direct = bb.encode(arrays)
    for k in ("pooled", "logits"):
        got = f.arrays[k][:6].astype(np.float32)
        np.testing.assert_allclose(got, direct[k], rtol=2e-3, atol=2e-3, err_msg=k)
    assert not f.pooled[7].any() and not f.logits[7].any()
    assert np.abs(f.pooled[0] - f.pooled[1]).max() > 0.1  # two photos, two feature vectors


def test_text_cache_roundtrip(tmp_path: Path) -> None:
    cache = FeatureCache(tmp_path / "cache")
    texts = ["a dog", "a cat", "a dog"]
    a = cache.text_features(default_text_backbone(), texts)
    b = cache.text_features(default_text_backbone(), texts)
    assert a.shape == (3, 384) and np.array_equal(a, b) and np.array_equal(a[0], a[2])
    # the cached rows are the text backbone's embeddings of these texts, in order
    direct = default_text_backbone().encode(["a dog", "a cat"])
    np.testing.assert_allclose(a[:2], direct, atol=1e-5)
    assert float(a[0] @ a[1]) < 0.99  # different texts, different rows
