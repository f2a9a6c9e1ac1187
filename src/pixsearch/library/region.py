"""The content-policy region a library opens in, and the region an operator pins it to.

Why a module of its own: the region decides what a library may give out, so where it comes from must be
one rule. Asked for by ``--region`` / ``PIXSEARCH_REGION`` / config ``region``, else the policy's
``default_region``; a library may *pin* a region in its catalog (``pixsearch policy pin``, meta key
``region_pin``): then the pinned region is its floor: omitting the region opens it there, asking for a
looser (or unknown) one is a :class:`~pixsearch.errors.RegionError`, a stricter one is allowed. Every
opener (CLI commands, ``pixsearch serve``, the Python API) goes through :func:`library_policy`, so no
setting, client or script can look at a pinned library from a looser region.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace
from typing import TYPE_CHECKING, Protocol, TypeVar

from pixsearch.errors import ConfigError, RegionError
from pixsearch.policy.rules import Policy, load_policy

if TYPE_CHECKING:
    from pixsearch.config import Settings
    from pixsearch.storage.catalog import Catalog
    from pixsearch.storage.lock import LibraryLock

__all__ = ["PIN_KEY", "carry_pin", "library_pin", "library_policy", "pin_region", "pinned_region"]
__all__ += ["region_view", "unpin_region"]

PIN_KEY = "region_pin"


def pinned_region(catalog: Catalog) -> str | None:
    """The region the library is pinned to, or None."""
    return catalog.get_meta(PIN_KEY) or None


def library_policy(settings: Settings, catalog: Catalog) -> Policy:
    """The policy a library opens with: the region asked for, never looser than the one it pins.

    A pinned region the policy no longer defines (a user policy file changed) is a ConfigError: the
    library does not open rather than open unrestricted.
    """
    pin = pinned_region(catalog)
    if pin is None:
        return load_policy(settings)
    try:
        floor = load_policy(settings, region=pin)
    except ConfigError as exc:
        raise ConfigError(f"library {settings.library} is pinned to region '{pin}': {exc}") from exc
    if settings.region is None or settings.region == pin:
        return floor
    if not floor.covers(settings.region):
        raise RegionError(
            f"region '{settings.region}' is not allowed: library {settings.library} is pinned to region "
            f"'{pin}' and opens only in a region at least as strict (`pixsearch policy pin --show`)"
        )
    return load_policy(settings)


def pin_region(settings: Settings, region: str, wait: float = 0.0) -> str:
    """Pin the library at ``settings.library`` to ``region`` (a region of the policy); returns it.

    Loosening a pin is refused (RegionError): ``unpin_region`` first, on purpose, so that a typo cannot
    open a restricted library up. Holds the write lock for the one meta row; loads no model."""
    policy = load_policy(replace(settings, region=None))  # the regions; the caller's own one is moot here
    if region not in policy.regions:
        raise ConfigError(f"unknown region '{region}' (known: {', '.join(sorted(policy.regions))})")
    with _catalog(settings) as (catalog, lock), lock.hold(wait), catalog.transaction():
        old = pinned_region(catalog)
        if old is not None and old in policy.regions and not policy.with_region(old).covers(region):
            raise RegionError(
                f"region '{region}' is looser than the pinned region '{old}'; "
                "`pixsearch policy unpin` first to loosen it"
            )
        catalog.set_meta(PIN_KEY, region)
    return region


def unpin_region(settings: Settings, wait: float = 0.0) -> str | None:
    """Remove the pin (returns the region pinned until now, or None). Anyone who can write the library's
    directory can do this: the pin guards against clients and settings, not the machine's operator."""
    with _catalog(settings) as (catalog, lock), lock.hold(wait), catalog.transaction():
        old = pinned_region(catalog)
        catalog.delete_meta(PIN_KEY)
    return old


def library_pin(settings: Settings) -> str | None:
    """The region the library at ``settings.library`` is pinned to, or None (reads the catalog only)."""
    with _catalog(settings) as (catalog, _):
        return pinned_region(catalog)


@contextmanager
def _catalog(settings: Settings) -> Iterator[tuple[Catalog, LibraryLock]]:
    """The library's catalog (an existing library only: LibraryNotFoundError otherwise) and its lock."""
    from pixsearch.library.opening import open_catalog
    from pixsearch.storage.lock import LibraryLock

    s, catalog = open_catalog(None, settings, create=False, moving=False)
    try:
        yield catalog, LibraryLock(s.library)
    finally:
        catalog.close()


def carry_pin(old: Catalog, new: Catalog) -> None:
    """``reindex`` swaps a rebuilt catalog in: it must keep the region the library pins."""
    pin = pinned_region(old)
    if pin is not None:
        with new.transaction():
            new.set_meta(PIN_KEY, pin)


class _Regional(Protocol):
    policy: Policy
    settings: Settings


L = TypeVar("L", bound=_Regional)


def region_view(lib: L, region: str | None) -> L:
    """``lib`` seen from a stricter policy region (``Library.with_region``): the same catalog, encoder
    and indexes (close only the original), only the policy differs. The region ``lib`` was opened in is
    a floor: a region that restricts less, or an unknown one, is a RegionError."""
    policy = lib.policy.tightened(region)
    if policy is lib.policy:
        return lib
    other = object.__new__(type(lib))
    other.__dict__.update(lib.__dict__)
    other.policy = policy
    other.settings = replace(lib.settings, region=policy.region.name)
    return other
