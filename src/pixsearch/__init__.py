"""pixsearch: offline text <-> image search for photo libraries.

>>> from pixsearch import Library
>>> lib = Library.open("~/photos-library")
>>> lib.add(["~/Pictures"])
>>> lib.search("two dogs pulling a sled", k=5)
"""

from .errors import (
    CatalogError,
    ConfigError,
    CorruptImageError,
    DatasetError,
    ImageTooLargeError,
    MediaError,
    ModelError,
    ModelMismatchError,
    NotFoundError,
    PixsearchError,
    QueryError,
    SchemaVersionError,
    UnsupportedFormatError,
    WeightsMismatchError,
)
from .library import CaptionResult, Library, Result

__version__ = "0.1.0"

__all__ = [
    "Library",
    "Result",
    "CaptionResult",
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
    "__version__",
]
