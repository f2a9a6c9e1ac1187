"""Readers during a write "see whole batches only" (README, "Crashes and concurrent use"; indexing/indexer.py:
each batch is one SQLite transaction holding its photos, paths, human captions, labels and policy flags).

A reader process polls the catalog while ``pixsearch index`` runs with batches of 8, and every state it
sees must be a whole number of batches with everything of those photos, never a photo without its path,
captions or flags.
"""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from pixsearch import Library
from tests.conftest import GALLERY, gallery_photos

BATCH = 8
N = 96  # 12 batches
CAPTIONS_PER_PHOTO = 5  # every gallery photo has 5

SNAPSHOT = """SELECT
    (SELECT COUNT(*) FROM images),
    (SELECT COUNT(*) FROM paths),
    (SELECT COUNT(DISTINCT image_id) FROM paths),
    (SELECT COUNT(*) FROM captions WHERE source = 'human'),
    (SELECT COUNT(*) FROM flags),
    (SELECT COUNT(*) FROM enrichments WHERE name = 'labels')"""


@pytest.fixture(scope="module")
def photos(tmp_path_factory: pytest.TempPathFactory) -> Path:
    names = sorted(p.name for p in (GALLERY / "images").glob("*.jpg"))[:N]
    return gallery_photos(tmp_path_factory.mktemp("readers"), names)


def test_a_reader_sees_whole_batches_while_index_runs(photos: Path, tmp_path: Path) -> None:
    lib = tmp_path / "lib"
    with Library.open(lib):  # created up front, so the reader can poll from the first batch on
        pass
    env = {**os.environ, "PIXSEARCH_BATCH_SIZE": str(BATCH)}
    cmd = [sys.executable, "-m", "pixsearch.cli", "index", str(photos / "photos"), "-L", str(lib)]
    proc = subprocess.Popen(
        [*cmd, "--captions", str(photos / "captions.csv"), "--json"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    db = sqlite3.connect(lib / "catalog.db", timeout=30)
    seen: list[tuple[int, ...]] = []
    searched = 0
    try:
        deadline = time.monotonic() + 540
        while proc.poll() is None and time.monotonic() < deadline:
            # one statement, one snapshot (WAL): what a reader can see at one moment
            seen.append(tuple(db.execute(SNAPSHOT).fetchone()))
            if 0 < seen[-1][0] < N and searched < 5:  # the Library's own read path, mid-run
                with Library.open(lib, create=False) as reader:
                    n = reader.stats()["images"]
                    res = reader.search("a dog runs on the grass", k=N)
                    assert n % BATCH == 0, n
                    assert len(res) <= N and all(r.path for r in res)
                searched += 1
            time.sleep(0.01)
        out, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
        db.close()
    assert proc.returncode == 0, err[-2000:]
    final = tuple(sqlite3.connect(lib / "catalog.db").execute(SNAPSHOT).fetchone())
    assert final == (N, N, N, CAPTIONS_PER_PHOTO * N, N, N)
    for images, paths, with_path, human, flags, labels in seen:
        assert images % BATCH == 0, (images, seen)
        assert paths == with_path == images, (images, paths, with_path)
        assert human == CAPTIONS_PER_PHOTO * images, (images, human)
        assert flags == labels == images, (images, flags, labels)
    mid = sorted({s[0] for s in seen if 0 < s[0] < N})
    # the check above means something only if the reader really looked while batches were landing
    assert len(mid) >= 2, f"the reader saw too few intermediate states: {sorted({s[0] for s in seen})}"
    assert searched >= 1


class _CommitBetweenStatements:
    """A reader's catalog connection that runs ``hook`` (a writer committing one batch) right after the
    statement matching ``after``, once: a commit landing in the middle of a multi-statement read."""

    def __init__(self, db: sqlite3.Connection, after: str, hook) -> None:  # type: ignore[no-untyped-def]
        self._db, self._after, self._hook, self.fired = db, after, hook, False

    def execute(self, sql: str, params: Any = ()):  # type: ignore[no-untyped-def]
        cur = self._db.execute(sql, params)
        if not self.fired and self._after in sql:
            rows = cur.fetchall()
            self.fired = True
            self._hook()
            return _Rows(rows)
        return cur

    def __getattr__(self, name: str) -> object:
        return getattr(self._db, name)


class _Rows:
    def __init__(self, rows: list) -> None:  # type: ignore[type-arg]
        self._rows = rows

    def fetchone(self):  # type: ignore[no-untyped-def]
        return self._rows[0] if self._rows else None

    def fetchall(self):  # type: ignore[no-untyped-def]
        return self._rows


def test_stats_is_one_snapshot_even_when_a_batch_commits_in_the_middle(photos: Path, tmp_path: Path) -> None:
    """Deterministic version of the race above for ``Library.stats`` (``pixsearch stats``): a writer commits
    one more photo with its 5 captions between the reader's count of images and its count of captions."""
    src = sorted((photos / "photos").glob("*.jpg"))
    lib = tmp_path / "lib"
    with Library.open(lib) as w:
        w.add(src[:1], captions_csv=photos / "captions.csv")

    def commit_one_more() -> None:
        with Library.open(lib) as w:
            assert w.add(src[1:2], captions_csv=photos / "captions.csv").added == 1

    with Library.open(lib, create=False) as reader:
        reader.catalog._db = _CommitBetweenStatements(  # type: ignore[assignment]
            reader.catalog._db, "FROM images", commit_one_more
        )
        st = reader.stats()
        assert reader.catalog._db.fired  # type: ignore[attr-defined]
    assert st["human_captions"] == CAPTIONS_PER_PHOTO * st["images"], st
    assert st["paths"] == st["images"], st
