"""benchmarks/bench_duplicates.py on a tiny data set of real photos: it builds the copies, indexes them and
reports precision, recall and the hard negatives it counted (the full run is for the README figures)."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

from tests.conftest import GALLERY

ROOT = Path(__file__).resolve().parents[2]


def test_bench_duplicates_reports_precision_and_recall(tmp_path: Path) -> None:
    data = tmp_path / "data"
    (data / "images").mkdir(parents=True)
    names = [p.name for p in sorted((GALLERY / "images").glob("*.jpg"))[:5]]
    for n in names:
        shutil.copy(GALLERY / "images" / n, data / "images" / n)
    (data / "test.txt").write_text("\n".join(names) + "\n")
    args = ["--data", str(data), "--splits", "test", "--edited", "2", "--work", str(tmp_path / "work")]
    p = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "bench_duplicates.py"), *args, "--thresholds", "0.54,1"],
        capture_output=True,
        text=True,
        timeout=600,
        cwd=ROOT / "benchmarks",
    )
    assert p.returncode == 0, p.stderr[-3000:]
    out = json.loads(p.stdout.strip().splitlines()[-1])
    assert (out["photos"], out["edited_originals"], out["copies"], out["positive_pairs"]) == (19, 2, 14, 56)
    default, strict = out["results"]
    assert default["threshold"] == 0.54 and default["recall"] >= 0.9 and default["precision"] == 1.0
    assert set(default["copies_grouped"]) == {
        "crop",
        "jpeg40",
        "resize50",
        "resize50_jpeg40",
        "rotate",
        "tone",
        "watermark",
    }
    assert strict["recall"] < default["recall"]  # a threshold of 1 leaves edited copies apart
    assert (tmp_path / "work" / "labels.json").is_file() and out["index_seconds"] is not None
