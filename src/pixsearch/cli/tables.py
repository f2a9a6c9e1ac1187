"""Result tables on a terminal: which photo matched (its whole file name), and how well (one percentage).

Each photo shows as its path relative to the folder the user indexed; when the terminal is too narrow the
folders in the middle give way to "…", never the file name. The name is a terminal hyperlink (OSC 8) to
the file where the terminal shows links (Rich writes none to a pipe or with NO_COLOR). The one number is
the calibrated match: how likely a person would say the words describe the photo. The fused ranking score
and its signals, which mean nothing to a reader, show only with ``--verbose`` (and in ``--json``).
"""

from __future__ import annotations

import json
import os
import socket
from collections.abc import Mapping, Sequence
from pathlib import PurePath
from typing import Any
from urllib.parse import quote

from pixsearch.cli.output import out
from pixsearch.results import CaptionResult, Result, Withheld, root_relative, shown

__all__ = ["emit_results", "emit_description", "fit_path", "percent", "shown_path"]

MIN_CAPTION = 20  # columns the caption keeps before the photo's folders give way
MATCH_NOTE = "match: how likely a person would say the words describe the photo"


def percent(match: float | None) -> str:
    """0.537 -> "54%"; no calibrated score (a model without a scorer) -> ""."""
    return "" if match is None else f"{match:.0%}"


def fit_path(rel: str, width: int) -> str:
    """``rel`` in at most ``width`` characters by eliding folders in its middle ("a/…/c/name.jpg"); the
    file name itself is never cut, even when it alone is wider."""
    if len(rel) <= width:
        return rel
    parts = rel.split("/")
    name = parts[-1]
    if len(parts) == 1:
        return name
    head, middle = parts[0], parts[1:-1]
    tail: list[str] = []
    for folder in reversed(middle):  # keep the folders nearest the name while they fit
        if len("/".join([head, "…", folder, *tail, name])) > width:
            break
        tail.insert(0, folder)
    for cand in ("/".join([head, "…", *tail, name]), "/".join(["…", *tail, name])):
        if len(cand) <= width:
            return cand
    return name


def shown_path(path: str, roots: Mapping[int, str] | None) -> str:
    """The path people read: relative to its indexed root when the library knows its roots, else to the
    working directory when under it, else as stored (U+FFFD for bytes that are not UTF-8)."""
    if roots:
        rid, rel = root_relative(path, roots)
        if rid is not None:
            return rel
    rel = os.path.relpath(path) if path else path
    return shown(rel if rel and not rel.startswith("..") else path)


def _file_url(path: str) -> str:
    """file://HOST/PATH, percent-encoded from the raw bytes (a name that is not UTF-8 links too)."""
    return f"file://{quote(socket.gethostname())}{quote(os.fsencode(path))}"


def _fitted(paths: Sequence[str], roots: Mapping[int, str] | None, room: int) -> list[Any]:
    """Each path in ``room`` columns (``fit_path``; the longest name decides if wider), linked to its
    file. An empty path (a withheld result) is an empty cell."""
    from rich.style import Style
    from rich.text import Text

    rels = [shown_path(p, roots) if p else "" for p in paths]
    budget = max([len(PurePath(r).name) for r in rels] + [room])
    return [
        Text(fit_path(r, budget), style=Style(link=_file_url(p)), no_wrap=True) if p else Text("")
        for p, r in zip(paths, rels, strict=True)
    ]


Row = tuple[Sequence[str], str, str, str | None]  # lead cells, the photo's path, its text, raw signals


def _print_table(
    title: str, lead: Sequence[str], rows: Sequence[Row], what: str, roots: Mapping[int, str] | None
) -> None:
    """``rows`` under the headers ``lead`` + photo + ``what``.

    The photo's column is sized first (its whole name at least, folders as room allows); the text gets
    the rest, at least MIN_CAPTION columns, or, where a terminal is too narrow for both side by side,
    goes under the photo in the same cell."""
    from rich import box
    from rich.console import Group
    from rich.table import Table
    from rich.text import Text

    widths = [max([len(h)] + [len(r[0][i]) for r in rows]) for i, h in enumerate(lead)]
    lead_w = sum(widths) + 2 * len(widths)  # each column and the two spaces after it
    room = out.width - lead_w
    photos = _fitted([r[1] for r in rows], roots, room=room - MIN_CAPTION - 2)
    side = room - max(len(p) for p in photos) - 2 >= MIN_CAPTION
    if not side:
        photos = _fitted([r[1] for r in rows], roots, room=room)
    t = Table(title=title, box=box.SIMPLE_HEAD, pad_edge=False)
    for h in lead:
        t.add_column(h, justify="right", no_wrap=True)
    t.add_column("photo" if side else f"photo / {what}", no_wrap=side)
    if side:
        t.add_column(what, ratio=1)
    for (cells, _, text, raw), photo in zip(rows, photos, strict=True):
        cell = Text(text)
        if raw:  # --verbose: the raw signals under the text, dimmed, rather than columns to squeeze
            cell.append(f"\n{raw}", style="dim")
        t.add_row(*cells, *((photo, cell) if side else (Group(photo, cell) if photo.plain else cell,)))
    out.print(t)


def _signals(score: float, scores: Mapping[str, float]) -> str:
    return "  ".join([f"score={score:.3f}", *(f"{k}={v:.3f}" for k, v in scores.items())])


def _note(scored: bool) -> None:
    if scored:
        out.print(MATCH_NOTE, style="dim", highlight=False)


def emit_results(
    results: Sequence[Result | Withheld],
    as_json: bool,
    title: str,
    roots: Mapping[int, str] | None = None,
    verbose: bool = False,
) -> None:
    """A page of results: ``{"results": [...]}`` with ``--json``, else a table (see the module doc)."""
    if as_json:
        print(json.dumps({"results": [r.to_dict() for r in results]}, ensure_ascii=False))
        return
    if not results:
        out.print("no results")
        return
    scored = any(isinstance(r, Result) and r.match is not None for r in results)
    # the capture day, when the camera wrote it (a file's modification time is not when it was taken)
    dated = any(isinstance(r, Result) and r.taken_at and r.taken_from == "exif" for r in results)
    rows: list[Row] = []
    for i, r in enumerate(results, 1):
        if isinstance(r, Withheld):  # the content policy hides this photo: the disclaimer, nothing else
            rows.append(([str(i), *[""] * (scored + dated)], "", r.disclaimer, None))
            continue
        cap = r.matched_caption or (r.captions[0] if r.captions else "")
        raw = _signals(r.score, r.scores) if verbose else None
        lead = [
            str(i),
            *([percent(r.match)] if scored else []),
            *([(r.taken_at or "")[:10]] if dated else []),
        ]
        rows.append((lead, r.path, cap, raw))
    # similar has no calibrated score: the order says it all (the raw one with --verbose)
    heads = ["#", *(["match"] if scored else []), *(["taken"] if dated else [])]
    _print_table(title, heads, rows, "best caption", roots)
    _note(scored)


def emit_description(
    res: Sequence[CaptionResult | Withheld], image: str, roots: Mapping[int, str] | None, verbose: bool
) -> None:
    """``describe``'s table: the library's captions that fit the photo, best first, with their photos."""
    scored = any(isinstance(r, CaptionResult) and r.match is not None for r in res)
    rows: list[Row] = []
    for i, r in enumerate(res, 1):
        if isinstance(r, Withheld):  # the content policy hides it: the disclaimer only
            rows.append(([str(i), *[""] * scored], "", r.disclaimer, None))
            continue
        raw = f"similarity={r.score:.3f}" if verbose else None
        rows.append(([str(i), *([percent(r.match)] if scored else [])], r.path, r.caption, raw))
    lead = ["#", "match"] if scored else ["#"]
    _print_table(f"captions for {shown(image)}", lead, rows, "caption", roots)
    _note(scored)
