"""Indexing: walk paths, skip what is unchanged, encode what is new, commit in batches.

Incremental (size + mtime first, then content hash), deduplicating (same bytes under two paths are one
image), resumable (each batch is one transaction; an interrupted run loses at most the batch in flight)
and forgiving (a bad file is reported with its reason and the rest goes on).
"""

from __future__ import annotations

import random
import time
from collections.abc import Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from pixsearch.config import Settings
from pixsearch.errors import MediaError, StorageError
from pixsearch.indexing.captions_csv import match_captions
from pixsearch.indexing.engine import Decoded, EncodeJob, Engine, LocalEngine, decode
from pixsearch.indexing.enrichers.base import Enricher
from pixsearch.indexing.enrichers.captions import human_caption_rows
from pixsearch.indexing.redo import redo_stale
from pixsearch.indexing.report import IndexReport, Progress
from pixsearch.indexing.scan import check_prune_roots, scan, vanished
from pixsearch.models.encoder import JointEncoder
from pixsearch.storage.catalog import Catalog
from pixsearch.storage.vectorset import VectorSet

__all__ = ["Indexer"]


@dataclass
class _Item:
    path: Path
    size: int
    mtime_ns: int
    digest: str = ""


class Indexer:
    def __init__(
        self,
        catalog: Catalog,
        vectors: VectorSet,
        encoder: JointEncoder,
        batch_size: int = 32,
        enrichers: Sequence[Enricher] = (),
        engine: Engine | None = None,
        settings: Settings | None = None,
    ) -> None:
        self.catalog = catalog
        self.vectors = vectors
        self.encoder = encoder
        self.batch_size = batch_size
        self.enrichers = list(enrichers)
        # Locally, enrichers but captions (only photos without human ones get one) run beside the encoder
        ahead = tuple(e for e in self.enrichers if e.name != "captions")
        self.engine: Engine = engine or LocalEngine(encoder, batch_size, ahead, catalog.image_id_for_hash)
        self.settings = settings  # how an engine's workers build the same enrichers as ours
        self._pending_caps: list = []

    def caption_rows(self, texts: list[str]) -> list[tuple[str, str, np.ndarray, np.ndarray | None]]:
        return human_caption_rows(self.encoder, texts)

    def _add_captions(self, image_id: int, rows: list, report: IndexReport) -> None:
        new = self.catalog.add_captions(image_id, rows)
        report.captions_added += len(new)
        self._pending_caps.append(new)

    def run(
        self,
        roots: list[Path],
        captions: dict[str, list[str]] | None = None,
        sample: int | None = None,
        seed: int = 0,
        prune: bool = False,
        progress: Progress | None = None,
        *,
        force: bool = False,
        captions_base: Path | None = None,
        follow_links: bool = False,
    ) -> IndexReport:
        """Index ``roots``. ``captions`` maps CSV keys (relative paths or file names, resolved against
        ``captions_base`` and the roots) to texts. ``prune`` forgets vanished files under the roots, but
        refuses a root that is missing or holds no photo while the library has some under it (an
        unmounted disk must not wipe a library) unless ``force``. ``follow_links``: also index what
        symbolic links below a root point to outside it (``scan``)."""
        report = IndexReport()
        files = scan(roots, report, follow_links)
        if prune and not force:
            check_prune_roots(self.catalog, roots, files)
        self._record_roots(roots, files)
        if sample is not None and sample < len(files):
            files = sorted(random.Random(seed).sample(files, sample))
        if captions:
            bases = [captions_base] if captions_base else []
            bases += [r.expanduser().absolute() for r in roots if r.is_dir()]
            names = {str(p) for p in files} | set(self.catalog.all_paths())
            captions, warns = match_captions(captions, names, bases)
            report.warnings += warns
        todo: list[_Item] = []
        for p in files:
            try:
                st = p.stat()
                row = self.catalog.get_path(str(p))
            except (OSError, ValueError) as exc:  # one odd name is reported; the run goes on
                why = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
                report.failed.append((str(p), f"cannot stat: {why}"))
                continue
            if row is not None and row.size == st.st_size and row.mtime_ns == st.st_mtime_ns:
                report.unchanged += 1
            else:
                todo.append(_Item(p, st.st_size, st.st_mtime_ns))
        done = report.unchanged
        total = len(files)
        if progress:
            progress(done, total)
        by_path = {str(it.path): it for it in todo}
        enrichers = tuple((e.name, e.fingerprint) for e in self.enrichers)
        job = EncodeJob(self.encoder.name, self.settings, enrichers)
        pool = ThreadPoolExecutor(max_workers=2)  # decodes photos that enrichers redo
        stream = self.engine.encode(job, list(by_path))
        failed = True
        try:
            for enc in stream:  # the engine reads (and maybe encodes); this process is the one writer
                part = [by_path[p] for p in enc.paths]
                decoded = [enc.decoded[str(it.path)] for it in part]
                self._batch(part, decoded, enc.digests, captions or {}, report, enc.features)
                for k, v in enc.timings.items():  # the engine's own stages (decode, encode, prepare)
                    report.timings[k] = report.timings.get(k, 0.0) + v
                done += len(part)
                if progress:
                    progress(done, total)
            if prune:
                self._prune(roots, report)
            if captions:
                self._attach_captions(captions, report)
            if self.enrichers:
                redo_stale(self, report, pool)
            failed = False
        except KeyboardInterrupt:
            report.interrupted = True
            failed = False
        finally:
            stream.close()  # an engine stops its work (threads, a Ray it started) here
            pool.shutdown(wait=True, cancel_futures=True)
            try:
                t_save = time.perf_counter()
                self.vectors.save()
                report.timings["vectors"] = report.timings.get("vectors", 0.0) + time.perf_counter() - t_save
            except StorageError:
                if not failed:
                    raise
                # The run is failing already (a full disk, most likely): that error is the one to tell.
                # The index files stay stamped older than the catalog, so the next open repairs them.
        return report

    def _record_roots(self, roots: list[Path], files: list[Path]) -> None:
        """Remember the folders indexed (a file given alone: its folder), for paths shown relative to
        them (the REST API); a folder already under a recorded root adds nothing."""
        known = set(self.catalog.roots().values())
        new: list[str] = []
        found = set(files)
        for r in roots:
            r = r.expanduser().absolute()
            folder = r if r.is_dir() else r.parent if r in found else None
            if folder is None or any(str(f) in known for f in (folder, *folder.parents)):
                continue
            known.add(str(folder))
            new.append(str(folder))
        if new:
            with self.catalog.transaction():
                for f in new:
                    self.catalog.add_root(f)

    def _decode(self, item: _Item) -> Decoded:
        item.digest, res = decode(self.encoder, item.path)
        return res

    def _batch(
        self,
        batch: list[_Item],
        decoded: list[Future[Decoded]],
        digests: Mapping[str, str],
        captions: dict[str, list[str]],
        report: IndexReport,
        pre: Mapping[str, Mapping[str, np.ndarray]] | None = None,
    ) -> None:
        """Commit one batch; ``pre`` holds features an engine already computed (path -> name -> row)."""
        new: list[tuple[_Item, tuple]] = []
        known: list[_Item] = []
        t0 = time.perf_counter()
        for it, fut in zip(batch, decoded, strict=True):
            res = fut.result()
            it.digest = digests[str(it.path)]
            if isinstance(res, MediaError):
                if self.catalog.image_id_for_hash(it.digest) is not None and it.digest:
                    known.append(it)  # a format we cannot decode now but indexed before: keep
                else:
                    report.failed.append((str(it.path), res.reason))
            elif self.catalog.image_id_for_hash(it.digest) is not None or any(
                it.digest == n.digest for n, _ in new
            ):
                known.append(it)
            else:
                new.append((it, res))  # type: ignore[arg-type]
        t1 = time.perf_counter()
        feats: dict[str, np.ndarray] | None
        if new and pre is not None and all(str(it.path) in pre for it, _ in new):  # encoded by the engine
            feats = {k: np.stack([pre[str(it.path)][k] for it, _ in new]) for k in pre[str(new[0][0].path)]}
        else:
            feats = self.encoder.encode_image_features(np.stack([r[1] for _, r in new])) if new else None
        vecs = None if feats is None else feats["embedding"]
        # All captions of the batch in one encoder call: per-image calls of 5 texts waste most of the time.
        cap_texts = {it.digest: captions[str(it.path)] for it, _ in new if str(it.path) in captions}
        flat = self.caption_rows([t for ts in cap_texts.values() for t in ts])
        cap_rows: dict[str, list] = {}
        for d, ts in cap_texts.items():
            cap_rows[d], flat = flat[: len(ts)], flat[len(ts) :]
        t2 = time.perf_counter()
        self._pending_caps = []
        added_imgs: list[int] = []
        enrich_before = sum(report.timings.get(e.name, 0.0) for e in self.enrichers)
        with self.catalog.transaction():
            for j, (it, (size, _arr, thumb)) in enumerate(new):
                assert vecs is not None
                iid = self.catalog.add_image(it.digest, size[0], size[1], thumb, vecs[j])
                added_imgs.append(iid)
                was = self.catalog.get_path(str(it.path))
                self.catalog.set_path(str(it.path), iid, it.size, it.mtime_ns)
                if was is None:
                    report.added += 1
                else:
                    report.updated += 1
                    self._carry_captions(was.image_id, iid)
                if it.digest in cap_rows:
                    self._add_captions(iid, cap_rows[it.digest], report)
            if feats is not None:
                self.enrich({e.name: added_imgs for e in self.enrichers}, added_imgs, feats, report)
            for it in known:
                known_id = self.catalog.image_id_for_hash(it.digest)
                assert known_id is not None
                was = self.catalog.get_path(str(it.path))
                self.catalog.set_path(str(it.path), known_id, it.size, it.mtime_ns)
                if was is None:
                    report.duplicates += 1
                elif was.image_id != known_id:
                    report.updated += 1
                    self._carry_captions(was.image_id, known_id)
                else:
                    report.unchanged += 1  # touched (mtime) but same bytes
            gone_imgs, gone_caps = self.catalog.delete_orphans()
            gen = self.catalog.bump_generation()
        # Catalog committed first; the in-memory indexes follow, and only then say which generation they
        # reflect (a Ctrl-C in between leaves them stamped older, so they are repaired, never trusted).
        t_vec = time.perf_counter()
        self.vectors.forget(gone_imgs, gone_caps)
        if vecs is not None:
            self.vectors.add("images", added_imgs, vecs)
        self.index_new_captions()
        self.vectors.mark(gen)
        t3 = time.perf_counter()
        report.timings["decode"] += t1 - t0
        report.timings["encode"] += t2 - t1
        enrich_s = sum(report.timings.get(e.name, 0.0) for e in self.enrichers) - enrich_before
        report.timings["store"] += t_vec - t2 - enrich_s  # the catalog's transaction
        report.timings["vectors"] = report.timings.get("vectors", 0.0) + t3 - t_vec

    def enrich(
        self,
        todo: Mapping[str, list[int]],
        ids: list[int],
        feats: Mapping[str, np.ndarray],
        report: IndexReport,
    ) -> list[int]:
        """Run each enricher on its share of ``ids`` (row i of ``feats`` is ``ids[i]``), inside the
        caller's transaction; returns generated caption ids it replaced (to drop from the indexes)."""
        pos = {iid: j for j, iid in enumerate(ids)}
        before = self.catalog.generated_caption_ids(ids)
        for e in self.enrichers:
            sub = [i for i in todo.get(e.name, []) if i in pos]
            if not sub:
                continue
            t = time.perf_counter()
            rows = [pos[i] for i in sub]
            new = e.enrich(self.catalog, sub, {k: np.asarray(v)[rows] for k, v in feats.items()})
            human = sum(src == "human" for _, src in self.catalog.caption_sources(new).values()) if new else 0
            report.captions_generated += len(new) - human  # the owner's own descriptions are not generated
            report.captions_added += len(new)
            report.enriched[e.name] = report.enriched.get(e.name, 0) + len(sub)
            report.timings[e.name] = report.timings.get(e.name, 0.0) + time.perf_counter() - t
            self._pending_caps.append(new)
        return sorted(set(before) - set(self.catalog.generated_caption_ids(ids)))

    def index_new_captions(self) -> None:
        for new_ids in self._pending_caps:
            if not new_ids:
                continue
            keys, emb = self.catalog.caption_vectors(self.encoder.caption_dim, new_ids)
            self.vectors.add("captions", keys.tolist(), emb)
            if "caption_joint" in self.vectors.specs:
                jk, jv = self.catalog.caption_vectors(self.encoder.dim, new_ids, "joint")
                self.vectors.add("caption_joint", jk.tolist(), jv)
        self._pending_caps = []

    def _carry_captions(self, old_image: int, new_image: int) -> None:
        """A path now shows other bytes (the photo was edited): what people wrote about it stays."""
        self._pending_caps.append(self.catalog.copy_human_captions(old_image, new_image))

    def _attach_captions(self, captions: dict[str, list[str]], report: IndexReport) -> None:
        """Captions (by photo path) for photos indexed earlier; only texts a photo lacks are encoded, in
        large batches (one encoder call per few hundred texts, not per photo)."""
        todo: list[tuple[int, str]] = []
        for path, texts in captions.items():
            iid = self.catalog.image_for_path(path)
            if iid is None:
                continue  # failed to index: reported with its reason
            have = self.catalog.caption_texts(iid)
            todo += [(iid, t) for t in dict.fromkeys(texts) if t not in have]
        todo = list(dict.fromkeys(todo))
        for s in range(0, len(todo), 256):
            chunk = todo[s : s + 256]
            rows = self.caption_rows([t for _, t in chunk])
            self._pending_caps = []
            with self.catalog.transaction():
                for (iid, _), row in zip(chunk, rows, strict=True):
                    self._add_captions(iid, [row], report)
                gen = self.catalog.bump_generation()
            self.index_new_captions()
            self.vectors.mark(gen)

    def _prune(self, roots: list[Path], report: IndexReport) -> None:
        stale = vanished(self.catalog, roots)
        if not stale:
            return
        with self.catalog.transaction():
            for p in stale:
                report.removed += int(self.catalog.remove_path(p))
            gone_imgs, gone_caps = self.catalog.delete_orphans()
            gen = self.catalog.bump_generation()
        self.vectors.forget(gone_imgs, gone_caps)
        self.vectors.mark(gen)
