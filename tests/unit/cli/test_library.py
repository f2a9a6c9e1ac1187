"""``pixsearch stats`` / ``reindex`` (cli/library.py) on a library built with the previous default model:
it keeps working on that model, says once how to move to the new default, and ``reindex`` moves it."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from typer.testing import CliRunner

from pixsearch import Library
from pixsearch.cli._common import group
from pixsearch.cli.library import reindex, stats
from pixsearch.config import load_settings
from pixsearch.models.encoder import DEFAULT_ENCODER
from tests.conftest import GALLERY

OLD = "lite0-minilm-v1"
PHOTOS = sorted(p.name for p in (GALLERY / "images").glob("*.jpg"))[:4]

app = group("test")
app.command()(stats)
app.command()(reindex)


@app.callback()
def _root() -> None:
    """A group, as the real app is (a lone command would be the whole program)."""


runner = CliRunner()


def test_a_v1_library_keeps_working_and_reindex_moves_it_to_the_default(tmp_path: Path) -> None:
    photos = tmp_path / "photos"
    photos.mkdir()
    for n in PHOTOS:
        shutil.copy(GALLERY / "images" / n, photos / n)
    lib_dir = tmp_path / "lib"
    with Library.open(settings=load_settings(library=lib_dir, model=OLD)) as lib:
        assert lib.add([photos]).added == len(PHOTOS)
        before = lib.stats()
    assert DEFAULT_ENCODER != OLD

    r = runner.invoke(app, ["stats", "-L", str(lib_dir), "--json"])
    assert r.exit_code == 0, r.output
    assert json.loads(r.stdout)["model"] == OLD  # its own model: no mixing of two models' vectors
    assert f"this library uses {OLD}; `pixsearch reindex` re-encodes it with {DEFAULT_ENCODER}" in r.stderr

    r = runner.invoke(app, ["reindex", "-L", str(lib_dir), "--json"])
    assert r.exit_code == 0, r.output
    assert json.loads(r.stdout)["added"] == len(PHOTOS)

    r = runner.invoke(app, ["stats", "-L", str(lib_dir), "--json"])
    assert json.loads(r.stdout)["model"] == DEFAULT_ENCODER and "reindex" not in r.stderr
    with Library.open(lib_dir, create=False) as lib:
        after = lib.stats()
        assert lib.encoder.name == DEFAULT_ENCODER and after["images"] == before["images"] == len(PHOTOS)
        assert lib.search("a dog", k=2)  # searchable on the new model
