"""Enrichers at index time: labels and generated captions, stale recompute, --no-caption."""

from __future__ import annotations

import json
import shutil
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from pixsearch import Library
from pixsearch.config import FusionWeights, load_settings
from pixsearch.indexing.enrichers.base import Enricher
from pixsearch.indexing.enrichers.captions import CaptionsEnricher
from pixsearch.indexing.enrichers.labels import LabelsEnricher
from pixsearch.indexing.enrichers.registry import enrichers
from pixsearch.indexing.indexer import Indexer
from pixsearch.models.labels import label_classes, top_labels
from pixsearch.search.labels import label_search, labels_of

N = 8


@pytest.fixture(scope="module")
def photos(gallery_subset: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    d = tmp_path_factory.mktemp("enrich_photos")
    for p in sorted((gallery_subset / "photos").glob("*.jpg"))[:N]:
        shutil.copy(p, d / p.name)
    return d


class ListCaptioner:
    """Stand-in captioner for the bookkeeping tests: names the photo by the spatial map's mean.

    The real one (models/captioner.py) is exercised in ``test_real_captioner_at_index_time``.
    """

    def __init__(self, version: str) -> None:
        self.fingerprint = f"list-captioner:{version}"
        self.calls = 0

    def caption_features(self, spatial: np.ndarray, beam: int = 3) -> list[str]:
        self.calls += len(spatial)
        return [f"a photo {self.fingerprint} number {float(s.mean()):.4f}" for s in spatial]


def _run(lib: Library, photos: Path, enr: list) -> dict:
    return (
        Indexer(lib.catalog, lib.vectors, lib.encoder, 4, enr).run([photos]).to_dict()  # small batches
    )


def test_labels_enricher_runs_at_index_time_and_is_searchable(photos: Path, tmp_path: Path) -> None:
    with Library.open(tmp_path / "lib") as lib:
        rep = lib.add([photos], generate_captions=False)
        assert rep.added == N and rep.enriched["labels"] == N
        assert "labels" in rep.timings and rep.captions_generated == 0
        marks = (
            lib.catalog.connection_for_tests()
            .execute("SELECT COUNT(*) FROM enrichments WHERE name = 'labels'")
            .fetchone()
        )
        assert marks[0] == N  # every photo is done, with or without a label above the threshold
        got = labels_of(lib.catalog, [int(i) for i in lib.catalog.image_ids()])
        assert got, "no photo of the gallery got a confident label"
        iid, labs = next(iter(got.items()))
        word = labs[0][0].split()[-1]
        assert iid in label_search(lib.catalog, word, 50)  # searchable as words (FTS5)
        # ... and through the search fusion: a labels-only search still finds it
        s = replace(lib.settings, weights=FusionWeights(dense=0.0, caption=0.0, bm25=0.0, generated=0.0))
        with Library.open(lib.settings.library, settings=s) as only_labels:
            assert iid in [r.image_id for r in only_labels.search(word, k=10)]
        # a second run with the same models does nothing
        again = lib.add([photos], generate_captions=False)
        assert again.unchanged == N and again.enriched == {}


def test_label_words_include_families() -> None:
    cls = label_classes()
    assert len(cls) == 1000
    assert "dog" in cls[207].words.split()  # golden retriever
    assert "beach" in next(c for c in cls if c.name == "seashore").words.split()
    logits = np.full((1, 1000), -10.0, dtype=np.float32)
    logits[0, 207] = 10.0
    assert [c.name for c, _ in top_labels(logits)[0]] == ["golden retriever"]
    assert top_labels(np.zeros((1, 1000), dtype=np.float32))[0] == []  # uniform: nothing confident


def test_labels_recomputed_when_fingerprint_changes(photos: Path, tmp_path: Path) -> None:
    with Library.open(tmp_path / "lib") as lib:
        first = _run(lib, photos, [LabelsEnricher(lib.encoder, threshold=0.9)])
        assert first["enriched"] == {"labels": N}
        vecs_before = lib.catalog.image_vectors(lib.encoder.dim)[1]
        n_before = lib.catalog.connection_for_tests().execute("SELECT COUNT(*) FROM labels").fetchone()[0]
        low = LabelsEnricher(lib.encoder, threshold=0.01)
        assert low.fingerprint != LabelsEnricher(lib.encoder, threshold=0.9).fingerprint
        assert len(low.stale_ids(lib.catalog)) == N
        redo = _run(lib, photos, [low])
        assert redo["unchanged"] == N and redo["enriched"] == {"labels": N}
        n_after = lib.catalog.connection_for_tests().execute("SELECT COUNT(*) FROM labels").fetchone()[0]
        assert n_after > n_before
        db = lib.catalog.connection_for_tests()
        models = {r[0] for r in db.execute("SELECT DISTINCT model FROM labels")}
        assert models == {low.fingerprint}
        assert low.stale_ids(lib.catalog) == []
        np.testing.assert_array_equal(lib.catalog.image_vectors(lib.encoder.dim)[1], vecs_before)


def test_generated_captions_written_indexed_and_regenerated(
    photos: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # the stand-in captions ("list-captioner:1 number 0.4212") are not English: keep them on MiniLM
    monkeypatch.setenv("PIXSEARCH_MULTILINGUAL", "off")
    with Library.open(tmp_path / "lib") as lib:
        v1 = CaptionsEnricher(ListCaptioner("1"), lib.encoder)
        assert isinstance(v1, Enricher)
        rep = _run(lib, photos, [v1])
        assert rep["captions_generated"] == N and rep["enriched"] == {"captions": N}
        rows = (
            lib.catalog.connection_for_tests()
            .execute("SELECT id, text, source, model FROM captions")
            .fetchall()
        )
        assert (
            len(rows) == N
            and {r[2] for r in rows} == {"generated"}
            and {r[3] for r in rows} == {v1.fingerprint}
        )
        assert set(lib.vectors.get("captions").keys().tolist()) == {r[0] for r in rows}
        assert lib.stats()["generated_captions"] == N
        # searchable: the generated text finds its photo, which scores best on the generated signal (the
        # page is ranked by the match of the photo's pixels, which these stand-in captions do not know)
        text = rows[0][1]
        owner = lib.catalog.caption_owner([rows[0][0]])[rows[0][0]]
        found = {r.image_id: r.scores for r in lib.search(text, k=N)}
        assert found[owner]["generated"] > 0.99
        assert max(found, key=lambda i: found[i].get("generated", 0.0)) == owner
        # a new captioner makes every generated caption stale: replaced, old vectors dropped
        v2 = CaptionsEnricher(ListCaptioner("2"), lib.encoder)
        redo = _run(lib, photos, [v2])
        assert redo["captions_generated"] == N
        rows2 = lib.catalog.connection_for_tests().execute("SELECT id, model FROM captions").fetchall()
        assert len(rows2) == N and {r[1] for r in rows2} == {v2.fingerprint}
        assert set(lib.vectors.get("captions").keys().tolist()) == {r[0] for r in rows2}
        assert not {r[0] for r in rows} & {r[0] for r in rows2}


def test_photos_with_human_captions_get_no_generated_one(gallery_subset: Path, tmp_path: Path) -> None:
    with Library.open(tmp_path / "lib") as lib:
        cap = ListCaptioner("1")
        enr = CaptionsEnricher(cap, lib.encoder)
        Indexer(lib.catalog, lib.vectors, lib.encoder, 8, [enr]).run(
            [gallery_subset / "photos"],
            {n: t for n, t in _csv(gallery_subset / "captions.csv").items()},
        )
        c = lib.stats()
        assert c["generated_captions"] == 0 and c["human_captions"] > 0 and cap.calls == 0
        assert enr.stale_ids(lib.catalog) == []


def _csv(path: Path) -> dict[str, list[str]]:
    import csv

    out: dict[str, list[str]] = {}
    with open(path, encoding="utf-8") as f:
        for row in csv.DictReader(f):
            out.setdefault(row["image"], []).append(row["caption"])
    return out


def test_no_caption_turns_generated_captions_off(photos: Path, tmp_path: Path) -> None:
    s = load_settings(library=tmp_path / "lib")
    with Library.open(tmp_path / "lib") as lib:
        names_off = [e.name for e in enrichers(replace(s, generate_captions=False), lib.encoder)]
        assert "captions" not in names_off and "labels" in names_off
    from typer.testing import CliRunner

    from pixsearch.cli import app

    res = CliRunner().invoke(
        app, ["index", str(photos), "--no-caption", "--json", "-L", str(tmp_path / "cli")]
    )
    assert res.exit_code == 0, res.output
    rep = json.loads(res.stdout)
    assert rep["added"] == N and rep["captions_generated"] == 0 and "captions" not in rep["enriched"]


def test_real_captioner_at_index_time(photos: Path, tmp_path: Path) -> None:
    """With the shipped captioner, ``index --caption`` captions every photo that has no caption."""
    with Library.open(tmp_path / "lib") as lib:
        on = replace(lib.settings, generate_captions=True)
        assert "captions" in [e.name for e in enrichers(on, lib.encoder)], "the captioner is not shipped"
        rep = lib.add([photos], generate_captions=True)
        assert rep.captions_generated == N
        db = lib.catalog.connection_for_tests()
        rows = db.execute(
            "SELECT p.path, c.text FROM captions c JOIN paths p ON p.image_id = c.image_id"
            " WHERE c.source = 'generated'"
        ).fetchall()
        assert len(rows) == N
        # each stored caption is the captioner's own for that photo (not another photo's, not a stub)
        for path, text in rows:
            assert text == lib.caption(Path(path), beam=3), path
        assert len({t for _, t in rows}) > 1  # photos of different things get different words


def test_named_captioner_that_cannot_load_is_an_error(tmp_path: Path) -> None:
    from pixsearch.errors import ModelError

    s = load_settings(
        library=tmp_path / "lib", captioner=str(tmp_path / "no-such-captioner"), generate_captions=True
    )
    with Library.open(tmp_path / "lib") as lib:
        with pytest.raises(ModelError):
            enrichers(s, lib.encoder)
        # turned off, it is not even loaded
        assert "captions" not in [e.name for e in enrichers(replace(s, generate_captions=False), lib.encoder)]


def test_captioning_is_off_by_default(tmp_path: Path) -> None:
    """Measured: generated captions did not improve search for their cost (docs/model.md)."""
    s = load_settings(library=tmp_path / "lib")
    assert s.generate_captions is False
    with Library.open(tmp_path / "lib") as lib:
        assert "captions" not in [e.name for e in enrichers(s, lib.encoder)]
