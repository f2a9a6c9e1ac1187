"""``photo_texts``: words of a photo by kind (keywords, place names, OCR), replaced per kind, ranked by
BM25 over FTS5, counted."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from pixsearch.storage.catalog import Catalog
from pixsearch.storage.photo_texts import TextRow, TextRows


@pytest.fixture
def cat(tmp_path: Path) -> Catalog:
    c = Catalog.open(tmp_path / "c.db")
    with c.transaction():
        for n in range(1, 5):
            iid = c.add_image(f"h{n}", 4, 3, None, np.ones(4, dtype=np.float32))
            c.set_path(f"/p/{n}.jpg", iid, 10, 1)
        rows = [
            TextRow(1, "keyword", "Eiffel Tower"),
            TextRow(1, "keyword", "holiday"),
            TextRow(1, "keyword", "holiday"),  # once per photo
            TextRow(1, "place", "Paris, Île-de-France, France"),
            TextRow(2, "keyword", "birthday cake"),
            TextRow(3, "place", "Lyon, Auvergne-Rhône-Alpes, France"),
            TextRow(3, "keyword", "   "),  # nothing to store
        ]
        c.enrichments.save("metadata", "m1", [1, 2, 3], TextRows(("keyword", "place"), rows, marks_done=True))
    return c


def test_rows_by_kind(cat: Catalog) -> None:
    pt = cat.photo_texts
    assert pt.texts_of([1, 2, 3, 4], "keyword") == {1: ["Eiffel Tower", "holiday"], 2: ["birthday cake"]}
    assert pt.texts_of([1, 3], "place") == {
        1: ["Paris, Île-de-France, France"],
        3: ["Lyon, Auvergne-Rhône-Alpes, France"],
    }
    assert pt.counts() == {"keyword": 3, "ocr": 0, "place": 2}
    assert cat.enrichments.not_done("metadata", "m1") == [4]


def test_fts_rank_by_kind(cat: Catalog) -> None:
    pt = cat.photo_texts
    assert [i for i, _ in pt.fts_rank("paris", 10)] == [1]
    assert {i for i, _ in pt.fts_rank("france", 10)} == {1, 3}
    assert [i for i, _ in pt.fts_rank("rhone", 10)] == [3]  # accents folded (unicode61)
    assert pt.fts_rank("france", 10, kinds=["keyword"]) == []
    assert [i for i, _ in pt.fts_rank("a cake for the birthdays", 10, kinds=["keyword"])] == [2]  # stemmed
    hits = pt.fts_rank("holiday in paris", 10)
    assert [i for i, _ in hits] == [1] and hits[0][1] > 0  # one row per photo, positive bm25
    assert (
        pt.fts_rank("   ", 10) == [] and pt.fts_rank("paris", 0) == [] and pt.fts_rank("paris", 5, []) == []
    )


def test_a_kind_is_replaced_alone(cat: Catalog) -> None:
    pt = cat.photo_texts
    with cat.transaction():
        pt.save("ocr", [1], [TextRow(1, "ocr", "CAFE DE FLORE", 0.93)])
    with cat.transaction():  # the metadata enricher redoes photo 1: its OCR words stay
        cat.enrichments.save(
            "metadata", "m2", [1], TextRows(("keyword", "place"), [TextRow(1, "keyword", "café")])
        )
    assert pt.texts_of([1], "keyword") == {1: ["café"]} and pt.texts_of([1], "place") == {}
    assert pt.texts_of([1], "ocr") == {1: ["CAFE DE FLORE"]}
    assert [i for i, _ in pt.fts_rank("flore", 5, kinds=["ocr"])] == [1]
    assert [i for i, _ in pt.fts_rank("eiffel", 5)] == []  # the old keyword left the FTS index too
    with cat.transaction():
        pt.save("ocr", [1], [])
    assert pt.counts()["ocr"] == 0


def test_unknown_kinds_are_refused(cat: Catalog) -> None:
    with pytest.raises(ValueError, match="kinds"), cat.transaction():
        cat.photo_texts.save("tag", [1], [TextRow(1, "tag", "x")])
    with pytest.raises(ValueError, match="kinds"), cat.transaction():
        cat.photo_texts.save("ocr", [1], [TextRow(1, "keyword", "x")])  # a row of another kind
    assert cat.photo_texts.counts() == {"keyword": 3, "ocr": 0, "place": 2}  # rolled back whole


def test_deleting_a_photo_deletes_its_words(cat: Catalog) -> None:
    with cat.transaction():
        cat.remove_path("/p/1.jpg")
        cat.delete_orphans()
    assert cat.photo_texts.fts_rank("paris eiffel", 5) == []
    assert cat.photo_texts.counts() == {"keyword": 1, "ocr": 0, "place": 1}
