"""Plain parameters parse without pydantic, with typer's messages (cli/parsing.py)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from typer.testing import CliRunner

from pixsearch.cli import app


def _parsed(args: list[str]) -> tuple[int, str, set[str]]:
    """Parse ``pixsearch ARGS`` in a fresh process, the command replaced by a stub that reports; the
    heavy modules the parse imported."""
    code = (
        "import sys, json\n"
        "import pixsearch.cli as c\n"
        "app = c.load(c._modules_for(sys.argv[1:]))\n"
        "import pixsearch.cli._common as common\n"
        "def stub(*a, **k):\n"
        "    print(json.dumps(sorted(m for m in ('pydantic', 'rich', 'numpy') if m in sys.modules)))\n"
        "    raise SystemExit(0)\n"
        "for m in ('search', 'library'):\n"
        "    setattr(sys.modules.get(f'pixsearch.cli.{m}', common), 'open_library', stub)\n"
        "sys.argv[0] = 'pixsearch'\n"
        "c.main()\n"
    )
    p = subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True, timeout=120)
    heavy = set(json.loads(p.stdout)) if p.returncode == 0 and p.stdout.startswith("[") else set()
    return p.returncode, p.stderr, heavy


def test_search_parses_without_pydantic_or_rich(tmp_path: Path) -> None:
    rc, stderr, heavy = _parsed(["search", "a dog", "-k", "3", "--threshold", "0.5", "-L", str(tmp_path)])
    assert rc == 0, stderr
    assert heavy == set()


def test_index_parses_lists_of_paths_and_optional_numbers(tmp_path: Path) -> None:
    rc, stderr, heavy = _parsed(["index", str(tmp_path), str(tmp_path), "--sample", "3", "--no-caption"])
    assert rc == 0, stderr
    assert "pydantic" not in heavy


def test_bad_values_are_usage_errors_naming_the_option(tmp_path: Path) -> None:
    r = CliRunner().invoke(app, ["search", "a dog", "-k", "0", "-L", str(tmp_path)])
    assert r.exit_code == 2 and "0 is not in the range x>=1" in r.output
    r = CliRunner().invoke(app, ["search", "a dog", "-k", "many", "-L", str(tmp_path)])
    assert r.exit_code == 2 and "'many' is not a valid integer" in r.output
    r = CliRunner().invoke(app, ["search", "a dog", "--threshold", "high", "-L", str(tmp_path)])
    assert r.exit_code == 2 and "'high' is not a valid float" in r.output
