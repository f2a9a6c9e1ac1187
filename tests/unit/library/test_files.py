"""A photo's original file is served only while it holds the bytes that were indexed; photos given as bytes
fail in one line on a full disk. Real gallery photos, a real library."""

from __future__ import annotations

import errno
import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from pixsearch import FileChangedError, Library, NotFoundError, StorageError
from pixsearch.library.files import store_upload
from tests.conftest import GALLERY

PHOTOS = sorted(p.name for p in (GALLERY / "images").glob("*.jpg"))


@pytest.fixture
def lib(tmp_path: Path) -> Iterator[Library]:
    photos = tmp_path / "photos"
    photos.mkdir()
    for n in PHOTOS[:2]:
        shutil.copy(GALLERY / "images" / n, photos / n)
    outside = tmp_path / "outside"
    outside.mkdir()
    shutil.copy(GALLERY / "images" / PHOTOS[2], outside / "linked.jpg")
    (photos / "link.jpg").symlink_to(outside / "linked.jpg")
    with Library.open(tmp_path / "lib") as library:
        assert library.add([photos], generate_captions=False, follow_links=True).added == 3
        yield library


def _id(lib: Library, path: Path) -> int:
    iid = lib.catalog.image_for_path(str(path))
    assert iid is not None
    return iid


def test_an_unchanged_or_only_touched_file_is_served(lib: Library, tmp_path: Path) -> None:
    path = tmp_path / "photos" / PHOTOS[0]
    iid = _id(lib, path)
    assert lib.original(iid) == path
    os.utime(path, ns=(1, 1))  # mtime moved, bytes the same: the content hash vouches for them
    assert lib.original(iid) == path


def test_other_bytes_of_the_same_size_are_not_served(lib: Library, tmp_path: Path) -> None:
    path = tmp_path / "photos" / PHOTOS[0]
    iid = _id(lib, path)
    data = bytearray(path.read_bytes())
    data[-3] ^= 0xFF  # same size, other bytes
    path.write_bytes(bytes(data))
    with pytest.raises(FileChangedError) as exc:
        lib.original(iid)
    assert str(exc.value) == (
        f"the file of photo {iid} changed on disk since it was indexed; run `pixsearch index`"
    )
    assert (exc.value.http_status, exc.value.code) == (409, "file_changed")


def test_a_retargeted_link_is_not_served(lib: Library, tmp_path: Path) -> None:
    """The finding: a link pointed at a same-size text file was served as the photo (image/jpeg)."""
    link = tmp_path / "photos" / "link.jpg"
    iid = _id(lib, link)
    assert lib.original(iid) == link
    text = tmp_path / "outside" / "secret.txt"
    text.write_bytes(b"x" * link.stat().st_size)
    link.unlink()
    link.symlink_to(text)
    with pytest.raises(FileChangedError):
        lib.original(iid)


def test_a_vanished_file_is_not_found(lib: Library, tmp_path: Path) -> None:
    path = tmp_path / "photos" / PHOTOS[1]
    iid = _id(lib, path)
    path.unlink()
    with pytest.raises(NotFoundError, match="no longer where it was indexed"):
        lib.original(iid)


def test_an_upload_on_a_full_disk_is_a_storage_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    data = (GALLERY / "images" / PHOTOS[0]).read_bytes()

    def no_space(self: Path, data: bytes) -> int:
        with open(self, "wb") as f:
            f.write(data[:10])
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(Path, "write_bytes", no_space)
    with pytest.raises(StorageError) as exc:
        store_upload(tmp_path, data)
    assert str(exc.value) == (
        "could not write the uploaded photo: No space left on device; "
        "free some space and run the command again"
    )
    assert list((tmp_path / "uploads").iterdir()) == []  # no half photo left behind
