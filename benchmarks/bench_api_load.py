"""REST API load: text-search QPS and latency at 1, 8 and 32 concurrent clients, idle and while a second
process indexes into the same library. 127.0.0.1 only; bounded in requests and seconds per level.

The library holds ``--n`` photos: the 100 real example-gallery photos (indexed through the Library, so
thumbnails, captions and labels are real) plus synthetic rows (clustered random vectors, real Flickr8k
caption sentences) up to ``--n``, as in bench_search_scale.py. The server is ``pixsearch serve`` in its
own process; clients are threads with one keep-alive HTTP connection each. During the second round a
``pixsearch index`` process adds ``--index-photos`` real photos (Flickr8k when ../shared has it, else
re-encoded gallery copies). Prints one JSON object. Usage:
    nice python benchmarks/bench_api_load.py [--n 10000] [--requests 300] [--seconds 30]
"""

from __future__ import annotations

import argparse
import io
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import httpx
import numpy as np

ROOT = Path(__file__).resolve().parents[1]
GALLERY = ROOT / "examples" / "gallery"
FLICKR = ROOT.parent / "shared" / "data" / "flickr8k" / "images"


def unit(rng: np.random.Generator, n: int, d: int, centers: np.ndarray) -> np.ndarray:
    x = centers[rng.integers(0, len(centers), n)] + 0.7 * rng.normal(size=(n, d)).astype(np.float32)
    return (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)


def build_library(lib_dir: Path, n: int, texts: list[str]) -> dict[str, float]:
    from pixsearch import Library

    t0 = time.perf_counter()
    with Library.open(lib_dir) as lib:
        rep = lib.add([GALLERY / "images"], captions_csv=GALLERY / "captions.csv")
        enc = lib.encoder
    t_real = time.perf_counter() - t0
    rng = np.random.default_rng(0)
    m = n - rep.added
    img_c = rng.normal(size=(200, enc.dim)).astype(np.float32)
    cap_c = rng.normal(size=(200, enc.caption_dim)).astype(np.float32)
    iv, cv = unit(rng, m, enc.dim, img_c), unit(rng, m, enc.caption_dim, cap_c)
    jv = unit(rng, m, enc.dim, img_c) if enc.cross_modal else None
    # Synthetic rows go straight into the catalog; the next open rebuilds the vector indexes from it.
    with Library.open(lib_dir) as lib, lib.catalog.transaction():
        cat = lib.catalog
        for j in range(m):
            i = cat.add_image(f"synthetic{j}", 500, 375, None, iv[j])
            cat.set_path(f"/synthetic/{j}.jpg", i, 1, 1)
            joint = None if jv is None else jv[j]
            cat.add_captions(i, [(f"{texts[j % len(texts)]} #{j}", "human", cv[j], joint)])
        cat.bump_generation()
    with Library.open(lib_dir) as lib:
        lib.search("warm up")  # build and save the ANN indexes once, outside the timed rounds
    total = time.perf_counter() - t0
    return {"index_real_seconds": round(t_real, 1), "fill_synthetic_seconds": round(total - t_real, 1)}


def start_server(lib_dir: Path, log: Path) -> tuple[subprocess.Popen[str], str]:
    cmd = [sys.executable, "-m", "pixsearch.cli", "serve", "-L", str(lib_dir), "--port", "0"]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    assert proc.stdout is not None
    line = proc.stdout.readline()
    m = re.search(r"http://127\.0\.0\.1:(\d+)/", line)
    if not m:
        proc.kill()
        raise SystemExit(f"server did not start: {line}{proc.stdout.read()}")
    out = proc.stdout

    def drain() -> None:  # keep the server's log (tracebacks of any 5xx) for the report
        with open(log, "a") as f:
            for ln in out:
                f.write(ln)

    threading.Thread(target=drain, daemon=True).start()
    base = f"http://127.0.0.1:{m.group(1)}"
    deadline = time.time() + 120
    while time.time() < deadline:  # the models load at startup; wait for the first answer
        try:
            if httpx.get(base + "/api/health", timeout=5).status_code == 200:
                return proc, base
        except httpx.HTTPError:
            time.sleep(0.5)
    proc.kill()
    raise SystemExit("server did not answer within 120 s")


def level(base: str, queries: list[str], clients: int, requests: int, seconds: float) -> dict[str, float]:
    lat: list[float] = []
    errors: list[str] = []
    lock = threading.Lock()
    counter = iter(range(requests))
    stop = time.perf_counter() + seconds

    def client(cid: int) -> None:
        with httpx.Client(base_url=base, timeout=60) as c:
            while time.perf_counter() < stop:
                with lock:
                    i = next(counter, None)
                if i is None:
                    return
                q = queries[(i * 7 + cid) % len(queries)]
                t = time.perf_counter()
                try:
                    r = c.get("/api/search", params={"q": q, "k": 24})
                    ok = r.status_code == 200 and "results" in r.json()
                except httpx.HTTPError as exc:
                    ok, r = False, None
                    errors.append(type(exc).__name__)
                dt = (time.perf_counter() - t) * 1000
                with lock:
                    lat.append(dt)
                    if not ok and r is not None:
                        errors.append(str(r.status_code))

    t0 = time.perf_counter()
    threads = [threading.Thread(target=client, args=(c,)) for c in range(clients)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    wall = time.perf_counter() - t0
    lat.sort()
    return {
        "clients": clients,
        "requests": len(lat),
        "seconds": round(wall, 2),
        "qps": round(len(lat) / wall, 1),
        "p50_ms": round(statistics.median(lat), 1),
        "p99_ms": round(lat[int(0.99 * (len(lat) - 1))], 1),
        "errors": len(errors),
        "error_kinds": sorted(set(errors)),
    }


def photos_to_index(dest: Path, count: int) -> Path:
    dest.mkdir(parents=True, exist_ok=True)
    if FLICKR.is_dir():
        for p in sorted(FLICKR.glob("*.jpg"))[-count:]:
            shutil.copy(p, dest / p.name)
        return dest
    from PIL import Image

    src = sorted((GALLERY / "images").glob("*.jpg"))
    for i in range(count):  # re-encoded copies: new bytes, so they are indexed, not deduplicated
        buf = io.BytesIO()
        Image.open(src[i % len(src)]).convert("RGB").save(buf, "JPEG", quality=60 + i % 30)
        (dest / f"copy{i}.jpg").write_bytes(buf.getvalue())
    return dest


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=10_000)
    ap.add_argument("--clients", default="1,8,32")
    ap.add_argument("--requests", type=int, default=300, help="per level at most")
    ap.add_argument("--seconds", type=float, default=30, help="per level at most")
    ap.add_argument("--index-photos", type=int, default=400)
    ap.add_argument("--server-log", type=Path, default=Path(tempfile.gettempdir()) / "pixsearch-api-load.log")
    args = ap.parse_args()
    levels = [int(c) for c in args.clients.split(",")]

    texts = [ln.split(",", 1)[1] for ln in (GALLERY / "captions.csv").read_text().splitlines()[1:]]
    work = Path(tempfile.mkdtemp(prefix="pixapi-"))
    lib_dir = work / "lib"
    # Other work on the machine skews every figure: say how busy it was.
    out: dict[str, object] = {"images": args.n, "cpu_count": os.cpu_count(), "loadavg_start": os.getloadavg()}
    proc = None
    indexer = None
    try:
        out["build"] = build_library(lib_dir, args.n, texts)
        args.server_log.write_text("")
        proc, base = start_server(lib_dir, args.server_log)
        out["server_log"] = str(args.server_log)
        rng = np.random.default_rng(1)
        queries = [texts[i] for i in rng.integers(0, len(texts), 200)]
        for q in queries[:5]:  # warm: models, indexes, caches
            httpx.get(base + "/api/search", params={"q": q}, timeout=60)
        out["idle"] = [level(base, queries, c, args.requests, args.seconds) for c in levels]

        new = photos_to_index(work / "incoming", args.index_photos)
        cmd = [sys.executable, "-m", "pixsearch.cli", "index", str(new), "-L", str(lib_dir), "--json"]
        t0 = time.perf_counter()
        indexer = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        time.sleep(3)  # let it load its models and start committing batches
        out["while_indexing"] = [level(base, queries, c, args.requests, args.seconds) for c in levels]
        out["indexer_running_at_end_of_load"] = indexer.poll() is None
        stdout, stderr = indexer.communicate(timeout=1800)
        rep = json.loads(stdout) if stdout.strip().startswith("{") else {"error": stderr[-500:]}
        out["indexer"] = {
            "exit": indexer.returncode,
            "added": rep.get("added"),
            "failed": len(rep.get("failed", [])),
            "seconds": round(time.perf_counter() - t0, 1),
        }
        after = httpx.get(base + "/api/stats", timeout=60).json()
        out["images_after"] = after.get("images")
        out["loadavg_end"] = os.getloadavg()
    finally:
        if indexer is not None and indexer.poll() is None:
            indexer.kill()
        if proc is not None:
            proc.terminate()
            proc.wait(timeout=30)
        shutil.rmtree(work, ignore_errors=True)
    print(json.dumps(out))


if __name__ == "__main__":
    main()
