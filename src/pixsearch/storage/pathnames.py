"""File paths as SQLite values, lossless for names that are not UTF-8.

Why: on POSIX a file name is bytes. Python hands a name that is not valid UTF-8 (Latin-1 "caf\\xe9.jpg", a
Shift-JIS name from an old camera card, plain garbage) to us as ``str`` with lone surrogates
("surrogateescape"), which sqlite3 cannot encode as TEXT. Such a path is stored as a BLOB of its
``os.fsencode`` bytes instead; every other path stays TEXT, as it always was, so catalogs written before
need no migration and the two forms never collide (a path has exactly one form). SQLite orders every TEXT
before every BLOB and compares BLOBs byte by byte, so a folder's paths are two key ranges, one per form
(:func:`prefix_ranges`).

Reading turns either form back into the exact ``str`` Python uses for the file (open, stat, unlink all
work on it); what a person is shown (undecodable bytes as U+FFFD) is ``results.shown``.
"""

from __future__ import annotations

import os

__all__ = ["from_sql", "prefix_ranges", "to_sql"]

SqlPath = str | bytes


def to_sql(path: str) -> SqlPath:
    """The value stored for ``path``: itself when it is valid UTF-8, else its file-system bytes."""
    try:
        path.encode("utf-8")
    except UnicodeEncodeError:
        return os.fsencode(path)
    return path


def from_sql(value: SqlPath) -> str:
    """The path as Python names the file (surrogate escapes for bytes that are not UTF-8)."""
    return os.fsdecode(value) if isinstance(value, bytes) else str(value)


def prefix_ranges(prefix: str) -> list[tuple[SqlPath, SqlPath | None]]:
    """Key ranges [low, high) (``high`` None: no upper bound) that hold every stored path starting with
    ``prefix``: one of TEXT values (when the prefix itself is UTF-8), one of BLOB values (the paths below
    it whose name is not).

    Every string with the prefix sorts between it and the prefix with its last character (byte) bumped
    by one; callers still check ``startswith`` on what they read back.
    """
    if not prefix:
        return []
    out: list[tuple[SqlPath, SqlPath | None]] = []
    if isinstance(to_sql(prefix), str):
        out.append((prefix, prefix[:-1] + chr(ord(prefix[-1]) + 1)))
    raw = os.fsencode(prefix)
    stripped = raw.rstrip(b"\xff")
    out.append((raw, stripped[:-1] + bytes([stripped[-1] + 1]) if stripped else None))
    return out
