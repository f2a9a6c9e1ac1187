"""REST API load: text-search QPS and latency at 1, 8 and 32 concurrent clients, idle and while a second
process indexes into the same library. 127.0.0.1 only; bounded in requests and seconds per level.

The library holds ``--n`` photos: the 100 real example-gallery photos (indexed through the Library, so
thumbnails, captions and labels are real) plus synthetic rows (clustered random vectors, real Flickr8k
caption sentences, no pixels) up to ``--n``, as in bench_search_scale.py: at the default 10,000, 9,900
of the photos searched are synthetic (the output says how many: ``real_images``, ``synthetic_images``).
The server is ``pixsearch serve`` in its own process; clients are threads with one keep-alive HTTP
connection each. During the second round a ``pixsearch index`` process adds ``--index-photos`` real
photos (Flickr8k when ../shared has it, else re-encoded gallery copies).

"0 errors while a second process indexes" is only a claim when the indexer really ran, and committed,
while the requests were served: ``overlap`` reports the indexer's lifetime against each load level's
window (seconds of overlap, whether it covered the whole level), the requests sent and the errors seen
while it ran, and the catalog's image count sampled during the round (photos committed while clients
searched, per level). ``claim_holds`` is true only when no request failed, the indexer's lifetime
covered every level of the round, and it committed photos during each level (a writer starved of CPU by
32 clients is alive but writes nothing). Prints one JSON object. Usage:
    nice python benchmarks/bench_api_load.py [--n 10000] [--requests 300] [--seconds 30] [--readers N]

Each level also reports the server's CPU time per request (``server_cpu_ms_per_request``, all its
processes) and its memory while it ran, summed over the server process and its reader
processes (``api/worker.py``): the peak resident set (``rss_mb``: shared pages counted once per process)
and the peak proportional set (``pss_mb``: shared pages split between them, what they really cost), so
that "memory stays bounded however many clients" can be read off 1, 8 and 32 clients.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import re
import shutil
import sqlite3
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

ROOT = Path(__file__).resolve().parents[1]
GALLERY = ROOT / "examples" / "gallery"
FLICKR = ROOT.parent / "shared" / "data" / "flickr8k" / "images"


def unit(rng: np.random.Generator, n: int, d: int, centers: np.ndarray) -> np.ndarray:
    x = centers[rng.integers(0, len(centers), n)] + 0.7 * rng.normal(size=(n, d)).astype(np.float32)
    return (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)


def build_library(lib_dir: Path, n: int, texts: list[str]) -> dict[str, float | int]:
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
    return {
        "real_images": rep.added,
        "synthetic_images": m,
        "index_real_seconds": round(t_real, 1),
        "fill_synthetic_seconds": round(total - t_real, 1),
    }


def start_server(lib_dir: Path, log: Path, readers: int | None) -> tuple[subprocess.Popen[str], str]:
    cmd = [sys.executable, "-m", "pixsearch.cli", "serve", "-L", str(lib_dir), "--port", "0"]
    if readers is not None:  # else the server's default (one reader per core)
        cmd += ["--readers", str(readers)]
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


def _tree(pid: int) -> list[int]:
    """``pid`` and its descendants (Linux /proc)."""
    parents: dict[int, list[int]] = {}
    for d in Path("/proc").iterdir():
        if d.name.isdigit():
            try:
                ppid = int((d / "stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, ValueError, IndexError):
                continue
            parents.setdefault(ppid, []).append(int(d.name))
    out, todo = [], [pid]
    while todo:
        p = todo.pop()
        out.append(p)
        todo += parents.get(p, [])
    return out


def memory_mb(pid: int) -> dict[str, float]:
    """Resident and proportional set sizes (MB) summed over the process tree at ``pid``."""
    rss = pss = 0
    for p in _tree(pid):
        try:
            for ln in Path(f"/proc/{p}/smaps_rollup").read_text().splitlines():
                if ln.startswith("Rss:"):
                    rss += int(ln.split()[1])
                elif ln.startswith("Pss:"):
                    pss += int(ln.split()[1])
        except (OSError, ValueError):
            continue
    return {"rss_mb": round(rss / 1024, 1), "pss_mb": round(pss / 1024, 1), "processes": len(_tree(pid))}


def _tree_cpu(pid: int) -> float:
    """CPU seconds used so far by the process tree at ``pid`` (live processes only). Per request, it does
    not depend on how busy the machine is: a figure to compare where QPS on a loaded machine is noise."""
    return sum(_cpu_seconds(p) or 0.0 for p in _tree(pid))


class _Memory(threading.Thread):
    """Peak memory of the server's process tree while a level runs (sampled every 0.5 s)."""

    def __init__(self, pid: int) -> None:
        super().__init__(daemon=True)
        self.pid, self.peak = pid, memory_mb(pid)
        self._halt = threading.Event()

    def run(self) -> None:
        while not self._halt.wait(0.5):
            now = memory_mb(self.pid)
            self.peak = {k: max(v, now[k]) for k, v in self.peak.items()}

    def done(self) -> dict[str, float]:
        self._halt.set()
        self.join()
        return self.peak


def level(
    base: str,
    queries: list[str],
    clients: int,
    requests: int,
    seconds: float,
    record: list[tuple[float, bool]] | None = None,
    server_pid: int | None = None,
) -> dict[str, Any]:
    """One load level; ``record`` (if given) gets (send time, ok) per request, perf_counter clock; with
    ``server_pid``, the server's peak memory during the level."""
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
                    if record is not None:
                        record.append((t, ok))

    mem = _Memory(server_pid) if server_pid is not None else None
    if mem is not None:
        mem.start()
    cpu0 = _tree_cpu(server_pid) if server_pid is not None else None
    t0 = time.perf_counter()
    threads = [threading.Thread(target=client, args=(c,)) for c in range(clients)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    t1 = time.perf_counter()
    memory = mem.done() if mem is not None else None
    cpu1 = _tree_cpu(server_pid) if server_pid is not None else None
    wall = t1 - t0
    lat.sort()
    return {
        "window": (t0, t1),  # perf_counter times; main() turns them into seconds after the indexer started
        "clients": clients,
        "requests": len(lat),
        "seconds": round(wall, 2),
        "qps": round(len(lat) / wall, 1),
        "p50_ms": round(statistics.median(lat), 1),
        "p99_ms": round(lat[int(0.99 * (len(lat) - 1))], 1),
        "errors": len(errors),
        "error_kinds": sorted(set(errors)),
        **({"memory": memory} if memory is not None else {}),
        **(
            {"server_cpu_ms_per_request": round((cpu1 - cpu0) * 1000 / max(1, len(lat)), 1)}
            if cpu0 is not None and cpu1 is not None
            else {}
        ),
    }


def _images(lib_dir: Path) -> int:
    db = sqlite3.connect(lib_dir / "catalog.db", timeout=30)
    try:
        return int(db.execute("SELECT COUNT(*) FROM images").fetchone()[0])
    finally:
        db.close()


def _cpu_seconds(pid: int) -> float | None:
    """User + system CPU seconds of a live process (Linux /proc), None elsewhere or once it is gone."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, IndexError):
        return None


class _Watch(threading.Thread):
    """Samples (time, catalog image count, indexer CPU seconds) every 0.2 s while the indexer process
    lives; records its exit time. Reads the catalog directly (one statement: a WAL snapshot), not through
    the server under test. The CPU seconds tell a starved writer (alive, no CPU) from a working one."""

    def __init__(self, proc: subprocess.Popen[str], lib_dir: Path, t0: float) -> None:
        super().__init__(daemon=True)
        self.proc, self.lib_dir, self.t0 = proc, lib_dir, t0
        self.samples: list[tuple[float, int, float | None]] = []
        self.exited_at: float | None = None
        self._first = threading.Event()

    def run(self) -> None:
        start = _images(self.lib_dir)
        while self.proc.poll() is None:
            n = _images(self.lib_dir)
            self.samples.append((time.perf_counter(), n, _cpu_seconds(self.proc.pid)))
            if n > start:
                self._first.set()
            time.sleep(0.2)
        self.exited_at = time.perf_counter()
        last_cpu = next((c for _, _, c in reversed(self.samples) if c is not None), None)
        self.samples.append((self.exited_at, _images(self.lib_dir), last_cpu))
        self._first.set()

    def wait_for_first_commit(self, timeout: float) -> None:
        self._first.wait(timeout)

    def _at(self, t: float) -> tuple[float, int, float | None]:
        """The last sample at or before ``t``."""
        got = self.samples[0] if self.samples else (t, 0, None)
        for smp in self.samples:
            if smp[0] > t:
                break
            got = smp
        return got

    def count_at(self, t: float) -> int:
        return self._at(t)[1]

    def cpu_between(self, a: float, b: float) -> float | None:
        ca, cb = self._at(a)[2], self._at(b)[2]
        return None if ca is None or cb is None else round(cb - ca, 2)


def overlap(
    rounds: list[dict], sent: list[tuple[float, bool]], watch: _Watch, t0: float
) -> dict[str, object]:
    """How much of the load ran while the indexer process was alive, and what it committed meanwhile."""
    end = watch.exited_at if watch.exited_at is not None else time.perf_counter()
    per_level = []
    for lv in rounds:
        a, b = lv.pop("window")
        ov = max(0.0, min(b, end) - max(a, t0))
        per_level.append(
            {
                "clients": lv["clients"],
                "load_s": round(b - a, 2),
                "overlap_s": round(ov, 2),
                "covered": a >= t0 and b <= end,
                "images_committed_during": watch.count_at(b) - watch.count_at(a),
                "indexer_cpu_s_during": watch.cpu_between(a, b),
            }
        )
    during = [ok for t, ok in sent if t0 <= t <= end]
    starts = [t for t, _ in sent]
    load_start = min(starts) if starts else t0
    load_end = max(starts) if starts else t0
    committed = watch.count_at(load_end) - watch.count_at(load_start)
    ran_throughout = all(p["covered"] for p in per_level)
    errors_during = sum(not ok for ok in during)
    committing = [p["clients"] for p in per_level if p["images_committed_during"] > 0]
    return {
        "indexer_lived_s": round(end - t0, 2),
        "load_started_after_indexer_s": round(load_start - t0, 2),
        "load_ended_before_indexer_exit_s": round(end - load_end, 2),
        "per_level": per_level,
        "indexer_ran_throughout": ran_throughout,
        "requests_while_indexer_ran": len(during),
        "requests_after_indexer_exit": sum(t > end for t in starts),
        "errors_while_indexer_ran": errors_during,
        "images_committed_during_load": committed,
        # alive is not enough: a writer starved of CPU by the load commits nothing, and then the level
        # did not read while a second process wrote
        "levels_with_commits": committing,
        "claim_holds": ran_throughout and errors_during == 0 and len(committing) == len(per_level),
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
    ap.add_argument("--index-photos", type=int, default=3000)  # 400 were done before 8 clients began
    ap.add_argument("--server-log", type=Path, default=Path(tempfile.gettempdir()) / "pixsearch-api-load.log")
    ap.add_argument("--readers", type=int, default=None, help="serve --readers (default: the server's)")
    ap.add_argument("--idle-only", action="store_true", help="skip the round while a second process indexes")
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
        b = build_library(lib_dir, args.n, texts)
        out["build"] = b
        out["synthetic"] = (
            f"{b['synthetic_images']} of the {args.n} photos are synthetic rows (random clustered vectors, "
            f"real caption sentences, no pixels); {b['real_images']} are real gallery photos"
        )
        args.server_log.write_text("")
        proc, base = start_server(lib_dir, args.server_log, args.readers)
        out["server_log"] = str(args.server_log)
        from pixsearch.api.worker import default_readers

        out["readers"] = args.readers or default_readers()  # what the server runs with
        out["memory_after_start"] = memory_mb(proc.pid)
        rng = np.random.default_rng(1)
        queries = [texts[i] for i in rng.integers(0, len(texts), 200)]
        for q in queries[:5]:  # warm: models, indexes, caches
            httpx.get(base + "/api/search", params={"q": q}, timeout=60)
        idle = [level(base, queries, c, args.requests, args.seconds, server_pid=proc.pid) for c in levels]
        for lv in idle:
            lv.pop("window")
        out["idle"] = idle
        if len(idle) > 1 and idle[0]["qps"]:
            out["qps_vs_one_client"] = {
                str(lv["clients"]): round(lv["qps"] / idle[0]["qps"], 2) for lv in idle
            }
        if not args.idle_only:  # the same levels while a second process indexes
            new = photos_to_index(work / "incoming", args.index_photos)
            cmd = [sys.executable, "-m", "pixsearch.cli", "index", str(new), "-L", str(lib_dir), "--json"]
            before = _images(lib_dir)
            t0 = time.perf_counter()
            indexer = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
            watch = _Watch(indexer, lib_dir, t0)
            watch.start()
            watch.wait_for_first_commit(timeout=120)  # models loaded, batches landing: start the load now
            sent: list[tuple[float, bool]] = []
            rounds = [
                level(base, queries, c, args.requests, args.seconds, record=sent, server_pid=proc.pid)
                for c in levels
            ]
            stdout, stderr = indexer.communicate(timeout=1800)
            watch.join()
            rep = json.loads(stdout) if stdout.strip().startswith("{") else {"error": stderr[-500:]}
            out["indexer"] = {
                "exit": indexer.returncode,
                "added": rep.get("added"),
                "failed": len(rep.get("failed", [])),
                "seconds": round(time.perf_counter() - t0, 1),
                "images_before": before,
            }
            ov = overlap(rounds, sent, watch, t0)
            out["overlap"] = ov
            out["while_indexing"] = rounds
            out["indexer_running_at_end_of_load"] = ov["indexer_ran_throughout"]
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
