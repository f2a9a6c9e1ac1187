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
Rows and signals come from ``match_rows.py`` and the figures from ``match_fit.py``, the code
``pixsearch train scorer`` fits with, so the two cannot disagree.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from pixsearch.corpus.datasets import load_dataset
from pixsearch.errors import DatasetError
from pixsearch.evaluation.match_fit import FOLDS, cross_validated, metrics, pairwise_accuracy
from pixsearch.evaluation.match_rows import (
    generated_captions,
    image_features,
    judged_rows,
    row_signals,
    true_false_pairs,
)

__all__ = ["eval_score"]


def eval_score(data: Path, split: str, scorer_name: str | None = None, limit: int = 0) -> dict:
    """``pixsearch eval score``; ``limit`` keeps the first N judged images (tests)."""
    from pixsearch.models.encoder import create_encoder
    from pixsearch.models.scorer import load_scorer

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
