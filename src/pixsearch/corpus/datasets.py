"""Caption datasets from disk: the Flickr8k dataset dir, the judged-pairs layout and a plain CSV + folder.

Loading is CSV parsing plus one directory listing per image folder, never an image decode, so the trainer
and evaluator can load 8k images in well under a second. Rows we cannot use are dropped and summed up in
``Dataset.warnings``; a file we cannot read at all is a :class:`~pixsearch.errors.DatasetError`.
"""

from __future__ import annotations

import csv
import io
import os
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from functools import cached_property
from pathlib import Path

from pixsearch.errors import DatasetError
from pixsearch.media import SUPPORTED_SUFFIXES

__all__ = ["Caption", "Judgment", "Dataset", "load_dataset", "SPLIT_NAMES"]

SPLIT_NAMES = ("train", "val", "test")
_EXPERT_COLS = ("image", "caption_id", "expert1", "expert2", "expert3")
_CROWD_COLS = ("image", "caption_id", "share_yes", "num_yes", "num_no")
_EXAMPLES = 3  # per warning line: enough to find the rows, short enough to read


@dataclass(frozen=True)
class Caption:
    """One human caption; ``id`` is ``IMAGE#k`` because the judgment files refer to captions that way."""

    id: str
    image: str
    text: str


@dataclass(frozen=True)
class Judgment:
    """A human verdict on how well ``caption_id`` fits ``image``, on 0..1 so both sources are comparable."""

    image: str
    caption_id: str
    score: float
    source: str


@dataclass(frozen=True)
class Dataset:
    """Images, captions, splits and judgments of one dataset; ``split()`` narrows it to one split.

    The mappings are plain dicts (treat them as read-only) so a Dataset pickles into DataLoader/Ray workers.
    """

    root: Path
    image_dir: Path
    images: tuple[str, ...]
    captions: tuple[Caption, ...]
    splits: Mapping[str, tuple[str, ...]] = field(hash=False)
    judgments: tuple[Judgment, ...]
    warnings: tuple[str, ...]
    # Images that do not live in image_dir (the judged-pairs layout's test_images/, a plain CSV's own folder).
    locations: Mapping[str, Path] = field(default_factory=dict, hash=False, repr=False)

    @cached_property
    def _image_set(self) -> frozenset[str]:
        return frozenset(self.images)

    def split(self, name: str) -> Dataset:
        """Keep a judgment only if its image and its caption both stay, so no split leaks into another."""
        if name == "all":
            return self
        if name not in self.splits:
            available = ", ".join([*self.splits, *(["all"] if "all" not in self.splits else [])])
            raise DatasetError(f"{self.root}: no split {name!r}; available: {available}")
        keep = self.splits[name]
        kept = frozenset(keep)
        captions = tuple(c for c in self.captions if c.image in kept)
        ids = {c.id for c in captions}
        judgments = tuple(j for j in self.judgments if j.image in kept and j.caption_id in ids)
        return replace(self, images=keep, captions=captions, splits={name: keep}, judgments=judgments)

    def with_captions(self, path: Path | str) -> Dataset:
        """This dataset with its captions replaced by an ``image,caption`` CSV's (another language, say),
        so the same photos can be evaluated with other words. Rows naming an image it does not hold are
        dropped and counted in ``warnings``; judgments go too: they rated the replaced captions."""
        warn = _Warnings()
        caps = _read_captions(Path(path), {n: self.image_dir for n in self.images}, warn)
        return replace(self, captions=tuple(caps), judgments=(), warnings=self.warnings + warn.lines())

    def image_path(self, name: str) -> Path:
        """Refuses unknown names: a typo should fail here, not as a missing file deep in a decode loop."""
        if name not in self._image_set:
            raise DatasetError(f"{self.root}: image {name!r} is not in this dataset")
        return self.locations.get(name, self.image_dir) / name

    def captions_by_image(self) -> dict[str, list[Caption]]:
        """Only images that have captions appear, so callers can sample from every list."""
        out: dict[str, list[Caption]] = {}
        for caption in self.captions:
            out.setdefault(caption.image, []).append(caption)
        return out

    def caption_rows(self, names: Sequence[str]) -> tuple[list[str], list[int]]:
        """The captions of ``names`` (texts), each with the row of its image in ``names``: the text side of
        a retrieval set whose image side is ``names`` (the images that decoded), so both stay aligned."""
        by_img = self.captions_by_image()
        texts: list[str] = []
        owner: list[int] = []
        for j, n in enumerate(names):
            for c in by_img.get(n, []):
                texts.append(c.text)
                owner.append(j)
        return texts, owner


def load_dataset(path: Path | str) -> Dataset:
    """Guess the layout from marker files, so ``--data`` takes any of the three without a flag."""
    path = Path(path)
    if path.is_file():
        if path.suffix.lower() != ".csv":
            raise DatasetError(f"{path}: not a CSV file; give a dataset folder or a CSV with image,caption")
        return _load_plain(path)
    if not path.is_dir():
        raise DatasetError(f"{path}: no such file or folder")
    if (path / "captions.csv").is_file():
        return _load_flickr(path)
    if (path / "train_dataset.csv").is_file():
        return _load_judged_pairs(path)
    csvs = sorted(p for p in path.iterdir() if p.suffix.lower() == ".csv" and p.is_file())
    if len(csvs) > 1:
        csvs = [p for p in csvs if _has_caption_header(p)]
        if len(csvs) > 1:
            names = ", ".join(p.name for p in csvs)
            raise DatasetError(f"{path}: several CSVs with image,caption columns ({names}); name one")
    if len(csvs) == 1:
        return _load_plain(csvs[0])
    raise DatasetError(
        f"{path}: no dataset found; expected captions.csv + images/ (Flickr8k layout), "
        "train_dataset.csv + train_images/ (judged-pairs layout), or one CSV with an image,caption header"
    )


class _Warnings:
    """Groups dropped rows by file and reason, so 5000 missing images make one line, not 5000."""

    def __init__(self) -> None:
        self._found: dict[tuple[Path, str], list[str]] = {}

    def add(self, path: Path, line: int, reason: str, what: str) -> None:
        self._found.setdefault((path, reason), []).append(f"line {line}: {what}")

    def lines(self) -> tuple[str, ...]:
        out = []
        for (path, reason), items in self._found.items():
            shown = "; ".join(items[:_EXAMPLES]) + ("; ..." if len(items) > _EXAMPLES else "")
            out.append(f"{path}: {len(items)} {reason}, dropped ({shown})")
        return tuple(out)


def _locate(folders: Iterable[Path]) -> dict[str, Path]:
    """Image name -> folder from one listing per folder (first folder wins): no per-file stat on 8k images."""
    where: dict[str, Path] = {}
    for folder in folders:
        try:
            with os.scandir(folder) as entries:
                names = sorted(e.name for e in entries if not e.name.startswith(".") and e.is_file())
        except OSError:
            names = []
        for name in names:
            where.setdefault(name, folder)
    return where


def _read_text(path: Path) -> str:
    """utf-8-sig because spreadsheet programs prepend a BOM that would otherwise rename the first column."""
    try:
        data = path.read_bytes()
    except OSError as e:
        raise DatasetError(f"{path}: cannot read ({e.strerror})") from None
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        line = data.count(b"\n", 0, e.start) + 1
        raise DatasetError(
            f"{path}:{line}: not valid UTF-8 (byte 0x{data[e.start]:02x}); save it as UTF-8"
        ) from None


def _rows(path: Path, delimiter: str = ",") -> Iterator[tuple[int, list[str]]]:
    """Yields (line number, stripped cells), skipping blank lines, with csv errors tied to their line."""
    reader = csv.reader(io.StringIO(_read_text(path), newline=""), delimiter=delimiter)
    try:
        for row in reader:
            if any(cell.strip() for cell in row):
                yield reader.line_num, [cell.strip() for cell in row]
    except csv.Error as e:
        raise DatasetError(f"{path}:{reader.line_num}: {e}") from None


def _records(
    path: Path, columns: tuple[str, ...], delimiter: str = ",", header: bool = True
) -> Iterator[tuple[int, dict[str, str]]]:
    """Rows as dicts keyed by lower-cased column name. With ``header=False`` a header row is still taken
    when present, else columns are positional with an optional leading index (pandas' ``to_csv``)."""
    rows = list(_rows(path, delimiter))
    names = [c.lower() for c in rows[0][1]] if rows else []
    if header or columns[0] in names:
        if missing := [c for c in columns if c not in names]:
            found = ", ".join(rows[0][1]) if rows else "(empty file)"
            line = rows[0][0] if rows else 1
            raise DatasetError(f"{path}:{line}: missing column(s) {', '.join(missing)}; found: {found}")
        for line, row in rows[1:]:
            yield line, {h: row[i] if i < len(row) else "" for i, h in enumerate(names)}
        return
    for line, row in rows:
        if len(row) == len(columns) + 1 and row[0].isdigit():
            row = row[1:]
        if len(row) != len(columns):
            expected = ", ".join(columns)
            raise DatasetError(
                f"{path}:{line}: expected {len(columns)} fields ({expected}), found {len(row)}"
            )
        yield line, dict(zip(columns, row, strict=True))


def _has_caption_header(path: Path) -> bool:
    with path.open(encoding="utf-8-sig", errors="replace", newline="") as f:
        header = {h.strip().lower() for h in next(csv.reader(f), [])}
    return {"image", "caption"} <= header


def _score(path: Path, line: int, raw: str, low: float, high: float) -> float:
    try:
        value = float(raw)
    except ValueError:
        raise DatasetError(f"{path}:{line}: score {raw!r} is not a number") from None
    if not low <= value <= high:
        raise DatasetError(f"{path}:{line}: score {raw} is outside {low:g}..{high:g}")
    return value


def _judgments(root: Path, files: dict[str, str], header: bool) -> Iterator[tuple[Path, int, Judgment]]:
    """Experts answer 1..4; (s-1)/3 puts their mean on the crowd's 0..1 share-of-yes scale."""
    for name, source in files.items():
        if not (path := root / name).is_file():
            continue
        columns = _EXPERT_COLS if source == "expert" else _CROWD_COLS
        for line, r in _records(path, columns, "," if header else "\t", header):
            if source == "expert":
                score = sum(_score(path, line, r[c], 1, 4) - 1 for c in columns[2:]) / (3 * len(columns[2:]))
            else:
                score = _score(path, line, r["share_yes"], 0, 1)
            yield path, line, Judgment(r["image"], r["caption_id"], score, source)


def _read_captions(path: Path, disk: Mapping[str, Path], warn: _Warnings) -> list[Caption]:
    """k counts every row of an image, kept or not, so ids match the judgment files' ``IMAGE#k``."""
    counts: dict[str, int] = {}
    out = []
    for line, row in _records(path, ("image", "caption")):
        image, text = row["image"], row["caption"]
        k = counts[image] = counts.get(image, -1) + 1
        if _usable(path, line, image, text, disk, warn):
            out.append(Caption(f"{image}#{k}", image, text))
    return out


def _usable(path: Path, line: int, image: str, text: str, disk: Mapping[str, Path], warn: _Warnings) -> bool:
    if not image:
        warn.add(path, line, "row(s) with no image name", repr(text[:40]))
    elif not text:
        warn.add(path, line, "empty caption(s)", repr(image))
    elif image not in disk:
        warn.add(path, line, "row(s) naming an image not on disk", repr(image))
    else:
        return True
    return False


def _read_split(path: Path, allowed: Mapping[str, Path], warn: _Warnings) -> tuple[str, ...]:
    names: dict[str, None] = {}
    for line, raw in enumerate(_read_text(path).splitlines(), 1):
        name = raw.strip()
        if name and name not in allowed:
            warn.add(path, line, "image(s) not on disk", repr(name))
        elif name:
            names[name] = None
    return tuple(names)


def _assemble(
    root: Path,
    image_dir: Path,
    disk: Mapping[str, Path],
    captions: list[Caption],
    splits: dict[str, tuple[str, ...]],
    judgments: list[tuple[Path, int, Judgment]],
    warn: _Warnings,
) -> Dataset:
    """Known images are those a caption or split names; judgments must point at both a known image and
    a kept caption, or the scorer would train on pairs it cannot look up."""
    known = dict.fromkeys(c.image for c in captions)
    for names in splits.values():
        known.update(dict.fromkeys(names))
    images = tuple(known)
    caption_ids = {c.id for c in captions}
    kept = []
    for path, line, j in judgments:
        if j.image not in known:
            warn.add(path, line, "judgment(s) on an image not in the dataset", repr(j.image))
        elif j.caption_id not in caption_ids:
            warn.add(path, line, "judgment(s) on a caption not in the dataset", repr(j.caption_id))
        else:
            kept.append(j)
    locations = {name: disk[name] for name in images if disk[name] != image_dir}
    return Dataset(
        root=root,
        image_dir=image_dir,
        images=images,
        captions=tuple(captions),
        splits=splits or {"all": images},
        judgments=tuple(kept),
        warnings=warn.lines(),
        locations=locations,
    )


def _load_flickr(root: Path) -> Dataset:
    image_dir = root / "images" if (root / "images").is_dir() else root
    disk, warn = _locate([image_dir]), _Warnings()
    captions = _read_captions(root / "captions.csv", disk, warn)
    splits = {}
    for name in SPLIT_NAMES:
        if (root / f"{name}.txt").is_file():
            splits[name] = _read_split(root / f"{name}.txt", disk, warn)
    files = {"expert_annotations.csv": "expert", "crowdflower_annotations.csv": "crowd"}
    judgments = list(_judgments(root, files, header=True))
    return _assemble(root, image_dir, disk, captions, splits, judgments, warn)


def _load_plain(csv_path: Path) -> Dataset:
    root = csv_path.parent
    folders = [root / "images", root] if (root / "images").is_dir() else [root]
    disk, warn = _locate(folders), _Warnings()
    captions = _read_captions(csv_path, disk, warn)
    return _assemble(root, folders[0], disk, captions, {}, [], warn)


def _load_judged_pairs(root: Path) -> Dataset:
    """The judged-pairs layout holds annotated pairs, not captions: a row's ``image`` is the picture that
    was judged and ``query_id`` (``OTHER.jpg#k``) names the picture the text describes, so captions come
    from query ids."""
    train_dir, test_dir = root / "train_images", root / "test_images"
    if not train_dir.is_dir():
        raise DatasetError(
            f"{root}: the judged-pairs layout needs a train_images/ folder next to train_dataset.csv"
        )
    disk, warn = _locate([train_dir, test_dir]), _Warnings()
    captions: dict[str, Caption] = {}

    def add(path: Path, line: int, query_id: str, image: str, text: str) -> None:
        if "#" not in query_id:
            warn.add(path, line, "query id(s) not of the form IMAGE#k", repr(query_id))
        elif query_id not in captions and _usable(path, line, image, text, disk, warn):
            captions[query_id] = Caption(query_id, image, text)

    train: dict[str, None] = {}
    path = root / "train_dataset.csv"
    for line, r in _records(path, ("image", "query_id", "query_text")):
        add(path, line, r["query_id"], r["query_id"].partition("#")[0], r["query_text"])
        for name in (r["image"], r["query_id"].partition("#")[0]):
            if disk.get(name) == train_dir:
                train[name] = None
            elif name:
                warn.add(path, line, "image(s) not in train_images/", repr(name))
    if (path := root / "test_queries.csv").is_file():
        for line, r in _records(path, ("query_id", "query_text", "image"), "|", header=False):
            add(path, line, r["query_id"], r["image"] or r["query_id"].partition("#")[0], r["query_text"])
    splits = {"train": tuple(train)}
    splits["test"] = tuple(
        n for n, d in disk.items() if d == test_dir and Path(n).suffix.lower() in SUPPORTED_SUFFIXES
    )
    files = {"ExpertAnnotations.tsv": "expert", "CrowdAnnotations.tsv": "crowd"}
    judgments = list(_judgments(root, files, header=False))
    return _assemble(root, train_dir, disk, list(captions.values()), splits, judgments, warn)
