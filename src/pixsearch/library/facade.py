"""Library: the one facade the CLI, the REST API and Python users call.

A library is a directory: ``catalog.db`` (the truth) plus derived ANN index files. It remembers the
encoder it was built with; opening it with another one is an error that names ``pixsearch reindex``.
The facade keeps the lifecycle, the writes and text search; the work behind some methods lives beside
it and takes the parts of the library it uses: ``opening.py`` (settings, catalog, model check),
``reindex.py`` (re-encoding), ``photo.py`` (reads that start from a photo), ``by_id.py`` (one photo by
its id, mixed in), ``files.py`` (a photo's record and files, uploads), ``health.py`` (stats, doctor),
``region.py`` (the region in force), ``search/matching.py`` (a page's match scores and threshold).
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from pixsearch.config import Settings
from pixsearch.errors import ModelError
from pixsearch.library.by_id import PhotosById
from pixsearch.library.composing import Composing
from pixsearch.library.health import library_checks, library_stats
from pixsearch.library.interrupts import deferred_interrupt
from pixsearch.library.listing import DATE_MATCH, DATE_POOL, browse_ids, by_date, to_results
from pixsearch.library.opening import ensure_model, model_not_installed, open_catalog, vector_set
from pixsearch.library.photo import PhotoReads, PhotoRef
from pixsearch.library.region import carry_pin, library_policy, region_view
from pixsearch.models.encoder import JointEncoder, create_encoder
from pixsearch.models.onnx_runtime import set_threads
from pixsearch.models.scorer import MatchScore, PhotoEvidence, check_text
from pixsearch.policy.enforcement import Enforcer
from pixsearch.policy.rules import Policy
from pixsearch.results import (
    Description,
    Result,
    SearchResults,
    Withheld,
    check_page,
)
from pixsearch.search.filters import Filters, check_sort
from pixsearch.search.matching import Matcher, check_threshold, match_page, search_blocks
from pixsearch.search.terms import Term
from pixsearch.search.text import Hit, TextSearch
from pixsearch.storage.catalog import Catalog
from pixsearch.storage.lock import LibraryLock
from pixsearch.storage.native import load_backend

if TYPE_CHECKING:  # the writing side (indexer, engines, enrichers) is imported where it is used: a search
    # in a fresh process never loads it (cold search, README "Quality and speed"); so is media (photo.py)
    from pixsearch.indexing.engine import Engine
    from pixsearch.indexing.report import IndexReport, Progress
    from pixsearch.library.duplicates import Duplicates
    from pixsearch.library.export import ExportReport

__all__ = ["Library"]


def _one_snapshot(fn: Callable[..., Any]) -> Callable[..., Any]:
    """Run a read (search, similar, describe, score) in one SQLite read transaction: its index catch-up,
    candidate lookups and result rows all see the same committed state, never a writer's later commit
    (which could delete a photo between finding it and scoring it)."""

    @functools.wraps(fn)
    def read(self: Library, *args: Any, **kwargs: Any) -> Any:
        with self.catalog.snapshot():
            return fn(self, *args, **kwargs)

    return read


class Library(PhotosById, Composing):
    def __init__(self, settings: Settings, catalog: Catalog, encoder: JointEncoder) -> None:
        # The region's content policy: a bad region, or one looser than the library pins, fails now.
        self.policy: Policy = library_policy(settings, catalog)
        self.settings = replace(settings, region=self.policy.region.name)
        set_threads(settings.threads)  # ONNX Runtime sessions are built lazily, after this
        self.catalog = catalog
        self.encoder = encoder
        self.lock = LibraryLock(settings.library)
        self.lock_wait = 0.0  # seconds a write waits for another writer (math.inf: for ever; CLI --wait)
        self.on_wait: Callable[[str], None] | None = None  # told once when a write starts waiting
        self.vectors = vector_set(settings, catalog, encoder, self.lock)
        self._matcher: Matcher | None = None

    # -- lifecycle ----------------------------------------------------------------------------------
    @classmethod
    def open(
        cls,
        path: Path | str | None = None,
        settings: Settings | None = None,
        encoder: JointEncoder | None = None,
        check_model: bool = True,
        create: bool = True,
    ) -> Library:
        """Open (creating if needed) a library. The model is the library's own unless one is named.

        ``check_model=False`` is for ``reindex`` only: it opens a library built with another (or a
        no longer installed) model so that it can be re-encoded. ``create=False`` (read-only commands)
        refuses a directory without a catalog instead of creating an empty library there: a mistyped
        ``-L`` or an unmounted disk must not look like an empty library.
        """
        s, catalog = open_catalog(path, settings, create, moving=not check_model)
        if encoder is None:
            stored_name = catalog.get_meta("encoder")
            try:
                encoder = create_encoder(s.model or stored_name)
            except ModelError as exc:
                catalog.close()
                if s.model is None and stored_name:
                    raise model_not_installed(s, stored_name) from exc
                raise
        if check_model:
            ensure_model(s, catalog, encoder, create)
        try:
            return cls(s, catalog, encoder)
        except BaseException:  # e.g. a region looser than the library pins
            catalog.close()
            raise

    def close(self) -> None:
        self.catalog.close()

    def __enter__(self) -> Library:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @contextmanager
    def writing(self, wait: float | None = None, check_model: bool = True) -> Iterator[None]:
        """Hold the library's write lock (one writer per library, across processes); nests.

        Every write goes through here: ``add``, ``remove``, ``reindex`` and the REST server's writes.
        Another writer makes it raise :class:`~pixsearch.errors.BusyError` at once, or after ``wait``
        seconds (default ``self.lock_wait``; ``math.inf`` waits for ever). On entry the open vector
        indexes catch up with what earlier writers committed; on exit the caller has saved them.
        """
        outer = not self.vectors.writer
        with self.lock.hold(self.lock_wait if wait is None else wait, self.on_wait):
            if not outer:
                yield
                return
            with deferred_interrupt():  # the index backend's native module: before a commit, not after
                load_backend(self.settings.vector_backend)
            self.vectors.sync(check_model)  # off for reindex: changing the model is its job
            self.vectors.writer = True
            try:
                yield
            finally:
                self.vectors.writer = False

    # -- writing ------------------------------------------------------------------------------------
    def add(
        self,
        paths: Sequence[Path | str],
        captions_csv: Path | str | None = None,
        sample: int | None = None,
        seed: int = 0,
        prune: bool = False,
        progress: Progress | None = None,
        generate_captions: bool | None = None,
        force: bool = False,
        engine: Engine | None = None,
        follow_links: bool = False,
        ocr: bool | None = None,
    ) -> IndexReport:
        """Index photos; enrichers (generated captions unless turned off, labels, ...) run on new ones and
        redo photos whose enricher models changed. ``prune`` refuses a missing or empty root (unmounted
        disk?) that still has photos indexed under it unless ``force``. Symbolic links below a root that
        lead out of it are skipped unless ``follow_links`` (``indexing/scan.py``). Holds the write lock."""
        from pixsearch.indexing.captions_csv import read_captions_csv
        from pixsearch.indexing.enrichers.registry import enrichers
        from pixsearch.indexing.indexer import Indexer

        caps, warns = read_captions_csv(Path(captions_csv)) if captions_csv else ({}, [])
        base = Path(captions_csv).expanduser().absolute().parent if captions_csv else None
        s = self.settings
        if generate_captions is not None:
            s = replace(s, generate_captions=generate_captions)
        if ocr is not None:  # for this run, as generate_captions (the config file's ``ocr`` otherwise)
            s = replace(s, ocr=ocr)
        with self.writing():
            with deferred_interrupt():  # the enrichers load native models: Ctrl-C waits (interrupts.py)
                found = enrichers(s, self.encoder)
            indexer = Indexer(self.catalog, self.vectors, self.encoder, s.batch_size, found, engine, s)
            run = functools.partial(indexer.run, force=force, captions_base=base, follow_links=follow_links)
            report = run([Path(p) for p in paths], caps, sample, seed, prune, progress)
        report.warnings[:0] = warns
        return report

    def remove(self, paths: Sequence[Path | str]) -> int:
        """Forget paths (files, or folders: everything under them); images no path points at any more
        go too. Paths match exactly, case included. Holds the write lock."""
        removed = 0
        with self.writing():
            with self.catalog.transaction():
                for p in paths:
                    ap = str(Path(p).expanduser().absolute())
                    for h in self.catalog.paths_at(ap):
                        removed += int(self.catalog.remove_path(h))
                gone_imgs, gone_caps = self.catalog.delete_orphans()
                gen = self.catalog.bump_generation()
            self.vectors.forget(gone_imgs, gone_caps)
            self.vectors.mark(gen)
            self.vectors.save()
        return removed

    def reindex(self, model: str | None = None, progress: Progress | None = None) -> IndexReport:
        """Re-encode every image and caption with ``model`` (default: the encoder this Library holds).

        Builds a complete new catalog beside the old one (``.reindex/``, itself incremental, so a crash
        resumes there) and swaps it in as one SQLite transaction on the live catalog (the backup API, not a
        rename: readers with the catalog open keep a valid WAL and see the old library or the new one).
        Photos whose file cannot be read now are kept, re-encoded from their stored thumbnail, and listed
        in ``report.kept``. Holds the write lock throughout.
        """
        from pixsearch.library.reindex import rebuild

        with self.writing(check_model=False):
            enc = create_encoder(model) if model else self.encoder

            def opener(s: Settings, e: JointEncoder) -> Library:
                new = type(self).open(settings=s, encoder=e)
                carry_pin(self.catalog, new.catalog)  # the swapped-in catalog keeps the pinned region
                return new

            report = rebuild(self.catalog, self.settings, self.vectors, enc, opener, progress)
            if not report.interrupted:  # swapped in: the live catalog holds the new model's vectors
                self.encoder = enc
                self.vectors = vector_set(self.settings, self.catalog, enc, self.lock)
            return report

    # -- reading ------------------------------------------------------------------------------------
    def _results(self, hits: list[Hit], match: dict[int, float] | None = None) -> list[Result | Withheld]:
        return to_results(self.catalog, self.withhold, hits, match)

    # -- content policy (policy/) ------------------------------------------------------------------
    def with_region(self, region: str | None) -> Library:
        """This library seen from a stricter policy region (the REST API's per-request ``region``).

        The region the library was opened in (a server's ``--region``, a pinned region) is a floor: a
        looser or unknown one is a RegionError (HTTP 403), so no request sees what this region withholds.
        """
        return region_view(self, region)

    def check_query(self, text: str) -> None:
        """Raise BlockedError (carrying the disclaimer) when the region forbids ``text``. Every method
        that takes a user's text calls it first (search, score, search by caption); free in a region
        that restricts nothing."""
        self.policy.ensure_allowed(text)

    @property
    def withhold(self) -> Enforcer:
        """The photo side's enforcement for this region (the one place that hides)."""
        return Enforcer(self.catalog, self.policy)

    def check_photo(self, image_id: int) -> None:
        """BlockedError when the region withholds this photo: its file, thumbnail, captions, score."""
        self.withhold.ensure_visible(image_id)

    @_one_snapshot
    def search(
        self,
        query: str,
        k: int = 10,
        offset: int = 0,
        threshold: float | None = None,
        filters: Filters | None = None,
        sort: str = "relevance",
    ) -> SearchResults:
        """Text -> images: fused signals order the candidates (``search/text.py``), each block of that
        order ranked by calibrated match (``search/matching.py``). ``filters`` keep the photos they allow;
        ``sort`` "date"/"-date" (newest first): the best matches in capture order (``listing.py``)."""
        order = check_sort(sort)
        if order == "relevance":
            return self._search(query, k, offset, threshold, filters)
        check_page(k, offset)
        th = threshold if threshold is not None or not self.matcher.usable else DATE_MATCH
        found = self._search(query, max(DATE_POOL, offset + k), 0, th, filters)
        return by_date(self.catalog, found, order, k, offset)

    @_one_snapshot
    def browse(
        self, filters: Filters | None = None, sort: str = "-date", k: int = 24, offset: int = 0
    ) -> list[Result | Withheld]:
        """Every photo passing ``filters`` (all: none given), newest first ("date": oldest first)."""
        check_page(k, offset)
        ids = browse_ids(self.catalog, filters or Filters(), check_sort(sort), k, offset)
        return self._results([Hit(i, 0.0) for i in ids])

    def _search(self, query: str, k: int, offset: int, th: float | None, f: Filters | None) -> SearchResults:
        pending = self.policy.start_check(query)  # rules now, the semantic model beside the search
        m = self.matcher
        m.memo.sync()  # the catalog moved since the last search: forget what it changed
        ts = TextSearch(
            self.catalog,
            self.encoder,
            self.vectors.view("images"),  # catalog-backed: a photo committed a moment ago is no KeyError
            self.vectors.view("captions"),
            self.settings.weights,
            m.vectors,  # one encoder pass: the match scores reuse the query's vectors
            m.memo.caption_owners,
            m.memo.doc_counts,
            None if f is None or not f.active else m.memo.allowed(f),
        )
        th = check_threshold(self.settings.threshold if th is None else th)
        check_page(k, offset)
        # blocks of the fused order, each ranked by match: the same pages whichever is asked first
        depth, block = search_blocks(k, offset, th) if m.usable else (offset + k, k)
        hits = ts.run(query, depth, 0, None)
        pending.wait()  # BlockedError: a blocked query's hits are dropped unseen
        images = self.vectors.view("images")
        lift = self.settings.weights.words  # the photo's own words count in its match too
        return match_page(m, images, query, hits, (k, offset), th, self._results, block, lift)

    @property
    def matcher(self) -> Matcher:
        """The calibrated match scorer over this library's catalog (built on first use)."""
        m = self._matcher
        if m is None or m.catalog is not self.catalog or m.encoder is not self.encoder:  # reindexed
            m = self._matcher = Matcher(self.catalog, self.encoder)
        return m

    @_one_snapshot
    def score(self, photo: PhotoRef, text: str, references: bool = True) -> MatchScore:
        """The calibrated probability that a person would say ``text`` describes ``photo``.

        A library photo (id, path or identical bytes) uses its stored vector and, with ``references``,
        its human captions, exactly as a search scores it (the number its result showed); any other
        photo is decoded and encoded (pixels only). Empty text is a QueryError; an undecodable photo a
        MediaError; see models/scorer.py for long/other-language text.
        """
        self.check_query(text)
        check_text(text)
        self.matcher.ensure_usable()
        vec, iid = self.image_vector(photo)
        if iid is not None:
            self.matcher.memo.sync()
            return self.matcher.score_library(text, [iid], vec[None], references)[0]
        return self.matcher.score_evidence(text, [PhotoEvidence(vec)], references)[0]

    def image_vector(self, image: PhotoRef) -> tuple[np.ndarray, int | None]:
        """Joint vector for an image id, a library path, or a new file/bytes (encoded on the fly), and the
        photo's library id when it has one (``photo.py``)."""
        return self._photos.vector(image)

    @property
    def _photos(self) -> PhotoReads:
        return PhotoReads(self.catalog, self.vectors, self.encoder, self.withhold)

    @_one_snapshot
    def similar(
        self, image: PhotoRef, k: int = 10, offset: int = 0, filters: Filters | None = None
    ) -> list[Result | Withheld]:
        """Image -> the most similar images in the library (itself excluded), among ``filters``' photos."""
        if filters is not None and filters.active:  # the same nearest, restricted (composing.py)
            return self.compose([Term(photo=image)], k, offset, filters)
        return self._photos.similar(image, k, offset, self._results)

    @_one_snapshot
    def describe(self, image: PhotoRef, k: int = 5) -> Description:
        """Image -> the library's captions that fit it best (joint space, reranked by match), with their
        images, and a generated caption (``.generated``) when a captioner is shipped."""
        return self._photos.describe(image, lambda: self.matcher, k)

    def caption(self, photo: PhotoRef, beam: int = 3) -> str:
        """A generated caption for a library photo (id or path) or any image file or bytes, by the default
        captioner (its own encoder when the library's is another); a withheld photo is a BlockedError."""
        return self._photos.caption(photo, beam)

    @_one_snapshot
    def duplicates(self, threshold: float | None = None, prefer: str = "largest") -> Duplicates:
        """Groups of exact and near-duplicate photos, the copy to keep first (``prefer``: largest or
        oldest); ``threshold``: perceptual similarity 0..1 (``library/duplicates.py``). Only reads; photos
        the region withholds take no part."""
        from pixsearch.library.duplicates import find_duplicates

        return find_duplicates(
            self.catalog.duplicates, self.vectors.view("images"), self.withhold.hidden, threshold, prefer
        )

    def export_xmp(self, path: Path | str | None = None) -> ExportReport:
        """Generated captions and labels into XMP sidecars, merged with the user's (library/export.py)."""
        from pixsearch.library.export import export_xmp

        return export_xmp(self.catalog, path, self.withhold.hidden)

    def stats(self) -> dict[str, Any]:
        """Counts (images, captions, human/generated captions), model, store, bytes on disk (health.py),
        and the policy region in force (a client of a server learns its floor here)."""
        return {**library_stats(self.catalog, self.encoder, self.settings), "region": self.policy.region.name}

    def doctor(self) -> list[tuple[str, bool, str]]:
        """(check, ok, detail) rows: models load, catalog opens and is sane, indexes match the catalog."""
        return library_checks(self.catalog, self.encoder, self.vectors)
