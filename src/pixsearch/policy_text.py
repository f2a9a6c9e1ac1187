"""Text normalisation and the lexicon check for a policy topic (the fast, exact half of the query check).

A query is rewritten into *canonical tokens* so that the tricks people use to slip a word past a filter
all collapse to the lexicon's own spelling:

1. NFKC (full-width letters, ligatures, mathematical alphabets, circled letters -> plain letters);
2. invisible characters dropped (zero-width spaces/joiners, soft hyphen, BOM, variation selectors) and
   Latin/Greek/Cyrillic combining accents stripped (``niño`` -> ``nino``; kana voicing marks are kept);
3. case folded; Cyrillic/Greek/Armenian look-alikes mapped to the Latin letter they imitate (``сhіld``);
4. leetspeak inside words that contain letters (``k1d``, ``b4by``, ``ch!ld``), both ``1 -> i`` and
   ``1 -> l``; numbers alone stay numbers (ages are read from them);
5. punctuation is a word break; runs of single letters are joined (``c h i l d``, ``k.i.d.s``) and
   adjacent fragments are tried joined (``ch ild``); a letter repeated 3+ times counts twice
   (``kiiiids`` -> ``kiids``, one edit from ``kids``).

Lexicon entries go through the same pipeline, so a Russian word whose letters are mapped in step 3
still equals itself. Words of >= ``fuzzy_min_len`` letters also match at Damerau edit distance 1
(``childern``, ``toddlr``) unless the word is a listed real word (``chili``, ``finder``): see the lexicon
file's ``?`` lines. Chinese, Japanese, Korean, Thai and Arabic entries match as substrings.
Look-alike exceptions (``!kid goat``, ``!baby carrots``) cancel the hits they cover, nothing else.
Stated ages (``15-year-old``, ``12 yo``, ``10 años``, ``8岁``) at or below ``max_age`` block.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING

from .errors import ConfigError

if TYPE_CHECKING:
    from .policy import QueryVerdict, Topic

__all__ = [
    "Lexicon",
    "TopicChecker",
    "canonical_tokens",
    "lexicon_text",
    "normalize",
    "find_ages",
    "base_normalize",
    "clean",
]

MAX_CHARS = 20_000  # longer texts are checked in full by the lexicon but cut for the semantic model

# Cyrillic, Greek and other letters that render like a Latin letter (after casefold), per Unicode's
# confusables for the lower case. Only letters, never digits (digits are leet, handled in words).
_HOMOGLYPHS = {
    # Cyrillic
    "а": "a", "в": "b", "е": "e", "ѐ": "e", "ё": "e", "і": "i", "ї": "i", "ј": "j", "к": "k",
    "м": "m", "н": "h", "о": "o", "р": "p", "с": "c", "т": "t", "у": "y", "х": "x", "ѕ": "s", "һ": "h",
    "ԁ": "d", "ԛ": "q", "ԝ": "w", "ӏ": "l", "ɡ": "g", "ү": "y", "ь": "b", "ѡ": "w", "ԍ": "g",
    # Greek
    "α": "a", "β": "b", "γ": "y", "ε": "e", "η": "n", "ι": "i", "κ": "k", "ν": "v", "ο": "o", "ρ": "p",
    "τ": "t", "υ": "u", "χ": "x", "ω": "w", "ϲ": "c", "ϳ": "j", "ς": "s", "μ": "u",
    # Armenian, IPA and Latin oddities
    "օ": "o", "ս": "u", "հ": "h", "ց": "g", "ɑ": "a", "ı": "i", "ȷ": "j", "ɩ": "i", "ʟ": "l", "ɪ": "i",
    "ᴅ": "d", "ᴋ": "k", "ʜ": "h", "ᴄ": "c", "ᴏ": "o", "ʏ": "y", "ɴ": "n", "ʀ": "r", "ꜱ": "s", "ᴛ": "t",
    "ß": "ss", "ø": "o", "đ": "d", "ł": "l", "æ": "ae", "œ": "oe", "þ": "th",
}  # fmt: skip
_LEET = str.maketrans({"0": "o", "1": "i", "3": "e", "4": "a", "5": "s", "7": "t", "8": "b", "9": "g",
                       "@": "a", "$": "s", "!": "i", "|": "l", "+": "t", "€": "e", "¡": "i"})  # fmt: skip
_LEET_LB = {**_LEET, ord("1"): "l", ord("!"): "l", ord("|"): "i"}
_DIGITS = re.compile(r"(\d+)")
_LEET_CHARS = set("0134578 9@$!|+€¡".replace(" ", ""))
_INVISIBLE = re.compile(
    "[\u00ad\u034f\u061c\u115f\u1160\u17b4\u17b5\u180b-\u180f\u200b-\u200f\u202a-\u202e\u2060-\u206f"
    "\u3164\ufe00-\ufe0f\ufeff\uffa0\U000e0000-\U000e0fff]"
)
_COMBINING = re.compile("[\u0300-\u036f\u1ab0-\u1aff\u1dc0-\u1dff\u20d0-\u20ff\ufe20-\ufe2f]")
_HOMO_TABLE = str.maketrans({k: v for k, v in _HOMOGLYPHS.items() if len(v) == 1})
_HOMO_MULTI = {k: v for k, v in _HOMOGLYPHS.items() if len(v) > 1}
# Scripts matched as substrings: no spaces between words (Chinese, Japanese, Thai) or words that take
# attached particles/prefixes (Korean, Arabic).
_CJK = re.compile(
    "[\u0600-\u06ff\u0e00-\u0e7f\u1100-\u11ff\u3040-\u30ff\u3130-\u318f\u3400-\u4dbf\u4e00-\u9fff"
    "\uac00-\ud7af\uf900-\ufaff\uff66-\uff9f]"
)
_WORD = re.compile(r"[^\W_]+", re.UNICODE)
_GLUE = frozenset(
    "an the in on at of to is it as be by or and for with his her its my our we he she they you are was "
    "de la le el en et un une des les los las der die das und ein im am il lo da do di du al del no na "
    "se em com".split()  # no single letters: "bab y" must still join
)
RUN = "~"  # marks a token made of single letters joined (never produced by _WORD)
_REPEAT = re.compile(r"(\w)\1{2,}")  # 3+ of a letter -> 2 ("kiiiids" -> "kiids", fuzzy does the rest)


def base_normalize(text: str) -> str:
    """Steps 1-2 and case: NFKC, invisible characters and accents out, case folded (scripts kept)."""
    t = unicodedata.normalize("NFKC", text)
    t = _INVISIBLE.sub("", t)
    t = _COMBINING.sub("", unicodedata.normalize("NFD", t))
    return unicodedata.normalize("NFC", t).casefold()


def clean(text: str) -> str:
    """What the semantic model reads: NFKC, invisible characters out, spaces squeezed, case folded
    (accents and scripts kept: they carry meaning for a multilingual encoder)."""
    return " ".join(_INVISIBLE.sub("", unicodedata.normalize("NFKC", text)).split()).casefold()


def normalize(text: str) -> str:
    """Steps 1-3: ``base_normalize`` and look-alike letters mapped to Latin."""
    t = base_normalize(text).translate(_HOMO_TABLE)
    for k, v in _HOMO_MULTI.items():
        if k in t:
            t = t.replace(k, v)
    return t


def _unleet(chunk: str, table: dict[int, str]) -> str:
    """Undo leet in a whitespace-separated chunk that mixes letters and leet symbols (``k1d``,
    ``ch!ld``, ``t33n``); trailing sentence punctuation stays punctuation; pure numbers stay numbers."""
    core = chunk.rstrip(".,;:?!\"')]}>»”’")
    if not any(c.isalpha() for c in core) or not any(c in _LEET_CHARS for c in core):
        return chunk
    return core.translate(table) + chunk[len(core) :]


def _collapse(w: str) -> str:
    return _REPEAT.sub(r"\1\1", w)


def canonical_tokens(text: str, norm: str | None = None) -> list[list[str]]:
    """The text as a few canonical token streams: leet read with ``1 -> i``, with ``1 -> l``, and not
    at all (digits split from letters: ``2kids``); long letter runs also read as one letter. A hit in any
    stream counts."""
    norm = normalize(text) if norm is None else norm
    chunks = norm.split()
    a = " ".join(_unleet(c, _LEET) for c in chunks)
    b = " ".join(_unleet(c, _LEET_LB) for c in chunks)
    plain = _DIGITS.sub(r" \1 ", norm)
    out: list[list[str]] = []
    for s in dict.fromkeys((a, b, plain)):
        out.append(_join_single_letters([_collapse(w) for w in _WORD.findall(s)]))
        if _REPEAT.search(s):  # "kiiiids": also read every long run as one letter
            out.append(_join_single_letters([_REPEAT.sub(r"\1", w) for w in _WORD.findall(s)]))
    return out


def _join_single_letters(toks: list[str]) -> list[str]:
    """``c h i l d`` -> ``child``: a run of >= 3 one-letter tokens (or 2 with a longer neighbour
    joined later by the pair rule) is one word."""
    out: list[str] = []
    run: list[str] = []
    for t in toks + [""]:
        if len(t) == 1 and not t.isdigit():
            run.append(t)
            continue
        if len(run) >= 3:
            joined = _collapse("".join(run))
            out += [joined, RUN + joined]  # RUN-marked: searched for lexicon words inside ("k i d s a")
        else:
            out.extend(run)
        run = []
        if t:
            out.append(t)
    return out


# Stated ages. A number alone is not an age ("10 years of marriage", "a 5 year plan", "12 pack"): it
# needs an age form: "N years old", "N-year-old", "N yo", "aged N", "de N años", "N Jahre alt", "N岁"...
_OLD = r"(?:years?|yrs?|yr|months?|mos?|weeks?|wks?|days?)\s*-?\s*olds?"
_AGE_PATTERNS = (
    re.compile(r"(?<![\d.,])(\d{1,3})\s*-?\s*" + _OLD + r"\b"),
    re.compile(r"(?<![\d.,])(\d{1,3})\s*(?:yo|y/o|y\.o\.?|yrs?\.? ?o)(?![^\W\d_])"),
    re.compile(r"\b(?:aged?|age:)\s*(\d{1,3})\s*(?:$|[.,;:!?)]|and\b|or\b|y\b|et\b|und\b)"),
    re.compile(r"\b(?:de|tiene|tem|a|ha|hat|di)\s+(\d{1,3})\s*(?:anos|ans|anni|meses|mois|mesi)\b"),
    re.compile(r"(?<![\d.,])(\d{1,3})\s*(?:anos|ans|anni)\s+(?:de edad|de idade|d'age)"),
    re.compile(r"(?<![\d.,])(\d{1,3})\s*(?:jahre?|monate?)\s*alt"),
    re.compile(r"(?<![\d.,])(\d{1,3})\s*-?\s*(?:jahrig|monatig)"),
    re.compile(r"(?<![\d.,])(\d{1,3})\s*-?\s*(?:летн|месячн|лет\b|годик)"),
    re.compile(r"(?<![\d.,])(\d{1,3})\s*(?:岁|歲|歳|才|个月大|か月|ヶ月)"),
)
# "under 16", "younger than 16", "menores de 16", "moins de 16 ans": the age stated is the bound - 1
_UNDER = re.compile(
    r"\b(?:under|younger than|menores de|moins de|unter|minori di|младше)\s*(\d{1,2})(?!\d)"
    r"(?:\s*-?\s*(?:years?|yrs?|anos|ans|anni|jahren?|лет)(?:\s*-?\s*old)?)?(?!\s*[^\W\d_])"
)
# number words 1..19 in the languages of the lexicon, so "five-year-old" / "diez años" read as ages
_NUMBER_WORDS = {
    w: i
    for words in (
        "one two three four five six seven eight nine ten eleven twelve thirteen fourteen fifteen "
        "sixteen seventeen eighteen nineteen",
        "uno dos tres cuatro cinco seis siete ocho nueve diez once doce trece catorce quince dieciseis "
        "diecisiete dieciocho diecinueve",
        "un deux trois quatre cinq six sept huit neuf dix onze douze treize quatorze quinze seize "
        "dix-sept dix-huit dix-neuf",
        "ein zwei drei vier funf sechs sieben acht neun zehn elf zwolf dreizehn vierzehn funfzehn "
        "sechzehn siebzehn achtzehn neunzehn",
        "uno due tre quattro cinque sei sette otto nove dieci undici dodici tredici quattordici quindici "
        "sedici diciassette diciotto diciannove",
        "um dois tres quatro cinco seis sete oito nove dez onze doze treze catorze quinze dezesseis "
        "dezessete dezoito dezenove",
    )
    for i, w in enumerate(words.split(), 1)
}
_NUMBER_WORD_RE = re.compile(r"\b(" + "|".join(sorted(_NUMBER_WORDS, key=len, reverse=True)) + r")\b")


def find_ages(text: str) -> list[int]:
    """Ages stated in an already normalised text (``15-year-old``, ``12 yo``, ``age 9``, ``10歳``,
    ``five-year-old``, ``under 16`` -> 15)."""
    t = _NUMBER_WORD_RE.sub(lambda m: str(_NUMBER_WORDS[m.group(1)]), text)
    ages: list[int] = []
    for pat in _AGE_PATTERNS:
        ages.extend(int(m.group(1)) for m in pat.finditer(t))
    ages.extend(int(m.group(1)) - 1 for m in _UNDER.finditer(t))
    return ages


def lexicon_text(name: str, base_dir: Path | None = None) -> str:
    """A lexicon file's text: a package data file by bare name, else a path (relative to the user's
    policy file). Unreadable -> ConfigError (the policy must not silently allow everything)."""
    if "/" not in name and "\\" not in name:
        res = resources.files("pixsearch.data").joinpath(name)
        if res.is_file():
            return res.read_text(encoding="utf-8")
    p = Path(name).expanduser()
    if not p.is_absolute() and base_dir is not None:
        p = base_dir / p
    try:
        return p.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"policy lexicon {name} cannot be read ({exc})") from exc


def _osa1(a: str, b: str) -> bool:
    """Optimal-string-alignment distance between a and b is exactly <= 1."""
    if a == b:
        return True
    la, lb = len(a), len(b)
    if abs(la - lb) > 1:
        return False
    i = 0
    while i < min(la, lb) and a[i] == b[i]:
        i += 1
    if la == lb:
        if a[i + 1 :] == b[i + 1 :]:
            return True  # one substitution
        return i + 1 < la and a[i] == b[i + 1] and a[i + 1] == b[i] and a[i + 2 :] == b[i + 2 :]
    return a[i + 1 :] == b[i:] if la > lb else a[i:] == b[i + 1 :]


@dataclass(frozen=True)
class Hit:
    """A lexicon match over tokens [start, end) of one stream (or a CJK substring: start = -1)."""

    entry: str
    start: int
    end: int
    fuzzy: bool = False


class Lexicon:
    """Parsed lexicon file. Format, one entry a line (``#`` comments; ``[lang]`` headers are labels):

    * ``word`` or ``multi word phrase``: blocked (canonicalised like queries);
    * ``word*``: blocked as a prefix (``kindergarten*``);
    * ``!phrase``: look-alike exception: cancels hits inside it (``!kid goat``);
    * ``?word``: a real word near a blocked one, never a typo (``?chili``);
    * entries containing Chinese/Japanese characters match as substrings.
    """

    def __init__(self, text: str, fuzzy_min_len: int = 5) -> None:
        self.fuzzy_min_len = fuzzy_min_len
        self.words: set[str] = set()
        self.phrases: dict[str, list[tuple[str, ...]]] = {}  # first token -> phrases
        self.prefixes: list[str] = []
        self.cjk: list[str] = []
        self.cjk_exceptions: list[str] = []
        self.exceptions: dict[str, list[tuple[str, ...]]] = {}
        self.safe: set[str] = set()
        self._deletes: dict[str, set[str]] = {}
        for raw in text.splitlines():
            line = raw.split("#", 1)[0].strip()
            if not line or (line.startswith("[") and line.endswith("]")):
                continue
            kind = line[0] if line[0] in "!?" else ""
            body = line[1:].strip() if kind else line
            if _CJK.search(body):
                (self.cjk_exceptions if kind == "!" else self.cjk).append(normalize(body))
                continue
            prefix = body.endswith("*")
            toks = [_collapse(w) for w in _WORD.findall(normalize(body.rstrip("*")))]
            if not toks:
                continue
            if kind == "?":
                self.safe.update(toks)
            elif kind == "!":
                self.exceptions.setdefault(toks[0], []).append(tuple(toks))
            elif prefix and len(toks) > 1:  # "first grader*": last word as a prefix
                self.phrases.setdefault(toks[0], []).append((*toks[:-1], toks[-1] + "*"))
            elif prefix:
                self.prefixes.append(toks[0])
            elif len(toks) == 1:
                self.words.add(toks[0])
            else:
                self.phrases.setdefault(toks[0], []).append(tuple(toks))
        if not (self.words or self.phrases or self.prefixes or self.cjk):
            raise ConfigError("policy lexicon has no entries")
        self._max_word = max((len(w) for w in self.words), default=0)  # longer tokens: no typo check
        for w in self.words:
            if len(w) >= fuzzy_min_len:
                for d in _deletes(w) | {w}:
                    self._deletes.setdefault(d, set()).add(w)
        phrases = [r"\W+".join(map(re.escape, ex)) for exs in self.exceptions.values() for ex in exs]
        self._exception_re = (
            re.compile(r"(?<!\w)(?:" + "|".join(sorted(phrases, key=len, reverse=True)) + r")(?!\w)")
            if phrases
            else None
        )
        self._run_words = sorted((w for w in self.words | set(self.prefixes) if len(w) >= 3), key=len)
        self._prefix_re = (
            re.compile("|".join(re.escape(p) for p in sorted(self.prefixes, key=len, reverse=True)))
            if self.prefixes
            else None
        )

    def _word_hit(self, tok: str) -> tuple[str, bool] | None:
        if tok in self.words:
            return tok, False
        if self._prefix_re is not None and (m := self._prefix_re.match(tok)):
            return m.group(0) + "*", False
        if (
            self.fuzzy_min_len <= len(tok) <= self._max_word + 1
            and tok not in self.safe
            and not tok.isdigit()
        ):
            for d in _deletes(tok) | {tok}:
                for w in self._deletes.get(d, ()):
                    if _osa1(tok, w):
                        return w, True
        return None

    def hits(self, toks: list[str]) -> list[Hit]:
        out: list[Hit] = []
        n = len(toks)
        for i, t in enumerate(toks):
            if t.startswith(RUN):
                inside = next((w for w in self._run_words if w in t), None)
                if inside:
                    out.append(Hit(inside, i, i + 1))
                continue
            h = self._word_hit(t)
            if h:
                out.append(Hit(h[0], i, i + 1, h[1]))
            for ph in self.phrases.get(t, ()):
                if _phrase_at(toks, i, ph):
                    out.append(Hit(" ".join(ph), i, i + len(ph)))
            # fragments split by spacing or punctuation: "ch ild", "tod dler", "k ids"; never across a
            # short common word ("men in a" is not "menina", "steps on" not "stepson")
            for j in (i + 2, i + 3):
                if j <= n and not any(f in _GLUE for f in toks[i:j]):
                    joined = "".join(toks[i:j])
                    if joined in self.words or (
                        self._prefix_re is not None and self._prefix_re.fullmatch(joined)
                    ):
                        out.append(Hit(joined, i, j))
        return [h for h in out if not self._excepted(h, toks)]

    def _excepted(self, h: Hit, toks: list[str]) -> bool:
        for i in range(max(0, h.start - 4), h.end):
            for ex in self.exceptions.get(toks[i], ()):
                if i <= h.start and i + len(ex) >= h.end and tuple(toks[i : i + len(ex)]) == ex:
                    return True
        return False

    def mask_exceptions(self, text: str) -> str | None:
        """``text`` (normalised) with the blocked words of its look-alike phrases dropped, or None when it
        has none: the semantic model then judges "a bad boy biker" as "a bad biker", as the lexicon did."""
        if self._exception_re is None:
            return None
        norm = normalize(text)
        masked = self._exception_re.sub(self._keep_benign, norm)
        return None if masked == norm else masked

    def _keep_benign(self, m: re.Match[str]) -> str:
        """A look-alike phrase without its blocked words: "baby elephant" -> "elephant"."""
        toks = [_collapse(w) for w in _WORD.findall(m.group(0))]
        return " ".join(t for t in toks if self._word_hit(t) is None)

    def cjk_hits(self, norm: str) -> list[str]:
        if not _CJK.search(norm):
            return []
        for ex in self.cjk_exceptions:
            norm = norm.replace(ex, " ")
        return [e for e in self.cjk if e in norm]


def _phrase_at(toks: list[str], i: int, ph: tuple[str, ...]) -> bool:
    if i + len(ph) > len(toks):
        return False
    *head, last = ph
    if tuple(toks[i : i + len(head)]) != tuple(head):
        return False
    t = toks[i + len(head)]
    return t.startswith(last[:-1]) if last.endswith("*") else t == last


@lru_cache(maxsize=20_000)
def _deletes(w: str) -> frozenset[str]:
    return frozenset(w[:i] + w[i + 1 :] for i in range(len(w)))


class TopicChecker:
    """Lexicon + ages + semantic similarity for one topic. Built lazily by ``Policy.checker``."""

    def __init__(self, topic: Topic, base_dir: Path | None = None) -> None:
        self.topic = topic
        self.base_dir = base_dir
        self._lexicon: Lexicon | None = None
        self._semantic: object | None = None

    @property
    def lexicon(self) -> Lexicon:
        if self._lexicon is None:
            self._lexicon = Lexicon(lexicon_text(self.topic.lexicon, self.base_dir), self.topic.fuzzy_min_len)
        return self._lexicon

    def warm(self) -> None:
        _ = self.lexicon
        sem = self.semantic
        if sem is not None:
            sem.warm()

    @property
    def semantic(self):  # type: ignore[no-untyped-def]
        if self._semantic is None and self.topic.semantic_model and self.topic.prototypes:
            from .policy_semantic import SemanticCheck

            self._semantic = SemanticCheck(self.topic)
        return self._semantic

    def check(self, text: str) -> QueryVerdict:
        return self._check(text)

    def rule_verdict(self, text: str) -> QueryVerdict | None:
        """The lexicon and age rules alone: a blocking verdict, or None when they find nothing."""
        from .policy import QueryVerdict

        name = self.topic.name
        if self.topic.max_age is not None:
            for age in find_ages(base_normalize(text)):
                if age <= self.topic.max_age:
                    return QueryVerdict(True, name, f"age:{age}", 1.0)
        lex = self.lexicon
        norm = normalize(text)
        for e in lex.cjk_hits(norm):
            return QueryVerdict(True, name, f"lexicon:{e}", 1.0)
        streams = canonical_tokens(text, norm)
        if _INVISIBLE.search(text):  # an invisible character may hide a word break too: "a\u200bkids"
            streams += canonical_tokens(_INVISIBLE.sub(" ", text))
        for toks in streams:
            for h in lex.hits(toks):
                return QueryVerdict(True, name, f"{'fuzzy' if h.fuzzy else 'lexicon'}:{h.entry}", 1.0)
        return None

    def _check(self, text: str) -> QueryVerdict:
        from .policy import QueryVerdict

        v = self.rule_verdict(text)
        if v is not None:
            return v
        sem = self.semantic
        if sem is None:
            return QueryVerdict(False, None, "", 0.0)
        return sem.check(self.semantic_input(text))  # type: ignore[attr-defined, no-any-return]

    def semantic_input(self, text: str) -> str:
        """What the semantic model reads: the text, cut to MAX_CHARS, look-alike phrases defused."""
        t = text[:MAX_CHARS]
        masked = self.lexicon.mask_exceptions(t)
        return t if masked is None else masked
