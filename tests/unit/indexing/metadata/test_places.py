"""Offline place names: the table ships inside the package, so no network is touched."""

from __future__ import annotations

import socket

import pytest

from pixsearch.indexing.metadata.places import OfflinePlaces, Place
from tests.unit.indexing.metadata.photos import PARIS


@pytest.fixture
def no_network(monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(*args: object, **kwargs: object) -> None:
        raise OSError("network is off in this test")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)


def test_paris_is_paris_france(no_network: None) -> None:
    places = OfflinePlaces()
    assert places.fingerprint.startswith("reverse_geocode-")
    got = places.names([PARIS])[0]
    assert got is not None and "Paris" in got.place and got.country == "France"
    assert got.text.startswith("Paris") and got.text.endswith("France")


def test_several_places_at_once_and_the_open_sea(no_network: None) -> None:
    got = OfflinePlaces().names(
        [(40.7128, -74.0060), (-33.8688, 151.2093), (0.0, -30.0), (35.6762, 139.6503)]
    )
    ny, sydney, atlantic, tokyo = got
    assert ny is not None and ny.country == "United States" and "New York" in ny.place
    assert sydney is not None and sydney.country == "Australia" and "Sydney" in sydney.place
    assert atlantic is None  # the nearest town is hundreds of km away: no place
    assert tokyo is not None and tokyo.country == "Japan"


def test_without_the_package_there_are_no_places(monkeypatch: pytest.MonkeyPatch) -> None:
    import builtins

    real = builtins.__import__

    def no_geocoder(name: str, *args: object, **kwargs: object) -> object:
        if name == "reverse_geocode":
            raise ImportError(name)
        return real(name, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(builtins, "__import__", no_geocoder)
    assert OfflinePlaces().names([PARIS]) == [None]
    assert Place("Paris", "").text == "Paris"
