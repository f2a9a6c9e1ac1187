"""Match score: the shipped scorer on real photos, thresholds, describe, eval, bad inputs."""

from __future__ import annotations

import json
from pathlib import Path
from typing import cast

import pytest
from typer.testing import CliRunner

from pixsearch import Library
from pixsearch.cli import app
from pixsearch.config import load_settings
from pixsearch.errors import ConfigError, MediaError, ModelError, QueryError
from pixsearch.models.encoder import DEFAULT_ENCODER, create_encoder
from pixsearch.models.scorer import DEFAULT_SCORER, check_text, load_scorer, scorer_for, shipped_scorers
from pixsearch.search.matching import Matcher, check_threshold
from pixsearch.storage.catalog import Catalog

PHOTO = "1177994172_10d143cb8d.jpg"  # gallery: two boys squirting water guns at each other
GOOD = "two boys spraying each other with water guns"
BAD = "a red car parked in front of a tall office building"


@pytest.fixture(scope="module")
def lib(built_library: Path):
    with Library.open(built_library) as lb:
        yield lb


def _photo(gallery_subset: Path) -> Path:
    p = gallery_subset / "photos" / PHOTO
    assert p.is_file()
    return p


def test_score_match_vs_mismatch_both_modes(lib: Library, gallery_subset: Path) -> None:
    photo = _photo(gallery_subset)
    good, bad = lib.score(photo, GOOD), lib.score(photo, BAD)
    assert good.mode == bad.mode == "references"  # the photo has human captions in the library
    assert {"ref_max", "ref_mean", "dense"} <= set(good.signals)
    assert good.score > 0.5 > bad.score
    pg, pb = lib.score(photo, GOOD, references=False), lib.score(photo, BAD, references=False)
    assert pg.mode == pb.mode == "pixels" and "ref_max" not in pg.signals
    assert pg.score > pb.score + 0.1
    assert not good.low_confidence and 0.0 <= pb.score <= 1.0


def test_score_new_photo_is_pixels_only(lib: Library, flickr8k: Path) -> None:
    """A photo the library has never seen is decoded and scored from pixels (no references exist)."""
    name = (flickr8k / "test.txt").read_text().split()[0]
    data = (flickr8k / "images" / name).read_bytes()
    caps = [
        ln.split(",", 1)[1].strip('"')
        for ln in (flickr8k / "captions.csv").read_text().splitlines()
        if ln.startswith(name + ",")
    ]
    m = lib.score(data, caps[0])
    assert m.mode == "pixels" and 0.0 <= m.score <= 1.0
    assert m.score > lib.score(data, BAD if "car" not in caps[0] else "a cat asleep on a sofa").score


def test_text_checks(lib: Library, gallery_subset: Path) -> None:
    photo = _photo(gallery_subset)
    with pytest.raises(QueryError):
        lib.score(photo, "   ")
    long = lib.score(photo, (GOOD + " ") * 250)  # ~11,000 characters: truncated by the encoder
    assert long.low_confidence and 0.0 <= long.score <= 1.0
    fr = lib.score(photo, "deux garçons qui s'arrosent avec des pistolets à eau dans le jardin")
    assert fr.low_confidence and 0.0 <= fr.score <= 1.0
    assert check_text("deux enfants jouent dans le parc avec un chien").low_confidence
    assert check_text("Ein Hund läuft über die Wiese").low_confidence
    assert not check_text("A dog runs through the grass .").low_confidence


def test_undecodable_photo(lib: Library, tmp_path: Path) -> None:
    bad = tmp_path / "broken.jpg"
    bad.write_bytes(b"\xff\xd8\xff\xe0 not really a jpeg" * 10)
    with pytest.raises(MediaError):
        lib.score(bad, GOOD)


def test_threshold_validation(lib: Library, tmp_path: Path) -> None:
    for v in (-0.1, 1.5):
        with pytest.raises(QueryError):
            check_threshold(v)
        with pytest.raises(QueryError):
            lib.search("boys", threshold=v)
    cfg = tmp_path / "config.toml"
    cfg.write_text("threshold = 1.5\n")
    with pytest.raises(ConfigError):
        load_settings(env={"PIXSEARCH_CONFIG": str(cfg)})
    r = CliRunner().invoke(app, ["search", "boys", "--threshold", "2", "-L", str(lib.settings.library)])
    assert r.exit_code == 2 and "between 0 and 1" in r.output and len(r.output.strip().splitlines()) == 1


def test_search_results_carry_match_and_threshold(lib: Library) -> None:
    res = lib.search("two boys spraying water at each other", k=5, threshold=0.0)
    assert len(res) == 5 and all(r.match is not None and 0 <= r.match <= 1 for r in res)
    assert res[0].to_dict()["match"] == round(res[0].match, 4)
    top = lib.search("two boys spraying water at each other", k=5, threshold=0.5)
    assert top and all(r.match >= 0.5 for r in top) and not top.no_confident_match
    plain = lib.search(BAD, k=3)  # no cut by default (see matching.py); each result still has a match
    assert len(plain) == 3 and all(r.match is not None for r in plain) and not plain.no_confident_match
    none = lib.search(BAD, k=5, threshold=0.99)
    assert list(none) == [] and none.no_confident_match
    assert 1 <= len(none.below_threshold) <= 3 and all(r.match < 0.99 for r in none.below_threshold)


def test_cli_score_and_no_confident_match(built_library: Path, gallery_subset: Path) -> None:
    run = CliRunner()
    r = run.invoke(app, ["score", str(_photo(gallery_subset)), GOOD, "--json", "-L", str(built_library)])
    assert r.exit_code == 0, r.output
    d = json.loads(r.stdout)
    assert set(d) >= {"score", "mode", "signals", "low_confidence"} and d["mode"] == "references"
    # the values too: the CLI prints what Library.score computes (0.5 < good, as in the first test)
    with Library.open(built_library) as lb:
        want = lb.score(_photo(gallery_subset), GOOD)
    assert d["score"] == pytest.approx(want.score, abs=1e-3) and d["score"] > 0.5 and not d["low_confidence"]
    assert set(d["signals"]) == set(want.signals)
    assert all(d["signals"][k] == pytest.approx(v, abs=1e-3) for k, v in want.signals.items())
    r = run.invoke(app, ["search", BAD, "--threshold", "0.99", "--json", "-L", str(built_library)])
    d = json.loads(r.stdout)
    assert d["results"] == [] and d["no_confident_match"] is True and d["below_threshold"]
    assert all(0.0 <= x["match"] < 0.99 for x in d["below_threshold"])
    r = run.invoke(app, ["search", BAD, "--threshold", "0.99", "-L", str(built_library)])
    assert r.exit_code == 0 and "no confident match" in r.output


def test_describe(lib: Library, built_library: Path, gallery_subset: Path) -> None:
    res = lib.describe(_photo(gallery_subset), k=3)
    assert 1 <= len(res) <= 3
    assert all(r.match is not None and 0 <= r.match <= 1 for r in res)
    assert [r.match for r in res] == sorted((r.match for r in res), reverse=True)
    assert all(r.image_id and r.path for r in res)
    # the same k: the candidates reranked are the 3k nearest, so a larger k may surface a better one
    args = ["describe", str(_photo(gallery_subset)), "-k", "3", "--json", "-L", str(built_library)]
    r = CliRunner().invoke(app, args)
    d = json.loads(r.stdout)
    assert "generated" in d and d["results"] and "match" in d["results"][0]
    assert d["generated"] and isinstance(d["generated"], str)  # the shipped captioner wrote one
    matches = [x["match"] for x in d["results"]]
    assert all(0.0 <= m <= 1.0 for m in matches) and matches == sorted(matches, reverse=True)
    assert [x["match"] for x in d["results"][:3]] == pytest.approx([r.match for r in res], abs=1e-3)


def test_shipped_card_names_its_rows() -> None:
    s = load_scorer()
    rows = s.card["rows"]
    assert rows["judged_split"] == "test" and len(rows["judged_images"]) > 400
    assert "cross-validation" in s.card["cv"]["figures"]
    assert {frozenset(m) for m in s.models} >= {frozenset(("dense", "bank_joint", "bank_text"))}


@pytest.mark.parametrize(
    ("model", "scorer"), [("lite0-minilm-v1", "match-v1"), (DEFAULT_ENCODER, DEFAULT_SCORER)]
)
def test_matcher_takes_the_scorer_fitted_for_its_encoder(model: str, scorer: str) -> None:
    """Each shipped model gets the scorer whose card names its fingerprint, so a library indexed with
    the older model keeps its calibrated scores and one on the default model gets them too."""
    enc = create_encoder(model)
    m = Matcher(cast("Catalog", None), enc)
    assert m.scorer.name == scorer and m.scorer.card["encoder_fingerprint"] == enc.fingerprint
    assert m.usable
    assert load_scorer(encoder=enc.name, fingerprint=enc.fingerprint) is m.scorer  # one copy of the bank


def test_no_scorer_fits_a_raw_backbone() -> None:
    """No calibrated score rather than a wrong one: a model no shipped scorer was fitted for."""
    m = Matcher(cast("Catalog", None), create_encoder("lite0-raw"))
    assert not m.usable
    with pytest.raises(ModelError, match="fitted for model"):
        m.ensure_usable()


def test_default_scorer_is_the_default_encoders() -> None:
    assert load_scorer().name == DEFAULT_SCORER
    assert load_scorer().card["encoder"] == DEFAULT_ENCODER
    assert {"match-v1", DEFAULT_SCORER} <= {c[0] for c in shipped_scorers()}


def test_scorer_for_prefers_the_fingerprint_then_the_newest(tmp_path: Path) -> None:
    for name, enc, fp in [
        ("match-v1", "a", "a:1"),
        ("match-v2", "b", "b:1"),
        ("match-v9", "b", "b:1"),
        ("match-v10", "b", "b:2"),
        ("match-v11", "b", "b:1"),  # no bank beside the card: not a shipped scorer
    ]:
        (tmp_path / f"{name}.json").write_text(json.dumps({"encoder": enc, "encoder_fingerprint": fp}))
        if name != "match-v11":
            (tmp_path / f"{name}.safetensors").write_bytes(b"bank")
    assert [c[0] for c in shipped_scorers(tmp_path)] == ["match-v10", "match-v9", "match-v2", "match-v1"]
    assert scorer_for("b", "b:1", tmp_path) == "match-v9"  # newest fitted for that very model
    assert scorer_for("b", "b:2", tmp_path) == "match-v10"
    assert scorer_for("b", "b:3", tmp_path) == "match-v10"  # same name, other weights: Matcher says no
    assert scorer_for("a", "a:1", tmp_path) == "match-v1"
    assert scorer_for("c", "c:1", tmp_path) == DEFAULT_SCORER


def test_cli_score_without_a_library_uses_the_default_encoders_scorer(
    gallery_subset: Path, tmp_path: Path
) -> None:
    env = {"XDG_DATA_HOME": str(tmp_path / "no-library-here"), "PIXSEARCH_MODEL": ""}
    r = CliRunner().invoke(app, ["score", str(_photo(gallery_subset)), GOOD, "--json"], env=env)
    assert r.exit_code == 0, r.output
    d = json.loads(r.stdout)
    assert d["mode"] == "pixels" and set(d["signals"]) == {"dense", "bank_joint", "bank_text"}
    assert 0.0 <= d["score"] <= 1.0


def test_a_scorer_may_read_its_minilm_bank_from_another(tmp_path: Path) -> None:
    """``match-v2`` ships only its joint-space bank: the MiniLM vectors of the same bank captions are
    ``match-v1``'s (MiniLM does not depend on the joint model), read from that file. A card naming a
    file that is not there, or a bank whose rows differ, is a one-line ModelError."""
    import shutil

    from safetensors.numpy import load_file, save_file

    from pixsearch.models.scorer import _load
    from pixsearch.models.shipped import SCORERS_DIR

    v2 = load_scorer("match-v2")
    assert json.loads((SCORERS_DIR / "match-v2.json").read_text())["bank_text_from"] == "match-v1"
    assert "bank_text" not in load_file(str(SCORERS_DIR / "match-v2.safetensors"))
    assert v2.bank_text.shape == (len(v2.bank_joint), 384)
    assert (v2.bank_text == load_scorer("match-v1").bank_text).all()
    card = json.loads((SCORERS_DIR / "match-v2.json").read_text())
    shutil.copy(SCORERS_DIR / "match-v2.safetensors", tmp_path / "alone.safetensors")
    (tmp_path / "alone.json").write_text(json.dumps(card))
    with pytest.raises(ModelError, match="cannot read scorer"):
        _load(str(tmp_path / "alone.json"))  # match-v1.safetensors is not beside it
    save_file(
        {"bank_joint": load_file(str(SCORERS_DIR / "match-v2.safetensors"))["bank_joint"][:5]},
        str(tmp_path / "short.safetensors"),
    )
    shutil.copy(SCORERS_DIR / "match-v1.safetensors", tmp_path / "match-v1.safetensors")
    (tmp_path / "short.json").write_text(json.dumps(card))
    with pytest.raises(ModelError, match="matching joint and MiniLM rows"):
        _load(str(tmp_path / "short.json"))
