"""The region a library is opened in is a floor (``Library.with_region``), a library may pin its region
(``library/region.py``), and a new photo is checked before it is captioned: the Python API cannot step
out of a restricted region any more than a REST client can."""

from __future__ import annotations

import io
import shutil
from pathlib import Path

import pytest
from PIL import Image

from pixsearch import Library
from pixsearch.config import load_settings
from pixsearch.errors import BlockedError, ConfigError, RegionError
from pixsearch.library.photo import caption_outside
from pixsearch.library.region import library_pin, pin_region, unpin_region
from tests.conftest import GALLERY

# Human captions name children; the generated caption does not ("a group of people are sitting on a
# bench"), so only the photo check can refuse to caption it. The dog alone passes the photo check.
CHILD = GALLERY / "images" / "1468389504_c724bdcad0.jpg"
DOG = GALLERY / "images" / "1319634306_816f21677f.jpg"


def _reencoded(path: Path) -> bytes:
    buf = io.BytesIO()
    Image.open(path).convert("RGB").save(buf, "JPEG", quality=85)
    return buf.getvalue()


@pytest.fixture
def lib_dir(built_library: Path, tmp_path: Path) -> Path:
    shutil.copytree(built_library, tmp_path / "lib")
    return tmp_path / "lib"


def test_with_region_refuses_a_looser_or_unknown_region(built_library: Path) -> None:
    with Library.open(settings=load_settings(library=built_library, region="restricted")) as lib:
        assert lib.with_region(None) is lib and lib.with_region("restricted") is lib
        for looser in ("default", "atlantis"):
            with pytest.raises(RegionError, match="'restricted'") as exc:
                lib.with_region(looser)
            assert (exc.value.http_status, exc.value.exit_code, exc.value.code) == (
                403,
                2,
                "region_not_allowed",
            )
    with Library.open(built_library) as lib:  # the default region: a stricter one may be asked for
        view = lib.with_region("restricted")
        assert view.policy.region.name == "restricted" and view.settings.region == "restricted"
        with pytest.raises(BlockedError):
            view.search("children playing")
        with pytest.raises(RegionError):  # and from there, not back
            view.with_region("default")
        with pytest.raises(RegionError):
            lib.with_region("atlantis")


def test_a_pinned_region_is_the_floor_of_every_opener(lib_dir: Path, tmp_path: Path) -> None:
    assert library_pin(load_settings(library=lib_dir)) is None
    assert pin_region(load_settings(library=lib_dir), "restricted") == "restricted"
    assert library_pin(load_settings(library=lib_dir)) == "restricted"
    with Library.open(lib_dir) as lib:  # no region asked for: the pinned one
        assert lib.policy.region.name == "restricted" and lib.stats()["region"] == "restricted"
        with pytest.raises(BlockedError):
            lib.search("children playing")
        with pytest.raises(RegionError):
            lib.with_region("default")
    cfg = tmp_path / "config.toml"
    cfg.write_text('region = "default"\n')
    looser = [
        load_settings(library=lib_dir, region="default"),  # --region
        load_settings({"PIXSEARCH_REGION": "default"}, library=lib_dir),  # env
        load_settings({"PIXSEARCH_CONFIG": str(cfg)}, library=lib_dir),  # config file
        load_settings(library=lib_dir, region="atlantis"),  # unknown
    ]
    for s in looser:
        with pytest.raises(RegionError, match="pinned to region 'restricted'"):
            Library.open(settings=s)
    with Library.open(settings=load_settings(library=lib_dir, region="restricted")) as lib:
        assert lib.policy.region.name == "restricted"
    assert unpin_region(load_settings(library=lib_dir)) == "restricted"
    with Library.open(settings=load_settings(library=lib_dir, region="default")) as lib:
        assert lib.policy.region.name == "default"


def test_a_pinned_servers_stats_and_requests_use_the_pin(lib_dir: Path) -> None:
    from fastapi.testclient import TestClient

    from pixsearch.api.app import create_app

    pin_region(load_settings(library=lib_dir), "restricted")
    local = "http://127.0.0.1"  # the Host a server on 127.0.0.1 answers to
    with TestClient(create_app(load_settings(library=lib_dir)), base_url=local) as c:
        assert c.get("/api/stats").json()["region"] == "restricted"
        assert c.get("/api/search", params={"q": "children playing"}).status_code == 451
        r = c.get("/api/search", params={"q": "a dog", "region": "default"})
        assert r.status_code == 403 and r.json()["error"]["code"] == "region_not_allowed"


def test_pin_refuses_loosening_and_unknown_regions(lib_dir: Path) -> None:
    s = load_settings(library=lib_dir)
    with pytest.raises(ConfigError, match="unknown region 'atlantis'"):
        pin_region(s, "atlantis")
    pin_region(s, "default")
    pin_region(s, "restricted")  # stricter: fine
    with pytest.raises(RegionError, match="unpin"):
        pin_region(s, "default")
    assert library_pin(s) == "restricted"


def test_a_region_the_policy_lost_does_not_open(lib_dir: Path, tmp_path: Path) -> None:
    pol = tmp_path / "policy.toml"
    pol.write_text('[regions.strict]\ntopics = ["minors"]\n')
    pin_region(load_settings(library=lib_dir, policy_file=pol), "strict")
    with pytest.raises(ConfigError, match="pinned to region 'strict'"):
        Library.open(lib_dir)  # without the policy file that defines it: refused, not opened unrestricted
    with Library.open(settings=load_settings(library=lib_dir, policy_file=pol)) as lib:
        assert lib.policy.region.name == "strict"
        assert lib.with_region("restricted").policy.region.name == "restricted"  # as strict: allowed


def test_reindex_keeps_the_pin(gallery_subset: Path, tmp_path: Path) -> None:
    (tmp_path / "p").mkdir()
    for p in sorted((gallery_subset / "photos").glob("*.jpg"))[:2]:
        shutil.copy(p, tmp_path / "p" / p.name)
    with Library.open(tmp_path / "lib") as lib:
        lib.add([tmp_path / "p"])
    pin_region(load_settings(library=tmp_path / "lib"), "restricted")
    with Library.open(tmp_path / "lib") as lib:
        assert not lib.reindex().interrupted
    assert library_pin(load_settings(library=tmp_path / "lib")) == "restricted"


def test_a_new_photo_of_a_child_is_not_captioned(built_library: Path, tmp_path: Path) -> None:
    child, dog = _reencoded(CHILD), _reencoded(DOG)
    outside = tmp_path / "child.jpg"
    outside.write_bytes(child)
    with Library.open(built_library) as lib:
        text = lib.caption(child)  # the default region captions it; the text names no child
        assert not lib.with_region("restricted").policy.check_query(text).blocked
        view = lib.with_region("restricted")
        for photo in (child, outside):
            with pytest.raises(BlockedError):
                view.caption(photo)
        assert view.caption(dog).strip()
    restricted = load_settings(region="restricted")
    with pytest.raises(BlockedError):
        caption_outside(outside, restricted)  # no library at all: the same check
    assert caption_outside(outside, load_settings()).strip() == text
