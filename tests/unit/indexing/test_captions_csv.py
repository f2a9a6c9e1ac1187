"""The ``image,caption`` CSV beside a photo folder: reading it, and which photo each row names."""

from __future__ import annotations

from pathlib import Path

import pytest

from pixsearch.errors import DatasetError
from pixsearch.indexing.captions_csv import match_captions, read_captions_csv
from tests.conftest import GALLERY


# -- read_captions_csv ---------------------------------------------------------------------------------
def test_reads_the_shipped_gallery_csv() -> None:
    caps, warns = read_captions_csv(GALLERY / "captions.csv")
    assert warns == []
    assert len(caps) == 100 and {len(v) for v in caps.values()} == {5}
    first = caps["1177994172_10d143cb8d.jpg"][0]
    assert first.startswith("Two blonde boys , one in a camouflage shirt")  # quoted field with commas


def test_whitespace_is_collapsed_and_backslashes_become_slashes(tmp_path: Path) -> None:
    f = tmp_path / "c.csv"
    f.write_text('image,caption\n  2019\\IMG_1.jpg ,"  a dog\n  on   the grass "\n2019/IMG_1.jpg,second\n')
    caps, warns = read_captions_csv(f)
    assert warns == []
    assert caps == {"2019/IMG_1.jpg": ["a dog on the grass", "second"]}


def test_extra_columns_and_column_order_do_not_matter(tmp_path: Path) -> None:
    f = tmp_path / "c.csv"
    f.write_text("caption,source,image\na cat,me,cat.jpg\n")
    assert read_captions_csv(f) == ({"cat.jpg": ["a cat"]}, [])


def test_empty_rows_are_skipped_with_their_line_number(tmp_path: Path) -> None:
    f = tmp_path / "c.csv"
    f.write_text("image,caption\na.jpg,fine\n,no image\nb.jpg,\nc.jpg,   \nd.jpg\n")
    caps, warns = read_captions_csv(f)
    assert caps == {"a.jpg": ["fine"]}
    assert [w.split(": ", 1)[0] for w in warns] == [f"{f}:3", f"{f}:4", f"{f}:5", f"{f}:6"]
    assert all(w.endswith("empty image or caption, skipped") for w in warns)


def test_utf8_with_bom_and_non_ascii_captions(tmp_path: Path) -> None:
    f = tmp_path / "c.csv"
    f.write_bytes("image,caption\nété.jpg,un café au soleil\n狗.jpg,一只狗在草地上\n".encode("utf-8-sig"))
    caps, _ = read_captions_csv(f)
    assert caps == {"été.jpg": ["un café au soleil"], "狗.jpg": ["一只狗在草地上"]}


def test_header_only_is_empty_not_an_error(tmp_path: Path) -> None:
    f = tmp_path / "c.csv"
    f.write_text("image,caption\n")
    assert read_captions_csv(f) == ({}, [])


@pytest.mark.parametrize(
    ("content", "found"),
    [
        ("file,text\nx.jpg,y\n", "file,text"),
        ("image\nx.jpg\n", "image"),
        ("", "none"),
    ],
)
def test_missing_columns_name_what_was_found(tmp_path: Path, content: str, found: str) -> None:
    f = tmp_path / "c.csv"
    f.write_text(content)
    with pytest.raises(DatasetError) as exc:
        read_captions_csv(f)
    msg = str(exc.value)
    assert msg == f"{f}: needs columns image,caption; found {found}"
    assert "\n" not in msg


@pytest.mark.parametrize("encoding", ["latin-1", "utf-16"])
def test_other_encodings_are_a_dataset_error(tmp_path: Path, encoding: str) -> None:
    f = tmp_path / "c.csv"
    f.write_bytes("image,caption\ncafé.jpg,un café\n".encode(encoding))
    with pytest.raises(DatasetError, match=r"not valid UTF-8 \(.* at byte \d+\)"):
        read_captions_csv(f)


def test_unreadable_paths_are_a_dataset_error(tmp_path: Path) -> None:
    with pytest.raises(DatasetError, match="cannot read"):
        read_captions_csv(tmp_path / "missing.csv")
    with pytest.raises(DatasetError, match="cannot read"):
        read_captions_csv(tmp_path)  # a folder


# -- match_captions ------------------------------------------------------------------------------------
def test_relative_path_against_a_base(tmp_path: Path) -> None:
    a, b = str(tmp_path / "2019" / "IMG_1.jpg"), str(tmp_path / "2020" / "IMG_1.jpg")
    out, warns = match_captions({"2019/IMG_1.jpg": ["x"]}, [a, b], [tmp_path])
    assert out == {a: ["x"]} and warns == []


def test_bare_name_only_when_one_photo_carries_it(tmp_path: Path) -> None:
    a, b = str(tmp_path / "2019" / "IMG_1.jpg"), str(tmp_path / "2020" / "IMG_1.jpg")
    c = str(tmp_path / "2020" / "IMG_2.jpg")
    out, warns = match_captions({"IMG_1.jpg": ["dup"], "IMG_2.jpg": ["one"]}, [a, b, c], [])
    assert out == {c: ["one"]}
    (warn,) = warns
    assert warn.startswith("captions row 'IMG_1.jpg' fits 2 photos") and "relative path" in warn


def test_path_suffix_when_no_base_fits(tmp_path: Path) -> None:
    a = str(tmp_path / "disk" / "trips" / "2019" / "IMG_1.jpg")
    b = str(tmp_path / "disk" / "trips" / "2020" / "IMG_1.jpg")
    out, warns = match_captions({"2019/IMG_1.jpg": ["x"]}, [a, b], [tmp_path / "elsewhere"])
    assert out == {a: ["x"]} and warns == []


def test_absolute_keys_match_exactly(tmp_path: Path) -> None:
    a = str(tmp_path / "a.jpg")
    out, warns = match_captions({a: ["x"], str(tmp_path / "gone.jpg"): ["y"]}, [a], [])
    assert out == {a: ["x"]}
    assert warns == [f"captions name an image not in the library: {tmp_path / 'gone.jpg'}"]


def test_many_candidates_are_shown_three_at_most(tmp_path: Path) -> None:
    paths = [str(tmp_path / str(i) / "IMG_1.jpg") for i in range(5)]
    _, (warn,) = match_captions({"IMG_1.jpg": ["x"]}, paths, [])
    assert "fits 5 photos" in warn and warn.count("IMG_1.jpg") == 4 and ", ..." in warn


def test_two_keys_for_one_photo_add_up(tmp_path: Path) -> None:
    a = str(tmp_path / "p" / "a.jpg")
    out, warns = match_captions({"a.jpg": ["one"], "p/a.jpg": ["two"]}, [a], [tmp_path])
    assert out == {a: ["one", "two"]} and warns == []


def test_gallery_csv_matches_every_gallery_photo() -> None:
    caps, _ = read_captions_csv(GALLERY / "captions.csv")
    photos = [str(p) for p in sorted((GALLERY / "images").glob("*.jpg"))]
    out, warns = match_captions(caps, photos, [GALLERY])
    assert warns == [] and sorted(out) == photos
    assert all(len(v) == 5 for v in out.values())
