"""pixsearch: offline text <-> image search for photo libraries.

>>> from pixsearch import Library
>>> lib = Library.open("~/photos-library")
>>> lib.add(["~/Pictures"])
>>> lib.search("two dogs pulling a sled", k=5)
"""

from __future__ import annotations

import importlib.util as _util
import sys as _sys
from typing import TYPE_CHECKING, Any


class _OnnxRuntimeFirst:
    """Imports onnxruntime just before usearch, wherever usearch is first imported from.

    onnxruntime loaded after usearch crashes the process (SIGSEGV in libstdc++'s codecvt during
    ``import onnxruntime``, both 1.30 and 1.32; the other order works). Importing onnxruntime here
    eagerly, as this package once did, cost every command ~0.1 s (numpy + onnxruntime) before its name
    was even parsed, ``pixsearch --help`` included; this import hook keeps the safe order for free."""

    @staticmethod
    def find_spec(name: str, path: object = None, target: object = None) -> None:
        if name == "usearch" and "onnxruntime" not in _sys.modules and _util.find_spec("onnxruntime"):
            try:
                import onnxruntime  # noqa: F401
            except ImportError:  # reported when a session is built (onnx_runtime._ort)
                pass
        return None  # the regular finders import usearch itself


if not any(isinstance(f, _OnnxRuntimeFirst) for f in _sys.meta_path):
    _sys.meta_path.insert(0, _OnnxRuntimeFirst())

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
from pixsearch.results import CaptionResult, Description, Result, SearchResults, Withheld  # noqa: E402

if TYPE_CHECKING:
    from pixsearch.library.composing import Term
    from pixsearch.library.facade import Library
    from pixsearch.search.filters import Filters

_LAZY = {
    "Library": "pixsearch.library.facade",
    "Filters": "pixsearch.search.filters",
    "Term": "pixsearch.library.composing",
}


def __getattr__(name: str) -> Any:
    """``Library`` (and ``Filters``, ``Term``) are imported on first use: they bring NumPy, SQLite and
    the model code, which ``pixsearch --help`` and the errors and results alone never need."""
    if name in _LAZY:
        import importlib

        value = getattr(importlib.import_module(_LAZY[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'pixsearch' has no attribute {name!r}")


__version__ = "0.1.0"

__all__ = [
    "Library",
    "Filters",
    "Term",
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
