"""The ``image,caption`` CSV that comes with a photo folder, and which photo each of its rows means.

Rows name photos by a relative path (``2019/IMG_0001.jpg``) or by a bare file name. Cameras reuse names,
so a bare name is only trusted when exactly one photo in the library (and this run) carries it: every
``IMG_0001.jpg`` getting the same captions is worse than none. A relative path is tried first, against
the CSV's folder and each indexed root, then as a path suffix; rows that fit several photos are reported
and skipped.
"""

from __future__ import annotations

import csv
from collections.abc import Iterable
from pathlib import Path, PurePosixPath

from pixsearch.errors import DatasetError

__all__ = ["read_captions_csv", "match_captions"]


def read_captions_csv(path: Path) -> tuple[dict[str, list[str]], list[str]]:
    """``image,caption`` rows -> the ``image`` value as written (``/`` separators) -> captions, plus
    warnings for rows we had to skip."""
    caps: dict[str, list[str]] = {}
    warns: list[str] = []
    try:
        with open(path, encoding="utf-8-sig", newline="") as f:
            reader = csv.DictReader(f)
            cols = reader.fieldnames or []
            if "image" not in cols or "caption" not in cols:
                raise DatasetError(f"{path}: needs columns image,caption; found {','.join(cols) or 'none'}")
            for lineno, row in enumerate(reader, start=2):
                img, text = (row.get("image") or "").strip(), " ".join((row.get("caption") or "").split())
                if not img or not text:
                    warns.append(f"{path}:{lineno}: empty image or caption, skipped")
                    continue
                caps.setdefault(img.replace("\\", "/"), []).append(text)
    except UnicodeDecodeError as exc:
        raise DatasetError(f"{path}: not valid UTF-8 ({exc.reason} at byte {exc.start})") from exc
    except OSError as exc:
        raise DatasetError(f"{path}: cannot read ({exc.strerror or exc})") from exc
    return caps, warns


def match_captions(
    captions: dict[str, list[str]], paths: Iterable[str], bases: Iterable[Path]
) -> tuple[dict[str, list[str]], list[str]]:
    """CSV keys -> absolute photo paths (among ``paths``: this run's files and the library's).

    ``bases`` are folders a relative key is resolved against (the CSV's folder, the indexed roots).
    Returns path -> captions and one warning per row key that fits no photo or several.
    """
    pathset = set(paths)
    by_name: dict[str, list[str]] = {}
    for p in pathset:
        by_name.setdefault(PurePosixPath(p).name, []).append(p)
    base_list = list(dict.fromkeys(Path(b) for b in bases))
    out: dict[str, list[str]] = {}
    warns: list[str] = []
    for key, texts in captions.items():
        rel = PurePosixPath(key)
        if rel.is_absolute():
            hits = [key] if key in pathset else []
        else:
            hits = list(dict.fromkeys(str(b / rel) for b in base_list if str(b / rel) in pathset))
            if not hits and len(rel.parts) > 1:
                tail = "/" + str(rel)
                hits = [p for p in pathset if p.endswith(tail)]
            if not hits:
                hits = by_name.get(rel.name, [])
        if not hits:
            warns.append(f"captions name an image not in the library: {key}")
        elif len(hits) > 1:
            shown = ", ".join(sorted(hits)[:3]) + (", ..." if len(hits) > 3 else "")
            warns.append(
                f"captions row {key!r} fits {len(hits)} photos ({shown}); skipped: name it by relative path"
            )
        else:
            out.setdefault(hits[0], []).extend(texts)
    return out, warns
