"""A full disk, told the same way for every file a library writes: the catalog, vector index files and
their stamps, uploaded photos.

Why one place: each writer fails in its own way when the disk fills up. Python's file calls raise OSError
with ENOSPC; SQLite says "database or disk is full" (or, creating its shared-memory file, "disk I/O
error"); usearch raises RuntimeError("Failed to serialize into stream") with no errno at all, or, when
the last buffer does not fit, writes a short file and reports success. A user must get one line naming
the file and the cause (a :class:`~pixsearch.errors.StorageError`, exit 1 / HTTP 507), never
"unexpected RuntimeError".
"""

from __future__ import annotations

import errno
import os
import shutil
import sqlite3
from pathlib import Path

from pixsearch.errors import StorageError

__all__ = ["NO_SPACE", "disk_full", "is_storage_failure", "no_space_on", "storage_error"]

NO_SPACE = os.strerror(errno.ENOSPC)  # "No space left on device"
_ERRNOS = frozenset({errno.ENOSPC, errno.EDQUOT, errno.EROFS, errno.EIO})
# SQLite result codes that mean "could not write" (primary codes SQLITE_FULL, SQLITE_IOERR, and the
# extended ones Python names for us): each is checked against the free space before we blame the disk.
_SQLITE_FULL = 13
_SQLITE_IOERR = 10
_SLACK = 1 << 20  # "full" when less than this is free and no byte count is known (a write needs more)


def no_space_on(where: Path, need: int = 0) -> bool:
    """Has the filesystem holding ``where`` (a file or folder, existing or not) less than ``need`` bytes
    (or, without ``need``, about a megabyte) free? False when that cannot be told."""
    p = Path(where)
    while not p.exists() and p != p.parent:
        p = p.parent
    try:
        return shutil.disk_usage(p).free < (need if need > 0 else _SLACK)
    except OSError:
        return False


def disk_full(exc: BaseException, where: Path | None = None, need: int = 0) -> bool:
    """Does ``exc`` mean the disk holding ``where`` is full? ENOSPC/EDQUOT always, SQLITE_FULL always;
    errors that name no cause (SQLite's I/O errors, usearch's RuntimeError) only when the disk has no room."""
    if isinstance(exc, OSError):
        if exc.errno in (errno.ENOSPC, errno.EDQUOT):
            return True
        return exc.errno == errno.EIO and where is not None and no_space_on(where, need)
    if isinstance(exc, sqlite3.Error):
        code = getattr(exc, "sqlite_errorcode", None)
        if code is not None and code & 0xFF == _SQLITE_FULL:
            return True
        if "disk is full" in str(exc):
            return True
        io = (code is not None and code & 0xFF == _SQLITE_IOERR) or "disk I/O error" in str(exc)
        return io and where is not None and no_space_on(where, need)
    return where is not None and no_space_on(where, need)


def is_storage_failure(exc: BaseException, where: Path | None = None, need: int = 0) -> bool:
    """Is ``exc`` a failure to write a file (as opposed to a bug): an OSError of the disk, or any error
    while the disk is full."""
    if isinstance(exc, OSError) and exc.errno in _ERRNOS:
        return True
    return disk_full(exc, where, need)


def storage_error(what: str, exc: BaseException, where: Path | None = None, need: int = 0) -> StorageError:
    """The one-line StorageError for failing to write ``what`` (e.g. "the vector index images.usearch")."""
    if disk_full(exc, where, need):
        msg = f"could not write {what}: {NO_SPACE}; free some space and run the command again"
        return StorageError(msg, NO_SPACE)
    why = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc) or type(exc).__name__
    why = " ".join(why.split())
    return StorageError(f"could not write {what}: {why}", why)
