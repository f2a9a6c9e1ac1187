"""library/opening.py: a library's directory and catalog files are owner-only, new or opened again."""

from __future__ import annotations

import os
import shutil
import stat
from pathlib import Path

from pixsearch.library.opening import CATALOG_FILES, open_catalog


def _mode(path: Path) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


def test_a_new_library_is_owner_only(tmp_path: Path) -> None:
    umask = os.umask(0o022)
    os.umask(umask)
    lib = tmp_path / "new" / "lib"
    _, catalog = open_catalog(lib, None, create=True, moving=False)
    try:
        catalog.set_meta("probe", "1")  # a write: the WAL and its index exist now
        assert _mode(lib) == 0o700
        for name in CATALOG_FILES:
            assert (lib / name).exists() and _mode(lib / name) == 0o600, name
    finally:
        catalog.close()
    assert os.umask(umask) == umask  # the process umask was left alone


def test_a_library_others_could_read_is_closed_when_opened(built_library: Path, tmp_path: Path) -> None:
    lib = tmp_path / "lib"
    shutil.copytree(built_library, lib)
    os.chmod(lib, 0o755)
    for name in CATALOG_FILES:
        if (lib / name).exists():
            os.chmod(lib / name, 0o644)
    (lib / "catalog.db-wal").touch(0o644)  # left by a crash, readable by all
    os.chmod(lib / "catalog.db-wal", 0o644)
    _, catalog = open_catalog(lib, None, create=False, moving=False)
    try:
        catalog.set_meta("probe", "1")
        assert _mode(lib) == 0o700
        for name in CATALOG_FILES:
            assert _mode(lib / name) == 0o600, name
    finally:
        catalog.close()
