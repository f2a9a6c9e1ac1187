"""``pixsearch eval score``: how well the match score agrees with people (CLIPScore protocol).

Rows: the judged (image, candidate caption) pairs of a split whose candidate is *not* one of the image's
own captions (the CLIPScore protocol for Flickr8K-Expert / -CF).

* ``kendall_tau_c_expert``: Kendall tau-c (scipy, variant "c") between the pixels-only score and each
  of the three expert judgments (each pair counted once per judgment), as a percentage; pixels only
  means the dataset's captions of that image are never read.
* ``kendall_tau_c_expert_ref``: the same with the image's human captions as references.
* ``kendall_tau_b_crowd``: tau-b between the pixels-only score and the CrowdFlower share of yes.
* ``rmse``: pixels-only score against the aggregated 0..1 target (:func:`aggregate_targets`).
* ``pairwise_accuracy``: for every caption of every image, is the image's own caption scored above a
  random caption of another image (pixels only; ties count half)? Balanced by construction.

The shipped scorer was fitted on the Flickr8k test-split judgments (there are no others), so on those
rows the headline figures come from grouped cross-validation (refit per fold, the fold's images held
out), and ``figures`` says so; the shipped model's in-sample figures are reported beside them.
This module shares the feature and signal code with ``train/scorer.py`` so the two cannot disagree.
"""

from __future__ import annotations

import csv
import hashlib
import zlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from pixsearch.corpus.datasets import Dataset, load_dataset
from pixsearch.errors import DatasetError
from pixsearch.models.encoder import JointEncoder
from pixsearch.models.scorer import PhotoEvidence, Scorer

__all__ = [
    "Row",
    "aggregate_targets",
    "judged_rows",
    "image_features",
    "row_signals",
    "metrics",
    "eval_score",
    "grouped_folds",
    "true_false_pairs",
    "pairwise_accuracy",
]

FOLDS = 5


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
    """Seed 002: every caption with its image (target 1) and with a random other image (target 0)."""
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


def grouped_folds(rows: Sequence[Row], folds: int = FOLDS) -> np.ndarray:
    """Fold of each row from a stable hash of its image: no image is in two folds."""
    return np.array([zlib.crc32(r.image.encode()) % folds for r in rows])


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


def _text_vectors(encoder: JointEncoder, texts: list[str]) -> tuple[np.ndarray, np.ndarray]:
    """(MiniLM, joint) vectors, cached: thousands of captions take minutes on a laptop CPU."""
    from pixsearch.corpus.features import FeatureCache
    from pixsearch.models.encoder import HeadsEncoder

    uniq = sorted(set(texts))
    tb = getattr(encoder, "text_backbone")  # noqa: B009
    m = FeatureCache().text_features(tb, uniq)
    assert isinstance(encoder, HeadsEncoder)
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
    all_m, all_j = _text_vectors(encoder, texts + ref_texts + gen_texts)
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


def _tau(a: np.ndarray, b: np.ndarray, variant: str) -> float:
    from scipy.stats import kendalltau

    if len(a) < 2:
        return float("nan")
    return round(float(kendalltau(a, b, variant=variant)[0]) * 100.0, 2)


def metrics(rows: Sequence[Row], pixels: np.ndarray, refs: np.ndarray) -> dict[str, float | int]:
    """The judged-row figures from pixels-only and with-references scores aligned with ``rows``."""
    ex = [i for i, r in enumerate(rows) if r.experts]
    cr = [i for i, r in enumerate(rows) if r.crowd is not None]
    grades = np.array([g for i in ex for g in rows[i].experts], dtype=np.float64)
    rep = np.repeat(np.array(ex, dtype=np.int64), 3)
    target = np.array([r.target for r in rows])
    return {
        "n_pairs": len(ex),
        "n_crowd_pairs": len(cr),
        "kendall_tau_c_expert": _tau(pixels[rep], grades, "c"),
        "kendall_tau_c_expert_ref": _tau(refs[rep], grades, "c"),
        "kendall_tau_b_crowd": _tau(pixels[cr], np.array([rows[i].crowd for i in cr]), "b"),
        "kendall_tau_b_crowd_ref": _tau(refs[cr], np.array([rows[i].crowd for i in cr]), "b"),
        "rmse": round(float(np.sqrt(np.mean((pixels - target) ** 2))), 4) if len(rows) else float("nan"),
        "rmse_ref": round(float(np.sqrt(np.mean((refs - target) ** 2))), 4) if len(rows) else float("nan"),
    }


def pairwise_accuracy(pairs: Sequence[Row], scores: np.ndarray) -> float:
    """Own caption above the same caption on a random other image (rows come in true/false twos)."""
    wins, n = 0.0, 0
    i = 0
    while i + 1 < len(pairs):
        if pairs[i].target == 1.0 and pairs[i + 1].target == 0.0:
            a, b = scores[i], scores[i + 1]
            wins += 1.0 if a > b else 0.5 if a == b else 0.0
            n += 1
            i += 2
        else:
            i += 1
    return round(100.0 * wins / n, 2) if n else float("nan")


def eval_score(data: Path, split: str, scorer_name: str | None = None, limit: int = 0) -> dict:
    """``pixsearch eval score``; ``limit`` keeps the first N judged images (tests)."""
    from pixsearch.models.encoder import create_encoder
    from pixsearch.models.scorer import load_scorer
    from pixsearch.train.scorer import cross_validated, generated_captions

    ds = load_dataset(Path(data)).split(split)
    scorer = load_scorer(scorer_name)
    enc = create_encoder(scorer.card.get("encoder"))
    rows = judged_rows(ds)
    if limit:
        keep = set(sorted({r.image for r in rows})[:limit])
        rows = [r for r in rows if r.image in keep]
    if not rows:
        raise DatasetError(f"split {split!r} of {data} has no judged pairs (expert/crowd annotations)")
    images = sorted({r.image for r in rows})
    pairs = [p for p in true_false_pairs(ds) if p.image in set(images)]
    names = sorted(set(images) | {p.image for p in pairs})
    feats = image_features(ds, names, enc)
    gen = generated_captions(feats, enc, scorer)
    sig = row_signals(ds, rows, enc, scorer, feats, gen)
    psig = row_signals(ds, pairs, enc, scorer, feats, gen)
    px = np.array([scorer.predict(s, references=False) for s in sig])
    rf = np.array([scorer.predict(s, references=True) for s in sig])
    pp = np.array([scorer.predict(s, references=False) for s in psig])
    shipped = {**metrics(rows, px, rf), "pairwise_accuracy": pairwise_accuracy(pairs, pp)}
    fitted = set(scorer.card.get("rows", {}).get("judged_images", []))
    overlap = len(fitted & set(images))
    res: dict = {"split": split, "scorer": scorer.name, "signals": sorted(set().union(*sig))}
    if overlap:
        cv = cross_validated(rows, sig, pairs, psig, scorer.card)
        res.update(cv)
        res["figures"] = (
            f"{FOLDS}-fold cross-validation grouped by image: the shipped scorer was fitted on "
            f"{overlap} of these {len(images)} images' judgments, so its own figures are in-sample"
        )
        res["shipped_in_sample"] = shipped
    else:
        res.update(shipped)
        res["figures"] = "shipped scorer; none of these images were used to fit it"
    return res
