"""ONNX Runtime sessions for shipped models: hash-verified, lazy, one per file per process.

Why here and not torch: the same EfficientNet-Lite0 runs ~4x faster per image on ONNX Runtime's CPU
provider than on torch on our 2-core target, and ``onnxruntime`` is a ~60 MB dependency where torch is
700 MB+. This module imports ``onnxruntime`` only when a session is first needed, never ``onnx`` or torch.

Bad input is a one-line :class:`ModelError` naming the fix: onnxruntime missing or too old, a file whose
sha256 differs from its model card, a corrupt or truncated file, an unusable ``PIXSEARCH_THREADS``.
"""

from __future__ import annotations

import hashlib
import os
import threading
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import ConfigError, ModelError

__all__ = ["MIN_ORT", "OnnxModel", "intra_op_threads", "onnx_session", "preload", "set_threads"]

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


def preload() -> None:
    """Import onnxruntime now if it is installed (errors are reported later, when a session is built).

    Why: in one process, ``import onnxruntime`` after ``usearch.compiled`` (or another extension linked
    against the system libstdc++) dies with SIGSEGV inside libstdc++'s codecvt; the other order works.
    ``pixsearch/__init__`` calls this first, so every entry point loads them in the safe order.
    """
    import importlib.util

    if importlib.util.find_spec("onnxruntime") is not None:
        try:
            import onnxruntime  # noqa: F401
        except ImportError:
            pass


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


def verified_bytes(path: Path, sha256: str) -> bytes:
    """``path``'s bytes if their sha256 is the card's, else a one-line ModelError."""
    fix = "reinstall pixsearch (pip install --force-reinstall pixsearch) or re-run `pixsearch train export`"
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise ModelError(f"cannot read model file {path} ({exc.strerror or exc}): {fix}") from exc
    if hashlib.sha256(data).hexdigest() != sha256:
        raise ModelError(
            f"{path.name} does not match the sha256 in its model card (changed/truncated): {fix}"
        )
    return data


@lru_cache(maxsize=8)
def onnx_session(path: Path, sha256: str) -> Any:
    """The process's one session for ``path``, built on first use (after its hash is checked)."""
    ort = _ort()
    data = verified_bytes(path, sha256)
    so = ort.SessionOptions()
    so.intra_op_num_threads = intra_op_threads()
    so.inter_op_num_threads = 1
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    # No spin-waiting: on 2 shared cores the spinning worker steals the core the decode threads need
    # (measured: 15 -> 11-12 CPU ms per image, wall no worse).
    so.add_session_config_entry("session.intra_op.allow_spinning", "0")
    so.log_severity_level = 3
    try:
        sess = ort.InferenceSession(data, so, providers=["CPUExecutionProvider"])
    except Exception as exc:  # onnxruntime raises its own Fail/InvalidGraph/InvalidProtobuf types
        first = str(exc).strip().splitlines()[0][:200] if str(exc).strip() else type(exc).__name__
        raise ModelError(f"{path.name} is not a usable ONNX model ({first}): {_FIX}") from exc
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
