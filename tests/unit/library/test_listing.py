"""Filters, browse and date order through the Library, on real gallery photos with real EXIF written into
them (capture time, camera, GPS) and indexed by the real metadata enricher; and over the REST API."""

from __future__ import annotations

import base64
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from PIL import Image

from pixsearch import Library
from pixsearch.api.app import create_app
from pixsearch.errors import QueryError
from pixsearch.results import Result
from pixsearch.search.filters import Filters
from pixsearch.search.terms import Term

# name -> (capture time, camera model, GPS (lat, lon) or None); the rest of the photos have no EXIF
SHOTS = {
    "a.jpg": ("2023:07:14 10:00:00", "Canon EOS 5D", (48.8584, 2.2945)),  # Paris
    "b.jpg": ("2024:05:02 09:00:00", "NIKON D750", None),
    "c.jpg": ("2024:05:20 18:30:00", "Canon EOS R6", (40.7580, -73.9855)),  # New York
    "d.jpg": ("2024:06:01 07:00:00", "NIKON D750", None),
}


def _dms(x: float) -> tuple[float, float, float]:
    x = abs(x)
    d, m = int(x), int(x * 60) % 60
    return float(d), float(m), round((x * 3600) % 60, 3)


def _with_exif(src: Path, dst: Path, when: str, model: str, gps: tuple[float, float] | None) -> None:
    ex = Image.Exif()
    ex[0x010F], ex[0x0110] = model.split()[0].title(), model
    ex[0x8769] = {36867: when}
    if gps:
        lat, lon = gps
        ex[0x8825] = {1: "N" if lat >= 0 else "S", 2: _dms(lat), 3: "E" if lon >= 0 else "W", 4: _dms(lon)}
    with Image.open(src) as im:
        im.save(dst, exif=ex.tobytes(), quality=92)


@pytest.fixture(scope="module")
def dated(gallery_subset: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A library of 4 photos with EXIF in ``trips/`` and 4 without in ``misc/``."""
    root = tmp_path_factory.mktemp("dated")
    src = sorted((gallery_subset / "photos").glob("*.jpg"))
    (root / "photos" / "trips").mkdir(parents=True)
    (root / "photos" / "misc").mkdir()
    for (name, (when, model, gps)), s in zip(SHOTS.items(), src, strict=False):
        _with_exif(s, root / "photos" / "trips" / name, when, model, gps)
    for s in src[4:8]:
        shutil.copy(s, root / "photos" / "misc" / s.name)
    with Library.open(root / "lib") as lib:
        assert lib.add([root / "photos"]).added == 8
    return root


def _names(res: list) -> list[str]:
    return [Path(r.path).name for r in res if isinstance(r, Result)]


def test_results_carry_capture_time_camera_and_place(dated: Path) -> None:
    with Library.open(dated / "lib") as lib:
        by_name = {Path(r.path).name: r for r in lib.browse(k=8) if isinstance(r, Result)}
    a = by_name["a.jpg"]
    assert a.taken_at == "2023-07-14T10:00:00" and a.camera == "Canon EOS 5D"
    assert a.place is not None and a.place.endswith("France")
    d = a.to_dict()
    assert (d["taken_at"], d["camera"]) == ("2023-07-14T10:00:00", "Canon EOS 5D")


def test_browse_lists_the_filtered_photos_by_date(dated: Path) -> None:
    with Library.open(dated / "lib") as lib:
        may = Filters.parse(after="2024-05", before="2024-06")
        assert _names(lib.browse(may, "date")) == ["b.jpg", "c.jpg"]
        assert _names(lib.browse(may, "-date")) == ["c.jpg", "b.jpg"]
        trips = Filters.parse(folder=dated / "photos" / "trips")
        assert _names(lib.browse(trips, "date")) == ["a.jpg", "b.jpg", "c.jpg", "d.jpg"]
        assert _names(lib.browse(trips, "date", k=2, offset=1)) == ["b.jpg", "c.jpg"]
        assert set(_names(lib.browse(Filters.parse(camera="nikon")))) == {"b.jpg", "d.jpg"}
        assert _names(lib.browse(Filters.parse(near="40.75,-73.98,3"))) == ["c.jpg"]
        assert _names(lib.browse(Filters.parse(place="france"))) == ["a.jpg"]
        assert _names(lib.browse(Filters.parse(camera="canon", after="2024"))) == ["c.jpg"]
        assert lib.browse(Filters.parse(camera="leica")) == []
        assert len(lib.browse(k=24)) == 8  # no filter: every photo (file times date the others)


def test_search_returns_only_what_the_filters_allow(dated: Path) -> None:
    with Library.open(dated / "lib") as lib:
        every = lib.search("a dog", k=8)
        nikon = lib.search("a dog", k=8, filters=Filters.parse(camera="nikon"))
        assert set(_names(nikon)) == {"b.jpg", "d.jpg"}
        # the same photos in the same relative order as the unfiltered search
        order = [n for n in _names(every) if n in {"b.jpg", "d.jpg"}]
        assert _names(nikon) == order
        misc = lib.search("a dog", k=8, filters=Filters.parse(folder=dated / "photos" / "misc"))
        assert {Path(r.path).parent.name for r in misc if isinstance(r, Result)} == {"misc"}
        assert len(misc) == 4


def test_search_sorted_by_date_orders_its_best_matches(dated: Path) -> None:
    with Library.open(dated / "lib") as lib:
        trips = Filters.parse(folder=dated / "photos" / "trips")
        best = lib.search("a photo", k=4, filters=trips, threshold=0.0)
        dated_order = lib.search("a photo", k=4, filters=trips, threshold=0.0, sort="date")
        assert sorted(_names(best)) == sorted(_names(dated_order))
        assert _names(dated_order) == ["a.jpg", "b.jpg", "c.jpg", "d.jpg"]
        newest = lib.search("a photo", k=2, filters=trips, threshold=0.0, sort="-date")
        assert _names(newest) == ["d.jpg", "c.jpg"]
        with pytest.raises(QueryError):
            lib.search("a photo", sort="newest")
        # no photo reaches the threshold: the closest ones shown instead keep the date order asked for
        none = lib.search("a photo", k=4, filters=trips, threshold=0.99, sort="date")
        closest = _names(none.below_threshold)  # a.jpg .. d.jpg were taken in that order
        assert not list(none) and len(closest) >= 2 and closest == sorted(closest)


@pytest.fixture(scope="module")
def client(dated: Path) -> Iterator[TestClient]:
    app = create_app(library=dated / "lib", allowed_hosts=["testserver"])
    with TestClient(app) as c:
        yield c


def test_rest_search_filters_browse_and_errors(client: TestClient) -> None:
    r = client.get("/api/search", params={"after": "2024-05", "before": "2024-06", "sort": "date"})
    assert r.status_code == 200, r.text
    body = r.json()
    assert "query" not in body and [x["name"] for x in body["results"]] == ["b.jpg", "c.jpg"]
    assert body["results"][0]["camera"] == "NIKON D750" and body["results"][0]["taken_at"].startswith(
        "2024-05-02"
    )
    r = client.get("/api/search", params={"q": "a dog", "folder": "trips", "camera": "canon"})
    assert r.status_code == 200 and {x["name"] for x in r.json()["results"]} <= {"a.jpg", "c.jpg"}
    assert r.json()["query"] == "a dog"
    for bad in (
        {"after": "last week"},
        {"near": "paris"},
        {"sort": "newest"},
        {"after": "2025", "before": "2024"},
    ):
        r = client.get("/api/search", params=bad)
        assert r.status_code in (400, 422) and "error" in r.json(), (bad, r.text)  # 400: bad_query


def test_similar_by_id_and_by_upload_keep_to_the_filters(dated: Path, client: TestClient) -> None:
    with Library.open(dated / "lib") as lib:
        a = next(r for r in lib.browse(k=8) if isinstance(r, Result) and r.path.endswith("a.jpg"))
        misc = Filters.parse(folder=dated / "photos" / "misc")
        near = lib.similar(a.image_id, k=3, filters=misc)
        assert len(near) == 3 and {Path(r.path).parent.name for r in near if isinstance(r, Result)} == {
            "misc"
        }
        unfiltered = [r.image_id for r in lib.similar(a.image_id, k=8) if isinstance(r, Result)]
        in_misc = [i for i in unfiltered if i in {r.image_id for r in lib.browse(misc)}]
        assert [r.image_id for r in near if isinstance(r, Result)] == in_misc[:3]  # same order, restricted
    r = client.get(f"/api/photos/{a.image_id}/similar", params={"folder": "misc", "k": 3})
    assert r.status_code == 200 and {x["path"].split("/")[0] for x in r.json()["results"]} == {"misc"}
    data = (dated / "photos" / "trips" / "a.jpg").read_bytes()
    r = client.post(
        "/api/search/image", files={"file": ("a.jpg", data, "image/jpeg")}, params={"camera": "nikon"}
    )
    assert r.status_code == 200 and {x["name"] for x in r.json()["results"]} == {"b.jpg", "d.jpg"}
    up = base64.b64encode(data).decode()
    r = client.post("/api/search", json={"terms": [{"upload": up}], "k": 2, "folder": "trips"})
    assert r.status_code == 200, r.text
    assert [x["name"] for x in r.json()["results"]][0] != "a.jpg"  # the upload is that photo: left out
    r = client.post("/api/search", json={"terms": [{"upload": "not base64!"}]})
    assert r.status_code == 400 and r.json()["error"]["code"] == "bad_query"


def test_filters_on_the_milvus_store_give_what_usearch_gives(dated: Path, tmp_path: Path) -> None:
    """The same photos indexed with their vectors in Milvus Lite: a filtered search scores exactly the
    photos the filter allows (read back from the store), as on the default store."""
    from pixsearch.config import load_settings

    settings = load_settings(library=tmp_path / "mlib", store=f"milvus-lite:{tmp_path / 'vectors.db'}")
    with Library.open(settings=settings) as mlib, Library.open(dated / "lib") as lib:
        assert mlib.add([dated / "photos"]).added == 8
        for f in (Filters.parse(camera="nikon"), Filters.parse(after="2024-05", before="2024-06")):
            want = [(Path(r.path).name, round(r.score, 3)) for r in lib.search("a dog", k=8, filters=f)]
            got = [(Path(r.path).name, round(r.score, 3)) for r in mlib.search("a dog", k=8, filters=f)]
            assert got == want and len(got) == 2
        like = mlib.compose(
            [Term(text="a dog")], k=3, filters=Filters.parse(folder=dated / "photos" / "misc")
        )
        assert len(like) == 3 and all("/misc/" in r.path for r in like if isinstance(r, Result))


def test_timeline_of_a_result_set(client: TestClient) -> None:
    every = client.get("/api/timeline").json()
    assert {m["month"] for m in every["months"]} >= {"2023-07", "2024-05", "2024-06"}
    r = client.get("/api/timeline", params={"camera": "nikon"})
    assert r.status_code == 200 and r.json() == {
        "months": [{"month": "2024-05", "count": 1}, {"month": "2024-06", "count": 1}],
        "undated": 0,
    }
    q = client.get("/api/timeline", params={"q": "a photo", "folder": "trips"}).json()
    assert sum(m["count"] for m in q["months"]) + q["undated"] <= 4
    assert client.get("/api/timeline", params={"after": "soon"}).status_code == 400
