"""A photo with no library around it: its calibrated match score for a text (``pixsearch score PHOTO
TEXT`` where no library is; captions of such photos are ``photo.caption_outside``).

Why: the match score of a photo that no library holds comes from its pixels alone (pixels mode), so it
needs the shipped encoder and scorer, never a catalog; asking the user to build a library first for one
photo would be a wall, not a safeguard. The region applies as it does in a library: the text gets the
query check, and where the region withholds photos the photo gets the index-time photo check first.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, cast

from pixsearch.config import Settings
from pixsearch.library.photo import new_photo_vector
from pixsearch.models.backbones import decode_size
from pixsearch.models.encoder import create_encoder
from pixsearch.models.onnx_runtime import set_threads
from pixsearch.models.scorer import MatchScore, PhotoEvidence, check_text
from pixsearch.policy.enforcement import Enforcer
from pixsearch.search.matching import Matcher

if TYPE_CHECKING:
    from pixsearch.storage.catalog import Catalog

__all__ = ["score_outside"]


def score_outside(photo: Path, text: str, settings: Settings) -> MatchScore:
    """How likely a person would say ``text`` describes the photo file ``photo`` (pixels mode).

    BlockedError when the region forbids the text, or withholds the photo; QueryError for empty text;
    MediaError for a file that is no photo; ModelError when the scorer does not fit the encoder."""
    from pixsearch.media import load_image, read_bytes
    from pixsearch.policy.rules import load_policy

    policy = load_policy(settings)
    policy.ensure_allowed(text)
    check_text(text)
    set_threads(settings.threads)
    encoder = create_encoder(settings.model)
    # No catalog: a photo outside any library has no stored captions to gather, and scoring given
    # evidence (score_evidence) reads none.
    matcher = Matcher(cast("Catalog", None), encoder)
    matcher.ensure_usable()
    img = load_image(read_bytes(photo), name=str(photo), draft=decode_size(encoder.resolution))
    vec = new_photo_vector(Enforcer(None, policy), encoder, img)
    return matcher.score_evidence(text, [PhotoEvidence(vec)])[0]
