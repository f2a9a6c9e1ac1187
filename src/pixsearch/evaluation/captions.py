"""Caption metrics as the coco-caption scorer defines them (pure Python, no Java), and ``eval caption``.

* Tokens: :func:`pixsearch.models.vocab.tokenize`, the captioner's own tokenizer (lowercased, no
  punctuation, PTB clitics), so what it writes is scored exactly as it was learned.
* BLEU-1..4: corpus BLEU with clipped n-gram counts against all references and the brevity penalty from
  the reference length closest to each hypothesis (coco-caption's ``option='closest'``), on 0-100.
* CIDEr-D: TF-IDF n-gram vectors (n = 1..4, document frequencies from the evaluated references), clipped
  hypothesis weights, a Gaussian length penalty (sigma 6) and the x10 scale, as coco-caption's ``Cider``.
  Its length is coco-caption's too: the number of bigrams (the reference code counts ``n == 1``).
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Callable, Sequence
from pathlib import Path

from pixsearch.models.vocab import tokenize

__all__ = ["bleu", "cider_d", "caption_scores", "eval_caption"]

Ngrams = Counter[tuple[str, ...]]


def _ngrams(words: Sequence[str], n: int = 4) -> Ngrams:
    c: Ngrams = Counter()
    for k in range(1, n + 1):
        for i in range(len(words) - k + 1):
            c[tuple(words[i : i + k])] += 1
    return c


def bleu(hyps: Sequence[Sequence[str]], refs: Sequence[Sequence[Sequence[str]]]) -> list[float]:
    """Corpus BLEU-1..4 (0-100) of tokenised hypotheses against their lists of tokenised references."""
    if len(hyps) != len(refs):
        raise ValueError("one list of references per hypothesis")
    tiny, small = 1e-15, 1e-9
    testlen = reflen = 0
    guess = [0] * 4
    correct = [0] * 4
    for hyp, rs in zip(hyps, refs, strict=True):
        maxc: Ngrams = Counter()
        for r in rs:
            for g, c in _ngrams(r).items():
                maxc[g] = max(maxc[g], c)
        n = len(hyp)
        testlen += n
        reflen += min((len(r) for r in rs), key=lambda x: (abs(x - n), x)) if rs else 0
        for g, c in _ngrams(hyp).items():
            correct[len(g) - 1] += min(c, maxc.get(g, 0))
        for k in range(4):
            guess[k] += max(0, n - k)
    out = []
    prod = 1.0
    ratio = (testlen + tiny) / (reflen + small)
    for k in range(4):
        prod *= (correct[k] + tiny) / (guess[k] + small)
        b = prod ** (1.0 / (k + 1))
        if ratio < 1:
            b *= math.exp(1 - 1 / ratio)
        out.append(100.0 * b)
    return out


def cider_d(
    hyps: Sequence[Sequence[str]], refs: Sequence[Sequence[Sequence[str]]], sigma: float = 6.0
) -> float:
    """Corpus CIDEr-D (mean over images; about 0..10, typically 0.3-0.7 for Flickr8k models)."""
    if len(hyps) != len(refs):
        raise ValueError("one list of references per hypothesis")
    if not hyps:
        return 0.0
    crefs = [[_ngrams(r) for r in rs] for rs in refs]
    df: Counter[tuple[str, ...]] = Counter()
    for rs in crefs:
        df.update({g for r in rs for g in r})
    ref_len = math.log(float(len(crefs)))

    def vec(c: Ngrams) -> tuple[list[dict[tuple[str, ...], float]], list[float], int]:
        v: list[dict[tuple[str, ...], float]] = [{} for _ in range(4)]
        norm = [0.0] * 4
        length = 0
        for g, tf in c.items():
            n = len(g) - 1
            w = float(tf) * (ref_len - math.log(max(1.0, df.get(g, 0))))
            v[n][g] = w
            norm[n] += w * w
            if n == 1:
                length += tf
        return v, [math.sqrt(x) for x in norm], length

    total = 0.0
    for hyp, rs in zip(hyps, crefs, strict=True):
        vh, nh, lh = vec(_ngrams(hyp))
        score = [0.0] * 4
        for r in rs:
            vr, nr, lr = vec(r)
            pen = math.exp(-((lh - lr) ** 2) / (2 * sigma**2))
            for n in range(4):
                val = sum(min(w, vr[n].get(g, 0.0)) * vr[n].get(g, 0.0) for g, w in vh[n].items())
                if nh[n] != 0 and nr[n] != 0:
                    val /= nh[n] * nr[n]
                score[n] += val * pen
        total += sum(score) / 4 / max(1, len(rs)) * 10.0
    return total / len(hyps)


def caption_scores(hyps: Sequence[str], refs: Sequence[Sequence[str]]) -> dict[str, float]:
    """``bleu1..4`` (0-100) and ``cider`` for raw hypothesis strings against raw reference strings."""
    th = [tokenize(h) for h in hyps]
    tr = [[tokenize(r) for r in rs] for rs in refs]
    b = bleu(th, tr)
    res = {f"bleu{k + 1}": round(b[k], 2) for k in range(4)}
    res["cider"] = round(cider_d(th, tr), 4)
    return res


def eval_caption(
    data: Path,
    split: str,
    captioner: str | None = None,
    beam: int = 3,
    progress: Callable[[int, int], None] | None = None,
) -> dict:
    """``pixsearch eval caption``: caption every image of the split through the runtime models, score.

    Features are computed (and cached) through the captioner's encoder, so this works on any dataset
    dir; images that do not decode are left out and counted in ``skipped``.
    """
    from pixsearch.corpus.datasets import load_dataset
    from pixsearch.corpus.features import FeatureCache
    from pixsearch.errors import DatasetError
    from pixsearch.models.captioner import create_captioner
    from pixsearch.models.encoder import create_encoder

    cap = create_captioner(captioner)
    enc = create_encoder(cap.encoder_name)
    cap.check_encoder(enc)
    ds = load_dataset(Path(data)).split(split)
    by_img = ds.captions_by_image()
    names = [n for n in ds.images if by_img.get(n)]
    if not names:
        raise DatasetError(f"split {split!r} of {data} has no captioned images")
    feats = FeatureCache().encoder_features(enc, [ds.image_path(n) for n in names], "spatial", progress)
    keep = [i for i, ok in enumerate(feats.ok) if ok]
    hyps = cap.caption_features(feats.arrays["spatial"][keep], beam=beam)
    refs = [[c.text for c in by_img[names[i]]] for i in keep]
    return {
        "captioner": cap.name,
        "split": split,
        "beam": beam,
        "n_images": len(keep),
        "skipped": len(names) - len(keep),
        **caption_scores(hyps, refs),
    }
