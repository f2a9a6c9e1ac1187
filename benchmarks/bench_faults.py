"""Fault injection and concurrent use of one library, with real `pixsearch` processes on real photos.

Faults: each run starts `index`, `reindex`, `remove` or `index --prune --force` and stops it with SIGINT,
SIGKILL or SIGTERM at a point chosen by a seeded plan (``make_plan``: same seed, same ops, signals and
trigger points). Kills are triggered by progress, not by a clock: the command is held by the catalog's
test hook (``PIXSEARCH_TEST_PAUSE``, storage/catalog.py) right after its N-th commit (vector indexes not
yet updated), right before it, or between reindex's catalog swap and its index files, and the signal is
sent while it is held, so it lands mid-write; a few runs instead signal a random moment after the first
commit is seen. Each run is checked for: the one exit code its signal allows (SIGINT 130, SIGKILL -9,
SIGTERM -15: the CLI handles no SIGTERM; a run that was not signalled 0), no traceback; the library on
disk (SQLite integrity, no orphan images, every index file whose stamp claims it is fresh holds exactly
the catalog's keys, the indexes repair to the catalog, search and similar work, nothing committed before
the run lost, nothing invented); `pixsearch doctor --json` ok; and the same command run again finishes
(exit 0) with the library at its full count. A final uninterrupted `index` + `reindex` must leave the
library equal to the photos on disk. The report counts where signals landed; ``--min-mid-write``
(default 0.8) fails the run when fewer than that share of runs were interrupted mid-write.

Concurrency: two writer processes loop `index` (and `remove`, so the next `index` has work) while one
long-lived process searches; writers get "library is busy" and nothing else, the reader never errors, and
the final library equals one built by a single run.

    python benchmarks/bench_faults.py --runs 200 --seed 1            # JSON on stdout; exit 1 on a problem
    python benchmarks/bench_faults.py --concurrent 60                 # the 60-second concurrency check
The tests (tests/e2e/test_faults.py) run short versions of both.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import math
import os
import random
import shutil
import signal
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
GALLERY = ROOT / "examples" / "gallery"
PIX = [sys.executable, "-m", "pixsearch.cli"]
OPS = ("index", "reindex", "remove", "prune")
BATCH = 4  # PIXSEARCH_BATCH_SIZE of the fault runs: several commits per command
SIGNALS = {"INT": signal.SIGINT, "KILL": signal.SIGKILL, "TERM": signal.SIGTERM}
# The one exit code each signal may give, whatever the command (README, "Exit codes": 130 interrupted;
# the CLI installs no SIGTERM handler and documents none, so SIGTERM ends it the default way, like -9).
EXPECTED_EXIT = {"INT": 130, "KILL": -9, "TERM": -15}
# How an interrupted command says so: the indexer's report (text mode), or the CLI's one line.
INTERRUPTED = (
    "interrupted: what was committed is kept; run the same command to resume",
    "interrupted: the library is unchanged; run reindex again to resume",
    "error: interrupted; what was committed is kept, run the same command to resume",
)
# Commits each op makes at least, as ``prepare`` leaves the disk (BATCH photos a commit): the N of a
# commit trigger is drawn from 1..this, so the hold is reached. index: >= 5 changed photos, 2 batches;
# reindex: >= 1 batch + the captions' commit; prune: its prune commit; remove: its one commit.
MIN_COMMITS = {"index": 2, "reindex": 2, "remove": 1, "prune": 1}


def _default_sigint() -> None:
    """A shell starts background jobs with SIGINT ignored, and children inherit that: a benchmark run
    with ``&`` would send SIGINTs nobody hears. Give each command the default, as a terminal would."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


# -- the photo set ------------------------------------------------------------------------------------
def setup(work: Path, n: int) -> tuple[Path, Path, Path]:
    """``n`` gallery photos in ``photos/a`` and ``photos/b`` (+ an untouched copy in ``pool``) and a captions
    CSV naming them by relative path, two captions each."""
    names = sorted(p.name for p in (GALLERY / "images").glob("*.jpg"))[:n]
    pool, photos = work / "pool", work / "photos"
    for d in (pool, photos / "a", photos / "b"):
        d.mkdir(parents=True, exist_ok=True)
    rows: dict[str, list[str]] = {}
    for line in (GALLERY / "captions.csv").read_text().splitlines()[1:]:
        name, text = line.split(",", 1)
        rows.setdefault(name, []).append(text)
    lines = ["image,caption"]
    for i, name in enumerate(names):
        sub = "a" if i < n // 2 else "b"
        shutil.copy(GALLERY / "images" / name, pool / name)
        shutil.copy(GALLERY / "images" / name, photos / sub / name)
        lines += [f"{sub}/{name},{t}" for t in rows.get(name, [])[:2]]
    csv = work / "captions.csv"
    csv.write_text("\n".join(lines) + "\n")
    return pool, photos, csv


def on_disk(photos: Path) -> set[str]:
    return {str(p) for p in photos.rglob("*.jpg")}


def snapshot(lib: Path) -> dict[str, tuple[str, frozenset[str]]]:
    """path -> (content hash, human caption texts), read straight from SQLite."""
    if not (lib / "catalog.db").is_file():
        return {}
    db = sqlite3.connect(f"file:{lib / 'catalog.db'}?mode=ro", uri=True)
    try:
        out: dict[str, tuple[str, frozenset[str]]] = {}
        caps: dict[int, set[str]] = {}
        for iid, text in db.execute("SELECT image_id, text FROM captions WHERE source = 'human'"):
            caps.setdefault(iid, set()).add(text)
        for path, iid, digest in db.execute(
            "SELECT p.path, p.image_id, i.hash FROM paths p JOIN images i ON i.id = p.image_id"
        ):
            out[path] = (digest, frozenset(caps.get(iid, ())))
        return out
    finally:
        db.close()


# -- invariants ---------------------------------------------------------------------------------------
_ENCODER: Any = None


def check(lib_dir: Path) -> list[str]:
    """Problems with the library as it is on disk (empty list: all invariants hold)."""
    global _ENCODER
    import numpy as np

    from pixsearch import Library
    from pixsearch.models.encoder import create_encoder
    from pixsearch.storage.vectors import load_index

    problems: list[str] = []
    if not (lib_dir / "catalog.db").is_file():
        return problems  # killed before it created anything
    db = sqlite3.connect(f"file:{lib_dir / 'catalog.db'}?mode=ro", uri=True)
    try:
        if (r := db.execute("PRAGMA integrity_check").fetchone()[0]) != "ok":
            problems.append(f"integrity_check: {r}")
        orphans = db.execute("SELECT COUNT(*) FROM images WHERE id NOT IN (SELECT image_id FROM paths)")
        if n := orphans.fetchone()[0]:
            problems.append(f"{n} images without a path")
        meta = dict(db.execute("SELECT key, value FROM meta"))
        keys = {
            "images": {r[0] for r in db.execute("SELECT id FROM images")},
            "captions": {r[0] for r in db.execute("SELECT id FROM captions")},
            "caption_joint": {r[0] for r in db.execute("SELECT id FROM captions WHERE joint IS NOT NULL")},
        }
    finally:
        db.close()
    if _ENCODER is None:
        _ENCODER = create_encoder(None)
    for name, want in keys.items():
        side = lib_dir / f"{name}.usearch.json"
        if not side.is_file():
            continue
        stamp = json.loads(side.read_text())
        fresh = (
            str(stamp.get("generation")) == str(meta.get("vectors_gen", "0"))
            and stamp.get("catalog_id") == meta.get("catalog_id")
            and stamp.get("fingerprint") == meta.get("encoder_fingerprint")
        )
        if fresh:
            dim = _ENCODER.caption_dim if name == "captions" else _ENCODER.dim
            have = set(load_index("usearch", lib_dir / f"{name}.usearch", dim).keys().tolist())
            if have != want:
                problems.append(
                    f"{name} index stamped fresh but {len(want - have)} missing, {len(have - want)} extra"
                )
    if meta.get("encoder_fingerprint") not in (None, _ENCODER.fingerprint):
        return problems  # a library of another model: not ours to open
    try:
        with Library.open(lib_dir, encoder=_ENCODER, create=False) as lib:
            bad = [n for n, ok in lib.vectors.consistent().items() if not ok]
            if bad:
                problems.append(f"indexes do not repair to the catalog: {bad}")
            if keys["images"]:
                if not lib.search("a dog runs on the grass", k=3):
                    problems.append("search returned nothing")
                iid = min(keys["images"])
                vec = lib.vectors.get("images").get(np.array([iid]))
                if not np.isfinite(vec).all() or not lib.similar(iid, k=2):
                    problems.append("similar failed")
    except Exception as exc:  # any failure to open or query is a finding
        problems.append(f"open/search failed: {type(exc).__name__}: {exc}")
    return problems


def lost(
    before: dict[str, tuple[str, frozenset[str]]],
    after: dict[str, tuple[str, frozenset[str]]],
    op: str,
    target: str | None,
    disk: set[str],
) -> list[str]:
    """What the run must not have lost (or invented), given what it was asked to do."""
    out = []
    for p, (_, caps) in before.items():
        may_go = (
            op == "remove" and target is not None and (p == target or p.startswith(target.rstrip("/") + "/"))
        ) or (op == "prune" and p not in disk)
        if p not in after:
            if not may_go:
                out.append(f"{op} lost committed path {p}")
        elif not caps <= after[p][1]:
            out.append(f"{op} lost human captions of {p}: {sorted(caps - after[p][1])}")
    ghosts = set(after) - set(before) - disk
    if ghosts:
        out.append(f"{op} left {len(ghosts)} paths that are neither old nor on disk")
    if op in ("remove",) and set(after) - set(before):
        out.append("remove added paths")
    return out


# -- one killed run -----------------------------------------------------------------------------------
def generation(lib: Path) -> int:
    """The catalog's ``vectors_gen`` (0: no catalog yet, or busy): it moves with every commit."""
    try:
        db = sqlite3.connect(f"file:{lib / 'catalog.db'}?mode=ro", uri=True, timeout=0.1)
        try:
            row = db.execute("SELECT value FROM meta WHERE key = 'vectors_gen'").fetchone()
            return int(row[0]) if row else 0
        finally:
            db.close()
    except sqlite3.Error:
        return 0


def command(op: str, lib: Path, photos: Path, csv: Path, target: str | None) -> list[str]:
    base = ["-L", str(lib), "--json"]
    if op == "index":
        return [*PIX, "index", str(photos), "--captions", str(csv), *base]
    if op == "reindex":
        return [*PIX, "reindex", *base]
    if op == "remove":
        return [*PIX, "remove", str(target), *base]
    return [*PIX, "index", str(photos), "--prune", "--force", *base]


def make_plan(runs: int, seed: int, max_delay: float = 0.3) -> list[dict[str, Any]]:
    """What each run does, from the seed alone (never from what earlier runs did): op, signal, trigger
    (``after-commit:N``, ``before-commit:N``, ``after-swap:1``: the test hook's hold; ``progress+S``: S
    seconds after the first commit is seen) and the seed of the run's own file changes."""
    rng = random.Random(seed)
    plan = []
    for i in range(runs):
        op = "index" if i == 0 else rng.choice(OPS)
        sig = rng.choices(list(SIGNALS), weights=(4, 4, 2))[0]
        r, n = rng.random(), rng.randint(1, MIN_COMMITS[op])
        if r < 0.1:
            trigger = f"progress+{rng.uniform(0.0, max_delay):.3f}"
        elif op == "reindex" and r < 0.35:
            trigger = "after-swap:1"
        else:
            trigger = f"{'before' if r < 0.3 else 'after'}-commit:{n}"
        plan.append({"op": op, "signal": sig, "trigger": trigger, "seed": rng.randrange(2**32)})
    return plan


def plan_digest(plan: list[dict[str, Any]]) -> str:
    return hashlib.sha256(json.dumps(plan, sort_keys=True).encode()).hexdigest()[:16]


def prepare(op: str, rng: random.Random, pool: Path, photos: Path, lib: Path) -> str | None:
    """Change the files on disk the way a user would between runs, always leaving the command work (so
    the planned commit comes); returns ``remove``'s target."""
    present = sorted(on_disk(photos))
    names = {Path(p).name for p in present}
    absent = [p for p in sorted(pool.glob("*.jpg")) if p.name not in names]
    known = sorted(snapshot(lib))
    if op in ("index", "reindex"):
        for src in rng.sample(absent, k=min(len(absent), rng.randint(1, 6))):  # photos come back
            shutil.copy(src, photos / rng.choice("ab") / src.name)
    if op == "index":
        present = sorted(on_disk(photos))
        if rng.random() < 0.3:  # an edit: new bytes at a known path
            victim = Path(rng.choice(present))
            shutil.copy(rng.choice(sorted(pool.glob("*.jpg"))), victim)
        # at least 5 changed files (2 batches): new mtimes, same bytes
        for p in rng.sample(present, k=min(len(present), 5)):
            os.utime(p, ns=(time.time_ns(), time.time_ns() + rng.randrange(1, 10**9)))
    elif op == "reindex" and len(known) > 1 and rng.random() < 0.3:  # a file unreadable this time
        victim = rng.choice(known)
        if Path(victim).is_file():
            Path(victim).unlink()
    elif op == "prune":  # files the library knows go (keep a few on disk)
        gone = sorted(set(present) & set(known)) or present
        for p in rng.sample(gone, k=max(0, min(len(gone), rng.randint(1, 3), len(present) - 4))):
            Path(p).unlink()
    elif op == "remove":
        if known and rng.random() < 0.7:
            return rng.choice(known)
        folders = [d for d in "ab" if any(k.startswith(str(photos / d) + "/") for k in known)]
        return str(photos / rng.choice(folders or ["a"]))
    return None


def expected_paths(op: str, before: set[str], disk: set[str], target: str | None) -> set[str]:
    """The library's paths once ``op`` has run to the end (after an interrupted run, its resume)."""
    if op == "index":
        return before | disk
    if op == "prune":
        return set(disk)
    if op == "remove":
        assert target is not None
        return {p for p in before if p != target and not p.startswith(target.rstrip("/") + "/")}
    return set(before)  # reindex keeps every path, an unreadable file's from its thumbnail


def _interrupt(
    proc: subprocess.Popen, lib: Path, trigger: str, sig: str, marker: Path
) -> tuple[bool, str | None]:
    """Wait for the trigger and send the signal; returns (sent, where it landed: the hold, 'progress',
    or None when the command finished first)."""
    deadline = time.monotonic() + 300
    if trigger.startswith("progress+"):
        g0, r0 = generation(lib), generation(lib / ".reindex")  # reindex commits in .reindex/ first
        while proc.poll() is None and time.monotonic() < deadline:
            if generation(lib) > g0 or generation(lib / ".reindex") > r0:
                time.sleep(float(trigger.partition("+")[2]))
                break
            time.sleep(0.01)
        where = "progress"
    else:
        while proc.poll() is None and not marker.exists() and time.monotonic() < deadline:
            time.sleep(0.01)
        where = trigger.partition(":")[0]
    if proc.poll() is not None:
        return False, None
    proc.send_signal(SIGNALS[sig])
    return True, where


def _said_interrupted(out: str, err: str) -> bool:
    lines = err.strip().splitlines()
    if lines and lines[-1] in INTERRUPTED:
        return True
    try:
        return bool(json.loads(out).get("interrupted"))  # --json: the report says it
    except (ValueError, AttributeError):
        return False


def _doctor(lib: Path, env: dict[str, str]) -> list[str]:
    """`pixsearch doctor --json`: every check ok but "indexed files present" (the runs delete photos the
    library still knows on purpose: that is the disk, not the library)."""
    if not (lib / "catalog.db").is_file():
        return []
    p = subprocess.run([*PIX, "doctor", "-L", str(lib), "--json"], env=env, capture_output=True, text=True)
    try:
        checks = json.loads(p.stdout)
    except ValueError:
        return [f"doctor: exit {p.returncode}: {p.stderr.strip()[-300:]}"]
    return [
        f"doctor: {c['check']}: {c['detail']}"
        for c in checks
        if not c["ok"] and c["check"] != "indexed files present"
    ]


def run_faults(runs: int, seed: int, n_photos: int, work: Path, max_delay: float = 0.3) -> dict[str, Any]:
    pool, photos, csv = setup(work, n_photos)
    lib = work / "lib"
    env = {**os.environ, "PIXSEARCH_BATCH_SIZE": str(BATCH)}
    for k in ("PIXSEARCH_TEST_PAUSE", "PIXSEARCH_TEST_PAUSE_FILE"):
        env.pop(k, None)
    plan = make_plan(runs, seed, max_delay)
    problems: list[str] = []
    stats: dict[str, Any] = {
        "ops": {},
        "signals": {k: 0 for k in SIGNALS},
        "landed": {},  # where sent signals landed: after-commit, before-commit, after-swap, progress
        "mid_write": 0,  # runs the hook proved were held at their commit when the signal came
        "finished_before_signal": 0,
        "exit_codes": {},
        "resumed": 0,
    }
    t0 = time.time()
    for i, step in enumerate(plan):
        op, sig, trigger = step["op"], step["signal"], step["trigger"]
        target = prepare(op, random.Random(step["seed"]), pool, photos, lib)
        before, disk = snapshot(lib), on_disk(photos)
        marker = work / f"held-{i}"
        run_env = dict(env)
        if not trigger.startswith("progress+"):
            run_env |= {"PIXSEARCH_TEST_PAUSE": trigger, "PIXSEARCH_TEST_PAUSE_FILE": str(marker)}
        cmd = command(op, lib, photos, csv, target)
        proc = subprocess.Popen(
            cmd,
            env=run_env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            preexec_fn=_default_sigint,
        )
        sent, where = _interrupt(proc, lib, trigger, sig, marker)
        try:
            out, err = proc.communicate(timeout=120)
        except subprocess.TimeoutExpired:
            proc.kill()
            out, err = proc.communicate()
            problems.append(f"run {i} {op}: did not stop within 120 s of SIG{sig}")
        label = f"run {i} {op} (SIG{sig} at {trigger})"
        stats["ops"][op] = stats["ops"].get(op, 0) + 1
        rc = proc.returncode
        if sent and rc == 0:  # the command was done, exiting, when the signal came: a finished run
            sent, where = False, None
        stats["exit_codes"][str(rc)] = stats["exit_codes"].get(str(rc), 0) + 1
        if sent:
            stats["signals"][sig] += 1
            stats["landed"][where] = stats["landed"].get(where, 0) + 1
            held = marker.read_text() if marker.exists() else ""
            if where != "progress" and held and (sig != "INT" or "interrupted" in held):
                stats["mid_write"] += 1
            if rc != EXPECTED_EXIT[sig]:
                problems.append(f"{label}: exit {rc}, want {EXPECTED_EXIT[sig]}: {err.strip()[-300:]}")
            elif sig == "INT" and not _said_interrupted(out, err):
                problems.append(f"{label}: exit 130 without saying it was interrupted: {err.strip()[-300:]}")
        else:
            stats["finished_before_signal"] += 1
            if rc != 0:
                problems.append(f"{label}: finished before its signal with exit {rc}: {err.strip()[-300:]}")
        if "Traceback" in err or "unexpected" in err:
            problems.append(f"{label}: {err.strip()[-300:]}")
        # the library as the kill left it, before anything repairs it; then doctor; then the resume
        found = check(lib) + lost(before, snapshot(lib), op, target, disk) + _doctor(lib, env)
        again = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=600)
        removed_none = op == "remove" and again.returncode == 1 and '"removed": 0' in again.stdout
        if again.returncode != 0 and not removed_none:  # remove: its commit was in before the kill
            found.append(f"resume: exit {again.returncode}: {again.stderr.strip()[-300:]}")
        have, want = set(snapshot(lib)), expected_paths(op, set(before), disk, target)
        if have != want:
            found.append(f"resume: {len(have)} paths, want {len(want)} ({len(want - have)} missing)")
        elif not found:
            stats["resumed"] += 1
        if (lib / ".reindex").exists():
            found.append("resume: .reindex left behind")
        problems += [f"{label}: {p}" for p in found]
    # a final, uninterrupted pass must complete and leave the library equal to the disk
    names = {Path(p).name for p in on_disk(photos)}
    for src in sorted(pool.glob("*.jpg")):
        if src.name not in names:
            shutil.copy(src, photos / "a" / src.name)
    for op, cmd in (
        (
            "final index",
            [*PIX, "index", str(photos), "--prune", "--captions", str(csv), "-L", str(lib), "--json"],
        ),
        ("final reindex", [*PIX, "reindex", "-L", str(lib), "--json"]),
    ):
        p = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=600)
        if p.returncode != 0:
            problems.append(f"{op}: exit {p.returncode}: {p.stderr.strip()[-300:]}")
    final = snapshot(lib)
    if set(final) != on_disk(photos):
        problems.append(f"final library has {len(final)} paths, disk has {len(on_disk(photos))}")
    problems += [f"final: {p}" for p in check(lib) + _doctor(lib, env)]
    if (lib / ".reindex").exists():
        problems.append("final: .reindex left behind")
    return {
        "runs": runs,
        "seed": seed,
        "photos": n_photos,
        "plan_digest": plan_digest(plan),
        "executed": [{k: s[k] for k in ("op", "signal", "trigger")} for s in plan],
        **stats,
        "problems": problems,
        "final_paths": len(final),
        "wall_s": round(time.time() - t0, 1),
    }


# -- concurrency ----------------------------------------------------------------------------------------
READER = r"""
import json, random, sys, time
from pixsearch import Library, NotFoundError
lib_dir, seconds = sys.argv[1], float(sys.argv[2])
n, gone, errors, t_end = 0, 0, [], time.time() + seconds
with Library.open(lib_dir, create=False) as lib:
    rng = random.Random(0)
    while time.time() < t_end:
        try:
            res = lib.search(rng.choice(["a dog", "children playing", "a man on a bike", "water"]), k=5)
            if res:
                try:
                    lib.similar(res[0].image_id, k=3)
                except NotFoundError:  # a writer removed it since the search: an answer, not a failure
                    gone += 1
            n += 1
        except Exception as exc:
            errors.append(f"{type(exc).__name__}: {exc}")
out = {"queries": n, "removed_meanwhile": gone, "errors": errors[:20], "error_count": len(errors)}
print(json.dumps(out))
"""


def run_concurrent(seconds: float, n_photos: int, work: Path) -> dict[str, Any]:
    _, photos, csv = setup(work, n_photos)
    lib = work / "lib"
    index = [*PIX, "index", str(photos), "--captions", str(csv), "-L", str(lib), "--json"]
    first = subprocess.run(index, capture_output=True, text=True, timeout=600)
    assert first.returncode == 0, first.stderr
    outcomes: dict[str, int] = {"ok": 0, "busy": 0}
    problems: list[str] = []
    lock = threading.Lock()
    t_end = time.time() + seconds

    def writer(w: int) -> None:
        rng = random.Random(w)
        while time.time() < t_end:
            cmd = (
                index
                if rng.random() < 0.6
                else [*PIX, "remove", str(photos / rng.choice("ab")), "-L", str(lib)]
            )
            p = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
            with lock:
                if p.returncode == 5 and "library is busy (PID" in p.stderr and "use --wait" in p.stderr:
                    outcomes["busy"] += 1
                elif p.returncode == 0 or (p.returncode == 1 and "remove" in cmd and "removed 0" in p.stdout):
                    outcomes["ok"] += 1
                else:
                    problems.append(f"writer {w}: exit {p.returncode}: {p.stderr.strip()[-300:]}")

    reader = subprocess.Popen(
        [sys.executable, "-c", READER, str(lib), str(seconds)], stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    threads = [threading.Thread(target=writer, args=(w,)) for w in (1, 2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    out, err = reader.communicate(timeout=600)
    try:
        read = json.loads(out.decode())
    except ValueError:
        read = {"queries": 0, "error_count": 1, "errors": [err.decode()[-300:]]}
    if read["error_count"]:
        problems.append(f"reader errors: {read['errors']}")
    last = subprocess.run([*index, "--wait"], capture_output=True, text=True, timeout=600)
    if last.returncode != 0:
        problems.append(f"final index: exit {last.returncode}: {last.stderr[-300:]}")
    single = work / "single"
    p = subprocess.run(
        [*index[:-3], "-L", str(single), "--json"], capture_output=True, text=True, timeout=600
    )
    if p.returncode != 0:
        problems.append(f"single-run index: exit {p.returncode}")
    if snapshot(lib) != snapshot(single):
        problems.append("final library differs from a single run's")
    problems += [f"final: {x}" for x in check(lib)]
    return {
        "seconds": seconds,
        "writers": 2,
        "writer_runs": outcomes,
        "reader_queries": read["queries"],
        "reader_errors": read["error_count"],
        "problems": problems,
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--runs", type=int, default=200)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--photos", type=int, default=24)
    ap.add_argument("--max-delay", type=float, default=0.3, help="progress-triggered: latest signal, s")
    ap.add_argument("--min-mid-write", type=float, default=0.8, help="least share of runs hit mid-write")
    ap.add_argument("--concurrent", type=float, default=0.0, help="run the concurrency check for N seconds")
    ap.add_argument("--keep", type=Path, default=None, help="work in this dir and keep it")
    a = ap.parse_args()
    work = a.keep or Path(tempfile.mkdtemp(prefix="pixsearch-faults-"))
    work.mkdir(parents=True, exist_ok=True)
    try:
        if a.concurrent:
            res = run_concurrent(a.concurrent, a.photos, work)
        else:
            res = run_faults(a.runs, a.seed, a.photos, work, a.max_delay)
            res["executed"] = f"{len(res['executed'])} runs (plan {res['plan_digest']})"
            if res["mid_write"] < math.ceil(a.min_mid_write * a.runs):
                res["problems"].append(f"only {res['mid_write']} of {a.runs} runs interrupted mid-write")
        print(json.dumps(res, indent=1))
    finally:
        if a.keep is None:
            shutil.rmtree(work, ignore_errors=True)
    sys.exit(1 if res["problems"] else 0)


if __name__ == "__main__":
    main()
