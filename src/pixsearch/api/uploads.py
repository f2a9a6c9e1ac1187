"""Photos uploaded to the read routes (search by photo, describe, caption, score): decoded off the
Library's thread, bounded in pixels, shrunk while decoding.

Why: decoding is what an upload costs (a 50 MP PNG takes about a second and a few hundred MB), and the
Library has one thread (``worker.py``): decoded there, every search would wait behind it. So an upload
is decoded here, on a pool of one thread of its own (one decode at a time bounds the memory: a worst
case takes ~400 MB), with a pixel limit for strangers' files (``media.MAX_UPLOAD_PIXELS``, checked on
the header) and shrunk as it decodes (JPEG DCT scaling, then an integer box reduction) to the few hundred
pixels the encoders use. The Library then gets a small lossless PNG. An upload whose bytes are a library
photo's is handed on as it is, undecoded: the Library finds that photo by its hash and uses its stored
vector and its policy verdict, as it always did.
"""

from __future__ import annotations

import asyncio
import ctypes
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from functools import partial
from typing import TypeVar

from fastapi import UploadFile

from pixsearch import media
from pixsearch.api.params import read_upload
from pixsearch.api.worker import LibraryWorker

__all__ = ["UPLOAD_SIDE", "Uploads", "shrunk"]

T = TypeVar("T")
# Both sides keep at least this many pixels: the JPEG draft size the indexer decodes with (models/
# backbones.decode_size: 256, or the backbone's 260 px), so a query photo looks as an indexed one does.
UPLOAD_SIDE = 256


def shrunk(data: bytes) -> bytes:
    """The upload decoded (refused over MAX_UPLOAD_PIXELS), upright, flattened to RGB and shrunk to
    about UPLOAD_SIDE px a side, as PNG; a MediaError says what is wrong with it."""
    img = media.load_image(
        data, name="upload", draft=UPLOAD_SIDE, max_pixels=media.MAX_UPLOAD_PIXELS, reduce_to=UPLOAD_SIDE
    )
    return media.lossless_bytes(img)


def _libc_trim() -> Callable[[int], int] | None:
    try:
        return ctypes.CDLL(None).malloc_trim  # type: ignore[no-any-return]
    except (OSError, AttributeError):  # not glibc: its allocator returns memory its own way
        return None


_TRIM = _libc_trim()


def _shrunk_then_trimmed(data: bytes) -> bytes:
    """``shrunk``, then the decoder's freed memory handed back to the system: glibc keeps what a thread
    freed in that thread's arena, so a 50 MP decode would leave the server a few hundred MB larger for
    good, and the next decoder's own buffers would come on top of it."""
    try:
        return shrunk(data)
    finally:
        if _TRIM is not None:
            _TRIM(0)


class Uploads:
    """Reads an upload within the byte limit and readies it for the Library off the Library's thread."""

    def __init__(self, worker: LibraryWorker, limit: int) -> None:
        self.worker = worker
        self.limit = limit
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="pixsearch-upload")

    async def _off_thread(self, fn: Callable[..., T], *args: object) -> T:
        return await asyncio.get_running_loop().run_in_executor(self._pool, partial(fn, *args))

    async def photo(self, file: UploadFile) -> bytes:
        """The upload as a Library read takes it: its own bytes when they are a library photo's (found by
        hash, never decoded), else the shrunk PNG. 413/422 for too many bytes or an empty file."""
        data = await read_upload(file, self.limit)
        digest = await self._off_thread(media.content_hash, data)
        known = await self.worker.run(lambda lib: lib.catalog.image_id_for_hash(digest))
        if known is not None:
            return data
        return await self._off_thread(_shrunk_then_trimmed, data)

    async def original(self, file: UploadFile) -> bytes:
        """The upload's own bytes for a write that keeps the file (``POST /api/photos``), once a bounded
        decode off the Library's thread has shown that they are a photo within MAX_UPLOAD_PIXELS: a
        pixel bomb is 413 here and never reaches the Library's full-size decode."""
        data = await read_upload(file, self.limit)
        await self._off_thread(_shrunk_then_trimmed, data)
        return data
