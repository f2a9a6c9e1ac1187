"""What an index run did, as the CLI, the REST API and the benchmarks report it (``--json``)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

__all__ = ["IndexReport", "Progress"]

Progress = Callable[[int, int], None]


@dataclass
class IndexReport:
    added: int = 0
    updated: int = 0
    unchanged: int = 0
    duplicates: int = 0
    removed: int = 0
    captions_added: int = 0
    captions_generated: int = 0  # by the captions enricher (also counted in captions_added)
    enriched: dict[str, int] = field(default_factory=dict)  # enricher name -> photos it ran on
    failed: list[tuple[str, str]] = field(default_factory=list)
    kept: list[tuple[str, str]] = field(default_factory=list)  # reindex: unreadable now, kept (why)
    warnings: list[str] = field(default_factory=list)
    interrupted: bool = False
    # seconds per stage: decode, encode, store (SQLite), vectors, and each enricher by name; stages that
    # overlap in the pipelined engine (indexing/engine.py) each count their own busy time
    timings: dict[str, float] = field(default_factory=lambda: {"decode": 0.0, "encode": 0.0, "store": 0.0})

    def to_dict(self) -> dict:
        return {
            "added": self.added,
            "updated": self.updated,
            "unchanged": self.unchanged,
            "duplicates": self.duplicates,
            "removed": self.removed,
            "captions_added": self.captions_added,
            "captions_generated": self.captions_generated,
            "enriched": dict(self.enriched),
            "failed": [{"path": p, "reason": r} for p, r in self.failed],
            "kept": [{"path": p, "reason": r} for p, r in self.kept],
            "warnings": self.warnings,
            "interrupted": self.interrupted,
            "timings": {k: round(v, 3) for k, v in self.timings.items()},
        }
