"""What the Library returns: ranked photos and captions, each able to turn itself into JSON for the CLI
and the REST API; a photo the region's content policy withholds is a :class:`Withheld` in its place. Also
the one check of a page request (``k``, ``offset``).

Paths: the Python objects hold each path exactly as Python names the file (a name that is not UTF-8
keeps its surrogate escapes, so the file can be opened, removed, pruned). JSON shows it with U+FFFD in
place of bytes that do not decode (:func:`shown`). The CLI's JSON gives absolute paths; the REST API's
(``to_dict(roots)``) gives a path relative to the folder the user indexed plus that root's id
(:func:`root_relative`), never a path of the server's file system."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import PurePath
from typing import Any

from pixsearch.errors import QueryError

__all__ = ["CaptionResult", "Description", "PhotoCaption", "PhotoInfo", "Result", "SearchResults", "Withheld"]
__all__ += ["AddedPhoto", "DeletedPhoto", "check_page", "root_relative", "shown"]

Roots = Mapping[int, str]  # root id -> a folder the user indexed (``Library.roots``)


def shown(path: str) -> str:
    """``path`` for people and JSON: bytes that are not UTF-8 (surrogate escapes in Python's str) become
    U+FFFD. Printing or JSON-encoding the raw str would fail on them."""
    try:
        path.encode("utf-8")
    except UnicodeEncodeError:
        return path.encode("utf-8", "surrogateescape").decode("utf-8", "replace")
    return path


def root_relative(path: str, roots: Roots) -> tuple[int | None, str]:
    """(root id, ``path`` relative to it, shown): the outermost indexed root that holds ``path`` (its
    meaning does not change when a subfolder is indexed later); no root (a catalog from before roots were
    recorded): (None, the file's name)."""
    best: tuple[int, str] | None = None
    for rid, root in roots.items():
        prefix = root.rstrip("/") + "/"
        if path.startswith(prefix) and (best is None or len(prefix) < len(best[1])):
            best = (rid, prefix)
    if best is None:
        return None, shown(PurePath(path).name)
    return best[0], shown(path[len(best[1]) :])


def _paths_json(paths: tuple[str, ...], roots: Roots | None) -> dict[str, Any]:
    """``path`` (the first) and ``paths``: absolute for the CLI, root-relative (+ ``root``) over HTTP."""
    if roots is None:
        return {"path": shown(paths[0]) if paths else "", "paths": [shown(p) for p in paths]}
    rel = [root_relative(p, roots) for p in paths]
    first = rel[0] if rel else (None, "")
    return {"path": first[1], "root": first[0], "paths": [{"root": r, "path": p} for r, p in rel]}


def check_page(k: int, offset: int = 0) -> None:
    """QueryError unless ``k >= 1`` and ``offset >= 0``: every paged read (search, similar) checks here."""
    if k < 1 or offset < 0:
        raise QueryError("k must be >= 1 and offset >= 0")


@dataclass(frozen=True)
class Result:
    """One ranked image: its paths and captions, ``score`` (the fused score that picked it among the
    candidates: a ranking signal, not for display), the per-signal scores, and ``match``: the calibrated
    probability that a person would say the query describes the photo, the number to show. A search
    ranks its results by ``match`` (``search/matching.py``), so it never goes up down a page."""

    image_id: int
    score: float
    paths: tuple[str, ...]
    captions: tuple[str, ...]
    scores: dict[str, float] = field(default_factory=dict)
    matched_caption: str | None = None
    width: int = 0
    height: int = 0
    match: float | None = None  # calibrated 0..1 match score (models/scorer.py), set for a page
    taken_at: str | None = None  # capture time, ISO 8601 as the photo gives it (photo_meta)
    taken_from: str | None = None  # "exif": the camera's clock; "file": the file's modification time
    camera: str | None = None  # "Canon EOS 5D"
    place: str | None = None  # "Paris, France": the nearest town to its GPS position

    @property
    def path(self) -> str:
        return self.paths[0] if self.paths else ""

    def to_dict(self, roots: Roots | None = None) -> dict[str, Any]:
        """JSON; with ``roots`` (the REST API) paths relative to their indexed root (module docstring)."""
        return {
            "image_id": self.image_id,
            **_paths_json(self.paths, roots),
            "name": shown(PurePath(self.path).name),
            "score": round(self.score, 4),
            "scores": {k: round(v, 4) for k, v in self.scores.items()},
            "matched_caption": self.matched_caption,
            "captions": list(self.captions),
            "width": self.width,
            "height": self.height,
            "taken_at": self.taken_at,
            "taken_from": self.taken_from,
            "camera": self.camera,
            "place": self.place,
            **({} if self.match is None else {"match": round(self.match, 4)}),  # absent: not scored
        }


@dataclass(frozen=True)
class CaptionResult:
    """A library caption that fits a query image, with the image it belongs to."""

    caption: str
    score: float
    image_id: int
    path: str
    match: float | None = None  # calibrated 0..1: does this caption describe the query photo?

    def to_dict(self, roots: Roots | None = None) -> dict[str, Any]:
        """JSON; with ``roots`` (the REST API) the path relative to its indexed root, and ``root``."""
        if roots is None:
            where: dict[str, Any] = {"path": shown(self.path)}
        else:
            rid, rel = root_relative(self.path, roots) if self.path else (None, "")
            where = {"path": rel, "root": rid}
        return {
            "caption": self.caption,
            "score": round(self.score, 4),
            "image_id": self.image_id,
            **where,
            **({} if self.match is None else {"match": round(self.match, 4)}),  # absent: not scored
        }


@dataclass(frozen=True)
class Withheld:
    """A result the active region forbids: only the disclaimer is given out (no id, path, caption or
    score). It stands where the photo or caption would have been, so a page keeps its length."""

    disclaimer: str

    # Attributes result printers read, empty so a table row shows nothing about the photo.
    score: float = 0.0
    path: str = ""
    captions: tuple[str, ...] = ()
    matched_caption: str | None = None
    caption: str = ""
    withheld: bool = True

    def to_dict(self, roots: Roots | None = None) -> dict[str, Any]:
        return {"withheld": True, "disclaimer": self.disclaimer}


class SearchResults(list[Result | Withheld]):
    """A page of ``Library.search`` results, best first. With a match threshold that nothing passed,
    the page is empty, ``no_confident_match`` is True and ``below_threshold`` holds the best few
    (marked as such by every front end). A list, so a page compares and iterates like one."""

    def __init__(
        self,
        items: Iterable[Result | Withheld] = (),
        threshold: float | None = None,
        below: Iterable[Result | Withheld] = (),
    ) -> None:
        super().__init__(items)
        self.threshold = threshold
        self.below_threshold: list[Result | Withheld] = list(below)
        self.no_confident_match = bool(threshold is not None and not self and self.below_threshold)


class Description(list[CaptionResult | Withheld]):
    """``Library.describe``'s captions, best first, plus the generated caption (``generated``) when a
    captioner is shipped."""

    def __init__(self, items: Iterable[CaptionResult | Withheld] = (), generated: str | None = None) -> None:
        super().__init__(items)
        self.generated = generated


@dataclass(frozen=True)
class PhotoCaption:
    """One caption of a photo's record: who wrote it (``source``: human or generated) and with what."""

    id: int
    text: str
    source: str
    model: str | None  # the captioner of a generated caption; None for a human one

    def to_dict(self) -> dict[str, Any]:
        return {"id": self.id, "text": self.text, "source": self.source, "model": self.model}


@dataclass(frozen=True)
class PhotoInfo:
    """A library photo's record (``Library.photo_info``): its paths, size, captions and labels."""

    image_id: int
    paths: tuple[str, ...]
    width: int
    height: int
    added_at: float | None  # Unix time it was first indexed
    captions: tuple[PhotoCaption | Withheld, ...]  # a caption the region withholds: its disclaimer
    labels: tuple[tuple[str, float], ...]  # (label, probability), most probable first

    @property
    def path(self) -> str:
        return self.paths[0] if self.paths else ""

    def to_dict(self, roots: Roots | None = None) -> dict[str, Any]:
        """JSON; with ``roots`` (the REST API) paths relative to their indexed root (module docstring)."""
        return {
            "image_id": self.image_id,
            "name": shown(PurePath(self.path).name),
            **_paths_json(self.paths, roots),
            "width": self.width,
            "height": self.height,
            "added_at": self.added_at,
            "captions": [c.to_dict() for c in self.captions],
            "labels": [{"label": lb, "score": round(float(s), 4)} for lb, s in self.labels],
        }


@dataclass(frozen=True)
class AddedPhoto:
    """A photo given as bytes (``Library.add_photo``): its id, and whether it was new to the library."""

    image_id: int | None
    added: bool


@dataclass(frozen=True)
class DeletedPhoto:
    """What ``Library.delete_photo`` did: paths forgotten, stored upload files deleted."""

    image_id: int
    paths_removed: int
    files_deleted: int

    def to_dict(self) -> dict[str, Any]:
        return {
            "image_id": self.image_id,
            "paths_removed": self.paths_removed,
            "files_deleted": self.files_deleted,
        }
