"""A composed query's terms and the CLI's syntax for them: ``TERM [+|- TERM]...``, ``2:TERM`` weighs a
term, a term naming an image file is that photo (``library/composing.py`` searches with them).

Apart from the search itself so that parsing a command line imports nothing heavy (no NumPy)."""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from pixsearch.errors import QueryError

__all__ = ["MAX_TERMS", "PhotoRef", "Term", "parse_terms"]

PhotoRef = Path | str | bytes | int  # a library image id, a file path, or a photo's bytes
MAX_TERMS = 16
_WEIGHT = re.compile(r"^(-?\d+(?:\.\d+)?):(.+)$", re.S)


@dataclass(frozen=True)
class Term:
    """One part of a composed query: words (``text``) or a photo (a library id, a file path, bytes),
    and its ``weight`` (negative: photos like it are pushed down)."""

    weight: float = 1.0
    text: str | None = None
    photo: PhotoRef | None = None

    def __post_init__(self) -> None:
        if (self.text is None) == (self.photo is None):
            raise QueryError("a query term is words or a photo, not both or neither")
        if not math.isfinite(self.weight) or self.weight == 0:
            raise QueryError(f"a term's weight must be a non-zero number, not {self.weight}")


def parse_terms(tokens: Sequence[str], is_photo: bool = True) -> list[Term]:
    """The CLI's syntax: ``TERM [+|- TERM]...``; ``2:TERM`` weighs a term (``0.5:snow``); a term that
    names an existing image file is that photo (``is_photo``: look at the file system), else words.
    Without any ``+`` / ``-`` the tokens are one query (the words of an unquoted sentence)."""
    if not any(t in ("+", "-") for t in tokens):
        return [Term(text=" ".join(tokens))] if tokens else []
    terms: list[Term] = []
    sign = 1.0
    expect_term = True
    for tok in tokens:
        if tok in ("+", "-"):
            if expect_term and terms:
                raise QueryError(f"two operators in a row near {tok!r}: write TERM + TERM - TERM")
            sign, expect_term = (1.0 if tok == "+" else -1.0), True
            continue
        if not expect_term:
            raise QueryError(f'missing + or - before {tok!r} (quote a phrase: "two dogs")')
        weight, body = 1.0, tok
        m = _WEIGHT.match(tok)
        if m:
            weight, body = float(m[1]), m[2]
        path = Path(body).expanduser()
        if is_photo and path.suffix and path.is_file():
            terms.append(Term(sign * weight, photo=path))
        else:
            terms.append(Term(sign * weight, text=body))
        expect_term = False
    if expect_term:
        raise QueryError("the query ends with an operator: write TERM + TERM - TERM")
    if len(terms) > MAX_TERMS:
        raise QueryError(f"at most {MAX_TERMS} terms in one query")
    return terms
