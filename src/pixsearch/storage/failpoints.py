"""Named points where a fault test can hold a write, so that its signal lands exactly mid-write.

Off unless ``PIXSEARCH_TEST_PAUSE`` is set: tests/e2e/test_faults.py and benchmarks/bench_faults.py set
it to prove that a kill between a catalog commit and the vector index update leaves a library that
``doctor`` calls sound and the same command resumes (without it, most signals land before or after the
write, by luck).
"""

from __future__ import annotations

import os
import time
from pathlib import Path

__all__ = ["pause_point"]

_held: dict[str, int] = {}


def pause_point(where: str) -> None:
    """A fault-test hook, off unless ``PIXSEARCH_TEST_PAUSE`` is set (tests/e2e/test_faults.py and
    benchmarks/bench_faults.py set it) so that a signal lands exactly mid-write, not by luck.

    ``PIXSEARCH_TEST_PAUSE=WHERE:N`` holds this process at the N-th WHERE of its run: ``after-commit``
    (a write that moved ``vectors_gen`` is committed, the vector indexes not yet updated),
    ``before-commit`` (the same write, just before its COMMIT) or ``after-swap`` (reindex's new catalog
    is in, its index files not yet). While held, the file ``PIXSEARCH_TEST_PAUSE_FILE`` exists; a
    KeyboardInterrupt during the hold appends "interrupted" to it, a kill leaves it behind: the harness
    knows where its signal landed. With no signal the hold ends after 60 s and the command goes on."""
    spec = os.environ.get("PIXSEARCH_TEST_PAUSE")
    if not spec or spec.rpartition(":")[0] != where:
        return
    _held[where] = _held.get(where, 0) + 1
    if _held[where] != int(spec.rpartition(":")[2]):
        return
    marker = Path(os.environ["PIXSEARCH_TEST_PAUSE_FILE"])
    marker.write_text(f"{os.getpid()} {spec}\n")
    try:
        time.sleep(60)
    except KeyboardInterrupt:
        with marker.open("a") as f:
            f.write("interrupted\n")
        raise
    marker.unlink(missing_ok=True)
