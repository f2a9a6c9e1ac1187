"""Worst-case photo uploads against a real server: status, seconds and the server's peak memory for each,
and how long a text search takes while one of them decodes.

The uploads are generated here, each at most 20 MiB (the API's limit), each built to cost the decoder
as much as its bytes allow: a 10000 x 10000 LA PNG of 200 KB (100 MP: over MAX_UPLOAD_PIXELS), a 50 MP LA
PNG of 100 KB, 50 MP RGBA / 16-bit gray / palette PNGs, a 7000 x 7000 RGB PNG, a 50 MP progressive 4:4:4
JPEG, a 60 MP JPEG (over the limit) and a 12 MP phone JPEG for scale. Each is posted to
/api/search/image of a ``pixsearch serve`` process over a library of 24 gallery photos; the server's peak
RSS is its VmHWM, reset before each upload (``/proc/PID/clear_refs``) and cross-checked by sampling VmRSS
every 10 ms. Then text searches run back to back while the costliest upload decodes, against the same
searches on an idle server. Prints one JSON object. Usage:
    nice python benchmarks/bench_upload_bounds.py [--searches 20]
"""

from __future__ import annotations

import argparse
import io
import json
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import httpx
import numpy as np
from PIL import Image

sys.path.insert(0, str(Path(__file__).parent))
from _timing import machine  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
GALLERY = ROOT / "examples" / "gallery"
MAX_BYTES = 20 * 1024 * 1024


def photoish(w: int, h: int, noise: float = 0.0) -> Image.Image:
    """Smooth colour fields (compress like a photo's sky and walls), plus grain when ``noise``."""
    y, x = np.mgrid[0:h, 0:w].astype(np.float32)
    planes = [
        128 + 100 * np.sin(x / 97) * np.cos(y / 131),
        (x + y) / (w + h) * 255,
        128 + 90 * np.sin((x - y) / 211),
    ]
    if noise:
        rng = np.random.default_rng(0)
        planes = [p + rng.normal(0, noise, p.shape).astype(np.float32) for p in planes]
    return Image.merge("RGB", [Image.fromarray(np.clip(p, 0, 255).astype(np.uint8)) for p in planes])


def encoded(img: Image.Image, fmt: str, **kw: Any) -> bytes:
    buf = io.BytesIO()
    img.save(buf, fmt, **kw)
    return buf.getvalue()


def worst_uploads(out: Path) -> dict[str, Path]:
    """The uploads, written to ``out``; every one under the 20 MiB body limit."""
    big = photoish(8160, 6120)  # 49.9 MP: just under MAX_UPLOAD_PIXELS, like a 50 MP phone photo
    made = {
        "la_10000x10000_png": encoded(Image.new("LA", (10_000, 10_000)), "PNG", optimize=True),
        "la_7071x7071_png": encoded(Image.new("LA", (7071, 7071)), "PNG", optimize=True),
        "rgba_8160x6120_png": encoded(big.convert("RGBA"), "PNG", compress_level=9),
        "gray16_8160x6120_png": encoded(big.convert("L").convert("I;16"), "PNG"),
        "palette_8160x6120_png": encoded(big.convert("P", palette=Image.Palette.ADAPTIVE), "PNG"),
        "rgb_7000x7000_png": encoded(photoish(7000, 7000), "PNG", compress_level=9),
        "progressive_8160x6120_jpeg": encoded(
            photoish(8160, 6120, noise=6), "JPEG", quality=92, progressive=True, subsampling=0
        ),
        "baseline_9000x6750_jpeg": encoded(photoish(9000, 6750), "JPEG", quality=85),  # 60.8 MP
        "phone_4032x3024_jpeg": encoded(photoish(4032, 3024, noise=4), "JPEG", quality=90),
    }
    paths = {}
    for name, data in made.items():
        assert len(data) <= MAX_BYTES, (name, len(data))
        paths[name] = out / f"{name}.{name.rsplit('_', 1)[1]}"
        paths[name].write_bytes(data)
    return paths


def status(pid: int) -> dict[str, int]:
    """VmRSS and VmHWM of ``pid`` in MiB."""
    text = Path(f"/proc/{pid}/status").read_text()
    return {k: int(re.search(rf"{k}:\s+(\d+) kB", text).group(1)) // 1024 for k in ("VmRSS", "VmHWM")}  # type: ignore[union-attr]


def reset_peak(pid: int) -> bool:
    try:
        Path(f"/proc/{pid}/clear_refs").write_text("5")  # 5: reset the peak RSS (VmHWM) to the current
        return True
    except OSError:
        return False


class Sampler:
    """Max VmRSS of a process, sampled every 10 ms while in a ``with`` block."""

    def __init__(self, pid: int) -> None:
        self.pid, self.peak, self._stop = pid, 0, threading.Event()

    def _run(self) -> None:
        while not self._stop.is_set():
            self.peak = max(self.peak, status(self.pid)["VmRSS"])
            time.sleep(0.01)

    def __enter__(self) -> Sampler:
        self._th = threading.Thread(target=self._run, daemon=True)
        self._th.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._th.join()


def start_server(lib: Path) -> tuple[subprocess.Popen[str], str]:
    cmd = [sys.executable, "-m", "pixsearch.cli", "serve", "-L", str(lib), "--port", "0"]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    assert proc.stdout is not None
    line = proc.stdout.readline()
    m = re.search(r"http://127\.0\.0\.1:(\d+)/", line)
    if not m:
        proc.kill()
        raise SystemExit(f"server did not start: {line}{proc.stdout.read()}")
    threading.Thread(target=proc.stdout.read, daemon=True).start()  # drain its log
    return proc, f"http://127.0.0.1:{m.group(1)}"


def upload(base: str, path: Path) -> tuple[int, str, float]:
    t = time.perf_counter()
    r = httpx.post(base + "/api/search/image", files={"file": (path.name, path.read_bytes())}, timeout=300)
    took = time.perf_counter() - t
    code = r.json().get("error", {}).get("code", "") if r.status_code >= 400 else ""
    return r.status_code, code, took


def search_ms(base: str, queries: list[str]) -> list[float]:
    lat = []
    with httpx.Client(base_url=base, timeout=120) as c:
        for q in queries:
            t = time.perf_counter()
            assert c.get("/api/search", params={"q": q, "k": 12}).status_code == 200
            lat.append((time.perf_counter() - t) * 1000)
    return lat


def summary(lat: list[float]) -> dict[str, float]:
    return {"n": len(lat), "p50_ms": round(statistics.median(lat), 1), "max_ms": round(max(lat), 1)}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--searches", type=int, default=20)
    args = ap.parse_args()
    texts = [ln.split(",", 1)[1] for ln in (GALLERY / "captions.csv").read_text().splitlines()[1:]]
    queries = texts[: args.searches]
    work = Path(tempfile.mkdtemp(prefix="pixupload-"))
    out: dict[str, Any] = {"env": machine(), "uploads": {}}
    proc = None
    try:
        from pixsearch import Library

        photos = work / "photos"
        photos.mkdir()
        for p in sorted((GALLERY / "images").glob("*.jpg"))[:24]:
            shutil.copy(p, photos / p.name)
        with Library.open(work / "lib") as lib:
            lib.add([photos], captions_csv=GALLERY / "captions.csv")
        files = worst_uploads(work)
        proc, base = start_server(work / "lib")
        search_ms(base, queries[:3])  # warm
        out["server_rss_idle_mib"] = status(proc.pid)["VmRSS"]
        for name, path in files.items():
            before = status(proc.pid)["VmRSS"]
            exact = reset_peak(proc.pid)
            with Sampler(proc.pid) as sampler:
                code, err, took = upload(base, path)
            peak = status(proc.pid)["VmHWM"] if exact else sampler.peak
            out["uploads"][name] = {
                "bytes": path.stat().st_size,
                "status": code,
                "error": err,
                "seconds": round(took, 2),
                "rss_before_mib": before,
                "peak_rss_mib": max(peak, sampler.peak),
                "peak_over_before_mib": max(peak, sampler.peak) - before,
            }
        out["peak_from"] = "VmHWM reset per upload" if exact else "VmRSS sampled every 10 ms"
        out["search_idle"] = summary(search_ms(base, queries))
        costly = max(
            (n for n, u in out["uploads"].items() if u["status"] == 200),
            key=lambda n: out["uploads"][n]["seconds"],
        )
        during: list[float] = []
        done = threading.Event()

        def searches() -> None:
            time.sleep(0.1)  # the upload's body is in and decoding
            while not done.is_set():
                during.extend(search_ms(base, queries[:1]))

        th = threading.Thread(target=searches)
        th.start()
        code, _, took = upload(base, files[costly])
        done.set()
        th.join()
        out["search_while_uploading"] = {
            "upload": costly,
            "upload_seconds": round(took, 2),
            **summary(during),
        }
        out["server_rss_end_mib"] = status(proc.pid)["VmRSS"]
    finally:
        if proc is not None:
            proc.terminate()
            proc.wait(timeout=30)
        shutil.rmtree(work, ignore_errors=True)
    print(json.dumps(out))


if __name__ == "__main__":
    main()
