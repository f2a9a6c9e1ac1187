"""IPTC-IIM's Caption-Abstract and Keywords, the fields older editors (Photoshop, Bridge, Picasa) wrote,
read with Pillow's ``IptcImagePlugin.getiptcinfo`` (JPEG's Photoshop block, TIFF's IPTC tag).

IIM text has no declared encoding unless record 1:90 says UTF-8 (``ESC % G``); otherwise UTF-8 is tried
and Latin-1 (what those editors used) taken when it fails.
"""

from __future__ import annotations

from dataclasses import dataclass

from PIL import IptcImagePlugin
from PIL.ImageFile import ImageFile

__all__ = ["IptcTexts", "iptc_texts"]

_CHARSET = (1, 90)
_CAPTION = (2, 120)
_KEYWORDS = (2, 25)


@dataclass(frozen=True)
class IptcTexts:
    descriptions: tuple[str, ...] = ()
    keywords: tuple[str, ...] = ()


def iptc_texts(im: ImageFile) -> IptcTexts:
    """The caption and keywords of an opened image (empty when it has no IPTC block, or a broken one)."""
    try:
        info = IptcImagePlugin.getiptcinfo(im) or {}
    except (OSError, ValueError, TypeError, KeyError, IndexError, SyntaxError):
        return IptcTexts()
    utf8 = b"\x1b%G" in b"".join(_values(info.get(_CHARSET)))
    caption = [_text(v, utf8) for v in _values(info.get(_CAPTION))]
    words = [_text(v, utf8) for v in _values(info.get(_KEYWORDS))]
    return IptcTexts(tuple(c for c in caption if c), tuple(w for w in words if w))


def _values(v: object) -> list[bytes]:
    if isinstance(v, bytes):
        return [v]
    if isinstance(v, list):
        return [x for x in v if isinstance(x, bytes)]
    return []


def _text(raw: bytes, utf8: bool) -> str:
    try:
        s = raw.decode("utf-8")
    except UnicodeDecodeError:
        s = "" if utf8 else raw.decode("latin-1")
    return s.replace("\x00", " ").strip()
