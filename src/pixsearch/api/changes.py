"""REST route that tells a page the library changed: ``GET /api/changes?since=GENERATION``.

Why: ``pixsearch index --watch`` and ``serve --watch`` (``indexing/watch.py``) add and forget photos
while pages are open; the web page polls this every few seconds and, when the generation moved, refreshes
what it shows. The generation is the catalog's ``vectors_gen``: every committed write that changes what a
search can find bumps it (ours, another process's, the watcher's), and the readers already compare it
before each call (``worker.py``), so asking costs one meta row on a reader, nothing more.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import FastAPI, Query

from pixsearch.api.worker import LibraryWorker
from pixsearch.library.facade import Library

__all__ = ["add_change_routes", "generation"]

Since = Annotated[
    int | None,
    Query(
        ge=0,
        le=2**63 - 1,
        description="The generation the client last saw (from an earlier answer); omitted: just tell it.",
    ),
]


def generation(lib: Library) -> int:
    """The library's write generation as committed now (0 for a library nothing was written to)."""
    return int(lib.catalog.get_meta("vectors_gen") or 0)


def add_change_routes(app: FastAPI, worker: LibraryWorker) -> None:
    @app.get("/api/changes", tags=["service"])
    async def changes(since: Since = None) -> dict[str, Any]:
        """The library's generation, and whether it moved since ``since``: photos were added, changed or
        removed (by this server, ``pixsearch index`` or a watcher). Cheap enough to poll."""
        gen = await worker.run(generation)
        return {"generation": gen, "changed": since is not None and gen != since}
