"""Text in real photos, for the OCR tests and ``benchmarks/bench_ocr.py``: words rendered with Pillow onto
real Flickr8k photos (signs on a plate, or painted straight on the scene; fonts of this machine, sizes,
angles, colours), and Flickr8k photos that show legible text themselves (checked by eye: their captions
mention the sign, shirt or banner, and tesseract reads these words in them).

Pillow's own scalable font (``ImageFont.load_default(size=...)``, shipped inside Pillow) is always among
the fonts, so the set renders on a machine without system fonts; DejaVu and Liberation join it where
``fc-list`` has them.
"""

from __future__ import annotations

import random
import re
import subprocess
from dataclasses import dataclass
from pathlib import Path

from PIL import Image, ImageDraw, ImageFont

# Flickr8k photos with real text, and the words of three letters or more a person reads in them (checked
# by eye; their captions mention the sign, shirt or banner). Not all are easy: small, slanted, painted.
REAL_SIGNS: dict[str, tuple[str, ...]] = {
    "1387461595_2fe6925f73.jpg": ("penzance", "welcomes", "you", "pensans"),  # carved in a stone
    "1859726819_9a793b3b44.jpg": ("red", "light"),  # a neon sign
    "2255685792_f70474c6db.jpg": ("skiing",),  # a plate: "NO SKIING"
    "2302516347_26054442f9.jpg": ("other", "peoples", "photographs"),  # a booth
    "2490863987_715383944a.jpg": ("need", "the", "money", "for", "beer", "pot", "and", "hooker"),  # cardboard
    "3107513635_fe8a21f148.jpg": ("tychy", "miasto"),  # a station's name board, small
    "3503011427_a4ee547c77.jpg": ("lounge", "bar"),  # letters on a wall
    "470887785_e0b1241d94.jpg": ("april", "armenian", "genocide"),  # a placard
}

# Words a photographer would search a sign for; a few carry accents (deu, fra, spa).
SIGN_WORDS = (
    "bakery coffee hotel station pharmacy museum market garden library theatre cinema harbour bridge "
    "airport police school church castle tower river beach street avenue square central grand royal "
    "golden silver diner pizza burger noodles sushi tacos books music records vintage antiques flowers "
    "bicycle rental parking entrance exit welcome closed open sale fresh organic kitchen brewery winery "
    "gallery studio fitness dental clinic hospital bank office laundry bistro saloon motel hostel "
    "camping marina ferry subway tram depot garage bakehouse creamery deli grocery liquor tobacco "
    "café bäckerei straße librería niños größe château"
).split()

PILLOW_FONT = "pillow"  # Pillow's own scalable font, always there
# Captions that may be about text in the photo: such photos are not "plain".
_TEXTUAL = re.compile(
    r"sign|shirt|banner|writ|letter|says|read|word|logo|number|jersey|poster|advert|graffiti|text|name|flag"
)


def fonts() -> list[str]:
    """Font files to render with: Pillow's own font first, then the DejaVu and Liberation faces."""
    found: list[str] = []
    try:
        out = subprocess.run(["fc-list", ":", "file"], capture_output=True, text=True, timeout=30).stdout
        found = sorted(
            ln.split(":", 1)[0].strip()
            for ln in out.splitlines()
            if re.search(r"(DejaVu|Liberation)(Sans|Serif|Mono)[^/]*\.ttf", ln) and "ExtraLight" not in ln
        )
    except (OSError, subprocess.SubprocessError):
        pass
    return [PILLOW_FONT, *found]


def font(name: str, size: int) -> ImageFont.FreeTypeFont | ImageFont.ImageFont:
    return ImageFont.load_default(size=size) if name == PILLOW_FONT else ImageFont.truetype(name, size)


@dataclass(frozen=True)
class Sign:
    """How a text was rendered: what a recall figure can be broken down by."""

    words: tuple[str, ...]
    font: str
    size: int  # pixels
    angle: float  # degrees, counter-clockwise
    plate: bool  # on a plate (a sign) rather than straight on the scene


def render(photo: Image.Image, sign: Sign, rng: random.Random) -> Image.Image:
    """``photo`` with ``sign`` drawn whole at a random place (a text too wide is drawn smaller, so every
    word is on the photo); painted text takes a colour that stands out from what lies under it, as a
    legible sign does."""
    text = " ".join(sign.words)
    out = photo.convert("RGB").copy()
    size = sign.size
    while True:
        f = font(sign.font, size)
        left, top, right, bottom = f.getbbox(text)
        pad = size // 3 if sign.plate else 2
        w, h = right - left + 2 * pad, bottom - top + 2 * pad
        if w <= out.width * 0.95 or size <= 10:
            break
        size -= 2
    layer = Image.new("RGBA", (w, h))
    layer = layer.rotate(sign.angle, expand=True)
    x = rng.randrange(0, max(1, out.width - layer.width))
    y = rng.randrange(0, max(1, out.height - layer.height))
    dark = tuple(rng.randrange(0, 90) for _ in range(3))
    light = tuple(rng.randrange(190, 256) for _ in range(3))
    if sign.plate:
        fg, bg = (dark, light) if rng.random() < 0.5 else (light, dark)
    else:
        under = out.crop((x, y, x + layer.width, y + layer.height)).convert("L")
        bright = sum(under.getdata()) / max(1, under.width * under.height) > 128
        fg, bg = (dark, light) if bright else (light, dark)
    layer = Image.new("RGBA", (w, h), (*bg, 255) if sign.plate else (0, 0, 0, 0))
    ImageDraw.Draw(layer).text((pad - left, pad - top), text, font=f, fill=(*fg, 255))
    layer = layer.rotate(sign.angle, expand=True, resample=Image.Resampling.BICUBIC)
    out.paste(layer, (x, y), layer)
    return out


def random_sign(rng: random.Random, font_names: list[str], photo_width: int) -> Sign:
    """One to three sign words in a font, a size that fits the photo, an angle within 15 degrees."""
    words = tuple(rng.sample(SIGN_WORDS, rng.choice((1, 2, 2, 3))))
    size = rng.randint(max(12, photo_width // 30), max(14, photo_width // 9))
    angle = rng.choice((0.0, 0.0, rng.uniform(-15, 15)))
    return Sign(words, rng.choice(font_names), size, round(angle, 1), rng.random() < 0.6)


def rendered_set(photos: list[Path], seed: int = 0) -> list[tuple[Image.Image, Sign]]:
    """A sign on each photo, reproducibly (same photos, same seed: same images)."""
    rng = random.Random(seed)
    names = fonts()
    out = []
    for p in photos:
        with Image.open(p) as im:
            photo = im.convert("RGB")
        sign = random_sign(rng, names, photo.width)
        out.append((render(photo, sign, rng), sign))
    return out


def plain_photos(flickr8k: Path, n: int, split: str = "test") -> list[str]:
    """The first ``n`` photos of ``split`` whose captions say nothing of signs, shirts or writing: what
    most photos are like, and what OCR should spend little on."""
    import csv

    textual: set[str] = set()
    with open(flickr8k / "captions.csv", newline="") as f:
        for row in csv.DictReader(f):
            if _TEXTUAL.search(row["caption"].lower()):
                textual.add(row["image"])
    names = (flickr8k / f"{split}.txt").read_text().split()
    return [x for x in names if x not in textual and x not in REAL_SIGNS][:n]


def norm(word: str) -> str:
    """A word as the benchmark compares it: lower case, letters and digits only."""
    return "".join(ch for ch in word.lower() if ch.isalnum())
