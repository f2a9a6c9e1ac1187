"""Audit the query lexicon against the frequent words of 42 languages (a dev tool, not shipped).

Why: a word that means "child" in one language is often an ordinary word in another (Swedish "barn",
Hungarian "barna" = brown, Indonesian "bebek" = duck, Swedish "läste" = read), and the typo match (edit
distance 1) finds real words everywhere ("vibes" is one edit from Argentinian "pibes", Dutch "ergens"
from Turkish "ergen"). English word lists (tools/build_policy_safe_words.py) do not see those. This
runs the lexicon rules on the top-N words of every language wordfreq ships and

* prints, per language, the words the lexicon blocks *exactly* (review them: each is a child word or a
  collision to fix in the lexicon with "=", a phrase or an exception);
* with ``--write``, rewrites the "?word" section between the markers below with every frequent word
  that is blocked *only by the typo match*, except those in KEEP_BLOCKED (inflections of child words).

    pip install --target /tmp/wf wordfreq   # dev only; PYTHONPATH=/tmp/wf
    python tools/check_policy_lexicon.py [--top 40000] [--write] [--lang sv --lang da]
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from pixsearch.policy.rules import load_policy
from pixsearch.policy.topic import Lexicon, TopicChecker

LEXICON = Path(__file__).resolve().parents[1] / "src/pixsearch/data/policy_minors.txt"
BEGIN = (
    "# --- frequent words of other languages one edit from a blocked word (tools/check_policy_lexicon.py) ---"
)
END = "# --- end of frequent words of other languages ---"
# Typo matches that ARE words for minors (inflections, derived adjectives): they stay blocked.
KEEP_BLOCKED = {
    "mädchens", "infantili", "infantils", "infantis", "infanto", "juvenis", "juvenils", "bebekleri",
    "chlapců", "chlapca", "chlapce", "alumno", "aluna", "alumna", "kinderen", "bebeklerin", "bebekle",
    "çocuklu", "niñes", "criança", "ragazzin", "bambin", "kindern", "babyer", "teenies", "dziecię",
    "chłopcu", "chlapče", "chlapček", "chlapecké", "creches", "crèches", "guarderías", "infantilă",
    "mocinho", "babyn", "bäbis", "ergene", "bebeklere", "kinde",
}  # fmt: skip


def without_generated(text: str) -> str:
    """The lexicon text without the generated section (so a rewrite sees every typo match afresh)."""
    if BEGIN not in text:
        return text
    return text[: text.index(BEGIN)].rstrip("\n") + "\n" + text[text.index(END) + len(END) :].lstrip("\n")


def scan(
    top: int, langs: list[str] | None, lexicon: str | None = None
) -> dict[str, list[tuple[int, str, str]]]:
    """``{lang: [(rank, word, reason), ...]}`` for every top-``top`` word the rules block (with the
    shipped lexicon, or with ``lexicon`` text in its place)."""
    import wordfreq

    shipped = load_policy(region="restricted").checker("minors")
    chk = TopicChecker(shipped.topic)
    if lexicon is not None:
        chk._lexicon = Lexicon(lexicon, shipped.topic.fuzzy_min_len)
    out: dict[str, list[tuple[int, str, str]]] = {}
    for lang in sorted(langs or wordfreq.available_languages()):
        hits = []
        for rank, w in enumerate(wordfreq.top_n_list(lang, top)):
            v = chk.rule_verdict(w)
            if v is not None:
                hits.append((rank, w, v.reason))
        out[lang] = hits
    return out


def write_safe(found: dict[str, list[tuple[int, str, str]]]) -> int:
    """Rewrite the generated "?word" section; returns how many words it holds."""
    text = without_generated(LEXICON.read_text(encoding="utf-8"))
    near: dict[str, set[str]] = {}
    for hits in found.values():
        for _rank, w, reason in hits:
            if reason.startswith("fuzzy:") and w not in KEEP_BLOCKED and "'" not in w:
                near.setdefault(reason.split(":", 1)[1], set()).add(w)
    lines = [BEGIN]
    for k in sorted(near):
        lines.append(f"# near '{k}'")
        lines += [f"?{w}" for w in sorted(near[k])]
    lines.append(END)
    new = text.rstrip("\n") + "\n\n" + "\n".join(lines) + "\n"
    Lexicon(new)  # still parses
    LEXICON.write_text(new, encoding="utf-8")
    return sum(len(v) for v in near.values())


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--top", type=int, default=40000, help="words per language (by frequency)")
    ap.add_argument("--lang", action="append", help="only these wordfreq languages")
    ap.add_argument("--write", action="store_true", help="rewrite the generated ?word section")
    ap.add_argument("--json", type=Path, help="also save every hit here")
    a = ap.parse_args()
    text = LEXICON.read_text(encoding="utf-8")
    found = scan(a.top, a.lang, without_generated(text) if a.write else None)
    if a.json:
        a.json.write_text(json.dumps(found, ensure_ascii=False), encoding="utf-8")
    for lang, hits in found.items():
        exact = [f"{w}({r})" for r, w, reason in hits if not reason.startswith("fuzzy:")]
        print(f"{lang}: {len(exact)} exact: {' '.join(exact)}")
    if a.write:
        print(f"wrote {write_safe(found)} words to the generated section", file=sys.stderr)


if __name__ == "__main__":
    main()
