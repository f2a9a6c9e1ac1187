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
    assert res[0]["match"] >= res[1]["match"] >= res[2]["match"]  # ranked by the match every front end shows
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
    assert st["captions"] == 120 and st["model"] == "lite02-minilm-v2"


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


# -- output people can read, and a quick start ---------------------------------------------------------
def _env(**extra: str) -> dict:
    env = {k: v for k, v in os.environ.items() if k not in ("NO_COLOR", "FORCE_COLOR", "COLUMNS")}
    return {**env, **extra}


def _loaded(args: list[str]) -> set[str]:
    """The heavy packages ``pixsearch ARGS`` imported (run in a fresh process)."""
    heavy = ("torch", "fastapi", "uvicorn", "onnxruntime", "numpy", "rich", "pydantic", "PIL")
    code = (
        "import sys\nfrom pixsearch.cli import main\n"
        f"sys.argv = ['pixsearch', *{args!r}]\n"
        "try:\n    main()\nexcept SystemExit:\n    pass\n"
        f"print(sorted(m for m in {heavy!r} if m in sys.modules), file=sys.stderr)"
    )
    p = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    return set(json.loads(p.stderr.strip().splitlines()[-1].replace("'", '"')))


def test_help_and_a_json_search_import_only_what_they_use(built_library: Path) -> None:
    assert _loaded(["--help"]) == set()  # was numpy, onnxruntime and rich
    assert _loaded(["search", "a dog", "-L", str(built_library), "--json"]) <= {"numpy", "onnxruntime"}


def test_search_table_shows_each_whole_file_name_and_one_percentage(built_library: Path) -> None:
    lib = str(built_library)
    res = json.loads(run("search", "a dog in the water", "-k", "5", "-L", lib, "--json").stdout)["results"]
    table = run("search", "a dog in the water", "-k", "5", "-L", lib, env=_env(COLUMNS="80")).stdout
    for r in res:
        assert Path(r["path"]).name in table
        assert f"{round(r['match'] * 100)}%" in table
    assert "score" not in table.splitlines()[2]  # the fused score is for --verbose and --json
    verbose = run("search", "a dog in the water", "-k", "5", "-L", lib, "-v", env=_env(COLUMNS="80")).stdout
    assert f"score={res[0]['score']:.3f}" in verbose


def test_deep_folders_give_way_in_a_narrow_terminal_never_the_name(
    gallery_subset: Path, tmp_path: Path
) -> None:
    deep = tmp_path / "photos" / "holidays-in-the-mountains-2019" / "second-week-with-the-dogs"
    deep.mkdir(parents=True)
    names = ["a-dog-running-in-the-snow.jpg", "two-dogs-pulling-a-sled.jpg"]
    for src, name in zip(sorted((gallery_subset / "photos").glob("*.jpg")), names, strict=False):
        shutil.copy(src, deep / name)
    lib = str(tmp_path / "lib")
    run("index", str(tmp_path / "photos"), "-L", lib, "--no-caption", "--json")
    wide = run("search", "a dog", "-L", lib, env=_env(COLUMNS="200")).stdout
    assert "holidays-in-the-mountains-2019/second-week-with-the-dogs/a-dog-running-in-the-snow.jpg" in wide
    narrow = run("search", "a dog", "-L", lib, env=_env(COLUMNS="60")).stdout
    assert all(n in narrow for n in names) and "…" in narrow
    assert all(len(line) <= 60 for line in narrow.splitlines())


def test_score_and_caption_need_no_library(gallery_subset: Path, tmp_path: Path) -> None:
    photo = str(sorted((gallery_subset / "photos").glob("*.jpg"))[0])
    env = _env(XDG_DATA_HOME=str(tmp_path / "no-library-here"))
    p = run("score", photo, "a dog playing in the water", env=env)
    assert p.returncode == 0 and " match (" in p.stdout and p.stdout.split("%")[0].strip().isdigit()
    m = json.loads(run("score", photo, "a dog playing in the water", "--json", env=env).stdout)
    assert 0.0 <= m["score"] <= 1.0 and m["mode"] == "pixels"
    assert run("caption", photo, env=env).stdout.strip()
    p = run("score", photo, "a dog", "-L", str(tmp_path / "typo"), check=False, env=env)
    assert p.returncode == 4 and "no library at" in p.stderr  # a library named but missing stays an error


def test_no_color_means_no_escape_codes(built_library: Path) -> None:
    args = ("search", "a dog", "-k", "3", "-L", str(built_library))
    assert "\x1b" in run(*args, env=_env(FORCE_COLOR="1")).stdout  # a terminal: styles and links
    assert "\x1b" not in run(*args, env=_env(FORCE_COLOR="1", NO_COLOR="1")).stdout


def test_index_report_keeps_phrases_whole_and_says_what_to_type_next(
    gallery_subset: Path, tmp_path: Path
) -> None:
    lib = str(tmp_path / "lib")
    args = ("index", str(gallery_subset / "photos"), "--captions", str(gallery_subset / "captions.csv"))
    p = run(*args, "-L", lib, env=_env(COLUMNS="60"))
    lines = p.stdout.splitlines()
    for phrase in ("added 24", "updated 0", "duplicates 0", "captions 120", "failed 0"):
        assert any(phrase in line for line in lines), p.stdout
    assert all(len(line) <= 60 for line in lines)
    assert f'pixsearch search "a dog on a beach" -L {lib}' in p.stderr
    assert f"pixsearch serve -L {lib}" in p.stderr
    again = run(*args, "-L", lib)  # not a new library any more: no hint
    assert "unchanged 24" in again.stdout and "pixsearch search" not in again.stderr
    fresh = run(*args, "-L", str(tmp_path / "lib2"), "--json")
    assert json.loads(fresh.stdout)["added"] == 24 and "pixsearch search" not in fresh.stdout


def test_quiet_prints_nothing_but_errors(gallery_subset: Path, tmp_path: Path) -> None:
    p = run("index", str(gallery_subset / "photos"), "-L", str(tmp_path / "lib"), "--no-caption", "-q")
    assert (p.stdout, p.stderr) == ("", "")
    p = run("reindex", "-L", str(tmp_path / "nowhere"), "--quiet", check=False)
    assert p.returncode == 4 and p.stderr.startswith("error: no library at")
