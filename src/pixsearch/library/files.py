"""One library photo by catalog id: its record (paths, size, captions, labels), its thumbnail, its original
file; and photos given as bytes, kept under the library's ``uploads/`` folder.

Why apart from the facade: the REST API names photos by id only and serves their files; these reads find
files only through the catalog (never a path from a request), and serve an original only if the file at the
catalog's path still holds the indexed bytes (size + mtime, else the content hash): a vanished file is a
NotFoundError, a changed one (edited, swapped, a link retargeted) a FileChangedError.
The functions take the parts of the library they use; the facade checks the region's policy first.
``media`` is imported on first use: a text search never loads it.
"""

from __future__ import annotations

import io
import stat
from operator import attrgetter
from pathlib import Path

from pixsearch.errors import FileChangedError, NotFoundError
from pixsearch.policy.enforcement import Enforcer
from pixsearch.results import PhotoCaption, PhotoInfo
from pixsearch.storage.catalog import Catalog
from pixsearch.storage.failures import storage_error

__all__ = ["UPLOADS", "delete_uploads", "original_file", "photo_info", "store_upload", "thumbnail"]

UPLOADS = "uploads"  # LIBRARY/uploads/: photos added as bytes (the REST API's uploads) live here
_SUFFIX = {"JPEG": ".jpg", "MPO": ".jpg", "PNG": ".png", "WEBP": ".webp", "GIF": ".gif", "BMP": ".bmp"}
_SUFFIX |= {"TIFF": ".tif", "HEIF": ".heic"}


def photo_info(catalog: Catalog, enforcer: Enforcer, image_id: int) -> PhotoInfo:
    """The record of a photo the library holds. A caption about a restricted topic is withheld even on a
    photo that is not (the caption may be newer than the photo's flag)."""
    row = catalog.images([image_id])[image_id]
    models = catalog.caption_models(image_id)
    caps = [PhotoCaption(c.id, c.text, c.source, models.get(c.id)) for c in row.captions]
    return PhotoInfo(
        image_id=row.id,
        paths=row.paths,
        width=row.width,
        height=row.height,
        added_at=catalog.added_at(image_id),
        captions=tuple(enforcer.mask_texts(caps, attrgetter("text"))),
        labels=tuple(catalog.enrichments.labels_of([image_id]).get(image_id, [])),
    )


def original_file(catalog: Catalog, image_id: int) -> Path:
    """The photo's file: its first path (in path order) that still holds the bytes that were indexed.

    Size and mtime as the catalog recorded them vouch for the bytes, as they do for the indexer; when
    either moved (an edit, a copy over it, a symbolic link pointed elsewhere) the file's content hash
    must still be the photo's, or it is not served as that photo: FileChangedError (HTTP 409) when a
    file is there but holds other bytes, NotFoundError when none is there at all."""
    from pixsearch.media import content_hash

    changed = False
    digest: str | None = None
    for row in catalog.image_paths(image_id):
        path = Path(row.path)
        try:
            st = path.stat()
            if not stat.S_ISREG(st.st_mode):
                continue
            if st.st_size == row.size and st.st_mtime_ns == row.mtime_ns:
                return path
            digest = digest or catalog.image_hash(image_id)
            if st.st_size == row.size and digest and content_hash(path) == digest:
                return path
        except OSError:
            continue
        changed = True
    if changed:
        raise FileChangedError(
            f"the file of photo {image_id} changed on disk since it was indexed; run `pixsearch index`"
        )
    raise NotFoundError(f"the file of photo {image_id} is no longer where it was indexed")


def thumbnail(catalog: Catalog, image_id: int) -> bytes:
    """The stored JPEG thumbnail (at most 256 px a side), or one made from the original (older catalogs)."""
    from pixsearch.media import load_image, thumbnail_bytes

    stored = catalog.thumbnail(image_id)
    if stored:
        return stored
    return thumbnail_bytes(load_image(original_file(catalog, image_id)))


def store_upload(library: Path, data: bytes) -> Path:
    """Validate (decode) a photo given as bytes and keep it as LIBRARY/uploads/<content hash>.<ext>; the
    same bytes again find the file already there."""
    from pixsearch.media import content_hash, load_image

    img = load_image(data, name="upload")
    suffix = _SUFFIX.get(img.format or "", "")
    if not suffix:  # load_image already refuses other formats; re-detect from the bytes to be sure
        from PIL import Image

        suffix = _SUFFIX.get(Image.open(io.BytesIO(data)).format or "", ".img")
    folder = library / UPLOADS
    folder.mkdir(parents=True, exist_ok=True)
    path = (folder / f"{content_hash(data)}{suffix}").absolute()
    if path.is_file() and path.stat().st_size == len(data):
        return path
    tmp = path.with_name(path.name + ".part")
    try:
        tmp.write_bytes(data)
        tmp.replace(path)
    except OSError as exc:  # a full disk: one typed line (HTTP 507), and no half photo left behind
        tmp.unlink(missing_ok=True)
        raise storage_error("the uploaded photo", exc, folder, len(data)) from exc
    return path


def delete_uploads(catalog: Catalog, library: Path, paths: list[str]) -> int:
    """Delete those of ``paths`` (just removed from the catalog) that are files we stored under uploads/
    and no longer indexed; returns how many. Other files are the user's and are left alone."""
    uploads = (library / UPLOADS).absolute()
    gone = [p for p in map(Path, paths) if p.parent == uploads and catalog.get_path(str(p)) is None]
    for p in gone:
        p.unlink(missing_ok=True)
    return len(gone)
