"""Composed queries (library/composing.py): the CLI's TERM + TERM - TERM syntax, the joint-space sum on
the real gallery library, and POST /api/search."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from fastapi.testclient import TestClient

from pixsearch import Library
from pixsearch.api.app import create_app
from pixsearch.errors import QueryError
from pixsearch.library.composing import Term, parse_terms
from pixsearch.results import Result


def test_parse_terms_reads_operators_weights_and_photos(tmp_path: Path) -> None:
    photo = tmp_path / "beach.jpg"
    photo.write_bytes(b"not read here")
    assert parse_terms(["two", "dogs"]) == [Term(text="two dogs")]
    assert parse_terms([]) == []
    assert parse_terms(["a dog", "+", "2:snow", "-", "grass"]) == [
        Term(1.0, text="a dog"),
        Term(2.0, text="snow"),
        Term(-1.0, text="grass"),
    ]
    assert parse_terms(["dog", "-", "0.5:" + str(photo)]) == [Term(1.0, text="dog"), Term(-0.5, photo=photo)]
    for bad in (["dog", "+"], ["dog", "+", "-", "cat"], ["dog", "cat", "+", "x"], ["dog", "+", "0:cat"]):
        with pytest.raises(QueryError):
            parse_terms(bad)
    with pytest.raises(QueryError):
        Term(text="a", photo=1)


def _ids(res: list) -> list[int]:
    return [r.image_id for r in res if isinstance(r, Result)]


def test_compose_is_the_normalised_weighted_sum(built_library: Path) -> None:
    with Library.open(built_library) as lib:
        enc = lib.encoder
        t = enc.encode_text(["a dog", "snow"]).astype(np.float64)
        want = t[0] + t[1]
        want /= np.linalg.norm(want)
        images = lib.vectors.get("images")
        ids = np.array(sorted(lib.catalog.image_ids().tolist()))
        exact = images.get(ids) @ want.astype(np.float32)
        best = [int(ids[i]) for i in np.argsort(-exact)[:5]]
        got = lib.compose([Term(text="a dog"), Term(text="snow")], k=5)
        assert _ids(got) == best and all(r.match is None for r in got if isinstance(r, Result))
        # a photo term: the photo itself is left out, and its look-alikes lead
        one = int(ids[0])
        like = lib.compose([Term(photo=one)], k=3)
        assert one not in _ids(like) and _ids(like) == _ids(lib.similar(one, k=3))
        # minus a photo: that photo's nearest neighbour falls behind where "a dog" alone put it
        plain = _ids(lib.compose([Term(text="a dog")], k=24))
        less = _ids(lib.compose([Term(text="a dog"), Term(-1.0, photo=plain[0])], k=24))
        assert plain[0] not in less and less != plain[1:]
        with pytest.raises(QueryError, match="cancel"):
            lib.compose([Term(text="snow"), Term(-1.0, text="snow")])


@pytest.fixture(scope="module")
def client(built_library: Path) -> Iterator[TestClient]:
    with TestClient(create_app(library=built_library, allowed_hosts=["testserver"])) as c:
        yield c


def test_rest_composed_search(client: TestClient) -> None:
    r = client.post(
        "/api/search", json={"terms": [{"text": "a dog"}, {"text": "grass", "weight": -1}], "k": 4}
    )
    assert r.status_code == 200, r.text
    body = r.json()
    assert len(body["results"]) == 4 and all("match" not in x for x in body["results"])
    first = body["results"][0]["image_id"]
    r = client.post(
        "/api/search", json={"terms": [{"text": "a dog"}, {"photo_id": first, "weight": -1}], "k": 4}
    )
    assert r.status_code == 200 and first not in [x["image_id"] for x in r.json()["results"]]
    assert client.post("/api/search", json={"terms": [{"photo_id": 999999}]}).status_code == 404
    assert client.post("/api/search", json={"terms": []}).status_code == 422
    assert client.post("/api/search", json={"terms": [{"text": "a", "photo_id": 1}]}).status_code == 400
