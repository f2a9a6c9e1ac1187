"""One exception hierarchy for the whole library.

Library code raises these and never prints or exits; ``cli.py`` (and later ``api.py``) turn them into a
one-line message and an exit or HTTP code. Every message is written for the user, not the developer.
"""

from __future__ import annotations

__all__ = [
    "PixsearchError",
    "ConfigError",
    "MediaError",
    "UnsupportedFormatError",
    "CorruptImageError",
    "ImageTooLargeError",
    "ModelError",
    "ModelMismatchError",
    "WeightsMismatchError",
    "CatalogError",
    "SchemaVersionError",
    "DatasetError",
    "QueryError",
    "NotFoundError",
    "LibraryNotFoundError",
    "BusyError",
    "BlockedError",
    "EngineError",
]


class PixsearchError(Exception):
    """Base of every error pixsearch raises on purpose."""


class ConfigError(PixsearchError):
    """A setting (env, file or flag) has a value we cannot use."""


class MediaError(PixsearchError):
    """An image file could not be used; ``path`` names it."""

    def __init__(self, path: str, reason: str) -> None:
        super().__init__(f"{path}: {reason}")
        self.path = path
        self.reason = reason


class UnsupportedFormatError(MediaError):
    """The file is not an image format we decode."""


class CorruptImageError(MediaError):
    """The file claims to be an image but does not decode (truncated, empty, garbage)."""


class ImageTooLargeError(MediaError):
    """Dimensions beyond our limits: a decompression bomb or an absurd size."""


class ModelError(PixsearchError):
    """A model or its weights could not be loaded."""


class ModelMismatchError(ModelError):
    """The library was built with another model than the one asked for."""


class WeightsMismatchError(ModelError):
    """A weights file was trained on another backbone or has another shape."""


class CatalogError(PixsearchError):
    """The library's SQLite catalog is unusable."""


class SchemaVersionError(CatalogError):
    """The catalog was written by a newer pixsearch than this one."""


class DatasetError(PixsearchError):
    """A dataset dir or CSV is malformed."""


class QueryError(PixsearchError):
    """A search request is invalid (empty query, bad k/offset...)."""


class NotFoundError(PixsearchError):
    """A path or id named by the user is not in the library."""


class BlockedError(PixsearchError):
    """The content policy of the active region forbids this request (a query or text about a restricted
    topic, or a flagged photo asked for by id/path/bytes). Not a failure: the CLI prints ``disclaimer``
    and exits 0, the REST API answers HTTP 451. The message is the disclaimer itself, so nothing about
    the forbidden content (not even why) leaks out to the user; ``topic`` is for logs and tests.
    """

    def __init__(self, disclaimer: str, topic: str | None = None) -> None:
        super().__init__(disclaimer)
        self.disclaimer = disclaimer
        self.topic = topic


class LibraryNotFoundError(NotFoundError):
    """A read-only command named a library directory that holds no catalog (a typo, an unmounted disk)."""


class BusyError(PixsearchError):
    """Another process is writing to the library (one writer at a time); retry, or wait with ``--wait``."""


class EngineError(PixsearchError):
    """A distributed engine (``--engine ray``) gave up on a batch: its workers kept dying or failing on it.

    What the writer committed before stays committed; running the same command again resumes."""
