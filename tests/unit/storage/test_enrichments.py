"""The enrichers' tables through their one write (``Enrichments.save``) and the reads that replaced SQL
elsewhere in the package: labels, policy flags, generated captions and the done marks."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from pixsearch.storage.captions import GeneratedCaption, GeneratedCaptions
from pixsearch.storage.catalog import Catalog
from pixsearch.storage.enrichments import FlagRow, Flags, LabelRow, Labels

E = np.zeros(3, dtype=np.float32)


@pytest.fixture
def cat(tmp_path: Path) -> Catalog:
    c = Catalog.open(tmp_path / "c.db")
    with c.transaction():
        for n in range(3):
            iid = c.add_image(f"h{n}", 4, 3, b"jpeg%d" % n, np.ones(4, dtype=np.float32))
            c.set_path(f"/p/{n}b.jpg", iid, 10 + n, 1)
            c.set_path(f"/p/{n}a.jpg", iid, 20 + n, 1)
    return c


def _marks(c: Catalog, name: str) -> list[tuple]:
    sql = "SELECT image_id, fingerprint FROM enrichments WHERE name = ? ORDER BY image_id"
    return c.connection_for_tests().execute(sql, (name,)).fetchall()


def test_labels_replace_and_mark_done(cat: Catalog) -> None:
    e = cat.enrichments
    assert e.not_done("labels", "v1") == [1, 2, 3]
    with cat.transaction():
        rows = [
            LabelRow(1, "golden retriever", "golden retriever dog", 0.9),
            LabelRow(1, "tennis ball", "ball", 0.5),
        ]
        assert e.save("labels", "v1", [1, 2], Labels(rows)) == []
    assert e.not_done("labels", "v1") == [3]  # photo 2 got no label but is done
    assert _marks(cat, "labels") == [(1, "v1"), (2, "v1")]
    assert e.labels_of([1, 2, 3]) == {1: [("golden retriever", pytest.approx(0.9)), ("tennis ball", 0.5)]}
    hits = e.label_matches("a dog", 10)
    assert [(h.image_id, h.label) for h in hits] == [(1, "golden retriever")]
    assert e.label_matches("   ", 10) == []
    with cat.transaction():  # redone at another fingerprint: the old labels go
        e.save("labels", "v2", [1], Labels([LabelRow(1, "seashore", "seashore beach", 0.7)]))
    assert e.labels_of([1]) == {1: [("seashore", pytest.approx(0.7))]}
    assert e.not_done("labels", "v2") == [2, 3]


def test_flags_are_their_own_record(cat: Catalog) -> None:
    e = cat.enrichments
    assert e.stale_flags("p1") == [1, 2, 3]
    with cat.transaction():
        rows = [
            FlagRow(1, True, {"reasons": ["face"], "n_captions": 0}),
            FlagRow(2, False, {"n_captions": 0}),
        ]
        e.save("policy", "p1", [1, 2], Flags(rows))
    assert _marks(cat, "policy") == []  # no done marks: the flag row carries its fingerprint
    assert e.stale_flags("p1") == [3]
    assert e.stale_flags("p2") == [1, 2, 3]
    assert e.unflagged([1, 2, 3]) == {2}
    with cat.transaction():  # a caption attached after the flag makes the photo stale again
        cat.add_captions(2, [("a dog", "human", E, None)])
    assert e.stale_flags("p1") == [2, 3]


def test_generated_captions_replace_the_old_ones(cat: Catalog) -> None:
    e = cat.enrichments
    with cat.transaction():
        cat.add_captions(3, [("people wrote this", "human", E, None)])
        first = e.save("captions", "c1", [1, 2], GeneratedCaptions([GeneratedCaption(1, "a dog", E, None)]))
    assert len(first) == 1 and cat.generated_caption_ids([1, 2, 3]) == first
    assert cat.caption_models(1) == {first[0]: "c1"}
    assert cat.human_captioned([1, 2, 3]) == {3}
    assert cat.captions_by_image([1, 3]) == {1: [("a dog", "generated")], 3: [("people wrote this", "human")]}
    with cat.transaction():
        again = e.save("captions", "c2", [1], GeneratedCaptions([GeneratedCaption(1, "a dog", E, E)]))
    assert again != first and cat.generated_caption_ids([1]) == again  # same text, a new row
    assert cat.caption_sources(again) == {again[0]: (1, "generated")}
    assert e.not_done("captions", "c2") == [2, 3]


def test_reads_that_replaced_sql_elsewhere(cat: Catalog, tmp_path: Path) -> None:
    assert cat.has_image(1) and not cat.has_image(99)
    assert cat.added_at(1) is not None and cat.added_at(99) is None
    assert cat.thumbnails([1, 2, 99]) == {1: b"jpeg0", 2: b"jpeg1"}
    assert [r.path for r in cat.image_paths(1)] == ["/p/0a.jpg", "/p/0b.jpg"]
    assert cat.first_paths([1, 2, 99]) == {1: "/p/0a.jpg", 2: "/p/1a.jpg"}
    assert cat.all_paths(ordered=True) == sorted(cat.all_paths())
    assert cat.integrity_ok()
    with cat.transaction():
        cat.set_meta("a", "1")
    assert cat.meta_values(["a", "missing"]) == {"a": "1"}
    with cat.transaction():
        cat.add_captions(1, [("two dogs on a sled", "human", E, None)])
    assert sorted(cat.human_captions_by_path()) == [  # once per path of the photo
        ("/p/0a.jpg", "two dogs on a sled", "human"),
        ("/p/0b.jpg", "two dogs on a sled", "human"),
    ]
    ((cid, bm25),) = cat.fts_rank("dogs sled", 5)
    assert bm25 > 0 and cat.fts_search("dogs sled", 5) == [(cid, 1, bm25)]


def test_replace_content_swaps_in_another_catalog(cat: Catalog, tmp_path: Path) -> None:
    other = Catalog.open(tmp_path / "other.db")
    with other.transaction():
        other.add_image("x", 1, 1, None, np.zeros(4, dtype=np.float32))
    other.checkpoint("TRUNCATE")
    other.close()
    cat.replace_content(tmp_path / "other.db")
    cat.checkpoint()
    assert cat.counts()["images"] == 1 and cat.all_paths() == []
    with pytest.raises(ValueError):
        cat.checkpoint("FULL")  # type: ignore[arg-type]
