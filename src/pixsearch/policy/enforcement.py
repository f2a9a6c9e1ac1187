"""Enforcement of the photo policy: the one place that hides flagged photos.

Every way a photo reaches a user goes through here: result lists (search, similar, describe) replace a
flagged photo by :class:`Withheld` (the disclaimer, nothing else: no id, path, caption or score); a
flagged photo asked for directly (id, path, bytes, thumbnail, file, captions) raises
:class:`BlockedError`; a text we are about to give out (a generated caption) is checked too. The
Library, the CLI and the REST API call this module; they never read the ``flags`` table themselves.

Only a region that restricts the ``minors`` topic enforces anything. There, a photo without a flag row
(indexed before the policy existed, or while its enricher was off) counts as flagged: unchecked photos
are never shown (fail closed) until ``pixsearch index`` checks them.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from typing import TYPE_CHECKING, Any, TypeVar

from pixsearch.policy.verdicts import MINORS
from pixsearch.results import Withheld

if TYPE_CHECKING:
    from pixsearch.policy.rules import Policy
    from pixsearch.storage.catalog import Catalog

__all__ = ["Enforcer", "Withheld"]

T = TypeVar("T")


class Enforcer:
    """Reads flags for one catalog as seen from one policy region. Cheap to build; holds no state.

    ``catalog=None``: no library (a photo captioned on its own); only the checks of new photos and texts
    apply, and any photo id counts as withheld."""

    def __init__(self, catalog: Catalog | None, policy: Policy) -> None:
        self.catalog = catalog
        self.policy = policy

    @property
    def active(self) -> bool:
        return self.policy.restricts(MINORS)

    @property
    def disclaimer(self) -> str:
        return self.policy.disclaimer

    def hidden(self, image_ids: Iterable[int]) -> set[int]:
        """Ids (of those given) the region withholds: flagged, or never checked."""
        ids = sorted({int(i) for i in image_ids})
        if not self.active or not ids:
            return set()
        if self.catalog is None:  # no flags to read: nothing is shown (fail closed)
            return set(ids)
        return set(ids) - self.catalog.enrichments.unflagged(ids)

    def ensure_visible(self, image_id: int | None) -> None:
        """BlockedError when the photo (by id) is withheld here; None (not in the library) passes."""
        if image_id is not None and self.hidden([image_id]):
            raise self.policy.blocked(MINORS)

    def ensure_text(self, text: str) -> None:
        """BlockedError when a text we would give out (a generated caption) is about a minor."""
        if self.active and self.policy.check_text(text, MINORS).blocked:
            raise self.policy.blocked(MINORS)

    def ensure_new_photo(self, rgb: Any, features: dict[str, Any], encoder_name: str) -> None:
        """A query photo that is not in the library (bytes, an outside file): the index-time photo check
        runs on it now (classifier + faces, no captions); BlockedError when it would be flagged. A photo
        about children is a request about children; a face model that does not load blocks (fail closed)."""
        if not self.active:
            return
        verdict = _checker(self.policy, encoder_name).check(features, [rgb])[0]
        if verdict.flagged:
            raise self.policy.blocked(MINORS)

    def mask(self, items: Sequence[T], image_id: Callable[[T], int]) -> list[T | Withheld]:
        """``items`` with each withheld photo's entry replaced by a :class:`Withheld` (order kept)."""
        if not self.active or not items:
            return list(items)
        hide = self.hidden(image_id(x) for x in items)
        w = Withheld(self.disclaimer)
        return [w if image_id(x) in hide else x for x in items]

    def mask_texts(self, items: Sequence[T | Withheld], text: Callable[[T], str]) -> list[T | Withheld]:
        """Caption results: also withhold one whose text is about a minor (its photo may be unflagged
        when the text came later than the flag)."""
        if not self.active:
            return list(items)
        w = Withheld(self.disclaimer)
        return [
            x if isinstance(x, Withheld) or not self.policy.check_text(text(x), MINORS).blocked else w
            for x in items
        ]


_CHECKERS: dict[tuple[str, str], Any] = {}


def _checker(policy: Policy, encoder_name: str) -> Any:
    """One PhotoChecker per (policy, encoder) per process: its models load once (~1 s)."""
    from pixsearch.policy.photo import photo_checker

    key = (policy.fingerprint, encoder_name)
    if key not in _CHECKERS:
        _CHECKERS[key] = photo_checker(policy, encoder_name)
    return _CHECKERS[key]
