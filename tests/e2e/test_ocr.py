"""``pixsearch index --ocr`` and ``pixsearch export --xmp`` run as a user would (subprocess), on real
Flickr8k photos: a shop sign is found by its words; sidecars are written that exiv2 (the metadata library
digiKam uses) reads, the user's own fields kept; a missing tesseract is one line naming the extra."""

from __future__ import annotations

import json
import os
import random
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from PIL import Image

from pixsearch import Library
from tests.unit.indexing.metadata.photos import xmp_packet
from tests.unit.models.signs import PILLOW_FONT, Sign, plain_photos, render

PIX = [sys.executable, "-m", "pixsearch.cli"]
SIGN = "bakery.jpg"


def run(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*PIX, *args], capture_output=True, text=True, env=env or dict(os.environ), timeout=600
    )


@pytest.fixture()
def photos(flickr8k: Path, tmp_path: Path) -> Path:
    """Five real photos, one with a "Grand Central Bakery" sign, one with the user's own sidecar."""
    names = plain_photos(flickr8k, 5)
    d = tmp_path / "photos"
    d.mkdir()
    with Image.open(flickr8k / "images" / names[0]) as im:
        sign = Sign(("Grand", "Central", "Bakery"), PILLOW_FONT, 28, 0.0, True)
        render(im.convert("RGB"), sign, random.Random(5)).save(d / SIGN, quality=90)
    for n in names[1:]:
        shutil.copy(flickr8k / "images" / n, d / n)
    (d / (names[1] + ".xmp")).write_bytes(xmp_packet("My sister's garden", ("family",)))
    return d


def test_index_ocr_then_the_sign_is_found_by_its_words(photos: Path, tmp_path: Path) -> None:
    pytest.importorskip("tesserocr", reason="the ocr extra is not installed")
    lib = tmp_path / "lib"
    p = run("index", str(photos), "--ocr", "-L", str(lib), "--json")
    assert p.returncode == 0, p.stderr
    rep = json.loads(p.stdout)
    assert rep["added"] == 5 and rep["enriched"]["ocr"] == 5
    assert p.stderr.strip() == ""  # no leptonica or tesseract chatter
    with Library.open(lib) as opened:
        sign = opened.catalog.image_for_path(str(photos / SIGN))
        hits = opened.catalog.photo_texts.fts_rank("grand central bakery", 3)
        assert hits and hits[0][0] == sign
        # search uses the words read in a photo: the sign comes first, lifted by the words signal
        top = opened.search("grand central bakery", k=3)
        assert top[0].image_id == sign and top[0].scores["words"] > 0
        # and the owner's own keyword (the sidecar's dc:subject) finds its photo
        family = opened.search("family", k=1)[0]
        assert family.path.endswith(sorted(p.name for p in photos.glob("*.xmp"))[0][: -len(".xmp")])
    again = json.loads(run("index", str(photos), "-L", str(lib), "--json").stdout)
    assert again["unchanged"] == 5 and "ocr" not in again["enriched"]


def test_missing_tesseract_is_one_line_naming_the_extra(photos: Path, tmp_path: Path) -> None:
    fake = tmp_path / "site"
    (fake / "tesserocr").mkdir(parents=True)  # an install without the extra: the import fails
    (fake / "tesserocr" / "__init__.py").write_text("raise ImportError('No module named tesserocr')\n")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(fake), os.environ.get("PYTHONPATH", "")])}
    p = run("index", str(photos), "--ocr", "-L", str(tmp_path / "lib"), env=env)
    assert p.returncode == 1 and p.stdout == ""
    assert len(p.stderr.strip().splitlines()) == 1, p.stderr
    assert "pip install 'pixsearch[ocr]'" in p.stderr and "apt-get install tesseract-ocr" in p.stderr
    empty = tmp_path / "tessdata"
    empty.mkdir()
    p = run(
        "index",
        str(photos),
        "--ocr",
        "-L",
        str(tmp_path / "lib"),
        env={**os.environ, "TESSDATA_PREFIX": str(empty)},
    )
    assert p.returncode == 1 and len(p.stderr.strip().splitlines()) == 1, p.stderr
    assert "apt-get install tesseract-ocr-eng" in p.stderr


def test_export_xmp_writes_sidecars_digikam_reads(photos: Path, tmp_path: Path) -> None:
    lib = tmp_path / "lib"
    assert run("index", str(photos), "--caption", "-L", str(lib)).returncode == 0
    user = sorted(photos.glob("*.xmp"))[0]
    user_bytes = user.read_bytes()
    p = run("export", "-L", str(lib))
    assert p.returncode == 2 and "--xmp" in p.stderr
    p = run("export", "--xmp", str(photos), "-L", str(lib), "--json")
    assert p.returncode == 0, p.stderr
    rep = json.loads(p.stdout)
    assert rep["written"] == 5 and rep["skipped"] == []
    assert sorted(x.name for x in photos.glob("*.xmp")) == sorted(
        x.name + ".xmp" for x in photos.glob("*.jpg")
    )
    assert user.read_bytes() != user_bytes
    exiv2 = shutil.which("exiv2")
    if exiv2 is None:
        pytest.skip("exiv2 is not installed (apt-get install exiv2)")
    seen = subprocess.run([exiv2, "-PXkt", str(user)], capture_output=True, text=True, timeout=60).stdout
    fields = {
        line.split(None, 1)[0]: line.split(None, 1)[1].strip() for line in seen.splitlines() if line.strip()
    }
    assert fields["Xmp.dc.description"] == 'lang="x-default" My sister\'s garden'  # the user's, kept
    subjects = fields["Xmp.dc.subject"].split(", ")
    assert subjects[0] == "family" and len(subjects) > 1  # theirs first, then our labels
    sign = subprocess.run(
        [exiv2, "-PXkt", str(photos / (SIGN + ".xmp"))], capture_output=True, text=True
    ).stdout
    assert "Xmp.dc.description" in sign and "Xmp.pixsearch.Caption" in sign  # a caption where none was
    # digiKam adds a tag (exiv2 rewrites the sidecar); the next export keeps it
    subprocess.run(
        [exiv2, "-M", "set Xmp.dc.subject XmpBag bakery trip", str(photos / (SIGN + ".xmp"))], check=True
    )
    assert run("export", "--xmp", "-L", str(lib)).returncode == 0
    sign = subprocess.run(
        [exiv2, "-PXkt", str(photos / (SIGN + ".xmp"))], capture_output=True, text=True
    ).stdout
    assert "bakery trip" in sign


def test_bench_ocr_reports_json(flickr8k: Path) -> None:
    pytest.importorskip("tesserocr", reason="the ocr extra is not installed")
    root = Path(__file__).resolve().parents[2]
    p = subprocess.run(
        [sys.executable, "bench_ocr.py", "--n", "6", "--signs", "6", "--data", str(flickr8k)],
        capture_output=True,
        text=True,
        timeout=600,
        cwd=root / "benchmarks",
    )
    assert p.returncode == 0, p.stderr[-3000:]
    out = json.loads(p.stdout.strip().splitlines()[-1])
    assert out["index"]["with_ocr"]["photos"] == out["index"]["without_ocr"]["photos"] == 5
    assert 0 <= out["plain"]["gate_pass"] <= 1 and "without_gate" in out["plain"]
    assert out["rendered"]["words"] >= 6 and 0 <= out["rendered"]["recall"]["all"] <= 1
    assert out["real"]["photos"] == 8 and out["real"]["recall"] >= 0.5
