"""``--preview``: thumbnails through an image protocol where the terminal has one (cli/preview.py)."""

from __future__ import annotations

import io
import os
import subprocess
import sys
from pathlib import Path

import pytest

from pixsearch.cli import output, preview
from pixsearch.results import Result, Withheld
from tests.conftest import GALLERY


def _jpeg() -> bytes:
    from PIL import Image

    img = Image.open(sorted((GALLERY / "images").glob("*.jpg"))[0])
    img.thumbnail((64, 64))
    buf = io.BytesIO()
    img.save(buf, "JPEG")
    return buf.getvalue()


def test_no_terminal_no_preview(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sys.stdout, "isatty", lambda: False)
    assert preview.image_renderer() is None  # a pipe: plain text


def test_results_print_with_their_thumbnails_as_sixels(monkeypatch: pytest.MonkeyPatch) -> None:
    renderable = pytest.importorskip("textual_image.renderable", reason="no [preview] extra installed")
    from rich.console import Console

    monkeypatch.setattr(sys.stdout, "isatty", lambda: True)
    monkeypatch.setattr(renderable, "Image", renderable.SixelImage)  # what a Sixel terminal is told
    monkeypatch.delenv("NO_COLOR", raising=False)
    render = preview.image_renderer()
    assert render is not None
    buf = io.StringIO()
    monkeypatch.setattr(output.out, "_console", Console(file=buf, width=80, force_terminal=True))
    monkeypatch.setattr(preview, "out", output.out)
    results = [
        Result(7, 0.1, ("/lib/dogs/rex.jpg",), ("A dog .",), match=0.61),
        Withheld("This image is unavailable in your country in compliance with local laws."),
    ]
    asked: list[int] = []

    def thumbnail(image_id: int) -> bytes:
        asked.append(image_id)
        return _jpeg()

    preview.emit_previews(results, thumbnail, render, lambda p: p.removeprefix("/lib/"))
    text = buf.getvalue()
    assert "dogs/rex.jpg" in text and "61%" in text and "A dog ." in text
    assert "\x1bP" in text  # a Sixel image (DCS ... ST)
    assert asked == [7]  # the withheld photo's thumbnail is never read
    assert "unavailable in your country" in text


def test_preview_on_a_pipe_says_why_and_prints_the_table(built_library: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k not in ("NO_COLOR", "FORCE_COLOR")}
    args = ["search", "a dog", "-k", "2", "--preview", "-L", str(built_library)]
    p = subprocess.run(
        [sys.executable, "-m", "pixsearch.cli", *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )
    assert p.returncode == 0 and "match" in p.stdout and "\x1b" not in p.stdout
    assert p.stderr.strip() == preview.WHY_NOT
