"""The benchmark scripts report what they measured: rates per photo indexed, and for the API load test
what was synthetic and whether the indexer really ran while the load did (tiny runs, real photos)."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import GALLERY

ROOT = Path(__file__).resolve().parents[2]


def _run(script: str, *args: str, timeout: int = 600) -> dict:
    p = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / script), *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd=ROOT / "benchmarks",
    )
    assert p.returncode == 0, p.stderr[-3000:]
    return json.loads(p.stdout.strip().splitlines()[-1])


def test_bench_index_divides_by_photos_added_not_by_n(tmp_path: Path) -> None:
    """6 names asked for: 4 distinct photos, 1 byte-identical copy of one of them, 1 broken file. The rate
    is over the 4 added (the script used to divide by ``--n``, i.e. by 6)."""
    data = tmp_path / "data"
    (data / "images").mkdir(parents=True)
    src = sorted((GALLERY / "images").glob("*.jpg"))[:4]
    for p in src:
        shutil.copy(p, data / "images" / p.name)
    shutil.copy(src[0], data / "images" / "zz-copy.jpg")
    (data / "images" / "zz-broken.jpg").write_bytes(b"\xff\xd8 not a photo")
    names = [p.name for p in src] + ["zz-copy.jpg", "zz-broken.jpg"]
    (data / "test.txt").write_text("\n".join(names) + "\n")
    (data / "val.txt").write_text("")
    rows = ["image,caption"] + [f"{n},a photo number {i} of a few things" for i, n in enumerate(names)]
    (data / "captions.csv").write_text("\n".join(rows) + "\n")
    out = _run(
        "bench_index.py",
        "--n",
        "6",
        "--data",
        str(data),
        "--no-generate",
        "--queries",
        "2",
        "--cold-runs",
        "1",
    )
    assert (out["images_requested"], out["images_found"], out["images"]) == (6, 6, 4)
    assert (out["duplicates"], out["failed"]) == (1, 1)
    # index_seconds is rounded to 10 ms in the output, hence approx; 6 / seconds would be 1.5 x this
    assert out["images_per_second"] == pytest.approx(4 / out["index_seconds"], rel=0.02)
    assert out["cold_search_seconds"]["runs"] == 1 and out["cold_search_seconds"]["error"] is None


@pytest.mark.slow
def test_bench_api_load_reports_synthetic_rows_and_the_indexer_overlap() -> None:
    """A small run (300 photos, 1 and 2 clients, 4 s per level, 60 photos indexed meanwhile): the output
    says how many photos were synthetic and measures the indexer's overlap with the load instead of only
    recording whether it was still running at the end."""
    out = _run(
        "bench_api_load.py",
        *("--n", "300", "--clients", "1,2", "--requests", "40", "--seconds", "4", "--index-photos", "60"),
    )
    assert (out["build"]["real_images"], out["build"]["synthetic_images"]) == (100, 200)
    assert out["synthetic"].startswith("200 of the 300 photos are synthetic")
    # some of the 60 photos may be gallery photos already in the library (duplicates: not added)
    assert out["indexer"]["exit"] == 0 and out["indexer"]["failed"] == 0 and out["indexer"]["added"] >= 50
    assert out["indexer"]["images_before"] == 300
    assert out["images_after"] == 300 + out["indexer"]["added"]
    ov = out["overlap"]
    assert [lv["clients"] for lv in ov["per_level"]] == [1, 2]
    for lv in ov["per_level"]:
        assert 0.0 <= lv["overlap_s"] <= lv["load_s"] + 0.01 and lv["images_committed_during"] >= 0
    total = sum(lv["requests"] for lv in out["while_indexing"])
    assert ov["requests_while_indexer_ran"] + ov["requests_after_indexer_exit"] == total
    assert ov["load_started_after_indexer_s"] >= 0  # the load starts once the indexer has committed
    assert ov["indexer_ran_throughout"] == all(lv["covered"] for lv in ov["per_level"])
    assert ov["levels_with_commits"] == [
        lv["clients"] for lv in ov["per_level"] if lv["images_committed_during"] > 0
    ]
    assert ov["claim_holds"] == (
        ov["indexer_ran_throughout"]
        and ov["errors_while_indexer_ran"] == 0
        and len(ov["levels_with_commits"]) == len(ov["per_level"])
    )
    assert all(lv["errors"] == 0 for lv in out["idle"] + out["while_indexing"]), out
