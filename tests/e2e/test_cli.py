"""The real ``pixsearch`` console script, run as a user would (subprocess), including kill -9 + resume."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

PIX = [sys.executable, "-m", "pixsearch.cli"]


def run(*args: str, check: bool = True, env: dict | None = None) -> subprocess.CompletedProcess:
    p = subprocess.run(
        [*PIX, *args], capture_output=True, text=True, env=env or os.environ.copy(), timeout=600
    )
    if check and p.returncode != 0:
        raise AssertionError(f"exit {p.returncode}\nstdout: {p.stdout}\nstderr: {p.stderr}")
    return p


def test_index_search_json_and_exit_codes(built_library: Path, gallery_subset: Path) -> None:
    lib = str(built_library)
    res = json.loads(run("search", "a dog in the water", "-k", "3", "-L", lib, "--json").stdout)["results"]
    assert len(res) == 3 and {"path", "score", "scores", "captions", "matched_caption"} <= set(res[0])
    assert res[0]["score"] >= res[1]["score"] >= res[2]["score"]
    st = json.loads(run("stats", "-L", lib, "--json").stdout)
    assert st["images"] == 24 and st["captions"] == 120
    p = run("search", "  ", "-L", lib, check=False)
    assert p.returncode == 2 and "empty query" in p.stderr
    photo = sorted((gallery_subset / "photos").glob("*.jpg"))[0]
    sim = json.loads(run("similar", str(photo), "-k", "2", "-L", lib, "--json").stdout)["results"]
    assert len(sim) == 2
    doc = json.loads(run("doctor", "-L", lib, "--json").stdout)
    assert all(c["ok"] for c in doc)


def test_index_reports_failures_and_all_failed_exits_nonzero(tmp_path: Path) -> None:
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "a.jpg").write_bytes(b"\xff\xd8\xff garbage")
    p = run("index", str(bad), "-L", str(tmp_path / "lib"), "--json", check=False)
    assert p.returncode == 1
    rep = json.loads(p.stdout)
    assert rep["failed"][0]["path"].endswith("a.jpg") and rep["added"] == 0


def test_newer_schema_is_refused(tmp_path: Path) -> None:
    import sqlite3

    lib = tmp_path / "lib"
    lib.mkdir()
    db = sqlite3.connect(lib / "catalog.db")
    db.execute("PRAGMA user_version=99")
    db.commit()
    db.close()
    p = run("stats", "-L", str(lib), check=False)
    assert p.returncode == 1 and "newer pixsearch" in p.stderr


@pytest.mark.slow
def test_kill_during_index_then_resume(flickr8k: Path, tmp_path: Path) -> None:
    """kill -9 mid-index leaves a library that opens, is consistent, and resumes to completion."""
    names = (flickr8k / "test.txt").read_text().split()[:96]
    photos = tmp_path / "photos"
    photos.mkdir()
    for n in names:
        os.symlink(flickr8k / "images" / n, photos / n)
    lib = tmp_path / "lib"
    env = os.environ.copy()
    env["PIXSEARCH_BATCH_SIZE"] = "8"
    proc = subprocess.Popen(
        [*PIX, "index", str(photos), "-L", str(lib), "--json"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    deadline = time.time() + 300
    import sqlite3

    def count() -> int:
        try:
            c = sqlite3.connect(f"file:{lib / 'catalog.db'}?mode=ro", uri=True)
            try:
                return int(c.execute("SELECT COUNT(*) FROM images").fetchone()[0])
            finally:
                c.close()
        except sqlite3.Error:
            return 0

    while count() < 16 and time.time() < deadline and proc.poll() is None:
        time.sleep(0.2)
    assert proc.poll() is None, "indexing finished before we could kill it"
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    partial = count()
    assert 16 <= partial < 96
    doc = json.loads(run("doctor", "-L", str(lib), "--json").stdout)
    assert all(c["ok"] for c in doc), doc
    rep = json.loads(run("index", str(photos), "-L", str(lib), "--json").stdout)
    assert rep["unchanged"] == partial and rep["added"] == 96 - partial
    st = json.loads(run("stats", "-L", str(lib), "--json").stdout)
    assert st["images"] == 96
    doc = json.loads(run("doctor", "-L", str(lib), "--json").stdout)
    assert all(c["ok"] for c in doc), doc
    # the resumed library answers both kinds of query
    sim = json.loads(run("similar", str(photos / names[5]), "-k", "1", "-L", str(lib), "--json").stdout)
    assert len(sim["results"]) == 1
    res = json.loads(run("search", "a dog running", "-k", "5", "-L", str(lib), "--json").stdout)["results"]
    assert len(res) == 5 and res[0]["scores"]["dense"] > res[-1]["scores"]["dense"] - 1e-6
    shutil.rmtree(lib)


def test_mismatched_library_is_refused_then_reindexed(built_library: Path, tmp_path: Path) -> None:
    import sqlite3

    lib = tmp_path / "lib"
    shutil.copytree(built_library, lib)
    db = sqlite3.connect(lib / "catalog.db")
    db.execute("UPDATE meta SET value = 'lite0-minilm-v0' WHERE key = 'encoder'")  # a model no longer shipped
    db.execute("UPDATE meta SET value = 'lite0-minilm-v0:0|x|y' WHERE key = 'encoder_fingerprint'")
    db.commit()
    db.close()
    p = run("search", "a dog", "-L", str(lib), check=False)
    assert p.returncode == 3 and "pixsearch reindex" in p.stderr
    rep = json.loads(run("reindex", "-L", str(lib), "--json").stdout)
    assert rep["added"] == 24 and rep["failed"] == []
    res = json.loads(run("search", "a dog", "-L", str(lib), "--json").stdout)["results"]
    assert res and all(c["ok"] for c in json.loads(run("doctor", "-L", str(lib), "--json").stdout))
    st = json.loads(run("stats", "-L", str(lib), "--json").stdout)
    assert st["captions"] == 120 and st["model"] == "lite0-minilm-v1"
