"""Text in photos: tesseract (Debian's language data) through tesserocr, the ``[ocr]`` extra.

Why tesserocr and not pytesseract: it keeps one engine loaded for the whole run, where pytesseract starts
the ``tesseract`` program (and loads its models) for every photo: the first pass of a 384 px photo takes
about 20 ms one way and 220 ms the other (``benchmarks/bench_ocr.py --pytesseract``), for the same words.
Its wheels bundle libtesseract and leptonica but no language data, which comes from the system
(Debian's ``tesseract-ocr-eng``, ``-deu``, ...), found through ``TESSDATA_PREFIX``, the ``tesseract``
program's own answer, or the usual folders.

A photo is read in two passes, grayscale, tesseract's sparse-text mode (a photo is no page):

1. the gate: the photo with its longest side at most ``GATE_SIDE`` px. Most photos hold no text, and this
   pass costs a quarter of the second; only a photo where it finds a word-like token (``GATE_CONFIDENCE``)
   gets the second pass;
2. the read: twice that size (at most ``READ_SIDE``): small letters become legible and others are read
   again with other pixels; lines of either pass that the other missed are kept.

Only words of ``MIN_LETTERS`` letters or more at ``MIN_CONFIDENCE`` are kept, as lines of words (so a
query that names a sign's several words finds them in one text). Imported lazily: a library without OCR
never loads tesserocr.
"""

from __future__ import annotations

import ctypes
import glob
import os
import re
import shutil
import subprocess
import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pixsearch.errors import ModelError

if TYPE_CHECKING:
    from PIL import Image

__all__ = ["OCR_EXTRA", "Reading", "TextLine", "TextReader", "create_text_reader", "tessdata_dir"]

OCR_EXTRA = "pip install 'pixsearch[ocr]' and apt-get install tesseract-ocr"
# Words kept: tesseract's confidence (0..100) and letters (a CJK character counts two). On the rendered
# signs of benchmarks/bench_ocr.py, 70 and 3 keep the recall of 60 and 2 (0.45) at precision 0.70, not
# 0.44, and store 0.02 false words per photo without text, not 0.30.
MIN_CONFIDENCE = 70.0
MIN_LETTERS = 3
GATE_CONFIDENCE = 40.0  # a word this sure, of 3+ letters, in the first pass: read the photo again
GATE_SIDE = 1024  # px, longest side of the first pass (never enlarged)
READ_SIDE = 2048  # px, longest side of the second pass at most (twice the first's)
MAX_LINES = 200  # lines kept per photo: a photographed page is searchable without flooding the table
_VERSION = "ocr-v1"  # bump when the passes, cuts or sizes change: every photo is read again
# Where distributions put tesseract's language data (Debian 5 and 4, Fedora, Homebrew, source builds).
_TESSDATA_DIRS = (
    "/usr/share/tesseract-ocr/5/tessdata",
    "/usr/share/tesseract-ocr/4.00/tessdata",
    "/usr/share/tessdata",
    "/usr/local/share/tessdata",
    "/opt/homebrew/share/tessdata",
)
_EDGE_PUNCT = re.compile(r"^[^\w]+|[^\w]+$")


@dataclass(frozen=True)
class TextLine:
    text: str  # the line's confident words, space-separated
    confidence: float  # 0..1: the mean of its words'


@dataclass(frozen=True)
class Reading:
    lines: tuple[TextLine, ...]
    read_twice: bool  # the gate passed: the photo got the second, larger pass


def tessdata_dir(env: Mapping[str, str] = os.environ) -> Path | None:
    """The folder holding ``*.traineddata``: ``TESSDATA_PREFIX`` when set, else where the ``tesseract``
    program says, else the first usual folder that has any."""
    if env.get("TESSDATA_PREFIX"):
        return Path(env["TESSDATA_PREFIX"])
    exe = shutil.which("tesseract", path=env.get("PATH"))
    if exe:
        try:
            out = subprocess.run([exe, "--list-langs"], capture_output=True, text=True, timeout=30)
            m = re.search(r'"([^"]+)"', out.stdout)  # List of available languages in "DIR/" (N):
            if m and Path(m.group(1)).is_dir():
                return Path(m.group(1))
        except (OSError, subprocess.SubprocessError):
            pass
    return next((Path(d) for d in _TESSDATA_DIRS if glob.glob(os.path.join(d, "*.traineddata"))), None)


def _letters(word: str) -> int:
    """Letters and digits in ``word``; a CJK character counts two (one is a whole word)."""
    return sum(2 if ord(c) >= 0x2E80 else 1 for c in word if c.isalnum())


def _quiet_leptonica(tesserocr: Any) -> None:
    """Silence leptonica's own stderr lines ("Error in boxClipToRectangle: ..."), which it prints for
    harmless boxes on photos: they would break a CLI's one-line output. Best effort (bundled library)."""
    base = Path(tesserocr.__file__).parent
    for lib in sorted(glob.glob(str(base.parent / "tesserocr.libs" / "*leptonica*"))) + sorted(
        glob.glob(str(base / ".dylibs" / "*lept*"))
    ):
        try:
            ctypes.CDLL(lib).setMsgSeverity(6)  # L_SEVERITY_NONE
            return
        except (OSError, AttributeError):
            continue


class TextReader:
    """One tesseract engine, loaded once; ``read`` is serialised (an engine is not thread-safe)."""

    def __init__(self, languages: str = "eng", env: Mapping[str, str] = os.environ) -> None:
        langs = languages.split("+")
        if any(not re.fullmatch(r"[A-Za-z0-9_]+", x) for x in langs):
            raise ModelError(f"OCR languages {languages!r}: tesseract names joined by '+', e.g. eng+deu")
        try:
            import tesserocr
        except ImportError as exc:
            raise ModelError(f"OCR needs tesseract: {OCR_EXTRA}") from exc
        data = tessdata_dir(env)
        if data is None or not data.is_dir():
            raise ModelError(f"OCR needs tesseract's language data: {OCR_EXTRA} (or set TESSDATA_PREFIX)")
        missing = [x for x in langs if not (data / f"{x}.traineddata").is_file()]
        if missing:
            packs = " ".join(f"tesseract-ocr-{x.replace('_', '-').lower()}" for x in missing)
            langs_missing = "+".join(missing)
            raise ModelError(f"no OCR language data for {langs_missing} in {data}: apt-get install {packs}")
        _quiet_leptonica(tesserocr)
        self._tess = tesserocr
        self.languages = "+".join(langs)
        try:
            self._api = tesserocr.PyTessBaseAPI(
                path=str(data) + os.sep, lang=self.languages, psm=tesserocr.PSM.SPARSE_TEXT
            )
        except RuntimeError as exc:
            raise ModelError(f"tesseract could not load {self.languages} from {data}: {exc}") from exc
        self._api.SetVariable("debug_file", os.devnull)  # tesseract's own notes ("Estimating resolution")
        self._lock = threading.Lock()
        version = tesserocr.tesseract_version().split()[1]
        self.fingerprint = (
            f"{_VERSION}|tesseract-{version}|{self.languages}|c{MIN_CONFIDENCE:g}:l{MIN_LETTERS}:g{GATE_CONFIDENCE:g}"
            f":{GATE_SIDE}/{READ_SIDE}"
        )

    def close(self) -> None:
        with self._lock:
            self._api.End()

    def read(self, image: Image.Image, gate: bool = True) -> Reading:
        """The confident text lines of ``image`` (any mode, any size), best pass first. ``gate=False``
        reads every photo twice (what the gate saves: ``benchmarks/bench_ocr.py``)."""
        from PIL import Image as PILImage

        gray = image.convert("L")
        side = max(gray.size)
        first = _scaled(gray, min(1.0, GATE_SIDE / side), PILImage.Resampling.BILINEAR)
        with self._lock:
            words1 = self._words(first)
            likely = any(c >= GATE_CONFIDENCE and _letters(w) >= 3 for line in words1 for w, c in line)
            if gate and not likely:
                return Reading(_lines(words1), False)
            scale = min(READ_SIDE, 2 * max(first.size)) / side
            words2 = self._words(_scaled(gray, scale, PILImage.Resampling.LANCZOS))
        second = _lines(words2)
        seen = {w for line in second for w in line.text.lower().split()}
        extra = [line for line in _lines(words1) if not set(line.text.lower().split()) <= seen]
        return Reading(_unique([*second, *extra]), True)

    def _words(self, gray: Image.Image) -> list[list[tuple[str, float]]]:
        """(word, confidence) per text line, in reading order."""
        tess = self._tess
        word, textline = tess.RIL.WORD, tess.RIL.TEXTLINE
        self._api.SetImage(gray)
        self._api.Recognize()
        lines: list[list[tuple[str, float]]] = []
        for it in tess.iterate_level(self._api.GetIterator(), word):
            if it.IsAtBeginningOf(textline) or not lines:
                lines.append([])
            try:
                text, conf = it.GetUTF8Text(word), float(it.Confidence(word))
            except RuntimeError:  # an empty word
                continue
            text = _EDGE_PUNCT.sub("", text.strip())
            if text:
                lines[-1].append((text, conf))
        return [line for line in lines if line]


def _scaled(gray: Image.Image, scale: float, method: Any) -> Image.Image:
    if abs(scale - 1.0) < 1e-3:
        return gray
    size = (max(1, round(gray.width * scale)), max(1, round(gray.height * scale)))
    return gray.resize(size, method, reducing_gap=3.0 if scale < 1 else None)


def _lines(words: Sequence[Sequence[tuple[str, float]]]) -> tuple[TextLine, ...]:
    """Lines of the confident words (``MIN_LETTERS`` or more), each with its words' mean confidence."""
    out: list[TextLine] = []
    for line in words:
        kept = [(w, c) for w, c in line if c >= MIN_CONFIDENCE and _letters(w) >= MIN_LETTERS]
        if kept:
            text = " ".join(w for w, _ in kept)
            out.append(TextLine(text, round(sum(c for _, c in kept) / len(kept) / 100.0, 3)))
    return _unique(out)


def _unique(lines: Sequence[TextLine]) -> tuple[TextLine, ...]:
    """Each text once (its first, i.e. best pass's, line), at most ``MAX_LINES``."""
    first: dict[str, TextLine] = {}
    for line in lines:
        first.setdefault(line.text, line)
    return tuple(first.values())[:MAX_LINES]


def create_text_reader(languages: str = "eng") -> TextReader:
    """A loaded reader, or a one-line ModelError that names what to install."""
    return TextReader(languages)
