"""The text->image pipeline on a real library: the same ranking and scores as the per-candidate path it
replaced (``fused_expected.json``), one encoder pass per query, and pruning that never changes the top."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from pixsearch import Library
from pixsearch.search.text import QueryVectors, TextSearch

EXPECTED = json.loads(Path(__file__).with_name("fused_expected.json").read_text())


def text_search(lib: Library, **kw: Any) -> TextSearch:
    views = lib.vectors.view("images"), lib.vectors.view("captions")
    return TextSearch(lib.catalog, lib.encoder, *views, lib.settings.weights, **kw)


def names(lib: Library) -> dict[int, str]:
    db = lib.catalog.connection_for_tests()
    return {i: Path(p).name for p, i in db.execute("SELECT path, image_id FROM paths")}


def test_ranking_and_scores_are_the_old_per_candidate_ones(mixed_library: Path) -> None:
    """Recorded from the old ``TextSearch`` (one ``fuse`` call per candidate) on this very library
    (record_fused.py): the same photos in the same order, with the same fused and per-signal scores."""
    with Library.open(mixed_library) as lib:
        name, ts = names(lib), text_search(lib)
        for q, want in EXPECTED["results"].items():
            got = ts.run(q, EXPECTED["depth"])
            assert [name[h.image_id] for h in got] == [w[0] for w in want], q
            for h, (_, score, signals) in zip(got, want, strict=True):
                assert h.score == pytest.approx(score, rel=1e-4), q
                assert h.scores.keys() == signals.keys(), q
                assert list(h.scores.values()) == pytest.approx(list(signals.values()), abs=1e-5), q


def test_pruning_unread_candidates_keeps_the_exact_top(mixed_library: Path) -> None:
    """With few hits per signal most candidates have no caption among the caption index's hits; those
    that cannot reach the top are left unread. The top is the same as with every candidate read."""
    queries = list(EXPECTED["results"])
    pruned_any = False
    with Library.open(mixed_library) as lib:
        for depth in (1, 3, 5):
            full, pruned = text_search(lib), text_search(lib)
            full.min_hits = pruned.min_hits = 1  # a 24-photo library: 4 x depth photos, 12 x depth captions
            full.prune = False
            for q in queries:
                a, b = full.rank(q, depth), pruned.rank(q, depth)
                assert a is not None and b is not None
                pruned_any |= len(b.ids) < len(a.ids)
                top_a = [(int(a.ids[i]), float(a.score[i])) for i in a.order()[:depth]]
                top_b = [(int(b.ids[i]), float(b.score[i])) for i in b.order()[:depth]]
                assert top_b == top_a, (q, depth)
    assert pruned_any  # the bound did leave candidates out


def test_search_encodes_the_query_once(mixed_library: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The search and its match scores share one encoder pass (it used to run twice per query)."""
    with Library.open(mixed_library) as lib:
        lib.search("warm up the models")
        calls: list[str] = []
        enc = type(lib.encoder)
        for method in ("encode_texts", "encode_captions", "encode_text"):
            real = getattr(enc, method)

            def counted(self: Any, texts: list[str], _real: Any = real, _m: str = method) -> Any:
                calls.append(_m)
                return _real(self, texts)

            monkeypatch.setattr(enc, method, counted)
        res = lib.search("a dog running through the snow", k=5)
        assert len(res) == 5 and all(r.match is not None for r in res)
        assert calls == ["encode_texts"], calls
        lib.search("a dog running through the snow", k=5, offset=5)  # the next page: no pass at all
        assert calls == ["encode_texts"], calls


def test_given_query_vectors_are_used(mixed_library: Path) -> None:
    """The caller's vectors replace the encoder pass (the words still feed BM25): the query's own vectors
    give the encoder's ranking, another text's vectors another ranking."""
    with Library.open(mixed_library) as lib:
        m, j = lib.encoder.encode_texts(["people on the beach", "a dog runs through the snow"])
        seen: list[str] = []

        def encode(text: str) -> QueryVectors:
            seen.append(text)
            return QueryVectors(m[0], j[0])

        hits = text_search(lib, encode=encode).run("  people on the beach  ", 3)
        assert seen == ["people on the beach"]
        ref = text_search(lib).run("people on the beach", 3)
        assert [h.image_id for h in hits] == [h.image_id for h in ref]
        assert np.allclose([h.score for h in hits], [h.score for h in ref])
        other = text_search(lib, encode=lambda _t: QueryVectors(m[1], j[1])).run("people on the beach", 3)
        assert [h.scores.get("dense") for h in other] != [h.scores.get("dense") for h in ref]
