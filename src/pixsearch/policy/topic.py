"""The check of one policy topic: lexicon matching, stated ages, hand-off to the semantic model.

``text.py`` turns a text into canonical tokens (normalisation, leet, spacing) and reads ages;
this module matches the topic's lexicon against them (words, phrases, prefixes, typos at edit distance 1,
substring scripts, look-alike exceptions) and runs the semantic check (``semantic.py``) on what
the rules let through. The lexicon file format is documented on :class:`Lexicon`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING

from pixsearch.errors import ConfigError
from pixsearch.policy.text import (
    _GLUE,
    _INVISIBLE,
    _WORD,
    MAX_CHARS,
    RUN,
    SUBSTRING_SCRIPTS,
    _collapse,
    accent_tokens,
    base_normalize,
    canonical_tokens,
    find_ages,
    normalize,
)
from pixsearch.policy.verdicts import QueryVerdict, Topic

if TYPE_CHECKING:
    from pixsearch.policy.semantic import SemanticCheck

__all__ = ["Lexicon", "TopicChecker", "lexicon_text"]


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
    """Parsed lexicon file. Format, one entry a line (``#`` comments):

    * ``word`` or ``multi word phrase``: blocked (canonicalised like queries: accents and case folded);
    * ``word*``: blocked as a prefix (``kindergarten*``);
    * ``=word`` or ``=multi word phrase``: blocked only with its accents as written (``=børn``: Danish
      "children", while ``born`` is English; ``=em bé``), matched on the text's accented words;
    * ``!phrase``: look-alike exception: cancels hits inside it (``!kid goat``);
    * ``?word``: a real word near a blocked one, never a typo (``?chili``);
    * entries in a substring script (Chinese, Japanese, Thai, Korean, Arabic, Hebrew, Indic, Ethiopic...;
      ``text.SUBSTRING_SCRIPTS``) or made of symbols only (emoji: ``👶``) match as substrings of the
      normalised text, and ``!`` entries of that kind are cut out of it first (``!芭比娃娃``);
    * ``[lang]`` headers are labels; ``[lang nofuzzy]`` also keeps the words below it (up to the next
      header) out of the typo match: short words of languages far from English sit one edit away from
      too many real words of other languages (Estonian ``laste`` / ``taste``).
    """

    def __init__(self, text: str, fuzzy_min_len: int = 5) -> None:
        self.fuzzy_min_len = fuzzy_min_len
        self.words: set[str] = set()
        self.phrases: dict[str, list[tuple[str, ...]]] = {}  # first token -> phrases
        self.prefixes: list[str] = []
        self.cjk: list[str] = []  # substring entries (any substring script, emoji)
        self.cjk_exceptions: list[str] = []
        self.accented: set[str] = set()  # "=" words, accents kept
        self.accented_phrases: dict[str, list[tuple[str, ...]]] = {}
        self.exceptions: dict[str, list[tuple[str, ...]]] = {}
        self.safe: set[str] = set()
        self._deletes: dict[str, set[str]] = {}
        fuzzy_words: set[str] = set()
        fuzzy = True
        for raw in text.splitlines():
            line = raw.split("#", 1)[0].strip()
            if not line:
                continue
            if line.startswith("[") and line.endswith("]"):
                fuzzy = "nofuzzy" not in line[1:-1].split()
                continue
            kind = line[0] if line[0] in "!?=" else ""
            body = line[1:].strip() if kind else line
            if not body:
                continue
            if SUBSTRING_SCRIPTS.search(body) or not _WORD.search(body):
                if kind != "?":  # no typo match in these scripts, so nothing to guard
                    (self.cjk_exceptions if kind == "!" else self.cjk).append(normalize(body))
                continue
            if kind == "=":
                acc = accent_tokens(body)
                if len(acc) == 1:
                    self.accented.add(acc[0])
                elif acc:
                    self.accented_phrases.setdefault(acc[0], []).append(tuple(acc))
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
                if fuzzy:
                    fuzzy_words.add(toks[0])
            else:
                self.phrases.setdefault(toks[0], []).append(tuple(toks))
        if not (
            self.words or self.phrases or self.prefixes or self.cjk or self.accented or self.accented_phrases
        ):
            raise ConfigError("policy lexicon has no entries")
        self._max_word = max((len(w) for w in fuzzy_words), default=0)  # longer tokens: no typo check
        for w in fuzzy_words:
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
        self._substring_re = _alternation(self.cjk, overlapping=True)
        self._substring_exception_re = _alternation(self.cjk_exceptions)
        # "=ado" (French) has no accent: an ASCII text can hold it, so it cannot skip the accent check
        self._accented_ascii = any(w.isascii() for w in self.accented) or any(
            all(t.isascii() for t in ph) for phs in self.accented_phrases.values() for ph in phs
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
        """Substring entries found in the normalised text, except those lying inside one of its
        substring exceptions (``芭比娃娃`` is a doll, not ``娃娃`` a baby; ``تربچه`` radish is not
        ``بچه`` child, yet the entry ``دختربچه`` little girl, which holds the radish, still hits). Every
        position is tried, the longest entry first. Only texts outside plain ASCII can hold one."""
        if self._substring_re is None or norm.isascii():
            return []
        cut = (
            [m.span() for m in self._substring_exception_re.finditer(norm)]
            if self._substring_exception_re is not None
            else []
        )
        out = []
        for m in self._substring_re.finditer(norm):
            start, end = m.start(), m.start() + len(m.group(1))
            if not any(a <= start and end <= b for a, b in cut):
                out.append(m.group(1))
        return out

    def accented_hits(self, text: str) -> list[Hit]:
        """``=`` entries found among the text's accented words, unless a look-alike exception covers
        them (exceptions are matched on the same words with accents folded)."""
        if not (self.accented or self.accented_phrases) or (text.isascii() and not self._accented_ascii):
            return []
        acc = accent_tokens(text)
        out = []
        for i, t in enumerate(acc):
            if t in self.accented:
                out.append(Hit(t, i, i + 1))
            for ph in self.accented_phrases.get(t, ()):
                if _phrase_at(acc, i, ph):
                    out.append(Hit(" ".join(ph), i, i + len(ph)))
        if not out:
            return []
        folded = [_collapse(normalize(t)) for t in acc]
        return [h for h in out if not self._excepted(h, folded)]


def _alternation(entries: list[str], overlapping: bool = False) -> re.Pattern[str] | None:
    """One regex for many substrings, longest first (one scan of the text instead of one per entry);
    ``overlapping``: a lookahead that tries every position, the entry in group 1."""
    if not entries:
        return None
    alt = "|".join(re.escape(e) for e in sorted(set(entries), key=len, reverse=True))
    return re.compile(f"(?=({alt}))" if overlapping else alt)


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
        self._semantic: SemanticCheck | None = None

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
    def semantic(self) -> SemanticCheck | None:
        if self._semantic is None and self.topic.semantic_model and self.topic.prototypes:
            from pixsearch.policy.semantic import SemanticCheck

            self._semantic = SemanticCheck(self.topic)
        return self._semantic

    def check(self, text: str) -> QueryVerdict:
        return self._check(text)

    def rule_verdict(self, text: str) -> QueryVerdict | None:
        """The lexicon and age rules alone: a blocking verdict, or None when they find nothing."""
        name = self.topic.name
        if self.topic.max_age is not None:
            for age in find_ages(base_normalize(text)):
                if age <= self.topic.max_age:
                    return QueryVerdict(True, name, f"age:{age}", 1.0)
        lex = self.lexicon
        norm = normalize(text)
        for e in lex.cjk_hits(norm):
            return QueryVerdict(True, name, f"lexicon:{e}", 1.0)
        for h in lex.accented_hits(text):
            return QueryVerdict(True, name, f"lexicon:={h.entry}", 1.0)
        streams = canonical_tokens(text, norm)
        if _INVISIBLE.search(text):  # an invisible character may hide a word break too: "a\u200bkids"
            streams += canonical_tokens(_INVISIBLE.sub(" ", text))
        for toks in streams:
            for h in lex.hits(toks):
                return QueryVerdict(True, name, f"{'fuzzy' if h.fuzzy else 'lexicon'}:{h.entry}", 1.0)
        return None

    def _check(self, text: str) -> QueryVerdict:
        v = self.rule_verdict(text)
        if v is not None:
            return v
        sem = self.semantic
        if sem is None:
            return QueryVerdict(False, None, "", 0.0)
        return sem.check(self.semantic_input(text))

    def semantic_input(self, text: str) -> str:
        """What the semantic model reads: the text, cut to MAX_CHARS, look-alike phrases defused."""
        t = text[:MAX_CHARS]
        masked = self.lexicon.mask_exceptions(t)
        return t if masked is None else masked
