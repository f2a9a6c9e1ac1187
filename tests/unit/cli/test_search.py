"""``pixsearch search`` (cli/search.py) on the real gallery library: filters, browse with no words,
--sort, --paths-only for scripts, composed queries, and the empty state a filter can leave."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from pixsearch.cli._common import group
from pixsearch.cli.search import search

app = group("test")
app.command()(search)


@app.callback()
def _root() -> None:
    """A group, as the real app is (a lone command would be the whole program)."""


runner = CliRunner()


def _run(lib: Path, *args: str) -> object:
    return runner.invoke(app, ["search", *args, "-L", str(lib)])


def test_paths_only_prints_one_path_a_line(built_library: Path) -> None:
    r = _run(built_library, "a dog in the grass", "-k", "4", "-p")
    assert r.exit_code == 0, r.output
    lines = r.output.splitlines()
    assert len(lines) == 4 and all(Path(p).is_absolute() and Path(p).is_file() for p in lines)
    j = json.loads(_run(built_library, "a dog in the grass", "-k", "4", "--json").output)
    assert [x["path"] for x in j["results"]] == lines
    assert {"name", "taken_at", "camera", "place"} <= set(j["results"][0])


def test_no_words_lists_photos_by_date_and_filters_apply(built_library: Path) -> None:
    r = _run(built_library, "--json", "-k", "24", "--sort", "date")
    assert r.exit_code == 0, r.output
    got = json.loads(r.output)["results"]
    times = [x["taken_at"] for x in got]
    assert len(got) == 24 and all(times) and times == sorted(times)  # file times, oldest first
    empty = _run(built_library, "a dog", "--camera", "leica")
    assert empty.exit_code == 0 and "no photo passes these filters" in empty.output
    assert _run(built_library, "a dog", "--after", "last week").exit_code == 2
    assert _run(built_library, "a dog", "--sort", "newest").exit_code == 2
    assert _run(built_library, "   ").exit_code == 2  # blank words are an empty query, not a listing


def test_composed_query_ranks_by_the_joint_space(built_library: Path) -> None:
    r = _run(built_library, "a dog", "+", "2:snow", "-", "grass", "-k", "3", "--json")
    assert r.exit_code == 0, r.output
    res = json.loads(r.output)["results"]
    assert len(res) == 3 and all("match" not in x for x in res)
    bad = _run(built_library, "a dog", "+")
    assert bad.exit_code == 2 and "ends with an operator" in bad.output
