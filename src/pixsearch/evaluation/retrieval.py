"""Evaluation metrics and the ``pixsearch eval`` tasks: numbers first, JSON out.

``retrieval_metrics`` is the one tested implementation of Recall@K / MedR that training (per-epoch
validation) and ``pixsearch eval retrieval`` share, so the two can never disagree.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from pixsearch.errors import DatasetError, ModelError

if TYPE_CHECKING:
    from pixsearch.models.encoder import JointEncoder

__all__ = ["retrieval_metrics", "rank_of_first_hit", "eval_retrieval"]

KS = (1, 5, 10)


def rank_of_first_hit(sim: np.ndarray, positives: Sequence[np.ndarray] | np.ndarray) -> np.ndarray:
    """1-based rank of the best-ranked positive for each query row of ``sim`` (queries x items).

    Ties count against the query: every non-positive item scoring at least as high as the best positive
    ranks above it. Otherwise a collapsed model (all scores equal) would score R@1 = 100.
    """
    ranks = np.empty(sim.shape[0], dtype=np.int64)
    for q in range(sim.shape[0]):
        pos = np.atleast_1d(positives[q])
        best = sim[q, pos].max()
        others = np.ones(sim.shape[1], dtype=bool)
        others[pos] = False
        ranks[q] = int((sim[q][others] >= best).sum()) + 1
    return ranks


def _summary(ranks: np.ndarray) -> dict[str, float]:
    out = {f"R@{k}": round(float((ranks <= k).mean() * 100.0), 2) for k in KS}
    out["MedR"] = float(np.median(ranks))
    return out


def retrieval_metrics(sim_t2i: np.ndarray, caption_image: np.ndarray) -> dict:
    """Standard 1K protocol from one similarity matrix.

    ``sim_t2i`` is (captions x images); ``caption_image[c]`` is the column of caption c's image.
    t2i: each caption ranks the images. i2t: each image ranks all captions, a hit is any of its own.
    Recalls are percentages; ``rsum`` adds the six recalls.
    """
    caption_image = np.asarray(caption_image)
    n_img = sim_t2i.shape[1]
    t2i = _summary(rank_of_first_hit(sim_t2i, caption_image))
    owned = [np.flatnonzero(caption_image == i) for i in range(n_img)]
    i2t = _summary(rank_of_first_hit(sim_t2i.T, owned))
    rsum = sum(t2i[f"R@{k}"] + i2t[f"R@{k}"] for k in KS)
    return {
        "images": int(n_img),
        "captions": int(sim_t2i.shape[0]),
        "t2i": t2i,
        "i2t": i2t,
        "rsum": round(rsum, 2),
    }


def eval_retrieval(data: Path, split: str, model: str | None = None, captions: Path | None = None) -> dict:
    """``pixsearch eval retrieval``: encode the split (features cached), rank, score.

    ``captions``: an ``image,caption`` CSV whose rows replace the dataset's captions of the split's
    images (e.g. Chinese captions of the same photos), so any language is measured on the same gallery.
    """
    from pixsearch.corpus.splits import split_features
    from pixsearch.models.encoder import create_encoder

    enc = create_encoder(model)
    if not enc.cross_modal:
        raise ModelError(f"model {enc.name} has no joint text space to evaluate")
    if enc.runs_on_onnx:  # a shipped model: evaluate the ONNX path users run, no torch
        from pixsearch.corpus.features import encoded_split

        if captions is None:
            names, img, txt, owner = encoded_split(enc, Path(data), split)
        else:  # only the images: the dataset's own captions would be encoded for nothing
            names, img = _split_images(enc, Path(data), split)
            txt, owner = _caption_side(enc, Path(data), split, names, Path(captions))
        return {"model": enc.name, "split": split, **_source(captions), **_metrics(names, img, txt, owner)}
    from pixsearch.corpus.datasets import load_dataset
    from pixsearch.corpus.features import FeatureCache
    from pixsearch.corpus.splits import extra_pooled

    names, pooled, logits, emb, owner = split_features(Path(data), split, enc.backbone_name)
    ds = load_dataset(Path(data))
    paths = [ds.image_path(n) for n in names]
    if enc.has_top:  # phase 2: the cached pooled features predate the fine-tuned top
        pooled = enc.pooled_from_mid(FeatureCache().image_features(enc.image_backbone, paths, mid=True).mid)
    img = enc.image_from_features(pooled, logits, extra_pooled(enc, paths))
    txt = enc.text_from_embeddings(emb)
    if captions is not None:
        txt, owner = _caption_side(enc, Path(data), split, names, Path(captions))
    return {"model": enc.name, "split": split, **_source(captions), **_metrics(names, img, txt, owner)}


def _source(captions: Path | None) -> dict:
    return {} if captions is None else {"captions_file": str(captions)}


def _split_images(enc: JointEncoder, data: Path, split: str) -> tuple[list[str], np.ndarray]:
    """(names, stored image vectors) of the split's images that decode, through the feature cache."""
    from pixsearch.corpus.datasets import load_dataset
    from pixsearch.corpus.features import FeatureCache

    ds = load_dataset(data).split(split)
    names = list(ds.images)
    f = FeatureCache().encoder_features(enc, [ds.image_path(n) for n in names], "embedding")
    keep = np.flatnonzero(f.ok)
    return [names[i] for i in keep], f.arrays["embedding"][keep].astype(np.float32)


def _caption_side(
    enc: JointEncoder, data: Path, split: str, names: list[str], captions: Path
) -> tuple[np.ndarray, np.ndarray]:
    """(joint vectors, caption -> image row) of a captions CSV's rows for the decoded images ``names``."""
    from pixsearch.corpus.datasets import load_dataset

    ds = load_dataset(data).split(split).with_captions(captions)
    texts, owner = ds.caption_rows(names)
    if not texts:
        raise DatasetError(f"{captions}: no caption names an image of split {split!r} of {data}")
    _, joint = enc.encode_texts(texts)
    return joint, np.array(owner, dtype=np.int64)


def _metrics(names: list[str], img: np.ndarray, txt: np.ndarray, owner: np.ndarray) -> dict:
    has_caps = np.isin(np.arange(len(names)), owner)
    keep = np.flatnonzero(has_caps)
    remap = -np.ones(len(names), dtype=np.int64)
    remap[keep] = np.arange(len(keep))
    return retrieval_metrics(txt @ img[keep].T, remap[owner])
