"""How values become SQLite rows and back: float16 vector blobs, FTS5 match strings, chunked ``IN`` lists.

Shared by the storage modules that own tables (``catalog.py``, ``captions.py``, ``enrichments.py``), so
each writes its SQL without importing another's.
"""

from __future__ import annotations

import re
import sqlite3
from collections.abc import Sequence

import numpy as np

__all__ = ["from_blobs", "fts_query", "fts_words", "placeholders", "select_in", "to_blob"]

_WORD = re.compile(r"\w+", re.UNICODE)
# Words that match most captions: they add nothing to BM25's ranking but make FTS5 score every row
# (a 100k-caption library went from ~150 ms to a few ms per query without them).
_STOP = frozenset(
    "a an the and or of in on at to for with by from into onto over under is are was were be been being "
    "it its this that these those there their his her he she they them as while".split()
)
_CHUNK = 900  # ids per statement: under SQLite's bound-parameter limit (999 before 3.32)


def fts_words(text: str) -> list[str]:
    """The words of free text that an FTS5 query looks for: its content words (all, if it has none),
    lower-cased, each once, in order."""
    words = [w.lower() for w in _WORD.findall(text)]
    content = [w for w in words if w not in _STOP] or words
    return list(dict.fromkeys(content))


def fts_query(text: str) -> str:
    """Free text -> a safe FTS5 query: content words quoted and OR-ed (BM25 rewards covering more)."""
    return " OR ".join(f'"{w}"' for w in fts_words(text))


def to_blob(v: np.ndarray) -> bytes:
    return np.asarray(v, dtype=np.float16).tobytes()


def from_blobs(blobs: Sequence[bytes], dim: int) -> np.ndarray:
    if not blobs:
        return np.zeros((0, dim), dtype=np.float32)
    return np.frombuffer(b"".join(blobs), dtype=np.float16).reshape(len(blobs), dim).astype(np.float32)


def placeholders(n: int) -> str:
    """``?,?,...`` for an ``IN (...)`` list of ``n`` values."""
    return ",".join("?" * n)


def select_in(
    db: sqlite3.Connection, sql: str, ids: Sequence[int], before: Sequence[object] = ()
) -> list[tuple]:
    """Rows of ``sql`` (its ``{}`` is the ``IN`` list) for every id, 900 ids per statement; ``before``:
    parameters bound ahead of the ids (``UPDATE ... SET model = ? WHERE id IN ({})``)."""
    out: list[tuple] = []
    ids = [int(i) for i in ids]
    for s in range(0, len(ids), _CHUNK):
        chunk = ids[s : s + _CHUNK]
        out += db.execute(sql.format(placeholders(len(chunk))), [*before, *chunk]).fetchall()
    return out
