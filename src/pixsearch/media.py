"""Image files in, validated RGB pixels out: decode, EXIF-rotate, guard, hash, thumbnail.

Every failure is a typed :class:`~pixsearch.errors.MediaError` naming the file, so a batch can report it
and go on with the rest.
"""

from __future__ import annotations

import hashlib
import io
import os
import stat
import struct
from pathlib import Path
from typing import cast

from PIL import Image, ImageFile, UnidentifiedImageError

from pixsearch.errors import CorruptImageError, ImageTooLargeError, MediaError, UnsupportedFormatError

__all__ = [
    "SUPPORTED_SUFFIXES",
    "MAX_PIXELS",
    "MAX_UPLOAD_PIXELS",
    "MAX_SIDE",
    "is_image_path",
    "content_hash",
    "read_bytes",
    "load_image",
    "lossless_bytes",
    "read_photo",
    "thumbnail_bytes",
]

SUPPORTED_SUFFIXES = frozenset(
    {".jpg", ".jpeg", ".jpe", ".png", ".webp", ".gif", ".bmp", ".tif", ".tiff", ".heic", ".heif"}
)
FORMATS = ("JPEG", "PNG", "WEBP", "GIF", "BMP", "TIFF", "MPO", "HEIF")
MAX_PIXELS = 100_000_000  # 100 MP: beyond any camera we expect; larger is a bomb or a scan we refuse
# A photo a stranger sends (the REST API's uploads) may decode to half that: the largest phone sensors
# are 48-50 MP, so every phone photo passes, while the file's author no longer picks how much memory a
# decode takes (up to 4 bytes a pixel: a 219 KB PNG can claim 10000 x 10000). Checked on the header.
MAX_UPLOAD_PIXELS = 50_000_000
MAX_SIDE = 30_000
MAX_FILE_BYTES = 200 * 1024 * 1024

ImageFile.LOAD_TRUNCATED_IMAGES = False
# Our MAX_PIXELS check (run on the header, before any decoding) is the one that decides. Pillow's own
# guard warns above MAX_IMAGE_PIXELS (default ~89.5 MP, below ours) and raises above twice that; raise it
# to our limit so it never refuses, or warns about, an image we accept. Its error (over 2 x MAX_PIXELS)
# stays as a backstop and maps to ImageTooLargeError. None means someone disabled it on purpose.
if Image.MAX_IMAGE_PIXELS is not None and Image.MAX_IMAGE_PIXELS < MAX_PIXELS:
    Image.MAX_IMAGE_PIXELS = MAX_PIXELS

# ISO-BMFF major brands of HEIC/HEIF stills and sequences (bytes 4..12 are b"ftyp" + brand).
_HEIF_BRANDS = frozenset(
    b"ftyp" + b
    for b in (b"heic", b"heix", b"heim", b"heis", b"hevc", b"hevx", b"hevm", b"hevs", b"mif1", b"msf1")
)
# Leading bytes of the formats we decode: a file that starts like one of them but does not open is
# corrupt (e.g. truncated inside its header), not "some other format".
_SIGNATURES = {
    b"\xff\xd8\xff": "JPEG",
    b"\x89PNG\r\n\x1a\n": "PNG",
    b"GIF87a": "GIF",
    b"GIF89a": "GIF",
    b"BM": "BMP",
    b"II*\x00": "TIFF",
    b"MM\x00*": "TIFF",
    b"II+\x00": "TIFF",
    b"MM\x00+": "TIFF",
}
# What Pillow raises on malformed input besides OSError/SyntaxError/ValueError/EOFError (fuzzing finds
# all of these); any of them means "this file does not decode", never a reason to stop a batch.
_DECODE_ERRORS = (
    OSError,
    SyntaxError,
    ValueError,
    EOFError,
    struct.error,
    IndexError,
    KeyError,
    TypeError,
    ZeroDivisionError,
)
_heif_registered: bool | None = None


def _register_heif() -> bool:
    global _heif_registered
    if _heif_registered is None:
        try:
            from pillow_heif import register_heif_opener  # type: ignore[import-not-found]

            register_heif_opener()
            _heif_registered = True
        except ImportError:
            _heif_registered = False
    return _heif_registered


def is_image_path(path: Path) -> bool:
    """True for file names we try to index (by suffix; contents are checked on load)."""
    return path.suffix.lower() in SUPPORTED_SUFFIXES


def content_hash(data: bytes | Path) -> str:
    """128-bit BLAKE2b of the file bytes: identical bytes under two paths are one image."""
    if isinstance(data, Path):
        h = hashlib.blake2b(digest_size=16)
        with open(data, "rb") as f:
            for chunk in iter(lambda: f.read(1 << 20), b""):
                h.update(chunk)
        return h.hexdigest()
    return hashlib.blake2b(data, digest_size=16).hexdigest()


def read_bytes(path: Path) -> bytes:
    """File bytes with the checks that need no decoding."""
    try:
        st = path.stat()
        if stat.S_ISDIR(st.st_mode):
            raise MediaError(str(path), "is a directory")
        if not stat.S_ISREG(st.st_mode):
            # A FIFO or device would block or never end; their st_size says nothing either.
            raise MediaError(str(path), "not a regular file")
        size = st.st_size
        if size == 0:
            raise CorruptImageError(str(path), "empty file (0 bytes)")
        if size > MAX_FILE_BYTES:
            raise ImageTooLargeError(
                str(path),
                f"file is {size / 2**20:.0f} MiB, over the {MAX_FILE_BYTES / 2**20:.0f} MiB limit",
            )
        return path.read_bytes()
    except MediaError:
        raise
    except FileNotFoundError as exc:
        raise MediaError(str(path), "no such file") from exc
    except IsADirectoryError as exc:
        raise MediaError(str(path), "is a directory") from exc
    except PermissionError as exc:
        raise MediaError(str(path), "permission denied") from exc
    except OSError as exc:
        raise MediaError(str(path), f"cannot read: {exc.strerror or exc}") from exc


def load_image(
    source: Path | str | os.PathLike[str] | bytes,
    name: str | None = None,
    draft: int | None = None,
    *,
    max_pixels: int | None = None,
    reduce_to: int | None = None,
) -> Image.Image:
    """Decode to an upright RGB image, or raise a MediaError saying why not.

    ``draft`` lets JPEG decode at a reduced scale that still covers ``draft`` x ``draft`` pixels: the
    encoder squashes to 224-260 px anyway, and this halves decode time for camera-size photos.
    ``max_pixels`` (default MAX_PIXELS) refuses larger images from the header. ``reduce_to`` shrinks the
    decoded image at once (before any mode conversion, which would copy it at full size) by the largest
    integer factor that keeps both sides >= ``reduce_to``: for callers that need only that many pixels.
    """
    if isinstance(source, (bytes, bytearray, memoryview)):
        label = name or "<bytes>"
        data = bytes(source)
    else:
        path = Path(source)
        label = name or str(path)
        data = read_bytes(path)
    if not data:
        raise CorruptImageError(label, "empty file (0 bytes)")
    heif = data[4:12] in _HEIF_BRANDS
    if heif and not _register_heif():
        raise UnsupportedFormatError(label, "HEIC/HEIF needs the optional package pillow-heif")
    # Only our formats are even tried: Pillow never parses a header of a format we do not accept. Names
    # with no registered opener must be left out, or Image.open raises KeyError: "MPO" (opened by the
    # JPEG plugin, which returns MPO images itself) and "HEIF" without pillow-heif.
    Image.init()
    formats = [f for f in FORMATS if f in Image.OPEN]
    try:
        img: Image.Image = Image.open(io.BytesIO(data), formats=formats)
        fmt = img.format or "?"
        if fmt not in FORMATS:
            raise UnsupportedFormatError(label, f"unsupported image format {fmt}")
        # Header only so far: refuse absurd sizes before allocating or decoding anything.
        w, h = img.size
        if w <= 0 or h <= 0:
            raise CorruptImageError(label, f"invalid dimensions {w}x{h}")
        limit = MAX_PIXELS if max_pixels is None else max_pixels
        if w * h > limit:
            raise ImageTooLargeError(label, f"{w}x{h} pixels is over the {limit / 1e6:g} MP limit")
        if max(w, h) > MAX_SIDE:
            raise ImageTooLargeError(label, f"{w}x{h} pixels: a side is over the {MAX_SIDE} px limit")
        if draft and fmt in ("JPEG", "MPO"):
            img.draft("RGB", (draft, draft))
        img.load()
        turn = _orientation(img)  # after loading (a TIFF turns itself as it loads), before reducing
        if reduce_to:
            img = _reduced(img, reduce_to)
        img = _upright(img, turn)
        if img.mode != "RGB" or "transparency" in img.info:
            img = _to_rgb(img)
        return img
    except MediaError:
        raise
    except Image.DecompressionBombError as exc:
        raise ImageTooLargeError(
            label, f"too many pixels, over the {MAX_PIXELS / 1e6:g} MP limit (decompression bomb?)"
        ) from exc
    except MemoryError as exc:
        raise ImageTooLargeError(label, "not enough memory to decode this image") from exc
    except UnidentifiedImageError as exc:
        kind = next((k for sig, k in _SIGNATURES.items() if data.startswith(sig)), None)
        if kind is None and data[:4] == b"RIFF" and data[8:12] == b"WEBP":
            kind = "WEBP"
        if kind is None and heif:
            kind = "HEIF"
        if kind is not None:
            raise CorruptImageError(
                label, f"corrupt or truncated {kind} image (header does not parse)"
            ) from exc
        raise UnsupportedFormatError(label, "not an image file, or a format we cannot decode") from exc
    except _DECODE_ERRORS as exc:
        detail = " ".join(str(exc).split()) or type(exc).__name__  # one line, never empty
        raise CorruptImageError(label, f"corrupt or truncated image ({detail})") from exc


_STRIP_ROWS = 16  # output rows reduced at a time: a strip of a 50 MP photo is then ~12 MB
# EXIF orientation -> the transpose that shows the photo upright (as ImageOps.exif_transpose does it).
_TRANSPOSE = {
    2: Image.Transpose.FLIP_LEFT_RIGHT,
    3: Image.Transpose.ROTATE_180,
    4: Image.Transpose.FLIP_TOP_BOTTOM,
    5: Image.Transpose.TRANSPOSE,
    6: Image.Transpose.ROTATE_270,
    7: Image.Transpose.TRANSVERSE,
    8: Image.Transpose.ROTATE_90,
}


def _orientation(img: Image.Image) -> int:
    """The EXIF orientation (1: upright); a broken EXIF block counts as upright (the pixels are fine)."""
    try:
        return int(img.getexif().get(0x0112, 1))
    except _DECODE_ERRORS:
        return 1


def _upright(img: Image.Image, orientation: int) -> Image.Image:
    method = _TRANSPOSE.get(orientation)
    return img if method is None else img.transpose(method)  # upright already: no full-size copy


def _reduced(img: Image.Image, side: int) -> Image.Image:
    """``img`` shrunk by the largest integer factor keeping both sides >= ``side`` (a box filter, so
    every source pixel counts), a strip at a time: converting the whole image first (Image.reduce takes
    no 1, P or I;16; it premultiplies LA and RGBA into a full-size copy) would double the memory."""
    factor = min(img.size) // side
    if factor < 2:
        return img
    if "transparency" in img.info and img.mode in ("1", "L", "P", "RGB"):
        wide = "RGBA"  # a transparent colour becomes alpha, so it can be averaged
    else:
        wide = "I" if img.mode.startswith("I;16") else {"1": "L", "P": "RGB"}.get(img.mode, img.mode)
    w, h = img.size
    out = Image.new(wide, (-(-w // factor), -(-h // factor)))
    rows = factor * _STRIP_ROWS
    for top in range(0, h, rows):
        strip = img.crop((0, top, w, min(top + rows, h)))
        out.paste((strip if strip.mode == wide else strip.convert(wide)).reduce(factor), (0, top // factor))
    out.info = {k: v for k, v in img.info.items() if k != "transparency"}
    return out


def _to_rgb(img: Image.Image) -> Image.Image:
    """Flatten transparency onto white so logos and PNGs with alpha look as a viewer shows them.

    High bit depth grayscale (16-bit PNG/TIFF, 32-bit int or float TIFF) is scaled to 8 bits first:
    Pillow's own conversion clips every value above 255, which turns a 16-bit photo all white.
    """
    if img.mode in ("I", "F") or img.mode.startswith("I;16"):
        # A tRNS key of a 16-bit image is a 16-bit gray value: meaningless after scaling, dropped.
        img = _to_8bit_gray(img)
        img.info.pop("transparency", None)
    if img.mode in ("RGBA", "LA", "PA", "RGBa", "La") or "transparency" in img.info:
        rgba = img.convert("RGBA")
        bg = Image.new("RGB", rgba.size, (255, 255, 255))
        bg.paste(rgba, mask=rgba.split()[-1])
        return bg
    return img.convert("RGB")


def _to_8bit_gray(img: Image.Image) -> Image.Image:
    if img.mode == "F":
        lo, hi = cast(tuple[float, float], img.getextrema())
        scale = 255.0 if 0.0 <= lo and hi <= 1.0 else (255.0 / hi if hi > 255 else 1.0)
        return img.point(lambda v: v * scale).convert("L")
    if img.mode != "I":
        img = img.convert("I")  # I;16, I;16B, I;16L...: unsigned 16-bit, full range 0..65535
        scale = 1 / 256
    else:
        _, hi = cast(tuple[int, int], img.getextrema())
        scale = 1.0 if hi <= 255 else 1 / 256 if hi <= 65535 else 255 / hi
    return img.point(lambda v: v * scale).convert("L")


def read_photo(path: Path, draft: int | None = None) -> tuple[str, Image.Image | MediaError]:
    """(content hash, decoded image or why not) for a file being indexed.

    The hash is returned even when decoding fails: a photo indexed before in a format this install can
    no longer decode is still recognised by its bytes and kept. Any OS error that escapes the decoder
    also becomes a MediaError ("cannot read: ..."), so callers report one kind of failure."""
    digest = ""
    try:
        data = read_bytes(path)  # the guards: size limit, FIFOs and devices refused
        digest = content_hash(data)
        return digest, load_image(data, name=str(path), draft=draft)
    except MediaError as exc:
        return digest, exc
    except OSError as exc:
        return digest, MediaError(str(path), f"cannot read: {exc.strerror or exc}")


def lossless_bytes(img: Image.Image) -> bytes:
    """A decoded image as PNG, fast (zlib level 1): how an upload decoded and shrunk elsewhere is handed
    on without losing a pixel or decoding the original again."""
    buf = io.BytesIO()
    img.save(buf, format="PNG", compress_level=1)
    return buf.getvalue()


def thumbnail_bytes(img: Image.Image, size: int = 256, quality: int = 80) -> bytes:
    """A JPEG no larger than size x size, aspect kept, for result lists and the web page."""
    t = img if img.mode in ("RGB", "L") else _to_rgb(img)
    t = t.copy()
    t.thumbnail((size, size), Image.Resampling.LANCZOS)
    buf = io.BytesIO()
    t.save(buf, format="JPEG", quality=quality, optimize=True)
    return buf.getvalue()
