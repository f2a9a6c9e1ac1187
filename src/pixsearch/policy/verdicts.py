"""The content policy's plain values: the minors topic's name, a region, a topic's settings, a verdict.

A leaf module: the policy parser (``rules.py``), the topic check (``topic.py``), the semantic check
(``semantic.py``), the photo side and enforcement all speak these types, and none of them needs another
to name them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

__all__ = ["ALLOWED", "MINORS", "QueryVerdict", "Region", "Topic"]

MINORS = "minors"
"""The topic a region restricts to withhold anything that describes or shows a person under 16: the only
topic shipped in ``data/policy.toml``, and the one photos are flagged for at index time."""


@dataclass(frozen=True)
class QueryVerdict:
    """Why a text is (not) blocked. ``reason`` names the rule ("lexicon:child", "age:12",
    "semantic", "semantic-unavailable"...), ``score`` the semantic similarity when it decided (else 1.0
    for a rule hit, 0.0 when allowed). For logs, tests and the eval: never shown to the user."""

    blocked: bool
    topic: str | None = None
    reason: str = ""
    score: float = 0.0


ALLOWED = QueryVerdict(False)


@dataclass(frozen=True)
class Region:
    name: str
    topics: tuple[str, ...]
    disclaimer: str


@dataclass(frozen=True)
class Topic:
    """One restricted topic's query-check settings (see data/policy.toml for their meaning)."""

    name: str
    description: str
    lexicon: str
    max_age: int | None = None
    fuzzy_min_len: int = 5
    semantic_model: str | None = None
    semantic_threshold: float = 1.0
    prototypes: tuple[str, ...] = ()
    counter_prototypes: tuple[str, ...] = ()
    semantic_margin: float = 0.0
    extra: dict[str, Any] = field(default_factory=dict)
