"""The multilingual query tower on real Flickr8k val photos: other languages land near their English
counterparts' photos, English keeps MiniLM's vectors bit for bit, and odd input gives a vector, not a
crash. Run through the default joint model (its text head runs in NumPy); each shipped model has its
own tower, trained for its heads."""

from __future__ import annotations

import csv
import hashlib
import json
import logging
import shutil
import time
from pathlib import Path

import numpy as np
import pytest

from pixsearch.corpus.features import FeatureCache
from pixsearch.errors import ModelError
from pixsearch.models.encoder import DEFAULT_ENCODER, OnnxEncoder, create_encoder
from pixsearch.models.multilingual import (
    MAX_CHARS,
    MULTILINGUAL_DIR,
    QueryTower,
    clearly_english,
    query_tower,
)
from pixsearch.models.shipped import WEIGHTS_DIR

ROOT = Path(__file__).resolve().parents[3]
DATA = ROOT / "tests" / "data"
CN = ROOT.parent / "shared" / "data" / "flickr8k-cn" / "captions_zh.csv"
NAME = DEFAULT_ENCODER
V1 = "lite0-minilm-v1"  # the previous joint model: it keeps its own tower
N_PHOTOS = 150


def _queries(lang: str) -> list[str]:
    f = DATA / ("natural_queries.json" if lang == "en" else f"natural_queries_{lang}.json")
    return [r["query"] for r in json.loads(f.read_text(encoding="utf-8"))]


@pytest.fixture(scope="module")
def encoders(monkeypatch_module: pytest.MonkeyPatch) -> tuple[OnnxEncoder, OnnxEncoder]:
    """(the shipped encoder with its tower, the same model English-only)."""
    tower = MULTILINGUAL_DIR / f"{NAME}.safetensors"
    assert tower.is_file(), "the shipped multilingual tower is not installed"
    enc = create_encoder(NAME)
    monkeypatch_module.setenv("PIXSEARCH_MULTILINGUAL", "off")
    plain = create_encoder(NAME)
    monkeypatch_module.delenv("PIXSEARCH_MULTILINGUAL")
    assert isinstance(enc, OnnxEncoder) and isinstance(plain, OnnxEncoder)
    assert enc.tower is not None and plain.tower is None
    return enc, plain


@pytest.fixture(scope="module")
def monkeypatch_module() -> pytest.MonkeyPatch:
    mp = pytest.MonkeyPatch()
    yield mp  # type: ignore[misc]
    mp.undo()


@pytest.fixture(scope="module")
def val_photos(flickr8k: Path, encoders: tuple[OnnxEncoder, OnnxEncoder]) -> tuple[list[str], np.ndarray]:
    names = (flickr8k / "val.txt").read_text().split()[:N_PHOTOS]
    f = FeatureCache().encoder_features(encoders[0], [flickr8k / "images" / n for n in names], "embedding")
    assert f.ok.all()
    return names, f.arrays["embedding"].astype(np.float32)


def _top(q: np.ndarray, img: np.ndarray, k: int = 10) -> np.ndarray:
    return np.argsort(-(q @ img.T), axis=1)[:, :k]


def test_english_queries_keep_minilm_vectors_bit_for_bit(encoders: tuple[OnnxEncoder, OnnxEncoder]) -> None:
    enc, plain = encoders
    texts = _queries("en") + ["a black dog is running through the grass", "Two girls on a beach at sunset"]
    m1, j1 = enc.encode_texts(texts)
    m0, j0 = plain.encode_texts(texts)
    assert np.array_equal(m1, m0) and np.array_equal(j1, j0)
    assert np.array_equal(enc.encode_text(texts), j0)


@pytest.mark.parametrize("lang", ["zh", "es", "ru"])
def test_translated_queries_find_what_the_english_query_finds(
    lang: str, encoders: tuple[OnnxEncoder, OnnxEncoder], val_photos: tuple[list[str], np.ndarray]
) -> None:
    """Top 10 of each translated natural query against top 10 of its English original, over 150 real
    val photos: English-only search shares almost none of them, the tower most."""
    enc, plain = encoders
    _, img = val_photos
    want = _top(plain.encode_text(_queries("en")), img)
    overlap = {}
    for tag, e in (("tower", enc), ("minilm", plain)):
        got = _top(e.encode_text(_queries(lang)), img)
        overlap[tag] = np.mean([len(set(a) & set(b)) / 10 for a, b in zip(got, want, strict=True)])
    assert overlap["tower"] >= 0.4, overlap
    assert overlap["tower"] >= overlap["minilm"] + 0.25, overlap


def test_chinese_captions_find_their_photo(
    flickr8k: Path, encoders: tuple[OnnxEncoder, OnnxEncoder], val_photos: tuple[list[str], np.ndarray]
) -> None:
    if not CN.is_file():
        pytest.skip(f"Flickr8K-CN not found at {CN} (shared/data)")
    names, img = val_photos
    row = {n: i for i, n in enumerate(names)}
    rows = [r for r in csv.DictReader(CN.open(encoding="utf-8")) if r["image"] in row]
    owner = np.array([row[r["image"]] for r in rows])
    recall = {}
    for tag, e in (("tower", encoders[0]), ("minilm", encoders[1])):
        sim = e.encode_text([r["caption"] for r in rows]) @ img.T
        rank = (sim > sim[np.arange(len(rows)), owner][:, None]).sum(1)
        recall[tag] = float((rank < 5).mean())
    assert recall["tower"] >= 0.35, recall  # 150 photos; measured ~0.5 (MiniLM: ~0.05)
    assert recall["tower"] >= 3 * recall["minilm"], recall


# Odd input, one case each (the list): a query never crashes search, and what it gives is a
# finite unit vector in the joint space. Where the text has a meaning, that vector finds what the same
# query in English finds; where it has none, the result is at least the same every time.
SNOW = "a dog running in the snow"
ODD: dict[str, tuple[str, str | None]] = {
    "mixed_scripts": ("a dog 在雪地里 running", SNOW),
    "code_switched": ("perro corriendo in the snow", SNOW),
    "emoji": ("🐶❄️🏔️", None),
    "right_to_left": ("\u202bكلب يركض في الثلج\u202c", SNOW),  # Arabic, with embedding marks
    "unknown_language": ("ውሻ በበረዶ ውስጥ", None),  # Amharic: USE was not trained on it
    "no_language": ("xq zvvk plorth wub", None),
    "blank": ("   ", None),
    "long_cjk": ("狗" * 10_000, None),
    "long_english": ("dog in the snow " * 700, None),
}


@pytest.mark.parametrize("case", list(ODD))
def test_an_odd_query_gives_one_clear_vector(
    case: str, encoders: tuple[OnnxEncoder, OnnxEncoder], val_photos: tuple[list[str], np.ndarray]
) -> None:
    enc, _ = encoders
    text, meaning = ODD[case]
    t = time.perf_counter()
    m, j = enc.encode_texts([text])
    assert time.perf_counter() - t < 30  # long texts are cut before the tower (MAX_CHARS)
    assert m.shape == (1, enc.caption_dim) and j.shape == (1, enc.dim)
    assert np.isfinite(m).all() and np.isfinite(j).all()
    assert np.allclose(np.linalg.norm(j, axis=1), 1.0, atol=1e-3)
    assert np.array_equal(enc.encode_texts([text])[1], j)  # the same answer every time
    if meaning is not None:
        _, img = val_photos
        want, got = _top(enc.encode_text([meaning]), img)[0], _top(j, img)[0]
        assert len(set(want) & set(got)) >= 3, case


def test_a_long_query_is_read_as_its_first_characters(encoders: tuple[OnnxEncoder, OnnxEncoder]) -> None:
    """10,000 characters of Chinese: what the tower reads is the first ``MAX_CHARS`` (MiniLM its first
    256 tokens), so the vector is that of the cut text, and it lands in the tower (not MiniLM)."""
    enc, plain = encoders
    long, cut = "狗" * 10_000, "狗" * MAX_CHARS
    j = enc.encode_text([long, cut])
    assert np.allclose(j[0], j[1], atol=1e-5)
    assert not np.allclose(j[0], plain.encode_text([long])[0], atol=1e-3)


def test_mixed_and_code_switched_queries_go_to_the_tower(encoders: tuple[OnnxEncoder, OnnxEncoder]) -> None:
    """A query MiniLM half reads (English words around Chinese or Spanish ones) is the tower's: MiniLM
    alone would drop the words it cannot read."""
    enc, plain = encoders
    texts = [ODD["mixed_scripts"][0], ODD["code_switched"][0], ODD["right_to_left"][0]]
    routed, minilm = enc.encode_text(texts), plain.encode_text(texts)
    assert enc.tower is not None
    assert ((routed * minilm).sum(1) < enc.tower.state()[0].agreement).all()  # measured 0.27, 0.29, 0.0


def test_clearly_english_reads_the_tokenizer(encoders: tuple[OnnxEncoder, OnnxEncoder]) -> None:
    tok = encoders[0].text_backbone.tok

    def clear(t: str) -> bool:
        e = tok.encode(t)
        return clearly_english(e.ids, e.tokens, t)

    assert clear("dog in the snow") and clear("people sitting on a bench") and clear("")
    assert not clear("perro en la nieve") and not clear("собака") and not clear("狗") and not clear("naïve")


def test_a_broken_tower_leaves_search_on_minilm(
    tmp_path: Path, encoders: tuple[OnnxEncoder, OnnxEncoder], caplog: pytest.LogCaptureFixture
) -> None:
    enc, plain = encoders
    src = MULTILINGUAL_DIR / f"{NAME}.safetensors"
    bad = tmp_path / src.name
    bad.write_bytes(src.read_bytes()[:1000])  # truncated
    shutil.copy(src.with_suffix(".json"), bad.with_suffix(".json"))
    tower = QueryTower(bad, WEIGHTS_DIR / f"{NAME}.safetensors")
    texts = ["perro en la nieve", "狗"]
    m, j = plain.encode_texts(texts)
    with caplog.at_level(logging.WARNING):
        for _ in range(2):
            m2, j2 = tower.route(texts, m, j)
            assert np.array_equal(m2, m) and np.array_equal(j2, j)
    assert sum("multilingual queries are off" in r.message for r in caplog.records) == 1
    with pytest.raises(ModelError, match="cannot read"):
        tower.encode(texts)


def test_a_tower_for_other_joint_heads_is_refused(tmp_path: Path) -> None:
    other = tmp_path / "other.safetensors"
    other.write_bytes(b"not the shipped heads")
    tower = QueryTower(MULTILINGUAL_DIR / f"{NAME}.safetensors", other)
    with pytest.raises(ModelError, match="trained for joint heads"):
        tower.encode(["狗"])


@pytest.mark.parametrize("model", [NAME, V1])
def test_each_shipped_model_finds_the_tower_trained_for_its_heads(model: str) -> None:
    heads = WEIGHTS_DIR / f"{model}.safetensors"
    tower = query_tower(heads)
    assert tower is not None and tower.weights == MULTILINGUAL_DIR / f"{model}.safetensors"
    tower.state()  # loads: the card names these heads' digest
    assert tower.card["joint"]["model"] == model
    assert tower.card["joint"]["heads_sha256"] == hashlib.sha256(heads.read_bytes()).hexdigest()[:12]


def test_the_previous_models_tower_is_refused_for_the_default_heads() -> None:
    """v1's tower maps into v1's space: on the default model's heads its vectors would be noise."""
    assert NAME != V1
    tower = QueryTower(MULTILINGUAL_DIR / f"{V1}.safetensors", WEIGHTS_DIR / f"{NAME}.safetensors")
    with pytest.raises(ModelError, match="trained for joint heads"):
        tower.encode(["狗"])


def test_the_previous_model_keeps_routing_foreign_queries_to_its_tower(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    enc = create_encoder(V1)
    monkeypatch.setenv("PIXSEARCH_MULTILINGUAL", "off")
    plain = create_encoder(V1)
    assert isinstance(enc, OnnxEncoder) and enc.tower is not None and plain.tower is None
    texts = ["a dog in the snow", "一只狗在雪地里奔跑"]
    (m, j), (m0, j0) = enc.encode_texts(texts), plain.encode_texts(texts)
    assert np.array_equal(m[0], m0[0]) and np.array_equal(j[0], j0[0])  # English: MiniLM's, bit for bit
    assert float(j[1] @ j0[1]) < enc.tower.state()[0].agreement  # Chinese: v1's tower's vector


def test_no_tower_for_a_model_without_one(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    assert query_tower(tmp_path / "unknown.safetensors") is None
    monkeypatch.setenv("PIXSEARCH_MULTILINGUAL", "off")
    assert query_tower(WEIGHTS_DIR / f"{NAME}.safetensors") is None


def test_a_chinese_query_meets_english_captions_in_minilm_space(
    encoders: tuple[OnnxEncoder, OnnxEncoder], val_photos: tuple[list[str], np.ndarray], flickr8k: Path
) -> None:
    """Search compares a query's MiniLM-space vector with a library's English captions (and the match
    scorer's caption bank): the tower's estimate of it lets a Chinese caption find its photo's English
    captions, where MiniLM's own vector of the Chinese text finds nothing."""
    if not CN.is_file():
        pytest.skip(f"Flickr8K-CN not found at {CN} (shared/data)")
    names, _ = val_photos
    row = {n: i for i, n in enumerate(names)}
    en = [r for r in csv.DictReader((flickr8k / "captions.csv").open(encoding="utf-8")) if r["image"] in row]
    zh = [r for r in csv.DictReader(CN.open(encoding="utf-8")) if r["image"] in row]
    en_owner = np.array([row[r["image"]] for r in en])
    zh_owner = np.array([row[r["image"]] for r in zh])
    caps = encoders[1].encode_captions([r["caption"] for r in en])
    recall = {}
    for tag, e in (("tower", encoders[0]), ("minilm", encoders[1])):
        sims = e.encode_texts([r["caption"] for r in zh])[0] @ caps.T
        best = np.stack([sims[:, en_owner == j].max(1) for j in range(len(names))], axis=1)
        rank = (best > best[np.arange(len(zh)), zh_owner][:, None]).sum(1)
        recall[tag] = float((rank < 5).mean())
    assert recall["tower"] >= 0.45, recall  # measured ~0.7 on 150 photos
    assert recall["tower"] >= 3 * recall["minilm"], recall
