"""What a photo file says about itself, read at index time: capture time, camera, lens, GPS position and
its place name, orientation, and the descriptions and keywords its owner already wrote (EXIF, IPTC, XMP in
the file or a ``.xmp`` sidecar beside it).

Pure reading, no catalog: ``photo.read_photo_meta`` turns a path into a frozen ``PhotoMeta``; the
metadata enricher (``indexing/enrichers/metadata.py``) stores it. One module per source: ``dates``
(the formats cameras and editors write times in), ``exif``, ``iptc``, ``xmp`` (+ sidecars), ``places``
(offline reverse geocoding). Anything broken or absurd in a file leaves that field absent, never an error.
"""

from pixsearch.indexing.metadata.photo import PhotoMeta, read_photo_meta

__all__ = ["PhotoMeta", "read_photo_meta"]
