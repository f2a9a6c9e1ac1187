"""A photo named by its catalog id: the REST API's view of one photo (record, thumbnail, original file,
add by bytes, delete), mixed into ``Library``.

Why apart from the facade: these reads and writes all start from an id and end in ``files.py``; the
facade keeps the lifecycle, the writes by path and search. The mixin names what it uses of the Library
(catalog, settings, the region's enforcement, add/remove) so mypy checks both sides.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from pixsearch.errors import MediaError, NotFoundError
from pixsearch.library import files
from pixsearch.results import AddedPhoto, DeletedPhoto, PhotoInfo

if TYPE_CHECKING:
    from pixsearch.config import Settings
    from pixsearch.indexing.report import IndexReport
    from pixsearch.policy.enforcement import Enforcer
    from pixsearch.storage.catalog import Catalog

__all__ = ["PhotosById"]


class PhotosById:
    """One photo by id; every read checks the id exists and the region does not withhold it."""

    catalog: Catalog
    settings: Settings

    if TYPE_CHECKING:  # provided by Library

        @property
        def withhold(self) -> Enforcer: ...

        def check_photo(self, image_id: int) -> None: ...

        def add(self, paths: Sequence[Path | str]) -> IndexReport: ...

        def remove(self, paths: Sequence[Path | str]) -> int: ...

    def ensure_photo(self, image_id: int) -> None:
        """NotFoundError for an id the library does not hold, BlockedError for one the region withholds."""
        if not self.catalog.has_image(image_id):
            raise NotFoundError(f"no photo with id {image_id}")
        self.check_photo(image_id)

    def photo_info(self, image_id: int) -> PhotoInfo:
        """The photo's record: paths, size, when it was added, every caption with its source, labels."""
        self.ensure_photo(image_id)
        return files.photo_info(self.catalog, self.withhold, image_id)

    def thumbnail(self, image_id: int) -> bytes:
        """The photo's JPEG thumbnail, at most 256 px a side."""
        self.ensure_photo(image_id)
        return files.thumbnail(self.catalog, image_id)

    def roots(self) -> dict[int, str]:
        """Root id -> a folder the user indexed: the REST API shows a path relative to its root."""
        return self.catalog.roots()

    def original(self, image_id: int) -> Path:
        """The photo's file, as indexed: NotFoundError when it vanished, FileChangedError when the file
        there no longer holds the indexed bytes (``files.original_file``)."""
        self.ensure_photo(image_id)
        return files.original_file(self.catalog, image_id)

    def add_photo(self, data: bytes) -> AddedPhoto:
        """Keep a photo given as bytes under the library's uploads/ folder and index it (write lock);
        MediaError (file removed again) when it cannot be indexed."""
        path = files.store_upload(self.settings.library, data)
        report = self.add([path])
        if report.failed:
            path.unlink(missing_ok=True)
            raise MediaError(str(path), report.failed[0][1])
        return AddedPhoto(self.catalog.image_for_path(str(path)), bool(report.added))

    def delete_photo(self, image_id: int) -> DeletedPhoto:
        """Forget every path of a photo; files kept under uploads/ go too, the user's own files stay."""
        if not self.catalog.has_image(image_id):
            raise NotFoundError(f"no photo with id {image_id}")
        paths = [r.path for r in self.catalog.image_paths(image_id)]
        removed = self.remove(paths)  # then the files we stored, once no path of the library names them
        deleted = files.delete_uploads(self.catalog, self.settings.library, paths)
        return DeletedPhoto(image_id, removed, deleted)
