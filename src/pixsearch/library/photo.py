"""A photo given to a read (``similar``, ``describe``, ``score``, ``caption``): by library id, by path, or as
bytes. Found in the library when it is there (by id, path or identical content), else decoded and encoded.

Why a module of its own: every photo-side read resolves its argument the same way, and each resolution
goes through the region's enforcement (``policy/enforcement.py``) before anything is given out; one place
keeps the rules alike. :class:`PhotoReads` holds the parts of the library these reads use; the facade
builds one per call. Files are read through ``media``'s guards (size limit, FIFOs/devices refused), like
the indexer; ``media`` and the captioner are imported on first use, so a text search never loads them.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from pixsearch.config import Settings
from pixsearch.errors import BlockedError, ModelError, NotFoundError, QueryError
from pixsearch.models.backbones import decode_size
from pixsearch.models.encoder import JointEncoder
from pixsearch.models.scorer import PhotoEvidence
from pixsearch.policy.enforcement import Enforcer
from pixsearch.results import CaptionResult, Description, Result, Withheld, check_page
from pixsearch.search.matching import Matcher
from pixsearch.search.terms import PhotoRef
from pixsearch.search.text import Hit
from pixsearch.storage.catalog import Catalog
from pixsearch.storage.vectorset import VectorSet

if TYPE_CHECKING:  # PIL is loaded with media, on first use
    from PIL import Image

__all__ = ["PhotoReads", "PhotoRef", "caption_outside", "new_photo_vector"]

Results = Callable[[list[Hit]], list[Result | Withheld]]


def _locate(catalog: Catalog, photo: Path | str | bytes, need_bytes: bool) -> tuple[int | None, bytes | None]:
    """(library image id or None, the photo's bytes or None): a path known to the catalog is not read
    unless ``need_bytes``; other bytes are looked up by content hash (the same photo under another name)."""
    from pixsearch.media import content_hash, read_bytes

    iid: int | None = None
    data: bytes | None = None
    if isinstance(photo, bytes):
        data = photo
    else:
        path = Path(photo).expanduser().absolute()
        iid = catalog.image_for_path(str(path))
        if need_bytes or iid is None:
            data = read_bytes(path)
    if iid is None and data is not None:
        iid = catalog.image_id_for_hash(content_hash(data))
    return iid, data


def new_photo_vector(enforcer: Enforcer, encoder: JointEncoder, img: Image.Image) -> np.ndarray:
    """The joint vector of a photo the library does not hold (bytes, an outside file). Where the region
    withholds photos, the index-time photo check runs on it first (BlockedError when it would be
    flagged): a photo of a child given as a query is a request about children, whatever is asked of it."""
    from pixsearch.media import thumbnail_bytes
    from pixsearch.policy.photo import rgb_of_thumbnail

    arr = encoder.preprocess(img)[None]
    if not enforcer.active:
        return encoder.encode_image_arrays(arr)[0]
    feats = encoder.encode_image_features(arr)
    enforcer.ensure_new_photo(rgb_of_thumbnail(thumbnail_bytes(img)), feats, encoder.name)
    return feats["embedding"][0]


def _caption_checked(img: Image.Image, beam: int, encoder: JointEncoder | None, enforcer: Enforcer) -> str:
    from pixsearch.models.captioner import caption_image

    text = caption_image(img, beam=beam, encoder=encoder)
    enforcer.ensure_text(text)  # a generated caption about a child is withheld too
    return text


def caption_outside(photo: Path, settings: Settings, beam: int = 3) -> str:
    """A caption for a photo file with no library (``pixsearch caption FILE`` without one).

    The region (``--region`` / ``PIXSEARCH_REGION`` / config) applies as in a library: where it withholds
    photos, the photo check runs on the pixels before any caption is written, and a caption about a
    child is withheld. Anything that keeps the check from running (encoder or policy models missing)
    raises or blocks: fail closed, never an unchecked caption.
    """
    from pixsearch.media import load_image, read_bytes
    from pixsearch.models.encoder import create_encoder
    from pixsearch.policy.rules import load_policy

    enforcer = Enforcer(None, load_policy(settings))
    data = read_bytes(photo)
    if not enforcer.active:
        return _caption_checked(load_image(data, name=str(photo), draft=256), beam, None, enforcer)
    encoder = create_encoder(settings.model)
    img = load_image(data, name=str(photo), draft=decode_size(encoder.resolution))
    new_photo_vector(enforcer, encoder, img)
    return _caption_checked(img, beam, encoder, enforcer)


@dataclass(frozen=True)
class PhotoReads:
    """The reads that start from a photo, over one library as seen from one policy region."""

    catalog: Catalog
    vectors: VectorSet
    encoder: JointEncoder
    enforcer: Enforcer  # the region's: every photo found in the library is checked here first

    def vector(self, image: PhotoRef) -> tuple[np.ndarray, int | None]:
        """(joint vector, library image id or None): the stored vector of a library photo, else the photo
        decoded and encoded (checked like an indexed photo where the region withholds photos)."""
        from pixsearch.media import load_image

        images = self.vectors.view("images")  # falls back to the catalog for a just-committed photo
        if isinstance(image, int):
            self.enforcer.ensure_visible(image)  # a flagged photo gives out nothing, whatever names it
            try:
                return images.get(np.array([image]))[0], image
            except KeyError:
                raise NotFoundError(f"no image with id {image} in the library") from None
        iid, data = _locate(self.catalog, image, need_bytes=False)
        if iid is not None:
            self.enforcer.ensure_visible(iid)
            try:
                return images.get(np.array([iid]))[0], iid
            except KeyError:  # removed since we looked it up
                if data is None:
                    raise NotFoundError(f"{image!s} is no longer in the library") from None
        assert data is not None
        img = load_image(data, draft=decode_size(self.encoder.resolution))
        return new_photo_vector(self.enforcer, self.encoder, img), None

    def caption(self, photo: PhotoRef, beam: int = 3, checked: bool = False) -> str:
        """A generated caption of the photo's pixels (see ``Library.caption``); a photo or a caption the
        region withholds raises BlockedError. A photo the library does not hold gets the photo check
        first, like any new photo (``checked``: the caller already ran it on these bytes)."""
        from pixsearch.media import load_image, read_bytes

        iid: int | None = None
        if isinstance(photo, int):
            self.enforcer.ensure_visible(photo)
            rows = self.catalog.images([photo])
            if photo not in rows or not rows[photo].paths:
                raise NotFoundError(f"no image with id {photo} in the library")
            iid, data = photo, read_bytes(Path(rows[photo].paths[0]))
        else:
            iid, got = _locate(self.catalog, photo, need_bytes=True)
            assert got is not None
            data = got
            if iid is not None:
                self.enforcer.ensure_visible(iid)
        label = None if isinstance(photo, bytes) else str(photo)
        img = load_image(data, name=label, draft=decode_size(self.encoder.resolution))
        if iid is None and not checked and self.enforcer.active:
            new_photo_vector(self.enforcer, self.encoder, img)  # BlockedError for a photo of a child
        return _caption_checked(img, beam, self.encoder, self.enforcer)

    def similar(self, image: PhotoRef, k: int, offset: int, results: Results) -> list[Result | Withheld]:
        """Image -> the most similar images in the library (the query image itself excluded), made into
        results by ``results`` (the Library's: metadata, the region's policy)."""
        check_page(k, offset)
        vec, own = self.vector(image)
        keys, sims = self.vectors.get("images").search(vec, k + offset + 1)
        pairs = zip(keys[0].tolist(), sims[0].tolist(), strict=True)
        hits = [Hit(int(i), float(s), {"dense": float(s)}) for i, s in pairs if int(i) != own]
        return results(hits[offset : offset + k])

    def describe(self, image: PhotoRef, matcher: Callable[[], Matcher], k: int = 5) -> Description:
        """The library's captions nearest the photo in the joint space, reranked by calibrated match (the
        scorer ``matcher()`` loads when first asked), with a generated caption (``Library.describe``)."""
        if not self.encoder.cross_modal or "caption_joint" not in self.vectors.specs:
            name = self.encoder.name
            raise QueryError(f"model {name} has no joint text space; describe needs a trained model")
        if k < 1:
            raise QueryError("k must be >= 1")
        vec, own = self.vector(image)
        keys, sims = self.vectors.get("caption_joint").search(vec, 3 * k)  # reranked by match below
        ids = [int(x) for x in keys[0]]
        owner = self.catalog.caption_owner(ids)
        rows = self.catalog.images(list(set(owner.values())))
        texts = {c.id: c.text for r in rows.values() for c in r.captions}
        first_path = {i: r.paths[0] if r.paths else "" for i, r in rows.items()}
        res = [
            CaptionResult(texts[c], float(s), owner[c], first_path[owner[c]])
            for c, s in zip(ids, sims[0].tolist(), strict=True)
            if c in texts
        ]
        m = matcher()
        if m.usable:  # rerank the 3k nearest by calibrated match
            ev = m.evidence([own], vec[None])[0] if own is not None else PhotoEvidence(vec)
            ms = m.score_texts([r.caption for r in res], ev)
            res = [replace(r, match=s.score) for r, s in zip(res, ms, strict=True)]
            res = sorted(res, key=lambda r: -(r.match or 0.0))
        res = res[:k]
        generated = None
        with contextlib.suppress(ModelError):  # no captioner shipped: no generated caption
            try:
                generated = self.caption(image, checked=True)  # self.vector checked a new photo
            except BlockedError:  # a generated caption about a child: the disclaimer instead
                generated = self.enforcer.disclaimer
        w = self.enforcer  # a flagged photo's captions, or any caption about a minor -> Withheld
        masked: list[CaptionResult | Withheld] = w.mask(res, lambda r: r.image_id)
        return Description(w.mask_texts(masked, lambda r: r.caption), generated)
