"""Cold start of the ``pixsearch`` command: ``--help``, ``search`` and ``stats``, each in a fresh process.

Prints one JSON object: per case the median (and min/max) wall time of ``--runs`` fresh processes, and
the heavy modules the case imported (from one extra run under ``python -X importtime``). search and
stats run against ``--library``, or against a library this script builds from examples/gallery (100
photos with their captions) in a temporary folder.

``--compare SRC``: also time another checkout's code (e.g. a ``git worktree`` of the previous commit:
``--compare /tmp/wt/src``), run by run interleaved with this one, so both see the same machine load;
each tree gets its own library (an older tree may refuse a newer catalog schema).

Usage: python benchmarks/bench_cli.py [--runs 7] [--library DIR] [--query "a dog in the water"]
       [--compare OLD/src]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from _timing import machine

ROOT = Path(__file__).resolve().parents[1]
GALLERY = ROOT / "examples" / "gallery"
# What `pixsearch` (the console script) runs, with argv as the user typed it.
ENTRY = "import sys; sys.argv[0] = 'pixsearch'; from pixsearch.cli import main; main()"
HEAVY = ("torch", "fastapi", "uvicorn", "onnxruntime", "numpy", "usearch", "rich", "pydantic", "PIL")
GOALS_S = {"help": 0.15, "search": 0.5}  # search: at 1K photos (0.7 s at 100K)


def _env(src: Path | None) -> dict[str, str]:
    env = os.environ.copy()
    env.pop("PIXSEARCH_LIBRARY", None)
    if src is not None:
        env["PYTHONPATH"] = os.pathsep.join([str(src), env.get("PYTHONPATH", "")]).rstrip(os.pathsep)
    return env


def _run(args: list[str], env: dict[str, str], extra: tuple[str, ...] = ()) -> subprocess.CompletedProcess:
    cmd = [sys.executable, *extra, "-c", ENTRY, *args]
    return subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=600)


def _timed(args: list[str], env: dict[str, str]) -> float:
    t = time.perf_counter()
    p = _run(args, env)
    wall = time.perf_counter() - t
    if p.returncode != 0:
        raise SystemExit(f"pixsearch {' '.join(args)} exited {p.returncode}: {p.stderr[-2000:]}")
    return wall


def _heavy_imports(args: list[str], env: dict[str, str]) -> list[str]:
    """Top-level packages from HEAVY that the command imported (one run under -X importtime)."""
    p = _run(args, env, ("-X", "importtime"))
    seen = set()
    for line in p.stderr.splitlines():
        if line.startswith("import time:") and "|" in line:
            name = line.rsplit("|", 1)[1].strip()
            seen.add(name.split(".")[0])
    return sorted(seen & set(HEAVY))


def _build_library(dst: Path, env: dict[str, str]) -> Path:
    lib = dst / "library"
    images, captions = str(GALLERY / "images"), str(GALLERY / "captions.csv")
    p = _run(["index", images, "--captions", captions, "-L", str(lib), "--json"], env)
    if p.returncode != 0:
        raise SystemExit(f"could not build the library: {p.stderr[-2000:]}")
    return lib


def _photos(lib: Path, env: dict[str, str]) -> int | None:
    p = _run(["stats", "-L", str(lib), "--json"], env)
    return int(json.loads(p.stdout)["images"]) if p.returncode == 0 else None


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--runs", type=int, default=7, help="fresh processes per case (median reported)")
    ap.add_argument("--library", type=Path, default=None, help="default: built from examples/gallery")
    ap.add_argument("--query", default="a dog in the water")
    ap.add_argument("--compare", type=Path, default=None, help="another checkout's src/ to time as well")
    args = ap.parse_args()
    if args.runs < 1:
        raise SystemExit("--runs must be >= 1")

    trees = {"this": None} | ({"compare": args.compare.resolve()} if args.compare else {})
    tmp = Path(tempfile.mkdtemp(prefix="bench-cli-"))
    try:
        libs = {}
        for name, src in trees.items():
            libs[name] = args.library or _build_library(tmp / name, _env(src))
        cases = {
            name: {
                "help": ["--help"],
                "search": ["search", args.query, "-L", str(libs[name]), "--json"],
                "stats": ["stats", "-L", str(libs[name]), "--json"],
            }
            for name in trees
        }
        for name, src in trees.items():  # warm the OS file cache; not timed
            for case in cases[name].values():
                _timed(case, _env(src))
        walls: dict[str, dict[str, list[float]]] = {n: {c: [] for c in cases[n]} for n in trees}
        for _ in range(args.runs):  # interleaved: every tree and case sees the same load
            for name, src in trees.items():
                for case, argv in cases[name].items():
                    walls[name][case].append(_timed(argv, _env(src)))
        result: dict = {"runs": args.runs, "query": args.query, "goals_s": GOALS_S}
        for name, src in trees.items():
            result[name] = {
                "src": str(src or ROOT / "src"),
                "photos": _photos(libs[name], _env(src)),
                "cases": {
                    case: {
                        "median_s": round(statistics.median(w), 3),
                        "min_s": round(min(w), 3),
                        "max_s": round(max(w), 3),
                        "heavy_imports": _heavy_imports(cases[name][case], _env(src)),
                    }
                    for case, w in walls[name].items()
                },
            }
        result["machine"] = machine()
        print(json.dumps(result))
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
