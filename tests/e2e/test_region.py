"""The region from the command line: ``pixsearch policy pin|unpin`` makes a library's region a floor that
``--region``, ``PIXSEARCH_REGION`` and the config cannot loosen (exit 2, one line), and ``pixsearch
caption`` takes ``--region`` like every read and checks a photo before captioning it, with or without a
library. The real console script, run as a user would."""

from __future__ import annotations

import io
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

from PIL import Image

from tests.conftest import GALLERY

PIX = [sys.executable, "-m", "pixsearch.cli"]
DISCLAIMER = "This image is unavailable in your country in compliance with local laws."
BLOCKED = {"blocked": True, "disclaimer": DISCLAIMER, "results": []}  # what --json prints instead
# Human captions name children; the generated caption does not ("a group of people are sitting on a
# bench"): only the photo check keeps it from being captioned. The dog alone passes the photo check.
CHILD = GALLERY / "images" / "1468389504_c724bdcad0.jpg"
DOG = GALLERY / "images" / "1319634306_816f21677f.jpg"


def run(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    full = {**os.environ, **(env or {})}
    return subprocess.run([*PIX, *args], capture_output=True, text=True, env=full, timeout=600)


def _reencoded(src: Path, dst: Path) -> Path:
    """The same picture under other bytes: a photo no library holds."""
    buf = io.BytesIO()
    Image.open(src).convert("RGB").save(buf, "JPEG", quality=85)
    dst.write_bytes(buf.getvalue())
    return dst


def test_pin_show_unpin_and_a_looser_region_is_refused(built_library: Path, tmp_path: Path) -> None:
    lib = tmp_path / "lib"
    shutil.copytree(built_library, lib)
    L = ("-L", str(lib))
    p = run("policy", "pin", "--show", *L)
    assert p.returncode == 0 and "not pinned" in p.stdout, p.stderr
    p = run("policy", "pin", "restricted", *L)
    assert p.returncode == 0 and "pinned to region restricted" in p.stdout, p.stderr
    assert json.loads(run("policy", "pin", "--show", *L, "--json").stdout)["pinned_region"] == "restricted"
    for args, env in (
        (("--region", "default"), None),
        ((), {"PIXSEARCH_REGION": "default"}),
        (("--region", "atlantis"), None),
    ):
        p = run("search", "a dog", *L, *args, env=env)
        assert p.returncode == 2, (args, env, p.stdout, p.stderr)
        line = p.stderr.strip()
        assert "\n" not in line and "pinned to region 'restricted'" in line and "Traceback" not in line
        assert not p.stdout.strip()
    p = run("search", "children playing", *L, "--json")  # no region: the pinned one
    assert p.returncode == 0 and json.loads(p.stdout) == {
        "blocked": True,
        "disclaimer": DISCLAIMER,
        "results": [],
    }
    p = run("serve", *L, "--port", "0", "--region", "default")  # a server cannot start below the pin
    assert p.returncode == 2 and "pinned to region 'restricted'" in p.stderr and "gallery" not in p.stdout
    p = run("policy", "pin", "default", *L)  # loosening needs an explicit unpin
    assert p.returncode == 2 and "unpin" in p.stderr
    p = run("policy", "unpin", *L)
    assert p.returncode == 0 and "unpinned (was restricted)" in p.stdout, p.stderr
    p = run("search", "children playing", *L, "--region", "default", "--json")
    assert p.returncode == 0 and json.loads(p.stdout)["results"], p.stderr


def test_caption_checks_the_photo_in_a_restricted_region(built_library: Path, tmp_path: Path) -> None:
    child = _reencoded(CHILD, tmp_path / "child.jpg")
    dog = _reencoded(DOG, tmp_path / "dog.jpg")
    nolib = ("-L", str(tmp_path / "no-library-here"))
    p = run("caption", str(child), *nolib, "--json")  # the default region captions it
    assert p.returncode == 0, p.stderr
    text = json.loads(p.stdout)["results"][0]["caption"]
    assert text.strip() and DISCLAIMER not in text
    p = run("caption", str(child), *nolib, "--region", "restricted", "--json")
    assert p.returncode == 0 and json.loads(p.stdout) == {
        "blocked": True,
        "disclaimer": DISCLAIMER,
        "results": [],
    }
    p = run("caption", str(child), *nolib, env={"PIXSEARCH_REGION": "restricted"})
    assert p.returncode == 0 and p.stdout.strip() == DISCLAIMER and text not in p.stdout
    p = run("caption", str(dog), *nolib, "--region", "restricted")  # a photo the check passes
    assert p.returncode == 0 and "dog.jpg: " in p.stdout and DISCLAIMER not in p.stdout, p.stderr
    lib = tmp_path / "lib"
    shutil.copytree(built_library, lib)
    assert run("policy", "pin", "restricted", "-L", str(lib)).returncode == 0
    p = run("caption", str(child), "-L", str(lib))  # a pinned library's region applies to new photos
    assert p.returncode == 0 and p.stdout.strip() == DISCLAIMER and text not in p.stdout
    p = run("caption", str(child), "-L", str(lib), "--region", "default")
    assert p.returncode == 2 and "pinned to region 'restricted'" in p.stderr
