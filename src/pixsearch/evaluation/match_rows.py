"""The rows a match score is fitted and judged on, and each row's signals.

A row is an (image, text) pair with a 0..1 target: a human judgment of a dataset split
(:func:`judged_rows`, targets from :func:`aggregate_targets`) or a true/false pair
(:func:`true_false_pairs`). :func:`row_signals` computes every signal of ``models/scorer.py`` for each
row, from the same features a library stores; ``pixsearch train scorer`` and ``pixsearch eval score``
both go through here, so the two cannot disagree.
"""

from __future__ import annotations

import csv
import hashlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from pixsearch.corpus.datasets import Dataset
from pixsearch.errors import DatasetError, ModelError
from pixsearch.models.encoder import JointEncoder
from pixsearch.models.scorer import PhotoEvidence, Scorer

__all__ = [
    "Row",
    "aggregate_targets",
    "judged_rows",
    "true_false_pairs",
    "image_features",
    "text_vectors",
    "row_signals",
    "generated_captions",
]


@dataclass(frozen=True)
class Row:
    """One (image, text) pair with its 0..1 target; ``experts`` are the three 1..4 grades if judged."""

    image: str
    caption_id: str  # "" for a text that is not a dataset caption
    text: str
    target: float
    kind: str  # "judged" or "pair"
    experts: tuple[int, ...] = ()
    crowd: float | None = None
    weight: float = 1.0


def aggregate_targets(ds: Dataset) -> dict[tuple[str, str], tuple[float, tuple[int, ...], float | None]]:
    """(image, caption id) -> (target, expert grades, crowd share).

    The target is the probability that a person would say the caption describes the image: the
    CrowdFlower share of yes is exactly that; an expert grade g in 1..4 maps to (g-1)/3 (4 = "describes
    the image without errors", 1 = "unrelated"); a pair judged by both gets the plain mean of the expert
    mean and the crowd share (each source has three raters, so neither outweighs the other).
    """
    grades: dict[tuple[str, str], tuple[int, ...]] = {}
    path = ds.root / "expert_annotations.csv"
    if path.is_file():
        with path.open(encoding="utf-8-sig", newline="") as f:
            for r in csv.DictReader(f):
                grades[(r["image"], r["caption_id"])] = tuple(int(r[f"expert{i}"]) for i in (1, 2, 3))
    by: dict[tuple[str, str], dict[str, float]] = {}
    for j in ds.judgments:
        by.setdefault((j.image, j.caption_id), {})[j.source] = j.score
    out = {}
    for key, s in by.items():
        out[key] = (
            float(np.mean(list(s.values()))),
            grades.get(key, ()) if "expert" in s else (),
            s.get("crowd"),
        )
    return out


def judged_rows(ds: Dataset, own: bool = False) -> list[Row]:
    """The split's judged pairs; ``own=False`` keeps only candidates that are not the image's own."""
    caps = {c.id: c.text for c in ds.captions}
    rows = []
    for (image, cid), (target, experts, crowd) in sorted(aggregate_targets(ds).items()):
        if cid not in caps or (not own and cid.partition("#")[0] == image):
            continue
        rows.append(Row(image, cid, caps[cid], target, "judged", experts, crowd))
    return rows


def true_false_pairs(ds: Dataset, seed: int = 0, weight: float = 1.0) -> list[Row]:
    """Every caption with its image (target 1) and with a random other image (target 0): rows whose
    truth needs no judge."""
    rng = np.random.default_rng(seed)
    by = ds.captions_by_image()
    names = sorted(by)
    rows = []
    for n in names:
        for c in by[n]:
            rows.append(Row(n, c.id, c.text, 1.0, "pair", weight=weight))
            other = names[int(rng.integers(len(names)))]
            if other != n:
                rows.append(Row(other, c.id, c.text, 0.0, "pair", weight=weight))
    return rows


def image_features(
    ds: Dataset,
    names: Sequence[str],
    encoder: JointEncoder,
    progress: Callable[[int, int], None] | None = None,
) -> dict[str, np.ndarray]:
    """Joint vector (and spatial map, for a captioner) per image, cached under the feature cache."""
    from pixsearch.corpus.features import default_cache_dir
    from pixsearch.models.backbones import prepared_batches

    key = hashlib.blake2b(("\n".join([encoder.fingerprint, *names])).encode(), digest_size=10).hexdigest()
    cache = default_cache_dir() / "scorer" / f"{key}.npz"
    if cache.is_file():
        z = np.load(cache)
        return {k: z[k] for k in z.files}
    cache.parent.mkdir(parents=True, exist_ok=True)
    emb: list[np.ndarray] = []
    spatial: list[np.ndarray] = []
    ok_names: list[str] = []
    done = 0
    paths = [ds.image_path(n) for n in names]
    for ok, arrays, failed in prepared_batches(encoder.preprocess, encoder.resolution, paths, batch_size=32):
        if arrays is not None:
            f = encoder.encode_image_features(arrays)
            emb.append(f["embedding"])
            spatial.append(f["spatial"].astype(np.float16))
            ok_names += [names[i] for i in ok]
        done += len(ok) + len(failed)
        if progress:
            progress(done, len(names))
    if not ok_names:
        raise DatasetError(f"{ds.root}: none of the images decode")
    out = {"names": np.array(ok_names), "embedding": np.concatenate(emb), "spatial": np.concatenate(spatial)}
    tmp = cache.with_suffix(".tmp.npz")
    np.savez(tmp, names=out["names"], embedding=out["embedding"], spatial=out["spatial"])
    tmp.replace(cache)
    return out


def text_vectors(encoder: JointEncoder, texts: list[str]) -> tuple[np.ndarray, np.ndarray]:
    """(MiniLM, joint) vectors, cached: thousands of captions take minutes on a laptop CPU."""
    from pixsearch.corpus.features import FeatureCache

    uniq = sorted(set(texts))
    m = FeatureCache().text_features(encoder.text_backbone, uniq)
    j = encoder.text_from_embeddings(m)
    pos = {t: i for i, t in enumerate(uniq)}
    idx = np.array([pos[t] for t in texts], dtype=np.int64)
    return m[idx].astype(np.float32), j[idx].astype(np.float32)


def row_signals(
    ds: Dataset,
    rows: Sequence[Row],
    encoder: JointEncoder,
    scorer: Scorer,
    feats: dict[str, np.ndarray],
    generated: dict[str, str] | None = None,
    bank_owner: np.ndarray | None = None,
) -> list[dict[str, float]]:
    """All signals per row. References are the image's human captions minus the candidate itself.

    ``bank_owner`` (training only) names the image of each bank caption, so a photo never retrieves its
    own captions from the bank.
    """
    by = {n: [c for c in cs] for n, cs in ds.captions_by_image().items()}
    texts = [r.text for r in rows]
    ref_texts = sorted({c.text for r in rows for c in by.get(r.image, [])})
    gen_texts = sorted(set((generated or {}).values()))
    all_m, all_j = text_vectors(encoder, texts + ref_texts + gen_texts)
    tm, tj = all_m[: len(texts)], all_j[: len(texts)]
    ref_m = dict(zip(ref_texts, all_m[len(texts) : len(texts) + len(ref_texts)], strict=True))
    gen_m = dict(zip(gen_texts, all_m[len(texts) + len(ref_texts) :], strict=True))
    row_of = {n: i for i, n in enumerate(feats["names"].tolist())}
    out: list[dict[str, float]] = []
    nbs: dict[str, np.ndarray] = {}
    for i, r in enumerate(rows):
        if r.image not in row_of:
            out.append({})
            continue
        refs = [ref_m[c.text] for c in by.get(r.image, []) if c.id != r.caption_id and c.text != r.text]
        gen = (generated or {}).get(r.image)
        ev = PhotoEvidence(
            feats["embedding"][row_of[r.image]],
            gen_m[gen] if gen is not None else None,
            np.stack(refs) if refs else None,
        )
        if r.image not in nbs:
            mask = None if bank_owner is None else bank_owner == r.image
            nbs[r.image] = scorer.neighbours(ev.embedding[None], mask)[:, 0]
        out.append(scorer.pair_signals(tm[i], tj[i], ev, nbs[r.image]))
    return out


def generated_captions(feats: dict[str, np.ndarray], encoder: JointEncoder, scorer: Scorer | None) -> dict:
    """Image name -> generated caption, when a captioner is shipped (and, for a scorer, was fitted on)."""
    if scorer is not None and not any("generated" in m for m in scorer.models):
        return {}
    from pixsearch.models.captioner import create_captioner

    try:
        cap = create_captioner()
        cap.check_encoder(encoder)
    except (ModelError, OSError):  # an optional signal: a missing or mismatched captioner means none
        return {}
    out: dict[str, str] = {}
    names = feats["names"].tolist()
    for s in range(0, len(names), 64):
        texts = cap.caption_features(feats["spatial"][s : s + 64].astype(np.float32))
        out.update(zip(names[s : s + 64], texts, strict=True))
    return out
