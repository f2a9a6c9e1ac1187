"""Labels: the image model's confident ImageNet classes, stored per photo and searchable as words.

The classifier comes free with the image backbone (its ``logits``), so labels cost nothing at index
time. A label is kept when its softmax probability clears ``THRESHOLD``, calibrated on Flickr8k val
(docs/model.md, "Labels"): a label counts as right when one of its words appears in the photo's human
captions. Words are the class's names, a few everyday synonyms ("seashore" -> beach) and a hypernym for
the big families (every dog breed is also "dog"), because people search "dog", not "Labrador retriever".
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from pixsearch.indexing.enrichers.base import mark_done, not_done
from pixsearch.storage.catalog import fts_query

if TYPE_CHECKING:
    from pixsearch.models.encoder import JointEncoder
    from pixsearch.storage.catalog import Catalog

__all__ = ["THRESHOLD", "LabelClass", "LabelsEnricher", "label_classes", "label_search", "top_labels"]

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
    text = (Path(__file__).resolve().parents[2] / "data" / "imagenet_classes.txt").read_text(encoding="utf-8")
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


class LabelsEnricher:
    """Stores each photo's confident ImageNet classes in ``labels`` (FTS5-indexed ``words``)."""

    name = "labels"

    def __init__(self, encoder: JointEncoder, threshold: float = THRESHOLD, k: int = TOP_K) -> None:
        self.encoder = encoder
        self.threshold = threshold
        self.k = k

    @property
    def fingerprint(self) -> str:
        # logits come from the encoder's image model (its fine-tuned top included)
        return f"labels-v1:t{self.threshold:g}:k{self.k}|{self.encoder.fingerprint}"

    def stale_ids(self, catalog: Catalog) -> list[int]:
        return not_done(catalog, self.name, self.fingerprint)

    def prepare(
        self, features: Mapping[str, np.ndarray], thumbnails: Sequence[bytes | None]
    ) -> dict[str, np.ndarray]:
        return {}  # a softmax over logits the writer already has: nothing worth moving to a worker

    def enrich(
        self, catalog: Catalog, image_ids: Sequence[int], features: Mapping[str, np.ndarray]
    ) -> list[int]:
        ids = [int(i) for i in image_ids]
        if not ids:
            return []
        catalog.db.execute(f"DELETE FROM labels WHERE image_id IN ({','.join('?' * len(ids))})", ids)
        rows = [
            (iid, cls.name, cls.words, p, self.fingerprint)
            for iid, labs in zip(ids, top_labels(features["logits"], self.threshold, self.k), strict=True)
            for cls, p in labs
        ]
        catalog.db.executemany(
            "INSERT OR IGNORE INTO labels(image_id, label, words, score, model) VALUES (?, ?, ?, ?, ?)", rows
        )
        mark_done(catalog, self.name, self.fingerprint, ids)
        return []


def _stem(word: str) -> str:
    w = word.lower()
    for suf in ("ing", "es", "s"):
        if w.endswith(suf) and len(w) > len(suf) + 2:
            return w[: -len(suf)]
    return w


def label_search(catalog: Catalog, text: str, limit: int) -> dict[int, tuple[float, str]]:
    """Image id -> (evidence, label) for its best label whose words match the query.

    Evidence = the label's probability x the share of the query's content words it covers: "dog" is
    all of the query "dog" but one word of five in "a black dog runs through the grass", where the
    label says much less about whether the photo fits (measured: full weight hurt caption-like
    queries, docs/model.md "Labels").
    """
    q = fts_query(text)
    if not q:
        return {}
    qwords = {_stem(w) for w in q.replace('"', "").split(" OR ")}
    rows = catalog.db.execute(
        "SELECT l.image_id, l.score, l.label, l.words FROM labels_fts f JOIN labels l ON l.id = f.rowid "
        "WHERE labels_fts MATCH ? ORDER BY l.score DESC LIMIT ?",
        (q, limit),
    ).fetchall()
    out: dict[int, tuple[float, str]] = {}
    for iid, score, label, words in rows:
        cover = len(qwords & {_stem(w) for w in str(words).split()}) / len(qwords)
        ev = float(score) * cover
        if int(iid) not in out or ev > out[int(iid)][0]:
            out[int(iid)] = (ev, str(label))
    return out


def labels_of(catalog: Catalog, image_ids: Sequence[int]) -> dict[int, list[tuple[str, float]]]:
    """Image id -> [(label, probability)] best first, for results and the captions gallery."""
    out: dict[int, list[tuple[str, float]]] = {}
    ids = [int(i) for i in image_ids]
    for s in range(0, len(ids), 900):
        chunk = ids[s : s + 900]
        for iid, label, score in catalog.db.execute(
            f"SELECT image_id, label, score FROM labels WHERE image_id IN ({','.join('?' * len(chunk))}) "
            "ORDER BY score DESC",
            chunk,
        ):
            out.setdefault(int(iid), []).append((str(label), float(score)))
    return out
