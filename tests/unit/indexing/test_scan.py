"""Which files an index run looks at (``scan``) and which indexed paths it may forget (``vanished``,
``check_prune_roots``), on real gallery photos and a real library."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from pixsearch import Library, NotFoundError
from pixsearch.indexing.report import IndexReport
from pixsearch.indexing.scan import check_prune_roots, scan, vanished
from tests.conftest import GALLERY

NAMES = sorted(p.name for p in (GALLERY / "images").glob("*.jpg"))[:4]


def _tree(root: Path) -> Path:
    """``root/photos``: two real photos at the top, two in a subfolder, plus files scan must skip."""
    photos = root / "photos"
    (photos / "2019").mkdir(parents=True)
    for n in NAMES[:2]:
        shutil.copy(GALLERY / "images" / n, photos / n)
    for n in NAMES[2:]:
        shutil.copy(GALLERY / "images" / n, photos / "2019" / n)
    (photos / "notes.txt").write_text("not a photo")
    (photos / "raw.cr2").write_bytes(b"\0" * 16)
    return photos


def _run(roots: list[Path]) -> tuple[list[Path], IndexReport]:
    report = IndexReport()
    return scan(roots, report), report


# -- scan -----------------------------------------------------------------------------------------------
def test_walks_folders_recursively_absolute_and_sorted(tmp_path: Path) -> None:
    photos = _tree(tmp_path)
    files, report = _run([photos])
    assert report.failed == []
    assert files == sorted(files) and all(f.is_absolute() for f in files)
    assert {f.relative_to(photos).as_posix() for f in files} == {
        NAMES[0],
        NAMES[1],
        f"2019/{NAMES[2]}",
        f"2019/{NAMES[3]}",
    }


def test_relative_roots_become_absolute(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _tree(tmp_path)
    monkeypatch.chdir(tmp_path)
    files, _ = _run([Path("photos")])
    assert files and all(f.is_absolute() and f.is_relative_to(tmp_path) for f in files)


def test_suffixes_are_case_insensitive_and_contents_unchecked(tmp_path: Path) -> None:
    photos = _tree(tmp_path)
    shutil.copy(GALLERY / "images" / NAMES[0], photos / "UPPER.JPG")
    (photos / "broken.png").write_bytes(b"not a png")  # the indexer reports it when it fails to load
    names = {f.name for f in _run([photos])[0]}
    assert {"UPPER.JPG", "broken.png"} <= names
    assert not names & {"notes.txt", "raw.cr2"}


def test_hidden_files_and_folders_are_skipped_below_the_root(tmp_path: Path) -> None:
    photos = _tree(tmp_path)
    (photos / ".thumbnails").mkdir()
    shutil.copy(GALLERY / "images" / NAMES[0], photos / ".thumbnails" / "t.jpg")
    shutil.copy(GALLERY / "images" / NAMES[0], photos / "2019" / ".hidden.jpg")
    files, _ = _run([photos])
    assert len(files) == 4 and not any(part.startswith(".") for f in files for part in f.parts[-2:])
    hidden_root = tmp_path / ".library-photos"  # a hidden root the user named is walked
    shutil.copytree(photos, hidden_root)
    assert len(_run([hidden_root])[0]) == 4


def test_an_explicit_file_is_taken_as_given(tmp_path: Path) -> None:
    photos = _tree(tmp_path)
    one, notes = photos / NAMES[0], photos / "notes.txt"
    files, report = _run([one, notes])
    assert files == [one, notes] and report.failed == []


def test_overlapping_roots_give_each_file_once(tmp_path: Path) -> None:
    photos = _tree(tmp_path)
    files, _ = _run([photos, photos / "2019", photos / NAMES[0]])
    assert len(files) == len(set(files)) == 4


def test_links_inside_the_root_add_each_real_file_once(tmp_path: Path) -> None:
    photos = _tree(tmp_path)
    (photos / "link.jpg").symlink_to(photos / NAMES[0])  # the file itself is found too: its own path wins
    (photos / "alias").symlink_to(photos / "2019", target_is_directory=True)  # walked as 2019/ already
    (photos / ".stash").mkdir()
    shutil.copy(GALLERY / "images" / NAMES[0], photos / ".stash" / "kept.jpg")
    (photos / "shown.jpg").symlink_to(photos / ".stash" / "kept.jpg")  # only reachable through the link
    (photos / "dangling.jpg").symlink_to(tmp_path / "gone.jpg")
    files, report = _run([photos])
    rel = {f.relative_to(photos).as_posix() for f in files}
    assert rel == {NAMES[0], NAMES[1], f"2019/{NAMES[2]}", f"2019/{NAMES[3]}", "shown.jpg"}
    assert report.failed == [] and report.warnings == []


def test_links_out_of_the_root_are_skipped_unless_asked(tmp_path: Path) -> None:
    photos = _tree(tmp_path)
    outside = tmp_path / "elsewhere"
    outside.mkdir()
    shutil.copy(GALLERY / "images" / NAMES[0], outside / "a.jpg")
    (outside / "secret.txt").write_text("not a photo, but the server would serve it")
    (photos / "out.jpg").symlink_to(outside / "secret.txt")  # a photo's name on any file
    (photos / "album").symlink_to(outside, target_is_directory=True)
    (outside / "back").symlink_to(photos, target_is_directory=True)  # a loop once links are followed
    files, report = _run([photos])
    assert {f.name for f in files} == set(NAMES)
    assert report.warnings == [
        f"skipped 2 symbolic link(s) under {photos} that lead out of it "
        "(pass --follow-links to index what they point to)"
    ]
    report = IndexReport()
    files = scan([photos], report, follow_links=True)
    rel = {f.relative_to(photos).as_posix() for f in files}
    assert rel == {NAMES[0], NAMES[1], f"2019/{NAMES[2]}", f"2019/{NAMES[3]}", "out.jpg", "album/a.jpg"}
    assert report.failed == [] and report.warnings == []
    assert scan([photos / "album"], IndexReport()) == [photos / "album" / "a.jpg"]  # a root as given


def test_names_that_are_not_utf8_are_found(tmp_path: Path) -> None:
    photos = _tree(tmp_path)
    names = [b"caf\xe9.jpg", "写真".encode("shift_jis") + b".jpg", b"\xff\xfe.jpg"]
    for n in names:
        shutil.copy(GALLERY / "images" / NAMES[0], os.fsencode(photos) + b"/" + n)
    files, report = _run([photos])
    assert {os.fsencode(f.name) for f in files} >= set(names) and report.failed == []


def test_an_entry_that_cannot_be_read_is_reported_and_the_walk_goes_on(tmp_path: Path) -> None:
    """A path longer than the system allows (PATH_MAX) can exist, built one folder at a time, but no
    call can name it: it is one failed entry, never the end of the run."""
    photos = _tree(tmp_path)
    fd = os.open(photos, os.O_RDONLY)
    depth = 0
    try:
        while len(str(photos)) + depth * 201 < 4200:
            os.mkdir("d" * 200, dir_fd=fd)
            nxt = os.open("d" * 200, os.O_RDONLY, dir_fd=fd)
            os.close(fd)
            fd, depth = nxt, depth + 1
        with open(os.open("deep.jpg", os.O_WRONLY | os.O_CREAT, 0o644, dir_fd=fd), "wb") as f:
            f.write((GALLERY / "images" / NAMES[0]).read_bytes())
    finally:
        os.close(fd)
    files, report = _run([photos])
    assert len(files) == 4
    assert len(report.failed) == 1 and report.failed[0][1].startswith("cannot list: File name too long")


def test_a_symlink_loop_does_not_hang(tmp_path: Path) -> None:
    photos = _tree(tmp_path)
    (photos / "2019" / "loop").symlink_to(photos, target_is_directory=True)
    files, report = _run([photos])
    assert report.failed == [] and len({f.resolve() for f in files}) == 4


def test_missing_and_special_roots_are_reported_not_raised(tmp_path: Path) -> None:
    photos = _tree(tmp_path)
    roots = [photos, tmp_path / "unmounted"]
    if hasattr(os, "mkfifo"):
        os.mkfifo(tmp_path / "fifo")
        roots.append(tmp_path / "fifo")
    files, report = _run(roots)
    assert len(files) == 4
    failed = dict(report.failed)
    assert failed[str(tmp_path / "unmounted")] == "no such file or directory"
    if hasattr(os, "mkfifo"):
        assert failed[str(tmp_path / "fifo")] == "not a regular file or folder"


def test_an_empty_folder_is_no_files_and_no_failure(tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    assert _run([tmp_path / "empty"]) == ([], IndexReport())


# -- vanished / check_prune_roots on a real library -----------------------------------------------------
@pytest.fixture
def indexed(tmp_path: Path) -> Iterator[tuple[Library, Path]]:
    photos = _tree(tmp_path)
    with Library.open(tmp_path / "lib") as lib:
        rep = lib.add([photos], generate_captions=False)
        assert rep.added == 4 and not rep.failed
        yield lib, photos


def test_vanished_lists_indexed_paths_whose_file_is_gone(indexed: tuple[Library, Path]) -> None:
    lib, photos = indexed
    assert vanished(lib.catalog, [photos]) == []
    (photos / NAMES[0]).unlink()
    shutil.rmtree(photos / "2019")
    in_2019 = sorted(str(photos / "2019" / n) for n in NAMES[2:])
    assert sorted(vanished(lib.catalog, [photos])) == sorted([str(photos / NAMES[0]), *in_2019])
    assert sorted(vanished(lib.catalog, [photos / "2019"])) == in_2019
    assert vanished(lib.catalog, [photos / NAMES[1]]) == []  # a root that is one indexed, present file


def test_prune_guard_passes_for_a_present_root(indexed: tuple[Library, Path]) -> None:
    lib, photos = indexed
    files, _ = _run([photos])
    (photos / NAMES[0]).unlink()  # one photo deleted: pruning it is what the user asked for
    check_prune_roots(lib.catalog, [photos], [f for f in files if f.exists()])


def test_prune_guard_refuses_a_missing_root(indexed: tuple[Library, Path], tmp_path: Path) -> None:
    lib, photos = indexed
    photos.rename(tmp_path / "elsewhere")  # an unmounted disk looks like this
    with pytest.raises(NotFoundError) as exc:
        check_prune_roots(lib.catalog, [photos], [])
    msg = str(exc.value)
    assert msg.startswith(f"refusing to prune {photos}: it does not exist (unmounted disk?)")
    assert "4 indexed photo(s)" in msg and "--force" in msg and "\n" not in msg


def test_prune_guard_refuses_a_root_that_holds_no_photo(indexed: tuple[Library, Path]) -> None:
    lib, photos = indexed
    shutil.rmtree(photos / "2019")
    for f in photos.glob("*.jpg"):
        f.unlink()
    with pytest.raises(NotFoundError, match="it holds no photos but 4 are indexed under it"):
        check_prune_roots(lib.catalog, [photos], _run([photos])[0])
    with pytest.raises(NotFoundError, match="but 2 are indexed"):  # a subfolder is checked on its own
        (photos / "2019").mkdir()
        check_prune_roots(lib.catalog, [photos / "2019"], [])


def test_prune_guard_ignores_roots_with_nothing_indexed(
    indexed: tuple[Library, Path], tmp_path: Path
) -> None:
    lib, _ = indexed
    check_prune_roots(lib.catalog, [tmp_path / "never-indexed", tmp_path / "lib"], [])
