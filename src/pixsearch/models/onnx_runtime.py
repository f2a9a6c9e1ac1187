"""ONNX Runtime sessions for shipped models: hash-verified, lazy, one per file per process.

Why here and not torch: the same EfficientNet-Lite0 runs ~4x faster per image on ONNX Runtime's CPU
provider than on torch on our 2-core target, and ``onnxruntime`` is a ~60 MB dependency where torch is
700 MB+. This module imports ``onnxruntime`` only when a session is first needed, never ``onnx`` or torch.

Bad input is a one-line :class:`ModelError` naming the fix: onnxruntime missing or too old, a file whose
sha256 differs from its model card, a corrupt or truncated file, an unusable ``PIXSEARCH_THREADS``.
"""

from __future__ import annotations

import hashlib
import mmap
import os
import threading
from collections.abc import Callable
from concurrent.futures import Future
from functools import lru_cache
from pathlib import Path
from typing import Any, TypeVar

import numpy as np

from pixsearch.errors import ConfigError, ModelError

__all__ = [
    "MIN_ORT",
    "OnnxModel",
    "beside",
    "file_sha256",
    "intra_op_threads",
    "onnx_session",
    "set_threads",
]

T = TypeVar("T")

MIN_ORT = (1, 17)
_threads: int | None = None
_lock = threading.Lock()


def set_threads(n: int | None) -> None:
    """Intra-op threads for sessions built from now on (``Settings.threads``; None: env or all cores)."""
    global _threads
    if n is not None and n < 1:
        raise ConfigError(f"threads must be >= 1, got {n}")
    _threads = n


def intra_op_threads(env: dict[str, str] | None = None) -> int:
    """Configured threads, else ``PIXSEARCH_THREADS``, else every core."""
    if _threads is not None:
        return _threads
    raw = (os.environ if env is None else env).get("PIXSEARCH_THREADS", "").strip()
    cores = os.cpu_count() or 1
    if not raw:
        return cores
    try:
        n = int(raw)
    except ValueError:
        n = 0
    if n < 1:
        raise ConfigError(f"PIXSEARCH_THREADS must be a whole number >= 1 (unset: all cores), got {raw!r}")
    return n


def _ort() -> Any:
    try:
        import onnxruntime as ort
    except ImportError as exc:
        raise ModelError(
            f"onnxruntime is not installed: pip install 'onnxruntime>={'.'.join(map(str, MIN_ORT))}'"
        ) from exc
    try:
        have = tuple(int(x) for x in ort.__version__.split(".")[:2])
    except ValueError:
        have = MIN_ORT
    if have < MIN_ORT:
        want = ".".join(map(str, MIN_ORT))
        raise ModelError(f"onnxruntime {ort.__version__} is too old: pip install -U 'onnxruntime>={want}'")
    return ort


_FIX = "reinstall pixsearch or re-run `pixsearch train export`"
_REINSTALL = (
    "reinstall pixsearch (pip install --force-reinstall pixsearch) or re-run `pixsearch train export`"
)


def beside(fn: Callable[[], T]) -> Future[T]:
    """Start ``fn()`` on a daemon thread; return once it runs. Its result (or exception) is the future's.

    For work that releases the GIL (hashing a mapped file: ``file_sha256``) done while the caller builds
    an ONNX Runtime session, which holds the GIL throughout (~130 ms for the text graph): the worker is
    running before the caller goes on, so it is inside its C code first and runs on the other core; a
    worker started any later would wait for the session. Only such work gains: ``tokenizers``' loader,
    for one, keeps the GIL (measured: the caller waits the whole ~20 ms).
    """
    fut: Future[T] = Future()
    started = threading.Event()

    def run() -> None:
        started.set()
        try:
            fut.set_result(fn())
        except BaseException as exc:  # handed to whoever waits on the future
            fut.set_exception(exc)

    threading.Thread(target=run, name="pixsearch-beside", daemon=True).start()
    started.wait()
    return fut


def file_sha256(path: Path) -> str:
    """Hex sha256 of a file, read through a memory map: one C call that releases the GIL throughout."""
    with open(path, "rb") as f:
        if os.fstat(f.fileno()).st_size == 0:
            return hashlib.sha256(b"").hexdigest()
        with mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ) as m:
            return hashlib.sha256(m).hexdigest()


@lru_cache(maxsize=8)
def onnx_session(path: Path, sha256: str) -> Any:
    """The process's one session for ``path``, built on first use. It is handed out only if the file's
    sha256 is the card's; the hash is taken while ONNX Runtime loads the file (``beside``): the check
    guards against damaged files, and whoever can swap a model file can swap the code that checks it,
    so loading before the verdict opens nothing new."""
    ort = _ort()
    digest = beside(lambda: file_sha256(path))
    so = ort.SessionOptions()
    so.intra_op_num_threads = intra_op_threads()
    so.inter_op_num_threads = 1
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    # No spin-waiting: on 2 shared cores the spinning worker steals the core the decode threads need
    # (measured: 15 -> 11-12 CPU ms per image, wall no worse).
    so.add_session_config_entry("session.intra_op.allow_spinning", "0")
    so.log_severity_level = 3
    sess: Any = None
    error: Exception | None = None
    try:  # from the path, not from bytes read here: ~45 ms less (no 47 MB copy into ONNX Runtime)
        sess = ort.InferenceSession(str(path), so, providers=["CPUExecutionProvider"])
    except Exception as exc:  # onnxruntime's own Fail/InvalidGraph/InvalidProtobuf/NoSuchFile types
        error = exc
    try:
        got = digest.result()
    except OSError as exc:
        raise ModelError(f"cannot read model file {path} ({exc.strerror or exc}): {_REINSTALL}") from exc
    if got != sha256:  # a damaged file: say so, whatever ONNX Runtime made of it
        raise ModelError(
            f"{path.name} does not match the sha256 in its model card (changed/truncated): {_REINSTALL}"
        )
    if error is not None:
        first = str(error).strip().splitlines()[0][:200] if str(error).strip() else type(error).__name__
        raise ModelError(f"{path.name} is not a usable ONNX model ({first}): {_FIX}") from error
    return sess


class OnnxModel:
    """One ONNX file of a model card (``{"file", "sha256"}``), session built lazily."""

    def __init__(self, weights_dir: Path, entry: dict) -> None:
        try:
            self.path = weights_dir / str(entry["file"])
            self.sha256 = str(entry["sha256"])
        except (KeyError, TypeError) as exc:
            raise ModelError(f"model card in {weights_dir} has a malformed onnx entry: {entry!r}") from exc
        if not self.path.is_file():
            raise ModelError(f"model file missing: {self.path}: {_FIX}")

    @property
    def session(self) -> Any:
        with _lock:
            return onnx_session(self.path, self.sha256)

    def run(self, feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        sess = self.session
        names = [o.name for o in sess.get_outputs()]
        return dict(zip(names, sess.run(names, feeds), strict=True))

    def run_chunked(self, chunk: int, feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        """``run`` over ``chunk`` rows of every input at a time, outputs joined (batch-first graphs)."""
        n = len(next(iter(feeds.values())))
        if n <= chunk:
            return self.run(feeds)
        parts = [self.run({k: v[s : s + chunk] for k, v in feeds.items()}) for s in range(0, n, chunk)]
        return {k: np.concatenate([p[k] for p in parts]) for k in parts[0]}
