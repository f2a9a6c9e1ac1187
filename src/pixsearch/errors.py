"""One exception hierarchy for the whole library, and the one table of what each error means outside.

Library code raises these and never prints or exits; the CLI (``cli/_common.py``) and the REST API
(``api/errors.py``) turn them into a one-line message and an exit or HTTP code. Every message is written
for the user, not the developer.

Each class carries its outcome as class attributes, inherited by its subclasses unless they say otherwise:
``exit_code`` (the CLI's exit status, documented in README "Exit codes": scripts rely on them),
``http_status`` and ``code`` (the REST API's status and the stable ``error.code`` clients branch on).
"""

from __future__ import annotations

from typing import ClassVar

__all__ = [
    "PixsearchError",
    "ConfigError",
    "RegionError",
    "MediaError",
    "UnsupportedFormatError",
    "CorruptImageError",
    "ImageTooLargeError",
    "ModelError",
    "ModelMismatchError",
    "WeightsMismatchError",
    "CatalogError",
    "SchemaVersionError",
    "StorageError",
    "DatasetError",
    "QueryError",
    "NotFoundError",
    "LibraryNotFoundError",
    "FileChangedError",
    "BusyError",
    "BlockedError",
    "EngineError",
    "EXIT_ERROR",
    "EXIT_USAGE",
    "EXIT_MODEL",
    "EXIT_NOT_FOUND",
    "EXIT_BUSY",
]

EXIT_ERROR = 1  # any other failure: a bad file or CSV, the catalog, the disk (I/O), a database error
EXIT_USAGE = 2  # bad arguments or an invalid query (Typer's usage errors use 2 as well)
EXIT_MODEL = 3  # the library was built with another model: run `pixsearch reindex`
EXIT_NOT_FOUND = 4  # no library at -L, an unknown photo/id, a prune root that is missing (see --force)
EXIT_BUSY = 5  # another process is writing to the library (retry, or pass --wait)


class PixsearchError(Exception):
    """Base of every error pixsearch raises on purpose."""

    exit_code: ClassVar[int] = EXIT_ERROR
    http_status: ClassVar[int] = 400
    code: ClassVar[str] = "error"


class ConfigError(PixsearchError):
    """A setting (env, file or flag) has a value we cannot use."""

    code: ClassVar[str] = "bad_setting"


class RegionError(ConfigError):
    """A region looser than the one in force (or unknown) was asked for. The region a server runs in, or
    the one a library pins (``pixsearch policy pin``), is a floor: a request may ask for a region that
    restricts at least as much, never less, so no client can step out of a restricted region."""

    exit_code: ClassVar[int] = EXIT_USAGE
    http_status: ClassVar[int] = 403
    code: ClassVar[str] = "region_not_allowed"


class MediaError(PixsearchError):
    """An image file could not be used; ``path`` names it."""

    http_status: ClassVar[int] = 422
    code: ClassVar[str] = "bad_image"

    def __init__(self, path: str, reason: str) -> None:
        super().__init__(f"{path}: {reason}")
        self.path = path
        self.reason = reason


class UnsupportedFormatError(MediaError):
    """The file is not an image format we decode."""

    http_status: ClassVar[int] = 415
    code: ClassVar[str] = "unsupported_media_type"


class CorruptImageError(MediaError):
    """The file claims to be an image but does not decode (truncated, empty, garbage)."""


class ImageTooLargeError(MediaError):
    """Dimensions beyond our limits: a decompression bomb or an absurd size."""

    http_status: ClassVar[int] = 413
    code: ClassVar[str] = "too_large"


class ModelError(PixsearchError):
    """A model or its weights could not be loaded."""

    http_status: ClassVar[int] = 503
    code: ClassVar[str] = "model_unavailable"


class ModelMismatchError(ModelError):
    """The library was built with another model than the one asked for."""

    exit_code: ClassVar[int] = EXIT_MODEL
    code: ClassVar[str] = "model_mismatch"


class WeightsMismatchError(ModelError):
    """A weights file was trained on another backbone or has another shape."""


class CatalogError(PixsearchError):
    """The library's SQLite catalog is unusable."""

    http_status: ClassVar[int] = 503
    code: ClassVar[str] = "catalog_unavailable"


class SchemaVersionError(CatalogError):
    """The catalog was written by a newer pixsearch than this one."""


class StorageError(PixsearchError):
    """The library's files could not be written: the disk is full (or read-only, or failing). What was
    committed before stays; the message says what could not be saved and why, in one line."""

    http_status: ClassVar[int] = 507
    code: ClassVar[str] = "storage_full"

    def __init__(self, message: str, reason: str = "") -> None:
        super().__init__(message)
        self.reason = reason or message  # the cause alone, e.g. "No space left on device"


class DatasetError(PixsearchError):
    """A dataset dir or CSV is malformed."""

    code: ClassVar[str] = "bad_dataset"


class QueryError(PixsearchError):
    """A search request is invalid (empty query, bad k/offset...)."""

    exit_code: ClassVar[int] = EXIT_USAGE
    code: ClassVar[str] = "bad_query"


class NotFoundError(PixsearchError):
    """A path or id named by the user is not in the library."""

    exit_code: ClassVar[int] = EXIT_NOT_FOUND
    http_status: ClassVar[int] = 404
    code: ClassVar[str] = "not_found"


class BlockedError(PixsearchError):
    """The content policy of the active region forbids this request (a query or text about a restricted
    topic, or a flagged photo asked for by id/path/bytes). Not a failure: the CLI prints ``disclaimer``
    and exits 0, the REST API answers HTTP 451. The message is the disclaimer itself, so nothing about
    the forbidden content (not even why) leaks out to the user; ``topic`` is for logs and tests.
    """

    exit_code: ClassVar[int] = 0  # the CLI prints the disclaimer in place of results
    http_status: ClassVar[int] = 451
    code: ClassVar[str] = "blocked"

    def __init__(self, disclaimer: str, topic: str | None = None) -> None:
        super().__init__(disclaimer)
        self.disclaimer = disclaimer
        self.topic = topic


class LibraryNotFoundError(NotFoundError):
    """A read-only command named a library directory that holds no catalog (a typo, an unmounted disk)."""


class FileChangedError(PixsearchError):
    """A photo's file no longer holds the bytes that were indexed (edited, replaced, or a link retargeted):
    it is not served as that photo until ``pixsearch index`` has looked at it again."""

    http_status: ClassVar[int] = 409
    code: ClassVar[str] = "file_changed"


class BusyError(PixsearchError):
    """Another process is writing to the library (one writer at a time); retry, or wait with ``--wait``."""

    exit_code: ClassVar[int] = EXIT_BUSY
    http_status: ClassVar[int] = 409
    code: ClassVar[str] = "busy"


class EngineError(PixsearchError):
    """A distributed engine (``--engine ray``) gave up on a batch: its workers kept dying or failing on it.

    What the writer committed before stays committed; running the same command again resumes."""
