"""Duplicate-finder evaluation: the edited copies a benchmark makes of a photo, and pair precision/recall
of the groups a finder returns against which file came from which photo.

Why these edits: they are what people do to a photo they already have (a smaller copy for the web, a
re-saved JPEG, a straightened or cropped version, a brightened one, a signed one), so a copy made this
way is a duplicate the finder must group with its original. Different shots of one scene (a burst, the
next photo of the same jump) are not: a benchmark takes those from real photos (``bench_duplicates.py``).
"""

from __future__ import annotations

import itertools
import math
import random
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from PIL import Image, ImageDraw, ImageEnhance, ImageFont

__all__ = ["EDITS", "PairScores", "copies_grouped", "edited_copy", "pair_scores"]

Edit = Callable[[Image.Image, random.Random], Image.Image]


def _half(img: Image.Image, rng: random.Random) -> Image.Image:
    return img.resize((max(1, img.width // 2), max(1, img.height // 2)), Image.Resampling.LANCZOS)


def _same(img: Image.Image, rng: random.Random) -> Image.Image:
    return img  # saved at quality 40 by ``edited_copy``: a re-encoded copy


def _crop(img: Image.Image, rng: random.Random) -> Image.Image:
    """5-10% of each side's length cut away, split at random between the two edges."""
    w, h = img.size
    cw, ch = round(w * rng.uniform(0.05, 0.10)), round(h * rng.uniform(0.05, 0.10))
    left, top = rng.randint(0, cw), rng.randint(0, ch)
    return img.crop((left, top, w - (cw - left), h - (ch - top)))


def _tone(img: Image.Image, rng: random.Random) -> Image.Image:
    brighter = ImageEnhance.Brightness(img).enhance(rng.choice((0.8, 1.25)) * rng.uniform(0.95, 1.05))
    return ImageEnhance.Contrast(brighter).enhance(rng.uniform(0.8, 1.25))


def _rotate(img: Image.Image, rng: random.Random) -> Image.Image:
    """Straightened by 1-3 degrees and cropped to the largest upright rectangle, as photo editors do."""
    deg = rng.uniform(1.0, 3.0) * rng.choice((-1, 1))
    a = math.radians(abs(deg))
    w, h = img.size
    turned = img.rotate(deg, Image.Resampling.BICUBIC, expand=False)
    # the largest axis-aligned rectangle of the same aspect inside the turned w x h frame
    scale = 1 / (math.cos(a) + math.sin(a) * max(w / h, h / w))
    cw, ch = w * scale, h * scale
    return turned.crop((round((w - cw) / 2), round((h - ch) / 2), round((w + cw) / 2), round((h + ch) / 2)))


def _watermark(img: Image.Image, rng: random.Random) -> Image.Image:
    """A photographer's signature in a corner: white text at 60% opacity, a fifteenth of the height."""
    out = img.convert("RGBA")
    layer = Image.new("RGBA", out.size, (0, 0, 0, 0))
    font = ImageFont.load_default(size=max(10, img.height // 15))
    text = f"(c) {rng.choice(('J. Doe', 'Studio Nord', 'pixsearch'))} {rng.randint(2001, 2024)}"
    draw = ImageDraw.Draw(layer)
    x0, y0, x1, y1 = draw.textbbox((0, 0), text, font=font)
    pad = img.height // 30
    x = pad if rng.random() < 0.5 else max(pad, img.width - (x1 - x0) - pad)
    y = img.height - (y1 - y0) - 2 * pad
    draw.text((x - x0, y - y0), text, font=font, fill=(255, 255, 255, 153))
    return Image.alpha_composite(out, layer).convert("RGB")


# name -> (edit, JPEG quality the copy is saved at)
EDITS: dict[str, tuple[Edit, int]] = {
    "resize50": (_half, 90),
    "jpeg40": (_same, 40),
    "resize50_jpeg40": (_half, 40),
    "crop": (_crop, 90),
    "tone": (_tone, 90),
    "rotate": (_rotate, 90),
    "watermark": (_watermark, 90),
}


def edited_copy(img: Image.Image, edit: str, seed: int) -> tuple[Image.Image, int]:
    """(the edited image, the JPEG quality to save it at) for one of ``EDITS``; ``seed`` fixes it."""
    fn, quality = EDITS[edit]
    return fn(img.convert("RGB"), random.Random(seed)), quality


@dataclass(frozen=True)
class PairScores:
    """Pairs of photos a finder put in one group, against the pairs that are copies of one photo."""

    true_pairs: int  # grouped, and copies of one photo
    false_pairs: int  # grouped, but different photos
    missed_pairs: int  # copies of one photo left apart
    hard_negatives: int  # look-alike pairs in the labelled set
    hard_negatives_grouped: int  # of those, grouped all the same (also counted in false_pairs)

    @property
    def precision(self) -> float:
        found = self.true_pairs + self.false_pairs
        return self.true_pairs / found if found else 1.0

    @property
    def recall(self) -> float:
        want = self.true_pairs + self.missed_pairs
        return self.true_pairs / want if want else 1.0

    def to_dict(self) -> dict[str, Any]:
        return {
            "precision": round(self.precision, 4),
            "recall": round(self.recall, 4),
            "true_pairs": self.true_pairs,
            "false_pairs": self.false_pairs,
            "missed_pairs": self.missed_pairs,
            "hard_negatives": self.hard_negatives,
            "hard_negatives_grouped": self.hard_negatives_grouped,
        }


def _pairs(items: Iterable[str]) -> set[frozenset[str]]:
    return {frozenset(p) for p in itertools.combinations(sorted(set(items)), 2)}


def pair_scores(
    groups: Iterable[Sequence[str]],
    source: Mapping[str, str],
    hard_negatives: Iterable[tuple[str, str]] = (),
) -> PairScores:
    """Score ``groups`` (each a list of photo keys) by pairs: two photos grouped together are a true pair
    when ``source`` maps both to the same original, else a false one. Every pair of photos with one
    source is a positive (an original with its copies, the copies among themselves). Keys missing from
    ``source`` are their own source. ``hard_negatives`` (look-alike pairs of different photos) are counted
    apart too, so a report can say how many of the hardest pairs were grouped."""
    found: set[frozenset[str]] = set()
    for g in groups:
        found |= _pairs(g)
    by_source: dict[str, list[str]] = {}
    for key, src in source.items():
        by_source.setdefault(src, []).append(key)
    want: set[frozenset[str]] = set()
    for members in by_source.values():
        want |= _pairs(members)

    def same(p: frozenset[str]) -> bool:
        a, b = tuple(p)
        return source.get(a, a) == source.get(b, b)

    true = sum(1 for p in found if same(p))
    hard = {frozenset(p) for p in hard_negatives if p[0] != p[1]}
    hard = {p for p in hard if not same(p)}
    return PairScores(
        true_pairs=true,
        false_pairs=len(found) - true,
        missed_pairs=len(want - found),
        hard_negatives=len(hard),
        hard_negatives_grouped=len(hard & found),
    )


def copies_grouped(
    groups: Iterable[Sequence[str]], source: Mapping[str, str], edit: Mapping[str, str]
) -> dict[str, float]:
    """Per edit: the share of copies (keys of ``edit``, naming the edit that made each) that were put in
    one group with their original (``source[key]``). Unlike pair recall, a family of many copies
    does not weigh more than one of a few."""
    where = {k: n for n, g in enumerate(groups) for k in g}
    hits: dict[str, list[bool]] = {}
    for key, name in edit.items():
        ok = key in where and where.get(source.get(key, key)) == where[key]
        hits.setdefault(name, []).append(ok)
    return {name: round(sum(v) / len(v), 4) for name, v in sorted(hits.items())}
