"""The library's ANN indexes, kept as a derived cache of the vectors stored in the catalog.

Write order makes crashes harmless: vectors are committed to SQLite first (bumping ``vectors_gen``), the
index files are saved afterwards with that generation in a sidecar JSON. A kill -9 between the two leaves
an index that is behind; on the next open the stamps disagree and the index is repaired by diffing keys
against the catalog (ids are never reused for other content, so a key present in both is correct).
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .catalog import Catalog
from .vectors import VectorIndex, create_index, load_index

__all__ = ["IndexSpec", "VectorSet"]


@dataclass(frozen=True)
class IndexSpec:
    name: str  # file stem: images / captions / caption_joint
    dim: int


class VectorSet:
    """Lazily loaded, self-repairing indexes over one catalog."""

    def __init__(
        self,
        root: Path,
        catalog: Catalog,
        specs: list[IndexSpec],
        fingerprint: str,
        backend: str = "usearch",
        dtype: str = "f16",
    ) -> None:
        self.root = root
        self.catalog = catalog
        self.specs = {s.name: s for s in specs}
        self.fingerprint = fingerprint
        self.backend = backend
        self.dtype = dtype
        self._open: dict[str, VectorIndex] = {}
        self.repaired: list[str] = []

    def _file(self, name: str) -> Path:
        return self.root / f"{name}.{self.backend}"

    def _sidecar(self, name: str) -> Path:
        return self.root / f"{name}.{self.backend}.json"

    def _catalog_keys(self, name: str) -> np.ndarray:
        if name == "images":
            return self.catalog.image_ids()
        return self.catalog.caption_ids("joint" if name == "caption_joint" else "embedding")

    def _catalog_vectors(self, name: str, ids: list[int] | None) -> tuple[np.ndarray, np.ndarray]:
        dim = self.specs[name].dim
        if name == "images":
            return self.catalog.image_vectors(dim, ids)
        return self.catalog.caption_vectors(dim, ids, "joint" if name == "caption_joint" else "embedding")

    def get(self, name: str) -> VectorIndex:
        if name in self._open:
            return self._open[name]
        spec = self.specs[name]
        gen = self.catalog.get_meta("vectors_gen") or "0"
        side = self._sidecar(name)
        meta = json.loads(side.read_text()) if side.is_file() else {}
        fresh = meta.get("generation") == gen and meta.get("fingerprint") == self.fingerprint
        idx = None
        if meta.get("fingerprint") == self.fingerprint and self._file(name).is_file():
            try:
                idx = load_index(self.backend, self._file(name), spec.dim, self.dtype)
            except Exception:  # a torn or corrupt derived file: rebuild it from the catalog
                idx = None
        if idx is None:
            idx = create_index(self.backend, spec.dim, self.dtype)
            fresh = False
        self._open[name] = idx
        if not fresh:
            self._repair(name, idx)
            self.save(name)
            self.repaired.append(name)
        return idx

    def _repair(self, name: str, idx: VectorIndex) -> None:
        want = self._catalog_keys(name)
        have = idx.keys() if len(idx) else np.zeros(0, dtype=np.int64)
        extra = np.setdiff1d(have, want)
        if len(extra):
            idx.remove(extra)
        missing = np.setdiff1d(want, have)
        for s in range(0, len(missing), 4096):
            keys, vecs = self._catalog_vectors(name, missing[s : s + 4096].tolist())
            if len(keys):
                idx.add(keys, vecs)

    def add(self, name: str, keys: list[int], vectors: np.ndarray) -> None:
        if keys:
            self.get(name).add(np.asarray(keys, dtype=np.int64), np.asarray(vectors, dtype=np.float32))

    def remove(self, name: str, keys: list[int]) -> None:
        if keys:
            self.get(name).remove(np.asarray(keys, dtype=np.int64))

    def forget(self, image_ids: list[int], caption_ids: list[int]) -> None:
        """Drop deleted images and captions from every index that holds them."""
        self.remove("images", image_ids)
        for n in ("captions", "caption_joint"):
            if n in self.specs:
                self.remove(n, caption_ids)

    def save(self, name: str | None = None) -> None:
        """Persist open indexes, stamped with the catalog generation they now reflect."""
        gen = self.catalog.get_meta("vectors_gen") or "0"
        for n in [name] if name else list(self._open):
            idx = self._open[n]
            idx.save(self._file(n))
            tmp = self._sidecar(n).with_suffix(".tmp")
            tmp.write_text(
                json.dumps({"generation": gen, "fingerprint": self.fingerprint, "count": len(idx)})
            )
            os.replace(tmp, self._sidecar(n))

    def consistent(self) -> dict[str, bool]:
        """For ``doctor``: does each index hold exactly the catalog's keys?"""
        out = {}
        for n in self.specs:
            idx = self.get(n)
            out[n] = bool(np.array_equal(np.sort(idx.keys()), np.sort(self._catalog_keys(n))))
        return out
