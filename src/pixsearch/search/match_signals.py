"""The match scorer's signals and scores for many library photos and one text at once (a search's window).

``Scorer.pair_signals`` and ``Scorer.combine`` (``models/scorer.py``) handle one (text, photo) pair; a
search ranks its whole window (dozens of photos) by the calibrated match for one text, so here the same
signals come from a few array operations over the window, and photos offering the same signals share one
logistic model call. Same definitions: ``dense`` is the photo's joint cosine with the text; ``bank_joint``
the mean joint cosine of the text with the photo's ``BANK_K`` nearest bank captions, ``bank_text`` the
mean MiniLM cosine with the nearer half of them; ``generated`` the cosine with the photo's generated
caption; ``ref_max`` / ``ref_mean`` over its human captions.

One difference: a human caption identical to the text counts as a reference here. The scorer's fit left
it out because its texts were the judged photos' own captions; in a library it means that a person
already wrote these very words for this photo. Left out, typing a photo's caption found that photo
first in 45 of 100 Flickr8k queries (7,567 photos), against 93 counted and 97 by the fused order.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from pixsearch.models.scorer import REF_SIGNALS, MatchScore, Scorer, TextCheck

__all__ = ["combine_many", "window_signals"]


def window_signals(
    scorer: Scorer,
    text_minilm: np.ndarray,
    text_joint: np.ndarray,
    vectors: np.ndarray,
    neighbours: np.ndarray,
    references: Sequence[np.ndarray | None],
    generated: Sequence[float | None],
) -> list[dict[str, float]]:
    """Signals per photo: ``vectors`` (P, joint dim) the photos' joint vectors, ``neighbours`` (P, k)
    their bank rows nearest first, ``references`` each photo's human captions' MiniLM cosines with the
    text (None: it has none), ``generated`` its generated caption's cosine (None: none, or not used)."""
    if not len(vectors):
        return []
    nb = np.asarray(neighbours)
    dense = np.asarray(vectors, dtype=np.float32) @ text_joint
    rows, where = np.unique(nb, return_inverse=True)
    bank_joint = (scorer.bank_joint[rows] @ text_joint)[where.reshape(nb.shape)].mean(axis=1)
    near = nb[:, : max(1, nb.shape[1] // 2)]
    rows, where = np.unique(near, return_inverse=True)
    near_text = scorer.bank_text[rows].astype(np.float32, copy=False) @ text_minilm
    bank_text = near_text[where.reshape(near.shape)].mean(axis=1)
    out = []
    for p in range(len(dense)):
        s = {"dense": float(dense[p]), "bank_joint": float(bank_joint[p]), "bank_text": float(bank_text[p])}
        g = generated[p]
        if g is not None:
            s["generated"] = float(g)
        r = references[p]
        if r is not None and len(r):
            s["ref_max"], s["ref_mean"] = float(r.max()), float(r.mean())
        out.append(s)
    return out


def combine_many(
    scorer: Scorer, signals: Sequence[dict[str, float]], check: TextCheck, references: bool = True
) -> list[MatchScore]:
    """``Scorer.combine`` for each photo's signals: the largest fitted model the signals allow, one call
    per distinct set of signals."""
    groups: dict[frozenset[str], list[int]] = {}
    for p, s in enumerate(signals):
        groups.setdefault(frozenset(s), []).append(p)
    out: list[MatchScore | None] = [None] * len(signals)
    for avail, members in groups.items():
        model = scorer.model_for(set(avail), references)
        x = np.array([[signals[p][f] for f in model.features] for p in members], dtype=np.float64)
        probs = model(x)
        mode = "references" if any(f in REF_SIGNALS for f in model.features) else "pixels"
        for p, prob in zip(members, probs.tolist(), strict=True):
            used = {f: signals[p][f] for f in model.features}
            out[p] = MatchScore(float(prob), used, mode, check.low_confidence, check.reasons)
    return [m for m in out if m is not None]
