"""Faults end to end with real processes: interrupt anywhere, use one library from several at once, fill
the disk.

Short versions of benchmarks/bench_faults.py (which runs >= 200 fault runs and a 60-second concurrency
check): 30 seeded runs that SIGINT, SIGKILL or SIGTERM `index`, `reindex`, `remove` and `index --prune
--force` mid-write (held at a commit by the catalog's test hook, ``PIXSEARCH_TEST_PAUSE``), with every
invariant, `doctor` and a resume to the full count checked after each; and two writers + one reader for a
few seconds. Interrupts are sent once progress is seen (a commit), never after a fixed sleep, and the only
answer accepted is the documented one: SIGINT exit 130 with what was committed kept, SIGKILL -9, SIGTERM
-15 (no handler).
A real 6 MB tmpfs (root only) checks a full disk: writes fail in one line, reads work, a later run resumes.
"""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def _bench():  # the harness lives with the benchmark so the two can never drift apart
    spec = importlib.util.spec_from_file_location("bench_faults", ROOT / "benchmarks" / "bench_faults.py")
    assert spec is not None and spec.loader is not None
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_the_fault_plan_is_the_seeds_alone() -> None:
    """Same seed, same ops, signals and trigger points (the old harness drew them from the generator
    that also picked files, so what a run did depended on what the runs before it left on disk); and the
    30-run plan below covers every op, signal and trigger by construction, not by luck."""
    bench = _bench()
    plan = bench.make_plan(30, 7)
    assert plan == bench.make_plan(30, 7) and plan != bench.make_plan(30, 8)
    assert bench.plan_digest(plan) == bench.plan_digest(bench.make_plan(30, 7))
    assert {s["op"] for s in plan} == {"index", "reindex", "remove", "prune"}
    assert {s["signal"] for s in plan} == {"INT", "KILL", "TERM"}
    kinds = {s["trigger"].split(":")[0].split("+")[0] for s in plan}
    assert kinds >= {"after-commit", "before-commit", "after-swap"}
    held = [s for s in plan if not s["trigger"].startswith("progress+")]
    assert len(held) >= 0.8 * len(plan)


@pytest.mark.slow
def test_thirty_interrupted_runs_lose_and_corrupt_nothing(tmp_path: Path) -> None:
    bench = _bench()
    res = bench.run_faults(runs=30, seed=7, n_photos=24, work=tmp_path)
    assert res["problems"] == [], "\n".join(res["problems"])  # each run: exit, library, doctor, resume
    assert res["executed"] == [{k: s[k] for k in ("op", "signal", "trigger")} for s in bench.make_plan(30, 7)]
    # Where the signals landed, as the test hook saw it: mid-write (held at a commit), not by luck
    assert res["mid_write"] >= 0.8 * 30, res
    assert res["landed"].keys() >= {"after-commit", "before-commit", "after-swap"}
    assert all(res["signals"][s] > 0 for s in ("INT", "KILL", "TERM"))
    # the strict rule, every op: SIGINT 130, SIGKILL -9, SIGTERM -15, not signalled 0; nothing else
    assert set(res["exit_codes"]) <= {"0", "130", "-9", "-15"}
    assert res["exit_codes"].get("130", 0) == res["signals"]["INT"]
    assert res["exit_codes"].get("-9", 0) == res["signals"]["KILL"]
    assert res["exit_codes"].get("-15", 0) == res["signals"]["TERM"]
    assert set(res["ops"]) == {"index", "reindex", "remove", "prune"}
    assert res["resumed"] == 30 and res["final_paths"] == 24


@pytest.mark.slow
def test_two_writers_and_a_reader_share_one_library(tmp_path: Path) -> None:
    seconds = float(os.environ.get("PIXSEARCH_CONCURRENCY_SECONDS", "15"))
    res = _bench().run_concurrent(seconds, n_photos=12, work=tmp_path)
    assert res["problems"] == [], "\n".join(res["problems"])
    assert res["reader_queries"] > 0 and res["reader_errors"] == 0
    assert res["writer_runs"]["ok"] > 0


# -- Ctrl-C with an exact outcome ----------------------------------------------------------------------------
PIX = [sys.executable, "-m", "pixsearch.cli"]
# The ways an interrupted command ends (exit 130 all): the indexer (or reindex) stops between batches and
# reports, or the interrupt lands elsewhere and the CLI says so.
INTERRUPTED = set(_bench().INTERRUPTED)


def test_ctrl_c_inside_usearch_is_a_keyboard_interrupt() -> None:
    """usearch's threaded add polls for signals and answers Ctrl-C with RuntimeError("Operation has been
    terminated"): the CLI then exited 1 ("unexpected RuntimeError") instead of 130. The index gives the
    KeyboardInterrupt back."""
    import numpy as np

    from pixsearch.storage.vectors import UsearchIndex  # pixsearch first: onnxruntime loads before usearch

    pytest.importorskip("usearch")

    idx = UsearchIndex(64)
    vecs = np.random.default_rng(0).standard_normal((60_000, 64)).astype(np.float32)  # seconds of work
    timer = threading.Timer(0.3, os.kill, (os.getpid(), signal.SIGINT))
    timer.start()
    try:
        with pytest.raises(KeyboardInterrupt):
            idx.add(np.arange(len(vecs)), vecs)
    finally:
        timer.cancel()
    assert 0 < len(idx) < len(vecs)  # it landed inside the add, not before or after it


def _interrupt_after_progress(cmd: list[str], lib: Path, env: dict[str, str]) -> subprocess.CompletedProcess:
    """Run ``cmd``; once it has committed a batch (the catalog's generation moved), send SIGINT. No test
    hook here: the signal lands wherever the command is right after a commit (updating its vector
    indexes, most often: where usearch used to turn Ctrl-C into a RuntimeError, exit 1)."""
    generation = _bench().generation
    start = generation(lib)
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 300
    while generation(lib) <= start and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.02)
    assert proc.poll() is None, f"finished before it could be interrupted: {proc.communicate()}"
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=120)
    return subprocess.CompletedProcess(cmd, proc.returncode, out, err)


@pytest.mark.slow
@pytest.mark.parametrize("op", ["index", "prune"])
def test_ctrl_c_after_progress_exits_130_and_keeps_the_commits(op: str, tmp_path: Path) -> None:
    bench = _bench()
    pool, photos, csv = bench.setup(tmp_path, 24)
    lib = tmp_path / "lib"
    env = {**os.environ, "PIXSEARCH_BATCH_SIZE": "1"}  # a commit per photo: progress shows early
    first = subprocess.run([*PIX, "index", str(photos / "a"), "-L", str(lib)], env=env, capture_output=True)
    assert first.returncode == 0, first.stderr
    for p in sorted((photos / "a").glob("*.jpg"))[:3]:
        p.unlink()  # what --prune forgets, after the new photos of b/
    extra = ["--prune", "--force"] if op == "prune" else []
    before = bench.snapshot(lib)
    p = _interrupt_after_progress([*PIX, "index", str(photos), "-L", str(lib), *extra], lib, env)
    assert p.returncode == 130, p.stderr[-2000:]
    assert p.stderr.strip().splitlines()[-1] in INTERRUPTED
    assert bench.check(lib) == []
    after = bench.snapshot(lib)
    assert len(after) > len(before) - 3  # committed batches stayed
    again = subprocess.run([*PIX, "index", str(photos), "-L", str(lib), *extra], env=env, capture_output=True)
    assert again.returncode == 0, again.stderr
    assert set(bench.snapshot(lib)) >= bench.on_disk(photos)


NATIVE_LOAD = """
import os, signal, sys
import pixsearch  # onnxruntime first, as every entry point does

class ArmAtNativeInit:
    # When the pybind11 module ARM_AT starts loading, arm a timer whose tick is a real SIGINT: it lands
    # while the module's C++ initialiser runs Python code (the window that aborted, or failed the import).
    def find_spec(self, name, path=None, target=None):
        if name == os.environ["ARM_AT"]:
            sys.meta_path.remove(self)
            signal.signal(signal.SIGALRM, lambda s, f: os.kill(os.getpid(), signal.SIGINT))
            signal.setitimer(signal.ITIMER_REAL, float(os.environ["DELAY"]))
        return None

sys.meta_path.insert(0, ArmAtNativeInit())
from pixsearch.cli import main
sys.argv = ["pixsearch", *sys.argv[1:]]
main()
"""


@pytest.mark.parametrize(
    ("module", "delays"),
    [
        ("ai_edge_litert._pywrap_litert_interpreter_wrapper", ("0.0005", "0.002", "0.004")),  # face model
        ("usearch.compiled", ("0.0003", "0.001", "0.002")),  # the vector index, once loaded after a commit
    ],
)
def test_ctrl_c_while_native_models_load_exits_130(
    module: str, delays: tuple[str, ...], built_library: Path, tmp_path: Path
) -> None:
    """A SIGINT landing while a C++ extension initialises became ImportError("initialization failed"),
    or "already registered" when retried (exit 1), or, worse, std::terminate (SIGABRT, exit -6): loading
    defers it (``interrupts.py``). usearch loaded lazily, right after the first commit: the very moment a
    progress-triggered Ctrl-C lands; writers now load it first (``Library.writing``)."""
    if module.startswith("ai_edge_litert"):
        pytest.importorskip("ai_edge_litert.interpreter", reason="the policy extra is not installed")
    elif importlib.util.find_spec("usearch") is None:  # not imported here: onnxruntime must load first
        pytest.skip("usearch is not installed")
    photos = tmp_path / "photos"
    photos.mkdir()
    for src in sorted((ROOT / "examples" / "gallery" / "images").glob("*.jpg"))[-2:]:  # new to the library
        shutil.copy(src, photos / src.name)
    lib = tmp_path / "lib"
    shutil.copytree(built_library, lib)
    for delay in delays:
        p = subprocess.run(
            [sys.executable, "-c", NATIVE_LOAD, "index", str(photos), "-L", str(lib)],
            env={**os.environ, "DELAY": delay, "ARM_AT": module},
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert p.returncode == 130 and p.stderr.strip().splitlines()[-1] in INTERRUPTED, p.stderr


# -- a full disk, for real ---------------------------------------------------------------------------------
@pytest.fixture
def small_disk(tmp_path: Path) -> Path:
    """A 6 MB tmpfs (mounting needs root: skipped otherwise)."""
    if os.geteuid() != 0 or shutil.which("mount") is None:
        pytest.skip("mounting a tmpfs needs root")
    mnt = tmp_path / "disk"
    mnt.mkdir()
    p = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=6m", "tmpfs", str(mnt)], capture_output=True)
    if p.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {p.stderr.decode(errors='replace').strip()}")
    try:
        yield mnt
    finally:
        subprocess.run(["umount", "-l", str(mnt)], capture_output=True)


def _fill(disk: Path, leave: int, name: str = "filler") -> Path:
    """A file taking all but ``leave`` bytes of the disk."""
    filler = disk / name
    with open(filler, "wb") as f:
        os.posix_fallocate(f.fileno(), 0, max(1, shutil.disk_usage(disk).free - leave))
    return filler


@pytest.mark.slow
def test_a_real_full_disk(small_disk: Path, tmp_path: Path) -> None:
    from tests.conftest import GALLERY

    photos = tmp_path / "photos"
    shutil.copytree(GALLERY / "images", photos)  # 100 photos; the library goes on the small disk
    lib = small_disk / "lib"

    def pix(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run([*PIX, *args], capture_output=True, text=True, timeout=600)

    def reads_work(*also: str) -> None:
        """search and doctor answer, each saying once that the repaired index stays in memory."""
        for f in lib.glob("images.*"):
            f.unlink()  # the next read repairs the index, and cannot save it
        _fill(small_disk, 0, "filler2")
        for cmd in (["search", "a dog", "-k", "3", "--json"], ["doctor", "--json"]):
            p = pix(*cmd, "-L", str(lib))
            assert p.returncode == 0 and "unexpected" not in p.stderr, p.stderr
            assert p.stderr.count("could not save the repaired vector index (No space left on device)") == 1
            assert all(line in p.stderr for line in also), p.stderr
            if cmd[0] == "search":
                assert len(json.loads(p.stdout)["results"]) == 3
            else:
                assert all(c["ok"] for c in json.loads(p.stdout))
        (small_disk / "filler2").unlink()

    filler = _fill(small_disk, 1_000_000)  # room for a few dozen photos, not a hundred
    p = pix("index", str(photos), "-L", str(lib), "--no-caption")
    assert p.returncode == 1 and "unexpected" not in p.stderr
    err = p.stderr.strip().splitlines()
    assert len(err) == 1 and "No space left on device" in err[0], p.stderr
    reads_work()  # right after the failed run: SQLite's WAL files are still there
    filler.unlink()
    partial = json.loads(pix("stats", "-L", str(lib), "--json").stdout)["images"]  # a clean close
    assert 0 < partial < 100
    reads_work("warning: the disk is full; the catalog is open for this process alone")  # no WAL files

    filler = _fill(small_disk, 0)
    p = pix("index", str(photos), "-L", str(lib), "--no-caption")
    assert p.returncode == 1 and "unexpected" not in p.stderr and "No space left on device" in p.stderr
    p = pix("serve", "-L", str(lib), "--port", "0")  # the API token cannot be written either
    assert p.returncode == 1 and "unexpected" not in p.stderr and "No space left on device" in p.stderr

    filler.unlink()  # space freed: the same command resumes and finishes
    p = pix("index", str(photos), "-L", str(lib), "--no-caption", "--json")
    assert p.returncode == 0, p.stderr
    rep = json.loads(p.stdout)
    assert rep["unchanged"] == partial and rep["added"] == 100 - partial
    doc = json.loads(pix("doctor", "-L", str(lib), "--json").stdout)
    assert all(c["ok"] for c in doc), doc
