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
    proc = subprocess.Popen(  # the photos are links to the data set: out of the root, so asked for
        [*PIX, "index", str(photos), "-L", str(lib), "--json", "--follow-links"],
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
    proc.wait(timeout=60)
    partial = count()
    assert 16 <= partial < 96
    doc = json.loads(run("doctor", "-L", str(lib), "--json").stdout)
    assert all(c["ok"] for c in doc), doc
    rep = json.loads(run("index", str(photos), "-L", str(lib), "--json", "--follow-links").stdout)
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


# -- names that are not UTF-8 ------------------------------------------------------------------------------
ODD = [b"caf\xe9.jpg", "写真".encode("shift_jis") + b".jpg", b"\xff\xfe.jpg"]


def test_names_that_are_not_utf8_through_index_search_remove_and_prune(
    gallery_subset: Path, tmp_path: Path
) -> None:
    photos = tmp_path / "photos"
    photos.mkdir()
    src = sorted((gallery_subset / "photos").glob("*.jpg"))
    for s_, name in zip(src, ODD, strict=False):
        shutil.copy(s_, os.fsdecode(os.fsencode(photos) + b"/" + name))
    shutil.copy(src[3], photos / "plain.jpg")
    lib = str(tmp_path / "lib")
    rep = json.loads(run("index", str(photos), "-L", lib, "--json", "--no-caption").stdout)
    assert (rep["added"], rep["failed"]) == (4, [])
    shown = {os.fsencode(photos).decode() + "/" + n.decode("utf-8", "replace") for n in ODD}
    res = json.loads(run("search", "a photo", "-k", "4", "-L", lib, "--json").stdout)["results"]
    assert {r["path"] for r in res} == shown | {str(photos / "plain.jpg")}  # U+FFFD for what is not UTF-8
    table = run("search", "a photo", "-k", "4", "-L", lib, env={**os.environ, "COLUMNS": "300"}).stdout
    assert "\ufffd\ufffd.jpg" in table and "plain.jpg" in table
    gone = subprocess.run(  # the name as the shell gives it: bytes
        [*PIX, "remove", os.fsencode(photos) + b"/" + ODD[0], "-L", lib, "--json"], capture_output=True
    )
    assert gone.returncode == 0 and json.loads(gone.stdout) == {"removed": 1}
    os.unlink(os.fsencode(photos) + b"/" + ODD[1])
    (photos / "plain.jpg").unlink()
    rep = json.loads(run("index", str(photos), "--prune", "-L", lib, "--json", "--no-caption").stdout)
    assert (rep["removed"], rep["failed"]) == (2, [])  # ODD[0] came back: it is still on disk
    st = json.loads(run("stats", "-L", lib, "--json").stdout)
    assert st["images"] == 2


def test_links_out_of_the_folder_need_follow_links(gallery_subset: Path, tmp_path: Path) -> None:
    photos, outside = tmp_path / "photos", tmp_path / "outside"
    photos.mkdir()
    outside.mkdir()
    src = sorted((gallery_subset / "photos").glob("*.jpg"))
    shutil.copy(src[0], photos / "a.jpg")
    shutil.copy(src[1], outside / "b.jpg")
    (photos / "b.jpg").symlink_to(outside / "b.jpg")
    lib = str(tmp_path / "lib")
    p = run("index", str(photos), "-L", lib, "--no-caption")
    assert "added 1," in p.stdout
    assert "skipped 1 symbolic link(s)" in p.stderr and "--follow-links" in p.stderr
    rep = json.loads(run("index", str(photos), "-L", lib, "--json", "--follow-links").stdout)
    assert rep["added"] == 1


# -- a full disk ---------------------------------------------------------------------------------------------
FULL_DISK = """
import sys
import pixsearch  # first: it loads onnxruntime before usearch (the other order crashes)
from usearch.index import Index
import pixsearch.storage.failures as failures

def cannot_save(self, *a, **k):
    raise RuntimeError("Failed to serialize into stream")

Index.save = cannot_save  # what usearch does when the disk fills up
failures.no_space_on = lambda where, need=0: True
from pixsearch.cli import main
sys.argv = ["pixsearch", *sys.argv[1:]]
main()
"""


def test_a_full_disk_leaves_reads_working_and_writes_failing_in_one_line(
    built_library: Path, gallery_subset: Path, tmp_path: Path
) -> None:
    from tests.conftest import copy_without_index

    lib = str(copy_without_index(built_library, tmp_path / "lib"))  # every read repairs images.usearch

    def full(*args: str) -> subprocess.CompletedProcess:
        cmd = [sys.executable, "-c", FULL_DISK, *args]
        return subprocess.run(cmd, capture_output=True, text=True, timeout=600)

    warning = (
        "warning: could not save the repaired vector index (No space left on device); using it from memory"
    )
    for cmd in (["search", "a dog", "-k", "2"], ["doctor"]):
        p = full(*cmd, "-L", lib)
        assert p.returncode == 0, p.stderr
        assert p.stderr.splitlines() == [warning]  # said once
    p = full("search", "a dog", "-k", "2", "-L", lib, "--json")
    assert p.returncode == 0 and len(json.loads(p.stdout)["results"]) == 2
    new = tmp_path / "new"
    p = full("index", str(gallery_subset / "photos"), "-L", str(new), "--no-caption")
    assert p.returncode == 1
    err = p.stderr.strip().splitlines()
    assert len(err) == 1 and "unexpected" not in p.stderr
    assert err[0].startswith("error: could not write the vector index ")
    assert err[0].endswith(": No space left on device; free some space and run the command again")
    st = json.loads(run("stats", "-L", str(new), "--json").stdout)
    assert st["images"] == 24  # what the catalog committed stays; the next run resumes from it
