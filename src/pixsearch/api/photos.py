"""What the REST API reads and writes about single photos, by catalog id only.

These run on the Library's worker thread (see ``api_worker``). Files are only ever found through the
catalog: a request names an integer id, never a path, and an original is served only if the file at the
catalog's path still has the size the catalog recorded (a swapped or vanished file is a 404).
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pixsearch.errors import NotFoundError
from pixsearch.library.facade import Library
from pixsearch.media import content_hash, load_image, thumbnail_bytes

__all__ = ["UPLOADS", "photo_info", "thumbnail", "original", "store_upload", "delete_photo", "guard"]

UPLOADS = "uploads"  # LIBRARY/uploads/: photos added through the API live here
_SUFFIX = {"JPEG": ".jpg", "MPO": ".jpg", "PNG": ".png", "WEBP": ".webp", "GIF": ".gif", "BMP": ".bmp"}
_SUFFIX |= {"TIFF": ".tif", "HEIF": ".heic"}
MEDIA_TYPES = {".jpg": "image/jpeg", ".jpeg": "image/jpeg", ".png": "image/png", ".webp": "image/webp"}
MEDIA_TYPES |= {".gif": "image/gif", ".bmp": "image/bmp", ".tif": "image/tiff", ".tiff": "image/tiff"}
MEDIA_TYPES |= {".heic": "image/heic", ".heif": "image/heif", ".jpe": "image/jpeg"}


def guard(lib: Library, image_id: int) -> None:
    """Raise NotFoundError for an unknown id, BlockedError for a photo the active region withholds."""
    if lib.catalog.db.execute("SELECT 1 FROM images WHERE id = ?", (image_id,)).fetchone() is None:
        raise NotFoundError(f"no photo with id {image_id}")
    check = getattr(lib, "check_photo", None)  # the content policy's photo side (contract 3)
    if callable(check):
        check(image_id)


def photo_info(lib: Library, image_id: int) -> dict[str, Any]:
    guard(lib, image_id)
    row = lib.catalog.images([image_id])[image_id]
    db = lib.catalog.db
    models = dict(db.execute("SELECT id, model FROM captions WHERE image_id = ?", (image_id,)).fetchall())
    labels = db.execute(
        "SELECT label, score FROM labels WHERE image_id = ? ORDER BY score DESC", (image_id,)
    ).fetchall()
    added = db.execute("SELECT added_at FROM images WHERE id = ?", (image_id,)).fetchone()[0]
    caps: list[dict[str, Any]] = [
        {"id": c.id, "text": c.text, "source": c.source, "model": models.get(c.id)} for c in row.captions
    ]
    # A caption about a restricted topic is withheld even on a photo that is not (it may be newer).
    enforcer = getattr(lib, "withhold", None)  # photo-side policy (withhold.py), when this build has it
    masked = enforcer.mask_texts(caps, lambda c: str(c["text"])) if enforcer is not None else caps
    shown = [c if isinstance(c, dict) else c.to_dict() for c in masked]
    return {
        "image_id": row.id,
        "name": Path(row.paths[0]).name if row.paths else "",
        "path": row.paths[0] if row.paths else "",
        "paths": list(row.paths),
        "width": row.width,
        "height": row.height,
        "added_at": added,
        "captions": shown,
        "labels": [{"label": lb, "score": round(float(s), 4)} for lb, s in labels],
        **urls(image_id),
    }


def urls(image_id: int) -> dict[str, str]:
    return {
        "thumbnail_url": f"/api/photos/{image_id}/thumbnail",
        "file_url": f"/api/photos/{image_id}/file",
    }


def thumbnail(lib: Library, image_id: int) -> bytes:
    guard(lib, image_id)
    row = lib.catalog.db.execute("SELECT thumbnail FROM images WHERE id = ?", (image_id,)).fetchone()
    if row is not None and row[0]:
        return bytes(row[0])
    path = original(lib, image_id)[0]  # no stored thumbnail (older catalog): make one
    return thumbnail_bytes(load_image(path))


def original(lib: Library, image_id: int) -> tuple[Path, str]:
    """(path, media type) of the photo's file, checked against the catalog."""
    guard(lib, image_id)
    rows = lib.catalog.db.execute(
        "SELECT path, size FROM paths WHERE image_id = ? ORDER BY path", (image_id,)
    ).fetchall()
    for p, size in rows:
        path = Path(p)
        try:
            if path.is_file() and path.stat().st_size == size:
                return path, MEDIA_TYPES.get(path.suffix.lower(), "application/octet-stream")
        except OSError:
            continue
    raise NotFoundError(f"the file of photo {image_id} is no longer where it was indexed")


@dataclass(frozen=True)
class Stored:
    path: Path
    created: bool


def store_upload(lib: Library, data: bytes) -> Stored:
    """Validate (decode) an uploaded photo and keep it as LIBRARY/uploads/<content hash>.<ext>."""
    img = load_image(data, name="upload")
    suffix = _SUFFIX.get(img.format or "", "")
    if not suffix:  # load_image already refuses other formats; re-detect from the bytes to be sure
        from PIL import Image

        suffix = _SUFFIX.get(Image.open(io.BytesIO(data)).format or "", ".img")
    folder = lib.settings.library / UPLOADS
    folder.mkdir(parents=True, exist_ok=True)
    path = (folder / f"{content_hash(data)}{suffix}").absolute()
    if path.is_file() and path.stat().st_size == len(data):
        return Stored(path, False)
    tmp = path.with_name(path.name + ".part")
    tmp.write_bytes(data)
    tmp.replace(path)
    return Stored(path, True)


def delete_photo(lib: Library, image_id: int) -> dict[str, Any]:
    """Forget every path of a photo; files we stored (uploads/) are deleted, others are left alone."""
    if lib.catalog.db.execute("SELECT 1 FROM images WHERE id = ?", (image_id,)).fetchone() is None:
        raise NotFoundError(f"no photo with id {image_id}")
    paths = [r[0] for r in lib.catalog.db.execute("SELECT path FROM paths WHERE image_id = ?", (image_id,))]
    removed = lib.remove(paths)
    uploads = (lib.settings.library / UPLOADS).absolute()
    deleted = 0
    for p in map(Path, paths):
        if p.parent == uploads and lib.catalog.get_path(str(p)) is None:
            p.unlink(missing_ok=True)
            deleted += 1
    return {"image_id": image_id, "paths_removed": removed, "files_deleted": deleted}
