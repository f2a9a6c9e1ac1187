"""The metadata enricher at index time, on real Flickr8k photos given EXIF, XMP sidecars and IPTC: rows in
``photo_meta``, keywords and place names as words, the owner's descriptions as human captions (vectors and
BM25); and a library indexed before the enricher existed (schema v5) gets all of it on its next index
without its photos being encoded again."""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from pixsearch import Library
from pixsearch.indexing.enrichers.base import Enricher
from pixsearch.indexing.enrichers.labels import LabelsEnricher
from pixsearch.indexing.enrichers.metadata import MetadataEnricher
from pixsearch.indexing.enrichers.registry import enrichers
from pixsearch.indexing.indexer import Indexer
from pixsearch.storage.schema import MIGRATIONS
from tests.unit.indexing.metadata.photos import PARIS, exif_for, photo, with_iptc, xmp_packet

DESCRIPTION = "Two kids eating crepes on the steps of Montmartre"


@pytest.fixture(scope="module")
def photos(flickr8k: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Six photos: Paris with EXIF and a sidecar description; New York with IPTC; an unset camera clock;
    an XMP-only keyword photo; two with no metadata (file times only)."""
    src = sorted((flickr8k / "images").glob("*.jpg"))[30:36]
    d = tmp_path_factory.mktemp("meta_photos")
    exif = exif_for(
        "2019:05:01 12:00:00", "+02:00", "Canon", "Canon EOS 5D Mark IV", "EF50mm f/1.8", PARIS, 1
    )
    photo(src[0], d / "paris.jpg", exif)
    (d / "paris.jpg.xmp").write_bytes(xmp_packet(DESCRIPTION, ("holiday", "crepes")))
    ny = photo(
        src[1],
        d / "ny.jpg",
        exif_for("2018:12:31 23:00:00", "-05:00", "Apple", "iPhone 12 mini", gps=(40.7128, -74.006)),
    )
    ny.write_bytes(with_iptc(ny.read_bytes(), None, ("skyline", "winter")))
    photo(
        src[2],
        d / "unset_clock.jpg",
        exif_for("1900:01:01 00:00:00", None, "NIKON CORPORATION", "NIKON D750"),
    )
    photo(src[3], d / "tagged.jpg", xmp=xmp_packet(None, ("birthday cake",)))
    photo(src[4], d / "plain1.jpg")
    photo(src[5], d / "plain2.jpg")
    return d


def _ids(lib: Library, photos: Path) -> dict[str, int]:
    out = {}
    for p in photos.glob("*.jpg"):
        iid = lib.catalog.image_for_path(str(p))
        assert iid is not None
        out[p.stem] = iid
    return out


def _check_metadata(lib: Library, photos: Path) -> None:
    ids = _ids(lib, photos)
    meta = lib.catalog.photo_meta.meta_for(list(ids.values()))
    assert len(meta) == 6
    paris, ny = meta[ids["paris"]], meta[ids["ny"]]
    assert (paris.taken_at, paris.taken_source, paris.camera, paris.lens) == (
        "2019-05-01T12:00:00+02:00", "exif", "Canon EOS 5D Mark IV", "EF50mm f/1.8",
    )  # fmt: skip
    assert paris.place is not None and "Paris" in paris.place and paris.country == "France"
    assert ny.country == "United States" and ny.taken_at == "2018-12-31T23:00:00-05:00"
    unset = meta[ids["unset_clock"]]
    assert unset.taken_source == "file" and unset.camera == "NIKON D750"
    assert unset.taken_ts == (photos / "unset_clock.jpg").stat().st_mtime
    assert {meta[ids[n]].taken_source for n in ("tagged", "plain1", "plain2")} == {"file"}
    pm, pt = lib.catalog.photo_meta, lib.catalog.photo_texts
    assert pm.ids_at_place("paris") == {ids["paris"]} and pm.ids_near(*PARIS, 10) == {ids["paris"]}
    assert pm.ids_with_camera("iphone") == {ids["ny"]}
    assert [i for i, _ in pt.fts_rank("paris", 10)] == [ids["paris"]]  # the place, as words
    assert [i for i, _ in pt.fts_rank("skyline", 10, kinds=["keyword"])] == [ids["ny"]]  # IPTC keyword
    assert [i for i, _ in pt.fts_rank("cake", 10)] == [ids["tagged"]]  # XMP keyword
    # the owner's description is a human caption: BM25 and a caption vector, like a captions CSV's
    caps = lib.catalog.captions_by_image([ids["paris"]])[ids["paris"]]
    assert (DESCRIPTION, "human") in caps
    hits = lib.catalog.fts_search("crepes montmartre", 5)
    assert hits and hits[0][1] == ids["paris"]
    assert hits[0][0] in lib.vectors.get("captions")
    assert all(lib.vectors.consistent().values())


def test_metadata_at_index_time(photos: Path, tmp_path: Path) -> None:
    with Library.open(tmp_path / "lib") as lib:
        assert [e.name for e in enrichers(lib.settings, lib.encoder)][0] == "metadata"
        assert isinstance(MetadataEnricher(lib.encoder), Enricher)
        rep = lib.add([photos])
        assert rep.added == 6 and not rep.failed and rep.enriched["metadata"] == 6
        assert (rep.captions_added, rep.captions_generated) == (1, 0)  # the description is not generated
        _check_metadata(lib, photos)
        stats = lib.stats()
        assert (stats["photos_with_metadata"], stats["photos_with_capture_time"]) == (6, 2)
        assert (stats["photos_with_gps"], stats["photos_with_place"], stats["keywords"]) == (2, 2, 5)
        assert stats["human_captions"] == 1
        again = lib.add([photos])
        assert again.unchanged == 6 and again.enriched == {}  # done at this fingerprint: not read again


class _Counting:
    """Counts the photos an encoder encodes (every image path of JointEncoder goes through these)."""

    def __init__(self, encoder: Any) -> None:
        self.photos = 0
        real_features, real_arrays = encoder.encode_image_features, encoder.encode_image_arrays

        def features(arrays: np.ndarray) -> dict[str, np.ndarray]:
            self.photos += len(arrays)
            return real_features(arrays)

        def arrays_(arrays: np.ndarray) -> np.ndarray:
            self.photos += len(arrays)
            return real_arrays(arrays)

        encoder.encode_image_features, encoder.encode_image_arrays = features, arrays_


def _as_v5(catalog: Path) -> None:
    """What a release at schema v5 left: no photo_meta, no photo_texts (the v6 script undone)."""
    db = sqlite3.connect(catalog)
    with db:
        assert "photo_meta" in MIGRATIONS[5]
        for t in ("photo_texts_fts", "photo_texts", "photo_meta"):
            db.execute(f"DROP TABLE {t}")
        db.execute("DELETE FROM enrichments WHERE name = 'metadata'")
    db.execute("PRAGMA user_version=5")
    db.close()


def test_a_v5_library_gets_metadata_on_the_next_index_without_encoding(photos: Path, tmp_path: Path) -> None:
    with Library.open(tmp_path / "lib") as lib:  # indexed as pixsearch did before the metadata enricher
        old = [e for e in enrichers(lib.settings, lib.encoder) if e.name != "metadata"]
        assert any(isinstance(e, LabelsEnricher) for e in old)
        Indexer(lib.catalog, lib.vectors, lib.encoder, 4, old, settings=lib.settings).run([photos])
        vectors_before = lib.catalog.image_vectors(lib.encoder.dim)[1]
    _as_v5(tmp_path / "lib" / "catalog.db")
    with Library.open(tmp_path / "lib") as lib:
        counted = _Counting(lib.encoder)
        rep = lib.add([photos])
        assert rep.unchanged == 6 and rep.added == 0 and rep.enriched["metadata"] == 6
        # Only the described photo is encoded again, by the policy enricher: its flag must see the caption
        # the description became. The five others are never decoded nor encoded.
        assert counted.photos == rep.enriched.get("policy", 0) <= 1
        np.testing.assert_array_equal(lib.catalog.image_vectors(lib.encoder.dim)[1], vectors_before)
        _check_metadata(lib, photos)
        assert lib.add([photos]).enriched == {} and counted.photos <= 1
