"""Offline reverse geocoding: a GPS position -> the name of the place (city, county, region) and country,
so a search for "paris" can find the photos taken there without any network.

Backed by ``reverse_geocode`` (LGPL-2.1; GeoNames' cities1000, CC BY 4.0, shipped inside the package:
~155,000 places with their region and county, looked up in a k-d tree). Its table is loaded on the first
position looked up (about a second and ~120 MB, so libraries without GPS never pay) and kept for the
process. The nearest known place further than ``max_km`` away (the middle of an ocean or a desert) is no
place at all: naming the nearest town 900 km off would make the photo match a search it has nothing to
do with. Without the package every position gets no place, and the fingerprint says so, so the next index
after installing it names them.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from importlib import metadata
from typing import Any, Protocol

from pixsearch.storage.photo_meta import haversine_km

__all__ = ["OfflinePlaces", "Place", "Places"]

log = logging.getLogger("pixsearch.indexing.metadata.places")

_PACKAGE = "reverse_geocode"


@dataclass(frozen=True)
class Place:
    place: str  # "Paris, Île-de-France": city, county, region (each once)
    country: str  # "France"

    @property
    def text(self) -> str:
        """Everything searchable about the place, in one line."""
        return ", ".join(p for p in (self.place, self.country) if p)


class Places(Protocol):
    """Names the places of GPS positions (``OfflinePlaces``; tests may give their own)."""

    @property
    def fingerprint(self) -> str:
        """Which table named the places: stored places named by another one are redone."""
        ...

    def names(self, points: Sequence[tuple[float, float]]) -> list[Place | None]: ...


class OfflinePlaces:
    """``reverse_geocode``'s nearest known place to each position, within ``max_km``."""

    def __init__(self, max_km: float = 50.0) -> None:
        self.max_km = max_km

    @property
    def fingerprint(self) -> str:
        try:
            return f"{_PACKAGE}-{metadata.version(_PACKAGE)}:{self.max_km:g}km"
        except metadata.PackageNotFoundError:
            return "no-geocoder"

    def names(self, points: Sequence[tuple[float, float]]) -> list[Place | None]:
        if not points:
            return []
        try:
            import reverse_geocode  # type: ignore[import-untyped]
        except ImportError:
            return [None] * len(points)
        try:
            found: list[dict[str, Any]] = reverse_geocode.search([tuple(p) for p in points])
        except (ValueError, OSError) as exc:  # a damaged install: no places, the photos still index
            log.warning("warning: no place names (%s)", exc)
            return [None] * len(points)
        return [self._place(p, f) for p, f in zip(points, found, strict=True)]

    def _place(self, point: tuple[float, float], hit: dict[str, Any]) -> Place | None:
        try:
            far = haversine_km(point[0], point[1], float(hit["latitude"]), float(hit["longitude"]))
        except (KeyError, TypeError, ValueError):
            return None
        if far > self.max_km:
            return None
        parts = [str(hit.get(k) or "").strip() for k in ("city", "county", "state")]
        place = ", ".join(dict.fromkeys(p for p in parts if p))
        country = str(hit.get("country") or hit.get("country_code") or "").strip()
        return Place(place, country) if place or country else None
