"""The captioner's words: how captions become tokens (training, metrics) and tokens text again.

One tokenizer for training, generation and scoring: lowercased, punctuation removed, clitics split the
PTB way (``man's`` -> ``man 's``, ``don't`` -> ``do n't``), hyphenated words kept whole (``t-shirt``), as
coco-caption tokenizes; so what the captioner writes is scored exactly as it was learned.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from pixsearch.errors import ModelError

__all__ = ["SPECIALS", "PAD", "BOS", "EOS", "UNK", "Vocab", "tokenize", "detokenize"]

SPECIALS = ("<pad>", "<bos>", "<eos>", "<unk>")
PAD, BOS, EOS, UNK = range(4)

_CLITIC = re.compile(r"([a-z0-9])(n't|'s|'re|'ve|'ll|'d|'m)\b")
_TOKEN = re.compile(r"n't|'[a-z]+|[a-z0-9]+(?:[-.&][a-z0-9]+)*")


def tokenize(text: str) -> list[str]:
    """Lowercased word tokens without punctuation (see the module docstring)."""
    return _TOKEN.findall(_CLITIC.sub(r"\1 \2", text.lower()))


def detokenize(tokens: Sequence[str]) -> str:
    """Readable text whose :func:`tokenize` gives back ``tokens`` (clitics re-attached)."""
    out = " ".join(tokens)
    return re.sub(r" (n't|'[a-z]+)\b", r"\1", out)


class Vocab:
    """Token list (specials first); ``decode`` drops specials and re-attaches clitics."""

    def __init__(self, tokens: list[str]) -> None:
        if list(tokens[:4]) != list(SPECIALS):
            raise ModelError(f"vocabulary must start with {', '.join(SPECIALS)}")
        if len(tokens) <= len(SPECIALS):
            raise ModelError("vocabulary has no words")
        self.tokens = list(tokens)
        self.index = {t: i for i, t in enumerate(self.tokens)}

    def __len__(self) -> int:
        return len(self.tokens)

    def encode(self, words: list[str], max_len: int) -> list[int]:
        """<bos> w1 .. wn <eos>, words cut so the whole fits ``max_len + 1`` ids."""
        ids = [self.index.get(w, UNK) for w in words[: max_len - 1]]
        return [BOS, *ids, EOS]

    def decode(self, ids: list[int] | np.ndarray) -> str:
        return detokenize([self.tokens[i] for i in ids if i >= len(SPECIALS)])

    def to_json(self, **meta: Any) -> str:
        return json.dumps({"format": "pixsearch-vocab/1", **meta, "tokens": self.tokens}, indent=0)

    @classmethod
    def load(cls, path: Path) -> Vocab:
        try:
            data = json.loads(path.read_text())
            return cls(list(data["tokens"]))
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise ModelError(f"cannot read vocabulary {path}: {exc}") from exc
