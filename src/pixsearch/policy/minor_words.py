"""The one rule that turns human captions into "shows a person under 16" labels (training and eval).

Why a rule of its own, apart from the query check (``rules.py``, ``topic.py``): labels must be
*stable* (a change to the query lexicon must not silently move the training set or the eval's positives) and
*English only* (Flickr8k captions are English). The query check is broader on purpose (nine languages,
typos, semantic similarity) and is what runs on a photo's captions in production.

A caption mentions a minor when it contains, as a whole word (case-insensitive):

* child nouns: child, children, childs, kid, kids, kiddie, kiddy, kiddo, boy, boys, girl, girls, baby,
  babies, toddler(s), infant(s), newborn(s), teen(s), teenager(s), teenage, preteen(s), tween(s),
  youngster(s), youth(s), schoolboy(s), schoolgirl(s), adolescent(s), "little league";
* or a stated age under 16: "10 year old", "ten-year-old", "a 3 yr old", "aged 12";

unless the noun is part of a look-alike: "kid goat", "baby" / "kid" followed by an animal word ("baby
elephant", "baby goat"...), "baby carrots", "baby back ribs". Words such as son, daughter, brother,
student or "young" are *not* counted: they do not imply an age under 16.

A photo is positive when **any** of its human captions mentions a minor (one annotator seeing a child is
enough: a missed child is the costly error).
"""

from __future__ import annotations

import re
from collections.abc import Iterable

__all__ = ["caption_mentions_minor", "photo_is_positive", "MAX_AGE"]

MAX_AGE = 15  # "under 16"

_NOUNS = (
    r"child|children|childs|kid|kids|kiddie|kiddies|kiddy|kiddo|boy|boys|girl|girls|baby|babies|"
    r"toddler|toddlers|infant|infants|newborn|newborns|teen|teens|teenager|teenagers|teenage|preteen|"
    r"preteens|tween|tweens|youngster|youngsters|youth|youths|schoolboy|schoolboys|schoolgirl|"
    r"schoolgirls|adolescent|adolescents"
)
_ANIMALS = (
    r"goat|goats|elephant|elephants|animal|animals|lamb|lambs|calf|calves|cow|cows|horse|horses|deer|"
    r"bird|birds|duck|ducks|chick|chicks|seal|seals|bear|bears|monkey|monkeys|giraffe|giraffes|dog|dogs|"
    r"puppy|puppies|cat|cats|kitten|kittens|pig|pigs|sheep|carrot|carrots|back|spinach|shower|shark"
)
_NOUN = re.compile(rf"\b({_NOUNS})\b(?!\s+(?:{_ANIMALS})\b)")
_PHRASE = re.compile(r"\blittle\s+league\b")
_NUMBERS = {
    w: i
    for i, w in enumerate(
        "zero one two three four five six seven eight nine ten eleven twelve thirteen fourteen fifteen "
        "sixteen seventeen eighteen nineteen twenty".split()
    )
}
_AGE = re.compile(
    r"\b(\d{1,3}|" + "|".join(_NUMBERS) + r")[\s-]*(?:years?|yrs?|yr)[\s-]*old\b|\baged?\s+(\d{1,3})\b"
)


def _ages(text: str) -> Iterable[int]:
    for m in _AGE.finditer(text):
        raw = m.group(1) or m.group(2)
        yield int(raw) if raw.isdigit() else _NUMBERS[raw]


def caption_mentions_minor(text: str) -> bool:
    """True when ``text`` (an English caption) names a person under 16 by the rule above."""
    t = " ".join(text.lower().replace("'s", "").split())
    if _NOUN.search(t) or _PHRASE.search(t):
        return True
    return any(a <= MAX_AGE for a in _ages(t))


def photo_is_positive(captions: Iterable[str]) -> bool:
    """A photo's label: any of its human captions mentions a minor."""
    return any(caption_mentions_minor(c) for c in captions)
