"""Result JSON: what the CLI's ``--json`` and the REST API give for a photo."""

from __future__ import annotations

from pixsearch.results import Result


def test_result_json_names_the_photo_its_match_and_score() -> None:
    r = Result(
        7, 0.01234567, ("/photos/trip/beach.jpg", "/copies/b.jpg"), ("a beach",), {"dense": 0.3}, match=0.4567
    )
    d = r.to_dict()
    assert d["path"] == "/photos/trip/beach.jpg" and d["name"] == "beach.jpg"
    assert d["match"] == 0.4567 and d["score"] == 0.0123
    api = r.to_dict({1: "/photos"})  # over HTTP: relative to the indexed root, the name unchanged
    assert api["path"] == "trip/beach.jpg" and api["root"] == 1 and api["name"] == "beach.jpg"
    assert "match" not in Result(1, 0.5, ("/p/x.jpg",), ()).to_dict()  # not scored: no match key


def test_a_name_that_is_not_utf8_is_shown_not_raised() -> None:
    raw = b"/photos/caf\xe9.jpg".decode("utf-8", "surrogateescape")
    d = Result(1, 0.5, (raw,), (), match=0.5).to_dict()
    assert d["name"] == "caf\ufffd.jpg" and d["path"] == "/photos/caf\ufffd.jpg"
