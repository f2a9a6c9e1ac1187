"""Text in photos (``pixsearch index --ocr``): what it costs and what it finds, on real Flickr8k photos.

Prints one JSON object. Usage:
  python benchmarks/bench_ocr.py [--n 200] [--signs 200] [--data ../shared/data/flickr8k] [--pytesseract]

Reported:
- ``index``: photos/s of ``Library.add`` on ``--n`` test-split photos into a fresh library, without and
  with OCR (the same photos, each run in its own library; model loading not counted), and the OCR
  enricher's own seconds per photo;
- ``plain``: photos whose captions mention no text: how often the cheap first pass (the gate) sends one
  to the second pass, the false words stored, ms and photos/s of the reader, and the same without the
  gate (every photo read twice);
- ``rendered``: word recall on ``--signs`` test photos with words rendered onto them (fonts, sizes, angles,
  colours, on a plate or painted on the scene: ``tests/unit/models/signs.py``), broken down by how they
  were rendered; ``precision``: the share of stored words that are words of the sign; ``gate_pass``; and
  recall and precision without the gate;
- ``real``: word recall on the Flickr8k photos with real signs (``REAL_SIGNS``);
- with ``--pytesseract``: seconds per photo of pytesseract (the ``tesseract`` program per photo) on the
  same passes, which is why the ``[ocr]`` extra uses tesserocr.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

from _timing import machine

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.unit.models.signs import REAL_SIGNS, norm, plain_photos, rendered_set  # noqa: E402


def _index_rate(photos: list[Path], ocr: bool) -> dict[str, float]:
    from pixsearch import Library

    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp) / "photos"
        folder.mkdir()
        for p in photos:
            shutil.copy(p, folder / p.name)  # copies: scan skips links that lead out of the root
        with Library.open(Path(tmp) / "lib") as lib:
            lib.add([folder], ocr=ocr, sample=1)  # load the models (and index one photo) untimed
            t = time.perf_counter()
            rep = lib.add([folder], ocr=ocr)
            wall = time.perf_counter() - t
            texts = lib.catalog.photo_texts.counts()["ocr"]
    n = rep.added
    out = {"photos": n, "photos_per_s": round(n / wall, 2), "seconds": round(wall, 2)}
    if ocr:
        out["ocr_s_per_photo"] = round(rep.timings.get("ocr", 0.0) / max(1, n), 4)
        out["ocr_lines_stored"] = texts
    return out


def _recall(reader: Any, signs: list[tuple[Any, Any]], gate: bool = True) -> dict[str, Any]:
    hits: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    stored = good = passed = 0
    for image, sign in signs:
        got = reader.read(image, gate)
        passed += got.read_twice
        words = {norm(w) for line in got.lines for w in line.text.split()}
        want = {norm(w) for w in sign.words}
        stored += len(words)
        good += len(words & want)
        for w in want:
            size = "12-19" if sign.size < 20 else "20-29" if sign.size < 30 else "30+"
            for tag in (
                "all",
                "on_plate" if sign.plate else "painted",
                "rotated" if sign.angle else "level",
                f"size_{size}px",
                "accented" if not w.isascii() else "ascii",
            ):
                hits[tag][0] += w in words
                hits[tag][1] += 1
    return {
        "photos": len(signs),
        "words": hits["all"][1],
        "recall": {k: round(h / t, 3) for k, (h, t) in sorted(hits.items())},
        "precision": round(good / max(1, stored), 3),
        "gate_pass": round(passed / max(1, len(signs)), 3),
    }


def _plain(reader: Any, images: list[Any]) -> dict[str, Any]:
    t = time.perf_counter()
    readings = [reader.read(im) for im in images]
    per = (time.perf_counter() - t) / max(1, len(images))
    t = time.perf_counter()
    ungated = [reader.read(im, gate=False) for im in images]
    per_ungated = (time.perf_counter() - t) / max(1, len(images))
    words = sum(len(line.text.split()) for r in readings for line in r.lines)
    words_ungated = sum(len(line.text.split()) for r in ungated for line in r.lines)
    return {
        "photos": len(images),
        "gate_pass": round(sum(r.read_twice for r in readings) / max(1, len(images)), 3),
        "plain_words_per_photo": round(words / max(1, len(images)), 3),
        "ms_per_photo": round(per * 1000, 1),
        "photos_per_s": round(1 / per, 1),
        "without_gate": {
            "plain_words_per_photo": round(words_ungated / max(1, len(images)), 3),
            "ms_per_photo": round(per_ungated * 1000, 1),
            "photos_per_s": round(1 / per_ungated, 1),
        },
    }


def _real(reader: Any, data: Path) -> dict[str, Any]:
    from PIL import Image

    found = total = 0
    per: dict[str, list[str]] = {}
    for name, want in REAL_SIGNS.items():
        with Image.open(data / "images" / name) as im:
            got = {norm(w) for line in reader.read(im.convert("RGB")).lines for w in line.text.split()}
        per[name] = [w for w in want if w in got]
        found += len(per[name])
        total += len(want)
    return {
        "photos": len(REAL_SIGNS),
        "recall": round(found / total, 3),
        "photos_with_a_word": sum(bool(v) for v in per.values()),
        "found": per,
    }


def _pytesseract(images: list[Any]) -> dict[str, Any]:
    import pytesseract  # type: ignore[import-untyped]

    from pixsearch.models.ocr import GATE_SIDE

    t = time.perf_counter()
    for im in images:
        g = im.convert("L")
        g.thumbnail((GATE_SIDE, GATE_SIDE))
        pytesseract.image_to_data(g, lang="eng", config="--psm 11")
    return {"ms_per_photo_first_pass": round((time.perf_counter() - t) * 1000 / max(1, len(images)), 1)}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=200, help="photos indexed, with and without OCR")
    ap.add_argument("--signs", type=int, default=200, help="photos given a rendered sign")
    ap.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "data" / "flickr8k")
    ap.add_argument("--languages", default="eng")
    ap.add_argument("--pytesseract", action="store_true", help="also time pytesseract (if installed)")
    args = ap.parse_args()

    from PIL import Image

    from pixsearch.models.ocr import create_text_reader

    test = (args.data / "test.txt").read_text().split()
    photos = [args.data / "images" / n for n in test[: args.n]]
    result: dict[str, Any] = {"machine": machine(), "languages": args.languages}
    runs: dict[bool, list[dict[str, float]]] = {False: [], True: []}
    for ocr in (False, True, False, True):  # interleaved: a busy machine slows both alike
        runs[ocr].append(_index_rate(photos, ocr))
    result["index"] = {
        "without_ocr": max(runs[False], key=lambda r: r["photos_per_s"]),
        "with_ocr": max(runs[True], key=lambda r: r["photos_per_s"]),
    }
    reader = create_text_reader(args.languages)
    plain = []
    for n in plain_photos(args.data, args.n):
        with Image.open(args.data / "images" / n) as im:
            plain.append(im.convert("RGB"))
    result["plain"] = _plain(reader, plain)
    signed = [args.data / "images" / n for n in test[-args.signs :]]
    signs = rendered_set(signed, seed=0)
    result["rendered"] = _recall(reader, signs)
    ungated = _recall(reader, signs, gate=False)
    result["rendered"]["without_gate"] = {k: ungated[k] for k in ("recall", "precision")}
    result["real"] = _real(reader, args.data)
    if args.pytesseract:
        try:
            result["pytesseract"] = _pytesseract(plain[:20])
        except ImportError:
            result["pytesseract"] = "not installed"
    print(json.dumps(result))


if __name__ == "__main__":
    main()
