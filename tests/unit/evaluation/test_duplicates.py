"""Duplicate-finder evaluation: pair precision/recall of groups against which file came from which photo,
per-edit recall, and the benchmark's edited copies (what each edit does to a real photo)."""

from __future__ import annotations

from pathlib import Path

import pytest
from PIL import Image

from pixsearch.evaluation.duplicates import EDITS, copies_grouped, edited_copy, pair_scores

SOURCE = {"a": "a", "a1": "a", "a2": "a", "b": "b", "b1": "b", "c": "c", "d": "d"}


def test_pairs_within_a_group_are_scored_against_their_sources() -> None:
    # a family of three found whole, b's copy missed, c and d (different photos) grouped by mistake
    s = pair_scores([["a", "a1", "a2"], ["c", "d"]], SOURCE, hard_negatives=[("c", "d"), ("a", "b")])
    assert (s.true_pairs, s.false_pairs, s.missed_pairs) == (3, 1, 1)
    assert s.precision == pytest.approx(3 / 4) and s.recall == pytest.approx(3 / 4)
    assert (s.hard_negatives, s.hard_negatives_grouped) == (2, 1)
    assert s.to_dict()["precision"] == 0.75


def test_a_group_mixing_two_photos_costs_every_cross_pair() -> None:
    s = pair_scores([["a", "a1", "b", "b1"]], SOURCE)
    assert (s.true_pairs, s.false_pairs, s.missed_pairs) == (2, 4, 2)  # a-a1, b-b1 right; a2 left out


def test_no_groups_is_full_precision_and_no_recall() -> None:
    s = pair_scores([], SOURCE)
    assert s.precision == 1.0 and s.recall == 0.0 and s.missed_pairs == 4
    assert pair_scores([], {"x": "x"}).recall == 1.0  # nothing to find


def test_copies_grouped_counts_each_copy_once_per_edit() -> None:
    edit = {"a1": "crop", "a2": "resize", "b1": "crop"}
    got = copies_grouped([["a", "a1"], ["b", "a2"], ["b1"]], SOURCE, edit)
    assert got == {"crop": 0.5, "resize": 0.0}


@pytest.fixture(scope="module")
def photo(flickr8k: Path) -> Image.Image:
    with Image.open(flickr8k / "images" / "1082379191_ec1e53f996.jpg") as img:  # test split, 384x288
        return img.convert("RGB")


def test_edits_do_what_they_say_on_a_real_photo(photo: Image.Image) -> None:
    w, h = photo.size
    made = {e: edited_copy(photo, e, seed=7) for e in EDITS}
    assert made["resize50"][0].size == (w // 2, h // 2) and made["resize50_jpeg40"][1] == 40
    assert made["jpeg40"][0].size == (w, h) and made["jpeg40"][1] == 40
    cw, ch = made["crop"][0].size
    assert 0.89 * w <= cw <= 0.96 * w and 0.89 * h <= ch <= 0.96 * h  # 5-10% of each side, rounded
    rw, rh = made["rotate"][0].size
    assert rw < w and rh < h and abs(rw / rh - w / h) < 0.02  # straightened and cropped, aspect kept
    for e in ("tone", "watermark"):
        img = made[e][0]
        assert img.size == (w, h) and img.tobytes() != photo.tobytes()
    # the watermark is in the bottom quarter only
    diff = [a != b for a, b in zip(made["watermark"][0].tobytes(), photo.tobytes(), strict=True)]
    row = 3 * w
    assert not any(diff[: row * (3 * h // 4)]) and any(diff[row * (3 * h // 4) :])


def test_edits_are_reproducible_from_their_seed(photo: Image.Image) -> None:
    for e in EDITS:
        assert edited_copy(photo, e, 3)[0].tobytes() == edited_copy(photo, e, 3)[0].tobytes()
    assert edited_copy(photo, "crop", 3)[0].size != edited_copy(photo, "crop", 4)[0].size
