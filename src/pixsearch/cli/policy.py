"""Content-policy commands: ``pixsearch eval policy`` and ``pixsearch policy check|show|pin|unpin``.

``eval policy`` has two modes: ``--queries FILE.csv`` judges the query check
(``evaluation/policy_queries.py``); ``--data DIR --split SPLIT`` judges photos from their pixels
(``evaluation/policy_photos.py``).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from pixsearch.cli._common import (
    JsonOpt,
    LibraryOpt,
    ModelOpt,
    RegionOpt,
    WaitOpt,
    app,
    errors,
    eval_app,
    fail,
    group,
)
from pixsearch.cli.output import out, progress

policy_app = group("Inspect the content policy (regions, query check).")
app.add_typer(policy_app, name="policy")

PolicyFileOpt = Annotated[
    Path | None,
    typer.Option("--policy", help="Policy TOML merged over the shipped one (env PIXSEARCH_POLICY)."),
]


def _policy(policy_file: Path | None, region: str | None = None):  # type: ignore[no-untyped-def]
    from pixsearch.config import load_settings
    from pixsearch.policy.rules import load_policy

    return load_policy(load_settings(policy_file=policy_file, region=region))


@eval_app.command("policy")
def eval_policy(
    queries: Annotated[
        Path | None, typer.Option("--queries", help="CSV with query,blocked rows (query check).")
    ] = None,
    data: Annotated[
        Path | None, typer.Option("--data", help="Dataset dir (photo check, judged from pixels).")
    ] = None,
    split: Annotated[
        str | None,
        typer.Option("--split", help="Photos: dataset split (default val). Queries: the CSV's split column."),
    ] = None,
    policy_file: PolicyFileOpt = None,
    model: ModelOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Precision/recall of the content policy on labelled queries (--queries) or photos (--data)."""
    with errors():
        if (queries is None) == (data is None):
            fail("give exactly one of --queries FILE.csv or --data DIR", 2)
        if queries is not None:
            from pixsearch.evaluation.policy_queries import eval_policy_queries

            with progress(not as_json, "checking queries"):
                res = eval_policy_queries(queries, _policy(policy_file), split=split)
        else:
            assert data is not None
            # Photo mode: the photo check judged from pixels alone (evaluation/policy_photos.py).
            from pixsearch.evaluation.policy_photos import eval_policy_photos

            with progress(not as_json, "checking photos"):
                res = eval_policy_photos(data, split or "val", model)
        print(json.dumps(res, ensure_ascii=False)) if as_json else out.print_json(
            json.dumps(res, ensure_ascii=False)
        )


@policy_app.command("check")
def policy_check(
    text: Annotated[str, typer.Argument(metavar="TEXT", help="A query or caption to judge.")],
    region: RegionOpt = None,
    policy_file: PolicyFileOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Would TEXT be blocked in REGION? Prints the verdict and its reason (for operators, not users)."""
    with errors():
        pol = _policy(policy_file, region)
        v = pol.check_query(text)
        d = {"region": pol.region.name, "blocked": v.blocked, "topic": v.topic, "reason": v.reason}
        d["score"] = round(v.score, 4)
        if as_json:
            print(json.dumps(d, ensure_ascii=False))
        else:
            verdict = f"blocked ({v.topic}: {v.reason})" if v.blocked else "allowed"
            out.print(f"{pol.region.name}: {verdict}", highlight=False, markup=False)


@policy_app.command("show")
def policy_show(policy_file: PolicyFileOpt = None, as_json: JsonOpt = False) -> None:
    """Regions, the topics each restricts, disclaimers, and the policy fingerprint."""
    with errors():
        pol = _policy(policy_file)
        d = {
            "active_region": pol.region.name,
            "fingerprint": pol.fingerprint,
            "regions": {
                r.name: {"topics": list(r.topics), "disclaimer": r.disclaimer} for r in pol.regions.values()
            },
        }
        print(json.dumps(d, ensure_ascii=False)) if as_json else out.print_json(json.dumps(d))


@policy_app.command("pin")
def policy_pin(
    region: Annotated[
        str | None, typer.Argument(metavar="REGION", help="Region to pin the library to.")
    ] = None,
    show: Annotated[
        bool, typer.Option("--show", help="Print the pinned region (or none); change nothing.")
    ] = False,
    library: LibraryOpt = None,
    policy_file: PolicyFileOpt = None,
    wait: WaitOpt = False,
    as_json: JsonOpt = False,
) -> None:
    """Pin the library to REGION: it then opens in REGION or a stricter one only (every command, serve,
    the Python API); a looser --region / PIXSEARCH_REGION / config region is refused (exit 2)."""
    with errors():
        import math

        from pixsearch.config import load_settings
        from pixsearch.library.region import library_pin, pin_region

        if show == (region is not None):
            fail("give a REGION to pin, or --show", 2)
        settings = load_settings(library=library, policy_file=policy_file)
        patience = math.inf if wait else 0.0
        pinned = library_pin(settings) if show else pin_region(settings, str(region), patience)
        if as_json:
            print(json.dumps({"library": str(settings.library), "pinned_region": pinned}))
        else:
            what = f"pinned to region {pinned}" if pinned else "not pinned (opens in the region asked for)"
            out.print(f"{settings.library}: {what}", highlight=False, markup=False, soft_wrap=True)


@policy_app.command("unpin")
def policy_unpin(library: LibraryOpt = None, wait: WaitOpt = False, as_json: JsonOpt = False) -> None:
    """Remove the library's pinned region (needs write access to the library's directory)."""
    with errors():
        import math

        from pixsearch.config import load_settings
        from pixsearch.library.region import unpin_region

        settings = load_settings(library=library)
        old = unpin_region(settings, math.inf if wait else 0.0)
        if as_json:
            print(json.dumps({"library": str(settings.library), "unpinned": old}))
        else:
            what = f"unpinned (was {old})" if old else "was not pinned"
            out.print(f"{settings.library}: {what}", highlight=False, markup=False, soft_wrap=True)
