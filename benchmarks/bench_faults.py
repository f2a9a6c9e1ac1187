"""Fault injection and concurrent use of one library, with real `pixsearch` processes on real photos.

Faults: each run starts `index`, `reindex`, `remove` or `index --prune --force` and kills it (SIGKILL or
SIGINT, seeded) at a random moment, then checks the library: SQLite integrity, no orphan images, every
index file whose stamp claims it is fresh holds exactly the catalog's keys, the indexes repair to the
catalog, search and similar work, nothing committed before the run is lost (paths and their human
captions), nothing appears that is neither old nor on disk. A final uninterrupted `index` + `reindex` must
leave the library equal to the photos on disk.

Concurrency: two writer processes loop `index` (and `remove`, so the next `index` has work) while one
long-lived process searches; writers get "library is busy" and nothing else, the reader never errors, and
the final library equals one built by a single run.

    python benchmarks/bench_faults.py --runs 200 --seed 1            # JSON on stdout
    python benchmarks/bench_faults.py --concurrent 60                 # the 60-second concurrency check
The tests (tests/e2e/test_faults.py) run short versions of both.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import re
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
# A SIGINT that lands while the interpreter is still importing (before the command runs) or shutting down
# ends Python the default way (exit -2, perhaps an import traceback); a frame of ours in a traceback means
# the command itself let the interrupt out. (NumPy turns an interrupted import into an ImportError: exit
# 1 with a traceback that has no frame of ours; one landing in a library's destructor at exit prints an
# "Exception ignored" traceback after exit 0.) Exit 4: the first run was killed before a library existed.
_OURS = re.compile(
    r"pixsearch/(library|indexer|lock|index/\w+|cli/(library|_common))\.py"
    r"(\", line \d+, in |:\d+ in )(?!<module>)"
)


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
def command(op: str, lib: Path, photos: Path, csv: Path, target: str | None) -> list[str]:
    base = ["-L", str(lib), "--json"]
    if op == "index":
        return [*PIX, "index", str(photos), "--captions", str(csv), *base]
    if op == "reindex":
        return [*PIX, "reindex", *base]
    if op == "remove":
        return [*PIX, "remove", str(target), *base]
    return [*PIX, "index", str(photos), "--prune", "--force", *base]


def prepare(op: str, rng: random.Random, pool: Path, photos: Path, lib: Path) -> str | None:
    """Change the files on disk the way a user would between runs; returns ``remove``'s target."""
    present = sorted(on_disk(photos))
    names = {Path(p).name for p in present}
    absent = [p for p in sorted(pool.glob("*.jpg")) if p.name not in names]
    if op in ("index", "reindex"):
        for src in rng.sample(absent, k=min(len(absent), rng.randint(0, 4))):  # photos come back
            shutil.copy(src, photos / rng.choice("ab") / src.name)
        if op == "index" and present and rng.random() < 0.3:  # an edit: new bytes at a known path
            victim = Path(rng.choice(present))
            shutil.copy(rng.choice(sorted(pool.glob("*.jpg"))), victim)
            os.utime(victim, ns=(time.time_ns(), time.time_ns() + rng.randrange(1, 10**9)))
        if op == "reindex" and present and rng.random() < 0.3:  # a file unreadable this time
            Path(rng.choice(present)).unlink()
    elif op == "prune":
        for p in rng.sample(present, k=min(len(present), rng.randint(1, 3))):
            Path(p).unlink()
    elif op == "remove":
        known = sorted(snapshot(lib)) or present
        if known and rng.random() < 0.7:
            return rng.choice(known)
        return str(photos / rng.choice("ab"))
    return None


def run_faults(runs: int, seed: int, n_photos: int, work: Path, max_delay: float) -> dict[str, Any]:
    rng = random.Random(seed)
    pool, photos, csv = setup(work, n_photos)
    lib = work / "lib"
    env = {**os.environ, "PIXSEARCH_BATCH_SIZE": "4"}
    problems: list[str] = []
    stats: dict[str, Any] = {
        "ops": {},
        "signals": {"KILL": 0, "INT": 0},
        "finished_before_signal": 0,
        "interrupted_outside_command": 0,
        "exit_codes": {},
    }
    t0 = time.time()
    for i in range(runs):
        op = "index" if i == 0 else rng.choice(OPS)
        target = prepare(op, rng, pool, photos, lib)
        before, disk = snapshot(lib), on_disk(photos)
        sig = rng.choice([signal.SIGKILL, signal.SIGINT])
        delay = rng.uniform(0.05, max_delay)
        proc = subprocess.Popen(
            command(op, lib, photos, csv, target),
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            preexec_fn=_default_sigint,
        )
        sent = False
        try:
            proc.wait(timeout=delay)
            stats["finished_before_signal"] += 1
        except subprocess.TimeoutExpired:
            proc.send_signal(sig)
            sent = True
            stats["signals"]["KILL" if sig == signal.SIGKILL else "INT"] += 1
        try:
            _, err = proc.communicate(timeout=120)
        except subprocess.TimeoutExpired:
            proc.kill()
            _, err = proc.communicate()
            problems.append(f"run {i} {op}: did not stop within 120 s of SIGINT")
        stats["ops"][op] = stats["ops"].get(op, 0) + 1
        rc = str(proc.returncode)
        stats["exit_codes"][rc] = stats["exit_codes"].get(rc, 0) + 1
        text = err.decode(errors="replace")
        outside = proc.returncode == -2 or (proc.returncode in (0, 1) and "Traceback" in text)
        if sent and sig == signal.SIGINT and outside and not _OURS.search(text):
            # Python was still importing, or already shutting down after the command's last word: the
            # default SIGINT exit, with nothing of ours open
            stats["interrupted_outside_command"] += 1
        elif "Traceback" in text or proc.returncode not in (0, 1, 4, 130, -9):
            problems.append(f"run {i} {op}: exit {proc.returncode}: {text.strip()[-300:]}")
        found = check(lib) + lost(before, snapshot(lib), op, target, disk)
        problems += [f"run {i} {op} (signal {int(sig)} after {delay:.2f}s): {p}" for p in found]
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
    problems += [f"final: {p}" for p in check(lib)]
    if (lib / ".reindex").exists():
        problems.append("final: .reindex left behind")
    return {
        "runs": runs,
        "seed": seed,
        "photos": n_photos,
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
    ap.add_argument("--max-delay", type=float, default=5.0, help="latest kill, seconds after start")
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
        print(json.dumps(res, indent=1))
    finally:
        if a.keep is None:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
