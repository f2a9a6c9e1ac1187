"""Schemathesis against the app's own OpenAPI schema: generated requests (valid and not) never get a 5xx,
every 4xx is our JSON error body, and no answer holds a path of the server's file system. Twice: with the
write token, and without it, where every write (an operation with a security requirement) is refused with
401/403 and nothing is written. 25 examples per operation each way, no shrinking, a 30-second deadline per
example (a hang fails there, not at pytest-timeout's 600 s) and a total budget: about a minute here, two
at most (an operation reached after the budget is spent is skipped, and says so)."""

from __future__ import annotations

import atexit
import shutil
import tempfile
import time
import zlib
from datetime import timedelta
from pathlib import Path

import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, settings
from schemathesis.checks import not_a_server_error

from pixsearch.api.app import create_app
from pixsearch.api.worker import ensure_token
from pixsearch.config import Settings

# The app exists at collection time (schemathesis reads its schema then); its library is filled in by the
# fixture below before the first request (the Library opens lazily). Its own copy: generated DELETEs may
# remove photos.
_LIB = Path(tempfile.mkdtemp(prefix="pixsearch-schema-")) / "lib"
atexit.register(shutil.rmtree, _LIB.parent, True)
# explicit settings: collection runs before conftest isolates the config; "testserver": the ASGI client's Host
_APP = create_app(Settings(library=_LIB), allowed_hosts=["testserver"])
_AUTH = {"Authorization": f"Bearer {ensure_token(_LIB)[0]}"}
schema = schemathesis.openapi.from_asgi("/openapi.json", _APP)


_SERVER_PATHS: list[str] = [str(_LIB)]  # + the folders the library indexed (filled in below)


@pytest.fixture(scope="module", autouse=True)
def _library(built_library: Path):  # type: ignore[no-untyped-def]
    from pixsearch import Library

    shutil.copytree(built_library, _LIB, dirs_exist_ok=True, ignore=shutil.ignore_patterns("api_token"))
    with Library.open(_LIB, create=False) as lib:
        _SERVER_PATHS.extend(lib.roots().values())
    assert len(_SERVER_PATHS) > 1
    yield
    _APP.state.worker.release()


def error_is_json(ctx, response, case) -> None:  # type: ignore[no-untyped-def]
    """A refusal is ``{"error": {"code": str, "message": str}}``, never HTML or a traceback."""
    if response.status_code >= 400:
        body = response.json()
        err = body["error"]
        assert isinstance(err["code"], str) and err["code"] and isinstance(err["message"], str), body


def no_server_paths(ctx, response, case) -> None:  # type: ignore[no-untyped-def]
    """Paths are relative to their indexed root (with the root's id): the server's layout stays private."""
    for p in _SERVER_PATHS:
        assert p not in response.text, f"{case.method} {case.path} gave out {p}"


def _is_write(case) -> bool:  # type: ignore[no-untyped-def]
    return bool(case.operation.definition.raw.get("security"))


def writes_need_the_token(ctx, response, case) -> None:  # type: ignore[no-untyped-def]
    """Without the token a write is refused, 401 (none given) or 403 (a wrong one): never done, never 5xx.
    (Schemathesis also sends other methods to a write's path, TRACE and the like: those are 405s.)"""
    if not _is_write(case):
        return
    what = f"{case.method} {case.path}: {response.status_code}"
    assert not 200 <= response.status_code < 300, what
    if case.method.upper() == case.operation.method.upper():
        assert response.status_code in (401, 403), what


CHECKS = [not_a_server_error, error_is_json, no_server_paths]
FUZZ = settings(
    max_examples=25,
    deadline=timedelta(seconds=30),  # per example: generous (a busy CI runner), but a hang fails here
    phases=[Phase.explicit, Phase.generate],  # no shrinking: a failure shows its first example
    suppress_health_check=list(HealthCheck),
    derandomize=True,  # the same examples every run
)
BUDGET_S = 100.0  # both runs together; the first example starts the clock
_started: list[float] = []


def _within_budget() -> None:
    _started[:] = _started or [time.monotonic()]
    if time.monotonic() - _started[0] > BUDGET_S:
        pytest.skip(f"schema fuzzing budget ({BUDGET_S:g} s) spent")


@pytest.mark.slow  # schema fuzzing: ~1 minute for both runs
@schema.parametrize()
@FUZZ
def test_no_server_errors(case) -> None:  # type: ignore[no-untyped-def]
    _within_budget()
    case.call_and_validate(headers=_AUTH, checks=CHECKS)


@pytest.mark.slow
@schema.parametrize()
@FUZZ
def test_no_server_errors_without_the_token(case) -> None:  # type: ignore[no-untyped-def]
    _within_budget()
    # whatever the generator put there is dropped: no token at all, or (one case in three) a wrong one
    headers = {k: v for k, v in (case.headers or {}).items() if k.lower() != "authorization"}
    case.headers = headers
    wrong = zlib.crc32(repr((case.path_parameters, case.query)).encode()) % 3 == 0
    extra = {"Authorization": "Bearer not-the-token"} if wrong else {}
    case.call_and_validate(headers=extra, checks=[*CHECKS, writes_need_the_token])
