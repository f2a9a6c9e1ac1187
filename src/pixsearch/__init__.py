"""pixsearch: offline text <-> image search for photo libraries.

>>> from pixsearch import Library
>>> lib = Library.open("~/photos-library")
>>> lib.add(["~/Pictures"])
>>> lib.search("two dogs pulling a sled", k=5)
"""

# First, before any other native extension: onnxruntime loaded after usearch crashes the process
# (SIGSEGV in libstdc++'s codecvt during `import onnxruntime`, both 1.30 and 1.32). See onnx_runtime.preload.
from pixsearch.models.onnx_runtime import preload as _preload_onnxruntime

_preload_onnxruntime()

from pixsearch.errors import (  # noqa: E402
    BlockedError,
    BusyError,
    CatalogError,
    ConfigError,
    CorruptImageError,
    DatasetError,
    EngineError,
    FileChangedError,
    ImageTooLargeError,
    LibraryNotFoundError,
    MediaError,
    ModelError,
    ModelMismatchError,
    NotFoundError,
    PixsearchError,
    QueryError,
    RegionError,
    SchemaVersionError,
    StorageError,
    UnsupportedFormatError,
    WeightsMismatchError,
)
from pixsearch.indexing.report import IndexReport  # noqa: E402
from pixsearch.library.facade import Library  # noqa: E402
from pixsearch.results import CaptionResult, Description, Result, SearchResults, Withheld  # noqa: E402

__version__ = "0.1.0"

__all__ = [
    "Library",
    "Result",
    "CaptionResult",
    "SearchResults",
    "Description",
    "Withheld",
    "IndexReport",
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
    "__version__",
]
