"""Content policy: regions, topics, the query check and the disclaimer (the query side).

Some regions forbid a search service to give out anything that describes or shows a person under 16.
A *region* restricts *topics*; the only topic shipped is ``minors``. The policy is a TOML
file shipped in the package (``data/policy.toml``) with an optional user file merged over it; it is
parsed once, at start: a broken file or an unknown region is a :class:`ConfigError` then, never a silent
"allow everything".

``Policy.check_query`` decides whether a text is about a restricted topic of the active region. In a
region with no restricted topics it does no work at all (the common case stays cheap). The decision
itself (normalisation, lexicon, ages, look-alike exceptions, semantic similarity) lives in
``text.py``, ``topic.py`` and ``semantic.py``, the values they share in ``verdicts.py``; this module is
the stable surface others build on:

* ``load_policy(settings) -> Policy``; ``Policy.with_region(name)`` for another region,
  ``Policy.tightened(name)`` for a per-request one (REST API: only at least as strict, else RegionError);
* ``Policy.check_query(text) -> QueryVerdict`` (region's topics), ``Policy.check_text(text, topic)``
  (one topic, whatever the region: index-time flags of captions), ``Policy.ensure_allowed(text)``
  (raises :class:`BlockedError`), ``Policy.start_check(text).wait()`` (the same, overlapped with the
  caller's own work), ``Policy.restricts(topic)``, ``Policy.restricted``,
  ``Policy.disclaimer``, ``Policy.blocked()`` (a BlockedError to raise), ``Policy.fingerprint``.
"""

from __future__ import annotations

import hashlib
import json
import threading
import tomllib
from concurrent.futures import Future, ThreadPoolExecutor
from functools import cached_property
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pixsearch.errors import BlockedError, ConfigError, RegionError
from pixsearch.policy.verdicts import ALLOWED, MINORS, QueryVerdict, Region, Topic

if TYPE_CHECKING:
    from pixsearch.config import Settings
    from pixsearch.policy.topic import TopicChecker

__all__ = [
    "DISCLAIMER",
    "MINORS",
    "PendingCheck",
    "Policy",
    "QueryVerdict",
    "Region",
    "Topic",
    "load_policy",
    "shipped_policy_text",
]

DISCLAIMER = "This image is unavailable in your country in compliance with local laws."


def shipped_policy_text() -> str:
    return resources.files("pixsearch.data").joinpath("policy.toml").read_text(encoding="utf-8")


def _merge(base: dict[str, Any], over: dict[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for k, v in over.items():
        out[k] = _merge(out[k], v) if isinstance(v, dict) and isinstance(out.get(k), dict) else v
    return out


def _parse(text: str, where: str) -> dict[str, Any]:
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"policy file {where} is not valid TOML ({exc})") from exc


def _str(d: dict[str, Any], key: str, where: str, default: str | None = None) -> str:
    v = d.get(key, default)
    if not isinstance(v, str) or not v.strip():
        raise ConfigError(f"policy {where}: '{key}' must be a non-empty string")
    return v


def _strings(d: dict[str, Any], key: str, where: str) -> tuple[str, ...]:
    v = d.get(key, [])
    if not isinstance(v, list) or not all(isinstance(x, str) and x.strip() for x in v):
        raise ConfigError(f"policy {where}: {key} must be a list of non-empty strings")
    return tuple(v)


def _topic(name: str, d: Any) -> Topic:
    where = f"topic '{name}'"
    if not isinstance(d, dict):
        raise ConfigError(f"policy {where} must be a table")
    known = {
        "description",
        "lexicon",
        "max_age",
        "fuzzy_min_len",
        "semantic_model",
        "semantic_threshold",
        "prototypes",
        "counter_prototypes",
        "semantic_margin",
    }
    max_age = d.get("max_age")
    if max_age is not None and (not isinstance(max_age, int) or isinstance(max_age, bool) or max_age < 0):
        raise ConfigError(f"policy {where}: max_age must be a non-negative integer")
    fz = d.get("fuzzy_min_len", 5)
    if not isinstance(fz, int) or isinstance(fz, bool) or fz < 3:
        raise ConfigError(f"policy {where}: fuzzy_min_len must be an integer >= 3")
    th = d.get("semantic_threshold", 1.0)
    if not isinstance(th, int | float) or isinstance(th, bool) or not -1.0 <= th <= 1.0:
        raise ConfigError(f"policy {where}: semantic_threshold must be a number in -1..1")
    protos = _strings(d, "prototypes", where)
    counter = _strings(d, "counter_prototypes", where)
    margin = d.get("semantic_margin", 0.0)
    if not isinstance(margin, int | float) or isinstance(margin, bool) or not -2.0 <= margin <= 2.0:
        raise ConfigError(f"policy {where}: semantic_margin must be a number in -2..2")
    model = d.get("semantic_model")
    if model is not None and not isinstance(model, str):
        raise ConfigError(f"policy {where}: semantic_model must be a string")
    if model:
        from pixsearch.policy.semantic import semantic_encoders

        if model not in semantic_encoders():
            names = ", ".join(semantic_encoders())
            raise ConfigError(f"policy {where}: unknown semantic_model '{model}' (known: {names})")
    return Topic(
        name=name,
        description=str(d.get("description", "")),
        lexicon=_str(d, "lexicon", where),
        max_age=max_age,
        fuzzy_min_len=fz,
        semantic_model=model or None,
        semantic_threshold=float(th),
        prototypes=protos,
        counter_prototypes=counter,
        semantic_margin=float(margin),
        extra={k: v for k, v in d.items() if k not in known},
    )


def _region(name: str, d: Any, topics: dict[str, Topic]) -> Region:
    where = f"region '{name}'"
    if not isinstance(d, dict):
        raise ConfigError(f"policy {where} must be a table")
    ts = d.get("topics", [])
    if not isinstance(ts, list) or not all(isinstance(t, str) for t in ts):
        raise ConfigError(f"policy {where}: topics must be a list of topic names")
    for t in ts:
        if t not in topics:
            raise ConfigError(f"policy {where} restricts unknown topic '{t}' (known: {', '.join(topics)})")
    return Region(name, tuple(ts), _str(d, "disclaimer", where, DISCLAIMER))


class Policy:
    """The parsed policy and its active region. Immutable; share it freely across threads."""

    def __init__(
        self,
        raw: dict[str, Any],
        region: str | None = None,
        base_dir: Path | None = None,
        _checkers: dict[str, TopicChecker] | None = None,
    ) -> None:
        self.raw = raw
        self.base_dir = base_dir  # where relative lexicon paths of a user file resolve
        topics = raw.get("topics", {})
        regions = raw.get("regions", {})
        if not isinstance(topics, dict) or not isinstance(regions, dict) or not regions:
            raise ConfigError("policy must have [regions.*] tables (and [topics.*] for what they restrict)")
        self.topics = {n: _topic(n, d) for n, d in topics.items()}
        self.regions = {n: _region(n, d, self.topics) for n, d in regions.items()}
        default = raw.get("default_region", "default")
        if default not in self.regions:
            raise ConfigError(f"policy default_region '{default}' is not a region")
        name = region or default
        if name not in self.regions:
            raise ConfigError(f"unknown region '{name}' (known: {', '.join(sorted(self.regions))})")
        self.region = self.regions[name]
        # Topic checkers are built lazily and shared between regions of one policy (with_region).
        self._checkers: dict[str, TopicChecker] = {} if _checkers is None else _checkers

    # -- region -----------------------------------------------------------------------------------
    def with_region(self, region: str | None) -> Policy:
        """The same policy seen from another region (per-request region of the REST API)."""
        if region is None or region == self.region.name:
            return self
        return Policy(self.raw, region, self.base_dir, self._checkers)

    def covers(self, region: str) -> bool:
        """Is ``region`` (a known one) at least as strict as the active region: does it restrict every
        topic this one does? Regions are ordered by what they restrict, not by name."""
        other = self.regions.get(region)
        return other is not None and set(other.topics) >= set(self.region.topics)

    def tightened(self, region: str | None) -> Policy:
        """This policy seen from ``region``, which may only be at least as strict as the active one.

        Why: the active region of a server or a pinned library is a floor; a request may ask for more
        restriction, never less, or any client could step out of a restricted region by naming another.
        A looser or unknown region is a :class:`RegionError` (HTTP 403 ``region_not_allowed``, exit 2).
        """
        if region is None or region == self.region.name:
            return self
        if not self.covers(region):
            allowed = ", ".join(sorted(n for n in self.regions if self.covers(n)))
            raise RegionError(
                f"region '{region}' is not allowed here: the region in force is '{self.region.name}' and "
                f"only a region at least as strict may be asked for ({allowed})"
            )
        return self.with_region(region)

    @property
    def disclaimer(self) -> str:
        return self.region.disclaimer

    @property
    def restricted(self) -> bool:
        """True when the active region restricts any topic (queries and photos are checked)."""
        return bool(self.region.topics)

    def restricts(self, topic: str) -> bool:
        return topic in self.region.topics

    def blocked(self, topic: str | None = None) -> BlockedError:
        return BlockedError(self.disclaimer, topic)

    # -- fingerprint ------------------------------------------------------------------------------
    @cached_property
    def fingerprint(self) -> str:
        """Hash of what decides a verdict (all topics, lexicon contents, semantic model names and
        thresholds), independent of the active region: flags stored at index time are per topic, and a
        change here makes them stale. The photo side adds its own models' identities to it."""
        from pixsearch.policy.semantic import model_identity
        from pixsearch.policy.topic import lexicon_text

        h = hashlib.sha256()
        h.update(json.dumps(self.raw.get("topics", {}), sort_keys=True, default=str).encode())
        for t in sorted(self.topics.values(), key=lambda t: t.name):
            h.update(lexicon_text(t.lexicon, self.base_dir).encode())
            if t.semantic_model:
                h.update(model_identity(t.semantic_model).encode())
        return "policy-" + h.hexdigest()[:16]

    # -- checks -----------------------------------------------------------------------------------
    def checker(self, topic: str) -> TopicChecker:
        if topic not in self.topics:
            raise ConfigError(f"unknown policy topic '{topic}'")
        if topic not in self._checkers:
            from pixsearch.policy.topic import TopicChecker

            self._checkers[topic] = TopicChecker(self.topics[topic], self.base_dir)
        return self._checkers[topic]

    def check_text(self, text: str, topic: str = MINORS) -> QueryVerdict:
        """Is ``text`` about ``topic``? Whatever the active region (index-time flags of captions)."""
        return self.checker(topic).check(text)

    def check_query(self, text: str) -> QueryVerdict:
        """Verdict for a user's query in the active region. No work in an unrestricted region."""
        for t in self.region.topics:
            v = self.check_text(text, t)
            if v.blocked:
                return v
        return ALLOWED

    def start_check(self, text: str) -> PendingCheck:
        """Check ``text`` while the caller works: the rules run now (a hit raises BlockedError at once),
        the semantic model on a worker thread. Call ``.wait()`` on the result before giving anything out.

        Why: the semantic check costs ~2 ms of CPU, about what a warm search spends encoding its own
        query; run side by side (both release the GIL in their matrix code) it adds ~nothing to the
        query's latency. A blocked query's results are computed and dropped, never shown.
        """
        if not self.region.topics:
            return _DONE
        pending = []
        for t in self.region.topics:
            checker = self.checker(t)
            v = checker.rule_verdict(text)
            if v is not None:
                raise self.blocked(v.topic)
            if checker.semantic is not None:
                pending.append((t, _pool().submit(checker.semantic.check, checker.semantic_input(text))))
        return PendingCheck(self, pending)

    def ensure_allowed(self, text: str) -> None:
        """Raise :class:`BlockedError` (carrying the disclaimer) when ``text`` is blocked here."""
        v = self.check_query(text)
        if v.blocked:
            raise self.blocked(v.topic)

    def warm(self) -> None:
        """Load every checker the active region needs now (lexicon, semantic model, prototypes), so a
        server's first query is not slow. A model that fails to load does not raise: its checker then
        blocks every query it sees (fail closed)."""
        for t in self.region.topics:
            self.checker(t).warm()


class PendingCheck:
    """A query check whose semantic half may still be running (``Policy.start_check``)."""

    def __init__(self, policy: Policy | None, pending: list[tuple[str, Future[QueryVerdict]]]) -> None:
        self._policy = policy
        self._pending = pending

    def wait(self) -> None:
        """Raise BlockedError if the text is blocked; return when it is allowed."""
        for _topic, fut in self._pending:
            v = fut.result()
            if v.blocked and self._policy is not None:
                raise self._policy.blocked(v.topic)


_DONE = PendingCheck(None, [])
_POOL: ThreadPoolExecutor | None = None
_POOL_LOCK = threading.Lock()


def _pool() -> ThreadPoolExecutor:
    global _POOL
    with _POOL_LOCK:
        if _POOL is None:
            _POOL = ThreadPoolExecutor(max_workers=2, thread_name_prefix="pixsearch-policy")
        return _POOL


def load_policy(settings: Settings | None = None, region: str | None = None) -> Policy:
    """Parse the shipped policy, merge the user's file over it, pick the region.

    Region: ``region`` argument > ``settings.region`` (flag / PIXSEARCH_REGION / config) > the
    policy's ``default_region``. Errors (missing or broken user file, unknown region or topic, bad
    values) are one-line ConfigErrors.
    """
    raw = _parse(shipped_policy_text(), "(shipped)")
    base_dir: Path | None = None
    user = settings.policy_file if settings is not None else None
    if user is not None:
        p = Path(user).expanduser()
        try:
            text = p.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise ConfigError(f"policy file {p} cannot be read ({exc})") from exc
        raw = _merge(raw, _parse(text, str(p)))
        base_dir = p.parent
    chosen = region if region is not None else (settings.region if settings is not None else None)
    policy = Policy(raw, chosen, base_dir)
    for t in policy.region.topics:  # a missing or broken lexicon is an error at start too
        policy.checker(t).lexicon  # noqa: B018
    return policy
