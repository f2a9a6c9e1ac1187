"""pixsearch.media: decode every supported format to upright RGB, refuse bad input with typed errors.

All images are generated in tmp_path with Pillow at tiny sizes; nothing here touches the network.
"""

from __future__ import annotations

import io
import os
import random
import struct
import zlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageFile, features

from pixsearch import media
from pixsearch.errors import CorruptImageError, ImageTooLargeError, MediaError, UnsupportedFormatError
from pixsearch.media import content_hash, is_image_path, load_image, thumbnail_bytes

RED = (255, 0, 0)
BLUE = (0, 0, 255)
WHITE = (255, 255, 255)


# --------------------------------------------------------------------------------------------- helpers


def _encode(img: Image.Image, fmt: str, **kw: object) -> bytes:
    buf = io.BytesIO()
    img.save(buf, format=fmt, **kw)
    return buf.getvalue()


def _write(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    return path


def _save(img: Image.Image, path: Path, fmt: str, **kw: object) -> Path:
    return _write(path, _encode(img, fmt, **kw))


def _close(actual: tuple[int, ...], expected: tuple[int, ...], tol: int) -> bool:
    return all(abs(a - e) <= tol for a, e in zip(actual, expected, strict=True))


def _rgb(img: Image.Image, xy: tuple[int, int]) -> tuple[int, int, int]:
    px = img.getpixel(xy)
    assert isinstance(px, tuple)
    return (int(px[0]), int(px[1]), int(px[2]))


def _noise_jpeg(w: int = 128, h: int = 96) -> bytes:
    """A JPEG with real entropy-coded data, so cutting it lands inside the scan."""
    return _encode(Image.effect_noise((w, h), 60).convert("RGB"), "JPEG", quality=90)


def _png_chunk(tag: bytes, payload: bytes) -> bytes:
    crc = zlib.crc32(tag + payload) & 0xFFFFFFFF
    return struct.pack(">I", len(payload)) + tag + payload + struct.pack(">I", crc)


def _png_header_only(width: int, height: int) -> bytes:
    """A PNG whose IHDR (valid CRC) claims width x height RGB, with no pixel data at all."""
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + _png_chunk(b"IHDR", ihdr) + _png_chunk(b"IEND", b"")


def _error(exc_type: type[MediaError], source: Path | bytes, **kw: object) -> MediaError:
    """Call load_image expecting exc_type; check the message is one line that names the file."""
    with pytest.raises(exc_type) as info:
        load_image(source, **kw)  # type: ignore[arg-type]
    exc = info.value
    assert type(exc) is exc_type
    label = str(kw.get("name") or source)
    assert label in str(exc)
    assert exc.path == label
    assert "\n" not in str(exc)
    return exc


@pytest.fixture
def no_decode(monkeypatch: pytest.MonkeyPatch) -> None:
    """Fail the test if any pixel data is decoded (size checks must run on the header alone)."""

    def boom(self: ImageFile.ImageFile) -> None:
        raise AssertionError("pixel data was decoded")

    monkeypatch.setattr(ImageFile.ImageFile, "load", boom)


# ------------------------------------------------------------------------------------ formats decode


@pytest.mark.parametrize(
    ("fmt", "suffix", "kw", "tol"),
    [
        ("JPEG", ".jpg", {"quality": 95}, 12),
        ("PNG", ".png", {}, 0),
        ("BMP", ".bmp", {}, 0),
        ("TIFF", ".tif", {}, 0),
        ("WEBP", ".webp", {"lossless": True}, 0),
    ],
)
def test_rgb_formats_decode(tmp_path: Path, fmt: str, suffix: str, kw: dict[str, object], tol: int) -> None:
    if fmt == "WEBP" and not features.check("webp"):
        pytest.skip("Pillow built without WebP")
    path = _save(Image.new("RGB", (40, 24), RED), tmp_path / f"a{suffix}", fmt, **kw)
    img = load_image(path)
    assert img.mode == "RGB"
    assert img.size == (40, 24)
    assert _close(_rgb(img, (20, 12)), RED, tol)


def test_bytes_source_decodes() -> None:
    img = load_image(_encode(Image.new("RGB", (7, 5), BLUE), "PNG"))
    assert (img.mode, img.size, _rgb(img, (3, 2))) == ("RGB", (7, 5), BLUE)


def test_str_path_decodes(tmp_path: Path) -> None:
    path = _save(Image.new("RGB", (7, 5), BLUE), tmp_path / "s.png", "PNG")
    assert load_image(str(path)).size == (7, 5)


def test_png_rgba_alpha_flattened_on_white(tmp_path: Path) -> None:
    img = Image.new("RGBA", (10, 10), (*RED, 255))
    img.putpixel((0, 0), (0, 0, 0, 0))  # fully transparent black
    img.putpixel((1, 0), (0, 0, 255, 128))  # half-transparent blue
    out = load_image(_save(img, tmp_path / "a.png", "PNG"))
    assert out.mode == "RGB" and out.size == (10, 10)
    assert _rgb(out, (0, 0)) == WHITE
    assert _close(_rgb(out, (1, 0)), (127, 127, 255), 2)
    assert _rgb(out, (5, 5)) == RED


def test_png_rgb_color_key_transparency_flattened(tmp_path: Path) -> None:
    img = Image.new("RGB", (6, 4), RED)
    img.putpixel((0, 0), (0, 0, 0))
    out = load_image(_save(img, tmp_path / "key.png", "PNG", transparency=(0, 0, 0)))
    assert _rgb(out, (0, 0)) == WHITE
    assert _rgb(out, (3, 2)) == RED


def test_png_palette_with_transparency(tmp_path: Path) -> None:
    img = Image.new("P", (8, 6), 1)
    img.putpalette([0, 0, 0, *RED, *BLUE])
    img.putpixel((0, 0), 0)  # index 0 (black) is the transparent one
    img.putpixel((1, 0), 2)
    path = _save(img, tmp_path / "p.png", "PNG", transparency=0)
    assert Image.open(path).mode == "P"
    out = load_image(path)
    assert out.mode == "RGB" and out.size == (8, 6)
    assert _rgb(out, (0, 0)) == WHITE
    assert _rgb(out, (1, 0)) == BLUE
    assert _rgb(out, (4, 3)) == RED


@pytest.mark.parametrize(("fmt", "suffix"), [("PNG", ".png"), ("TIFF", ".tif")])
def test_16bit_grayscale_scaled_not_clipped(tmp_path: Path, fmt: str, suffix: str) -> None:
    ramp = np.linspace(0, 65535, 32 * 16).astype(np.uint16).reshape(16, 32)
    img = Image.frombytes("I;16", (32, 16), ramp.astype("<u2").tobytes())
    path = _save(img, tmp_path / f"g16{suffix}", fmt)
    assert Image.open(path).mode.startswith("I;16")
    out = load_image(path)
    assert out.mode == "RGB" and out.size == (32, 16)
    arr = np.asarray(out).astype(int)
    assert (arr[..., 0] == arr[..., 1]).all() and (arr[..., 1] == arr[..., 2]).all()
    # Pillow's plain convert clips every value > 255 to white; a scaled ramp spans the range.
    assert (arr == 255).mean() < 0.05
    assert np.abs(arr[..., 0] - (ramp >> 8)).max() <= 1


def test_gif_animated_gives_first_frame(tmp_path: Path) -> None:
    frames = [Image.new("RGB", (12, 10), RED), Image.new("RGB", (12, 10), BLUE)]
    path = tmp_path / "anim.gif"
    frames[0].save(path, format="GIF", save_all=True, append_images=frames[1:], duration=50, loop=0)
    assert getattr(Image.open(path), "n_frames", 1) == 2
    out = load_image(path)
    assert out.mode == "RGB" and out.size == (12, 10)
    assert _close(_rgb(out, (6, 5)), RED, 4)


def test_cmyk_jpeg(tmp_path: Path) -> None:
    cmyk = Image.new("CMYK", (32, 16), (0, 255, 255, 0))  # no cyan/black, full magenta+yellow: red
    path = _save(cmyk, tmp_path / "cmyk.jpg", "JPEG", quality=95)
    assert Image.open(path).mode == "CMYK"
    out = load_image(path)
    assert out.mode == "RGB" and out.size == (32, 16)
    assert _close(_rgb(out, (16, 8)), RED, 40)


def test_mpo_jpeg_first_picture(tmp_path: Path) -> None:
    # Camera JPEGs with an MP extension open as format MPO (the JPEG plugin returns them).
    path = tmp_path / "stereo.jpg"
    second = Image.new("RGB", (64, 48), BLUE)
    Image.new("RGB", (64, 48), RED).save(path, format="MPO", save_all=True, append_images=[second])
    assert Image.open(path).format == "MPO"
    out = load_image(path, draft=16)
    assert out.mode == "RGB" and min(out.size) >= 16
    assert _close(_rgb(out, (out.size[0] // 2, out.size[1] // 2)), RED, 12)


def test_png_la_alpha_flattened_on_white(tmp_path: Path) -> None:
    img = Image.new("LA", (4, 4), (0, 255))
    img.putpixel((0, 0), (0, 0))
    out = load_image(_save(img, tmp_path / "la.png", "PNG"))
    assert _rgb(out, (0, 0)) == WHITE and _rgb(out, (2, 2)) == (0, 0, 0)


def test_png_with_jpg_suffix_decodes_by_content(tmp_path: Path) -> None:
    path = _save(Image.new("RGB", (9, 7), BLUE), tmp_path / "really_a_png.jpg", "PNG")
    out = load_image(path)
    assert out.size == (9, 7) and _rgb(out, (4, 3)) == BLUE


# ------------------------------------------------------------------------------ orientation and draft


def test_exif_orientation_6_rotates(tmp_path: Path) -> None:
    img = Image.new("RGB", (80, 40), BLUE)
    img.paste(RED, (0, 0, 40, 40))  # left half red
    exif = img.getexif()
    exif[0x0112] = 6  # stored rotated: display needs 90 degrees clockwise
    path = _save(img, tmp_path / "rot.jpg", "JPEG", exif=exif, quality=95)
    out = load_image(path)
    assert out.size == (40, 80)
    # Rotating clockwise brings the stored left half to the top.
    assert _close(_rgb(out, (20, 10)), RED, 12)
    assert _close(_rgb(out, (20, 70)), BLUE, 12)


def test_exif_orientation_1_untouched(tmp_path: Path) -> None:
    img = Image.new("RGB", (80, 40), BLUE)
    exif = img.getexif()
    exif[0x0112] = 1
    assert load_image(_save(img, tmp_path / "up.jpg", "JPEG", exif=exif)).size == (80, 40)


def test_draft_reduces_jpeg_but_covers_requested_size(tmp_path: Path) -> None:
    # Pillow's JPEG draft picks the largest DCT scale 1/1, 1/2, 1/4 or 1/8 for which BOTH sides stay
    # >= the requested size (ceil(side / scale)), so a draft never undershoots on either side.
    path = _save(Image.new("RGB", (1600, 1200), RED), tmp_path / "big.jpg", "JPEG")
    out = load_image(path, draft=224)
    w, h = out.size
    assert w < 1600 and h < 1200
    assert min(w, h) >= 224
    scale = 1600 / w
    assert scale in (2, 4, 8) and h == -(-1200 // int(scale))
    assert out.mode == "RGB"


def test_draft_on_small_jpeg_keeps_full_size(tmp_path: Path) -> None:
    path = _save(Image.new("RGB", (300, 200), RED), tmp_path / "small.jpg", "JPEG")
    assert load_image(path, draft=224).size == (300, 200)


def test_draft_ignored_for_png(tmp_path: Path) -> None:
    path = _save(Image.new("RGB", (900, 600), RED), tmp_path / "big.png", "PNG")
    assert load_image(path, draft=224).size == (900, 600)


# --------------------------------------------------------------------------------------- bad input


def test_empty_file_is_corrupt(tmp_path: Path) -> None:
    exc = _error(CorruptImageError, _write(tmp_path / "empty.jpg", b""))
    assert "empty" in exc.reason


def test_empty_bytes_is_corrupt() -> None:
    _error(CorruptImageError, b"", name="upload.jpg")


def test_truncated_jpeg_is_corrupt(tmp_path: Path) -> None:
    data = _noise_jpeg()
    assert not ImageFile.LOAD_TRUNCATED_IMAGES
    _error(CorruptImageError, _write(tmp_path / "half.jpg", data[: len(data) // 2]))


def test_jpeg_cut_inside_header_is_corrupt_not_unsupported(tmp_path: Path) -> None:
    _error(CorruptImageError, _write(tmp_path / "head.jpg", _noise_jpeg()[:20]))


def test_truncated_png_is_corrupt(tmp_path: Path) -> None:
    data = _encode(Image.effect_noise((64, 64), 60).convert("RGB"), "PNG")
    _error(CorruptImageError, _write(tmp_path / "half.png", data[: len(data) // 2]))


def test_garbage_with_jpg_suffix_is_unsupported(tmp_path: Path) -> None:
    data = b"\x00" + random.Random(0).randbytes(4096)  # leading NUL: no image signature
    exc = _error(UnsupportedFormatError, _write(tmp_path / "garbage.jpg", data))
    assert "not an image" in exc.reason


def test_text_renamed_png_is_unsupported(tmp_path: Path) -> None:
    _error(UnsupportedFormatError, _write(tmp_path / "notes.png", b"shopping list\neggs\nmilk\n"))


def test_other_image_format_is_unsupported(tmp_path: Path) -> None:
    # A real image in a format we do not index (PCX) is refused before decoding.
    data = _encode(Image.new("RGB", (8, 8), RED), "PCX")
    _error(UnsupportedFormatError, _write(tmp_path / "pic.png", data))


def test_huge_png_header_refused_without_decoding(tmp_path: Path, no_decode: None) -> None:
    path = _write(tmp_path / "bomb.png", _png_header_only(50_000, 50_000))
    exc = _error(ImageTooLargeError, path)
    assert "MP" in exc.reason


def test_huge_png_header_refused_by_our_check_alone(
    tmp_path: Path, no_decode: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", None)  # Pillow's guard off: ours still holds
    exc = _error(ImageTooLargeError, _write(tmp_path / "bomb.png", _png_header_only(50_000, 50_000)))
    assert "50000x50000" in exc.reason


def test_too_long_side_refused_without_decoding(tmp_path: Path, no_decode: None) -> None:
    exc = _error(ImageTooLargeError, _write(tmp_path / "strip.png", _png_header_only(media.MAX_SIDE + 1, 10)))
    assert "side" in exc.reason


def test_pillow_limit_never_below_ours() -> None:
    assert Image.MAX_IMAGE_PIXELS is None or Image.MAX_IMAGE_PIXELS >= media.MAX_PIXELS


def test_our_pixel_limit_decides(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # Even with Pillow's warning threshold below ours, an image within MAX_PIXELS decodes, one over it
    # is refused by our check, and Pillow's hard error (over 2x its limit) also maps to ImageTooLarge.
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 1000)
    monkeypatch.setattr(media, "MAX_PIXELS", 1500)
    ok = _save(Image.new("RGB", (40, 30), RED), tmp_path / "ok.png", "PNG")  # 1200 px
    with pytest.warns(Image.DecompressionBombWarning):
        assert load_image(ok).size == (40, 30)
    over = _save(Image.new("RGB", (40, 40), RED), tmp_path / "over.png", "PNG")  # 1600 px
    with pytest.warns(Image.DecompressionBombWarning):
        _error(ImageTooLargeError, over)
    bomb = _save(Image.new("RGB", (50, 50), RED), tmp_path / "bomb.png", "PNG")  # 2500 px > 2 x 1000
    _error(ImageTooLargeError, bomb)


def test_file_over_byte_limit(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(media, "MAX_FILE_BYTES", 100)
    path = _save(Image.effect_noise((64, 64), 60).convert("RGB"), tmp_path / "big.png", "PNG")
    _error(ImageTooLargeError, path)


def test_missing_file(tmp_path: Path) -> None:
    exc = _error(MediaError, tmp_path / "nope.jpg")
    assert "no such file" in exc.reason


def test_directory(tmp_path: Path) -> None:
    d = tmp_path / "album.jpg"
    d.mkdir()
    exc = _error(MediaError, d)
    assert "directory" in exc.reason


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="no FIFOs on this platform")
def test_fifo_is_refused_without_blocking(tmp_path: Path) -> None:
    fifo = tmp_path / "pipe.jpg"
    os.mkfifo(fifo)
    exc = _error(MediaError, fifo)
    assert "regular file" in exc.reason


@pytest.mark.skipif(not hasattr(os, "geteuid") or os.geteuid() == 0, reason="root can read anything")
def test_unreadable_file(tmp_path: Path) -> None:
    path = _save(Image.new("RGB", (4, 4), RED), tmp_path / "secret.png", "PNG")
    path.chmod(0)
    try:
        exc = _error(MediaError, path)
        assert "permission denied" in exc.reason
    finally:
        path.chmod(0o644)


def test_heic_without_pillow_heif(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(media, "_heif_registered", False)  # as if pillow-heif were not installed
    ftyp = struct.pack(">I", 24) + b"ftypheic" + b"\x00\x00\x00\x00" + b"mif1heic"
    path = _write(tmp_path / "IMG_0001.HEIC", ftyp + b"\x00" * 64)
    exc = _error(UnsupportedFormatError, path)
    assert "pillow-heif" in str(exc)


def test_bytes_error_names_the_given_name() -> None:
    exc = _error(UnsupportedFormatError, b"plain text, not pixels", name="upload/photo.jpg")
    assert str(exc).startswith("upload/photo.jpg: ")


# ------------------------------------------------------------------------------------- content hash


def test_content_hash_same_bytes_same_hash(tmp_path: Path) -> None:
    data = _encode(Image.new("RGB", (8, 8), RED), "PNG")
    a = _write(tmp_path / "a.png", data)
    (tmp_path / "sub").mkdir()
    b = _write(tmp_path / "sub" / "copy.png", data)
    assert content_hash(a) == content_hash(b)
    assert len(content_hash(a)) == 32  # 128-bit hex


def test_content_hash_different_bytes_differ(tmp_path: Path) -> None:
    a = _save(Image.new("RGB", (8, 8), RED), tmp_path / "a.png", "PNG")
    b = _save(Image.new("RGB", (8, 8), BLUE), tmp_path / "b.png", "PNG")
    assert content_hash(a) != content_hash(b)
    assert content_hash(b"x") != content_hash(b"y")


def test_content_hash_path_and_bytes_agree(tmp_path: Path) -> None:
    data = random.Random(1).randbytes(3 * (1 << 20) + 17)  # spans several 1 MiB read chunks
    path = _write(tmp_path / "blob.jpg", data)
    assert content_hash(path) == content_hash(data)


# ---------------------------------------------------------------------------------------- thumbnails


@pytest.mark.parametrize(("size_in", "size_out"), [((300, 150), (256, 128)), ((90, 400), (58, 256))])
def test_thumbnail_is_jpeg_within_size_aspect_kept(
    size_in: tuple[int, int], size_out: tuple[int, int]
) -> None:
    data = thumbnail_bytes(Image.new("RGB", size_in, RED))
    thumb = Image.open(io.BytesIO(data))
    assert thumb.format == "JPEG"
    assert max(thumb.size) <= 256
    assert thumb.size == size_out
    assert abs(thumb.size[0] / thumb.size[1] - size_in[0] / size_in[1]) < 0.05


def test_thumbnail_custom_size_and_no_upscale() -> None:
    thumb = Image.open(io.BytesIO(thumbnail_bytes(Image.new("RGB", (120, 80), RED), size=64)))
    assert thumb.size == (64, 43) or thumb.size == (64, 42)
    small = Image.open(io.BytesIO(thumbnail_bytes(Image.new("RGB", (30, 20), RED))))
    assert small.size == (30, 20)


def test_thumbnail_of_rgba_image() -> None:
    thumb = Image.open(io.BytesIO(thumbnail_bytes(Image.new("RGBA", (40, 20), (0, 0, 0, 0)))))
    assert thumb.format == "JPEG" and thumb.size == (40, 20)
    assert _close(_rgb(thumb.convert("RGB"), (20, 10)), WHITE, 4)


def test_thumbnail_does_not_modify_input() -> None:
    img = Image.new("RGB", (600, 300), RED)
    thumbnail_bytes(img)
    assert img.size == (600, 300)


# ------------------------------------------------------------------------------------ is_image_path


@pytest.mark.parametrize(
    "name",
    [
        "a.jpg",
        "a.JPG",
        "a.Jpeg",
        "a.jpe",
        "a.PNG",
        "a.webp",
        "a.GIF",
        "a.bmp",
        "a.TIF",
        "a.tiff",
        "a.HEIC",
        "a.heif",
        "dir.d/x.jPg",
    ],
)
def test_is_image_path_true(name: str) -> None:
    assert is_image_path(Path(name))


@pytest.mark.parametrize("name", ["a.txt", "a", "a.jpg.bak", "a.mov", "a.svg", "jpg", "a.pdf"])
def test_is_image_path_false(name: str) -> None:
    assert not is_image_path(Path(name))


# ------------------------------------------------------------------ uploads: pixel limit and reduction


def test_upload_pixel_limit_refused_from_the_header(no_decode: None) -> None:
    # A stranger's file may claim half the local limit: refused before a pixel is decoded.
    just_over = _png_header_only(7072, 7071)  # 50.006 MP
    with pytest.raises(ImageTooLargeError) as info:
        load_image(just_over, name="upload", max_pixels=media.MAX_UPLOAD_PIXELS)
    assert "50 MP" in info.value.reason
    assert media.MAX_UPLOAD_PIXELS < media.MAX_PIXELS


def test_upload_pixel_limit_leaves_local_files_alone(no_decode: None) -> None:
    # The default stays MAX_PIXELS: a 60 MP scan indexed from disk is not refused by its header.
    with pytest.raises(AssertionError, match="decoded"):
        load_image(_png_header_only(8000, 7500))


def test_reduce_to_keeps_both_sides_at_least_the_size() -> None:
    img = Image.new("RGB", (2000, 900), BLUE)
    img.paste(RED, (0, 0, 1000, 900))  # left half red
    out = load_image(_encode(img, "PNG"), reduce_to=256)
    assert out.size == (667, 300)  # 900 // 256 = 3 (a partial last block counts): both sides >= 256
    assert _close(_rgb(out, (100, 150)), RED, 2) and _close(_rgb(out, (600, 150)), BLUE, 2)
    small = Image.new("RGB", (400, 300), RED)
    assert load_image(_encode(small, "PNG"), reduce_to=256).size == (400, 300)  # factor 1: untouched


@pytest.mark.parametrize("fmt", ["TIFF", "JPEG", "PNG"])
def test_reduce_to_keeps_the_exif_orientation(fmt: str) -> None:
    # Read before reducing: a reduced copy keeps no TIFF tags, so the turn would otherwise be lost.
    img = Image.new("RGB", (1200, 600), BLUE)
    img.paste(RED, (0, 0, 600, 600))  # left half red
    exif = img.getexif()
    exif[0x0112] = 6
    out = load_image(_encode(img, fmt, exif=exif), reduce_to=256)
    assert out.size == (300, 600)  # 600 // 256 = 2, then turned upright
    assert _close(_rgb(out, (150, 100)), RED, 12) and _close(_rgb(out, (150, 500)), BLUE, 12)


@pytest.mark.parametrize(
    ("img", "expected"),
    [
        (Image.new("LA", (1024, 1024), (0, 0)), WHITE),  # transparent: flattened onto white
        (Image.new("RGBA", (1024, 1024), (255, 0, 0, 255)), RED),
        (Image.new("1", (1024, 1024), 1), WHITE),
        (Image.new("P", (1024, 1024), 0).convert("RGB").convert("P"), (0, 0, 0)),
        (Image.new("I;16", (1024, 1024), 65535), WHITE),  # 16-bit white stays white
    ],
    ids=["LA", "RGBA", "1", "P", "I;16"],
)
def test_reduce_to_every_mode(img: Image.Image, expected: tuple[int, int, int]) -> None:
    out = load_image(_encode(img, "PNG"), reduce_to=256)
    assert out.mode == "RGB" and out.size == (256, 256)
    assert _close(_rgb(out, (128, 128)), expected, 1)


def test_lossless_bytes_round_trip() -> None:
    img = Image.effect_noise((64, 48), 60).convert("RGB")
    back = load_image(media.lossless_bytes(img))
    assert back.size == img.size and back.tobytes() == img.tobytes()


@pytest.mark.parametrize("mode", ["L", "RGB", "P"])
def test_reduce_to_keeps_a_transparent_colour_transparent(mode: str) -> None:
    img = Image.new(mode, (1024, 1024), 0)
    if mode == "P":
        img.putpalette([0, 0, 0, 255, 0, 0] * 128)
    img.paste(1 if mode == "P" else 200 if mode == "L" else (200, 0, 0), (0, 0, 512, 1024))
    data = _encode(img, "PNG", transparency=0 if mode != "RGB" else (0, 0, 0))
    full, reduced = load_image(data), load_image(data, reduce_to=256)
    assert reduced.size == (256, 256)
    assert _rgb(reduced, (25, 125)) == _rgb(full, (100, 500)) and _rgb(reduced, (225, 125)) == WHITE


def test_reduce_by_strips_equals_one_reduce() -> None:
    # Strips start at multiples of the factor, so every box is the one a whole-image reduce averages.
    img = Image.effect_noise((1500, 1100), 80).convert("RGB")  # 1100 // 256 = 4; 275 rows: many strips
    assert load_image(_encode(img, "PNG"), reduce_to=256).tobytes() == img.reduce(4).tobytes()
