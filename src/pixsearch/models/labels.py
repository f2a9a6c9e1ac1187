"""Labels: the image model's confident ImageNet classes, with the words people search them by.

The classifier comes free with the image backbone (its ``logits``), so labels cost nothing at index
time. A label is kept when its softmax probability clears ``THRESHOLD``, calibrated on Flickr8k val
(docs/model.md, "Labels"): a label counts as right when one of its words appears in the photo's human
captions. Words are the class's names, a few everyday synonyms ("seashore" -> beach) and a hypernym for
the big families (every dog breed is also "dog"), because people search "dog", not "Labrador retriever".

Shared by the labels enricher (``indexing/enrichers/labels.py``, which stores them) and label search
(``search/labels.py``, which matches query words against them).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np

__all__ = ["THRESHOLD", "TOP_K", "LabelClass", "label_classes", "softmax", "top_labels"]

# Softmax probability a class needs to become a label (see the calibration table in docs/model.md).
THRESHOLD = 0.4
TOP_K = 3  # at most this many labels per photo

# ImageNet index ranges (inclusive) of families whose members people call by the family's name.
_FAMILIES: tuple[tuple[int, int, str], ...] = (
    (0, 6, "fish"),
    (7, 24, "bird"),
    (33, 37, "turtle"),
    (38, 48, "lizard"),
    (52, 68, "snake"),
    (80, 100, "bird"),
    (127, 146, "bird"),
    (151, 268, "dog"),
    (281, 285, "cat"),
    (294, 297, "bear"),
    (300, 320, "insect"),
    (321, 326, "butterfly"),
    (365, 384, "monkey"),
)
# Everyday words for classes whose ImageNet names nobody types (checked against val captions).
_SYNONYMS: dict[str, str] = {
    "seashore": "beach ocean sea shore",
    "ballplayer": "baseball player ball",
    "academic gown": "graduation gown",
    "mortarboard": "graduation cap",
    "stage": "stage concert",
    "sandbar": "beach sand",
    "lakeside": "lake water",
    "alp": "mountain mountains snow",
    "valley": "mountain hills",
    "cliff": "cliff rock rocks",
    "ski": "ski skiing skier snow",
    "snowmobile": "snow",
    "dogsled": "sled snow dog",
    "swimming trunks": "swimming swim water",
    "maillot": "swimsuit bikini swimming",
    "bikini": "bikini swimsuit",
    "jersey": "shirt jersey",
    "sweatshirt": "shirt sweatshirt",
    "mountain bike": "bike bicycle biking",
    "bicycle-built-for-two": "bike bicycle",
    "tricycle": "bike",
    "unicycle": "bike",
    "moped": "motorcycle",
    "motor scooter": "scooter motorcycle",
    "football helmet": "football helmet",
    "crash helmet": "helmet",
    "rugby ball": "rugby ball",
    "soccer ball": "soccer ball",
    "tennis ball": "tennis ball",
    "racket": "tennis racket",
    "basketball": "basketball ball",
    "volleyball": "volleyball ball",
    "golf ball": "golf ball",
    "paddle": "canoe kayak paddle",
    "canoe": "canoe kayak boat",
    "speedboat": "boat",
    "lifeboat": "boat",
    "fireboat": "boat",
    "gondola": "boat",
    "pier": "pier dock water",
    "fountain": "fountain water",
    "groom": "wedding bride groom",
    "cowboy hat": "hat cowboy",
    "sombrero": "hat",
    "sunglasses": "sunglasses glasses",
    "sunglass": "sunglasses glasses",
    "balloon": "balloon balloons",
    "microphone": "microphone singing",
    "electric guitar": "guitar",
    "acoustic guitar": "guitar",
    "horse cart": "horse cart",
    "sorrel": "horse",
    "ox": "cow cattle",
    "ram": "sheep",
    "bubble": "bubble bubbles",
    "swing": "swing",
    "park bench": "bench park",
    "jinrikisha": "cart",
    "streetcar": "street city",
    "trolleybus": "street city bus",
    "cab": "taxi car street",
    "limousine": "car",
    "sports car": "car",
    "racer": "car race",
    "go-kart": "kart race",
    "snowplow": "snow",
    "shovel": "snow shovel",
    "tractor": "tractor",
    "wreck": "boat",
    "volcano": "mountain",
    "geyser": "water",
    "breakwater": "water ocean rocks",
    "promontory": "cliff ocean",
    "steel arch bridge": "bridge",
    "suspension bridge": "bridge",
    "bannister": "stairs",
    "dam": "water",
    "pole": "pole",
    "parachute": "parachute",
    "barrow": "wheelbarrow",
    "kimono": "dress",
    "gown": "dress",
    "hoopskirt": "dress",
    "miniskirt": "skirt",
    "trench coat": "coat",
    "fur coat": "coat",
    "lab coat": "coat",
    "cardigan": "sweater",
    "wool": "sweater",
    "pajama": "pajamas",
    "diaper": "baby",
    "bib": "baby",
    "crib": "baby",
    "bathtub": "bath",
    "tub": "bath",
    "puck": "hockey",
    "ski mask": "mask",
    "lakeland terrier": "terrier",
}
_LATIN = re.compile(r"^[A-Z][a-z]+ [a-z]+$")


@dataclass(frozen=True)
class LabelClass:
    name: str  # what is shown: the class's first name
    words: str  # what is searched: names, synonyms, family


@lru_cache(maxsize=1)
def label_classes() -> tuple[LabelClass, ...]:
    """The 1,000 ImageNet classes in logit order, with their searchable words."""
    text = (Path(__file__).resolve().parents[1] / "data" / "imagenet_classes.txt").read_text(encoding="utf-8")
    rows = [ln.split("\t", 1)[1] for ln in text.splitlines() if ln and not ln.startswith("#")]
    family = {i: f for lo, hi, f in _FAMILIES for i in range(lo, hi + 1)}
    out = []
    for i, row in enumerate(rows):
        lemmas = [x.strip() for x in row.split(",") if x.strip()]
        names = [lemmas[0]] + [x for x in lemmas[1:] if not _LATIN.match(x)]
        extra = [_SYNONYMS[n] for n in names if n in _SYNONYMS]
        words = " ".join(dict.fromkeys(" ".join([*names, *extra, family.get(i, "")]).split()))
        out.append(LabelClass(lemmas[0], words))
    return tuple(out)


def softmax(logits: np.ndarray) -> np.ndarray:
    z = np.asarray(logits, dtype=np.float64)
    z = np.exp(z - z.max(axis=1, keepdims=True))
    return (z / z.sum(axis=1, keepdims=True)).astype(np.float32)


def top_labels(
    logits: np.ndarray, threshold: float = THRESHOLD, k: int = TOP_K
) -> list[list[tuple[LabelClass, float]]]:
    """Per row: the (class, probability) pairs of the top ``k`` classes at or above ``threshold``."""
    classes = label_classes()
    p = softmax(logits)
    order = np.argsort(-p, axis=1)[:, :k]
    return [
        [(classes[int(c)], float(p[r, c])) for c in order[r] if p[r, c] >= threshold]
        for r in range(p.shape[0])
    ]
