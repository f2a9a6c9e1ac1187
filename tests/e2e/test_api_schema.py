"""Schemathesis against the app's own OpenAPI schema: generated requests (valid and not) never get a 5xx,
every 4xx is our JSON error body, and no answer holds a path of the server's file system. Bounded (few
examples per operation) to stay near a minute."""

from __future__ import annotations

import atexit
import shutil
import tempfile
from pathlib import Path

import pytest
import schemathesis
from hypothesis import HealthCheck, settings
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


@pytest.mark.slow  # schema fuzzing: ~20 s
@schema.parametrize()
@settings(max_examples=6, deadline=None, suppress_health_check=list(HealthCheck), derandomize=True)
def test_no_server_errors(case) -> None:  # type: ignore[no-untyped-def]
    case.call_and_validate(headers=_AUTH, checks=[not_a_server_error, error_is_json, no_server_paths])
