"""Text normalisation and stated ages for the query check (the lexicon is matched in ``topic.py``).

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

Lexicon entries (``topic.py``) go through the same pipeline, so a Russian word whose letters are
mapped in step 3 still equals itself. Words of >= ``fuzzy_min_len`` letters also match at Damerau edit
distance 1 (``childern``, ``toddlr``) unless the word is a listed real word (``chili``, ``finder``): see
the lexicon file's ``?`` lines. Entries in scripts written without spaces or with attached particles
(Chinese, Japanese, Thai, Korean, Arabic, Hebrew, the Indic scripts, Ethiopic...) and emoji match as
substrings of the normalised text (``SUBSTRING_SCRIPTS``). For them ``base_normalize`` also folds the
spelling variants a writer may or may not type: Arabic harakat, hamza carriers and letter variants
(``أ``/``ا``, ``ى``/``ي``, Persian/Urdu ``ی``/``ک``/``ہ``), Hebrew points, Indic nukta and
chandrabindu. Look-alike exceptions (``!kid goat``, ``!baby carrots``) cancel the hits they cover,
nothing else. Stated ages (``15-year-old``, ``12 yo``, ``10 años``, ``8岁``) at or below ``max_age``
block.
"""

from __future__ import annotations

import re
import unicodedata

__all__ = [
    "SUBSTRING_SCRIPTS",
    "accent_tokens",
    "base_normalize",
    "canonical_tokens",
    "clean",
    "find_ages",
    "has_letters",
    "normalize",
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
    "ß": "ss", "ø": "o", "đ": "d", "ł": "l", "æ": "ae", "œ": "oe", "þ": "th", "ħ": "h", "ŧ": "t",
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
# Optional marks of other scripts, dropped like accents: writers leave them out as often as not.
# Arabic harakat, hamza above/below (after NFD: "أ" -> "ا"), superscript alef, Quranic marks and tatweel;
# Hebrew points and cantillation; the nukta of the Indic scripts (NFKC leaves "ड़" decomposed).
_OPTIONAL_MARKS = re.compile(
    "[\u064b-\u065f\u0670\u06d6-\u06ed\u0640\u0591-\u05bd\u05bf\u05c1\u05c2\u05c4\u05c5\u05c7"
    "\u093c\u09bc\u0a3c\u0abc\u0b3c]"
)
# Letters written either way in Arabic-script languages (Arabic, Persian, Urdu, Punjabi Shahmukhi) and
# nasal marks the Indic scripts use interchangeably (chandrabindu/anusvara, Gurmukhi tippi/bindi).
# Not Urdu's do-chashmi heh "ھ": it marks aspirates ("بچھو" scorpion is not "بچہ" child).
_SCRIPT_FOLD = str.maketrans({
    "ى": "ي", "ی": "ي", "ے": "ي", "ک": "ك", "ة": "ه", "ہ": "ه", "ە": "ه", "ٱ": "ا",
    "\u0901": "\u0902", "\u0981": "\u0982", "\u0a70": "\u0a02", "\u0a01": "\u0a02",
})  # fmt: skip
_HOMO_TABLE = str.maketrans({k: v for k, v in _HOMOGLYPHS.items() if len(v) == 1})
_HOMO_MULTI = {k: v for k, v in _HOMOGLYPHS.items() if len(v) > 1}
# Scripts matched as substrings: no spaces between words (Chinese, Japanese, Thai, Lao, Khmer, Burmese),
# words that take attached particles, prefixes or case endings (Korean, Arabic, Persian, Urdu, Hebrew,
# the Indic scripts, Ethiopic), or vowel signs that ``_WORD`` would split a word at (the Indic scripts:
# their combining vowel signs are not word characters to ``re``).
SUBSTRING_SCRIPTS = re.compile(
    "["
    "\u0590-\u05ff"  # Hebrew
    "\u0600-\u06ff\u0750-\u077f\u08a0-\u08ff"  # Arabic and its supplements (Persian, Urdu...)
    "\u0900-\u0dff"  # Devanagari, Bengali, Gurmukhi, Gujarati, Oriya, Tamil, Telugu, Kannada, Malayalam...
    "\u0e00-\u0eff"  # Thai, Lao
    "\u0f00-\u0fff\u1000-\u109f"  # Tibetan, Myanmar
    "\u1100-\u11ff"  # Hangul jamo
    "\u1200-\u139f\u2d80-\u2ddf"  # Ethiopic
    "\u1780-\u17ff"  # Khmer
    "\u3040-\u30ff\u3130-\u318f\u3400-\u4dbf\u4e00-\u9fff\uac00-\ud7af\uf900-\ufaff\uff66-\uff9f"
    "]"
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
    """Steps 1-2 and case: NFKC, invisible characters and accents out (with the optional marks and letter
    variants of other scripts folded), case folded (scripts kept)."""
    t = unicodedata.normalize("NFKC", text)
    t = _INVISIBLE.sub("", t)
    t = _COMBINING.sub("", unicodedata.normalize("NFD", t))
    t = _OPTIONAL_MARKS.sub("", t)
    return unicodedata.normalize("NFC", t).translate(_SCRIPT_FOLD).casefold()


def accent_tokens(text: str) -> list[str]:
    """The text's words with their accents kept (NFKC, invisible characters out, case folded): what
    ``=`` lexicon entries are matched against, for words that only differ from an innocent word by an
    accent (Danish ``børn`` "children" vs English ``born``, Vietnamese ``bé`` vs ``be``)."""
    t = _INVISIBLE.sub("", unicodedata.normalize("NFKC", text))
    return _WORD.findall(unicodedata.normalize("NFC", t).casefold())


def has_letters(text: str) -> bool:
    """Whether the text has any letter at all. A text without one ("!!!", "...", "2024", an emoji that
    is not in the lexicon) names nobody: the semantic model must not guess at it."""
    return any(c.isalpha() for c in text)


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
