"""``pixsearch eval retrieval --captions FILE.csv``: the same photos, captions in another language."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest

from pixsearch.errors import DatasetError
from pixsearch.evaluation.retrieval import eval_retrieval
from tests.conftest import flickr8k_subset

CN = Path(__file__).resolve().parents[3].parent / "shared" / "data" / "flickr8k-cn" / "captions_zh.csv"
N_VAL = 60


@pytest.fixture(scope="module")
def val60(flickr8k: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """(60 val photos in Flickr8k layout, their Chinese captions as image,caption CSV)."""
    if not CN.is_file():
        pytest.skip(f"Flickr8K-CN not found at {CN} (shared/data)")
    root = flickr8k_subset(flickr8k, tmp_path_factory.mktemp("val60"), 0, N_VAL)
    names = set((root / "val.txt").read_text().split())
    out = root.parent / "zh.csv"
    with CN.open(encoding="utf-8") as f, out.open("w", encoding="utf-8", newline="") as g:
        w = csv.writer(g)
        w.writerow(["image", "caption"])
        w.writerows([r["image"], r["caption"]] for r in csv.DictReader(f) if r["image"] in names)
        w.writerow(["not-in-the-split.jpg", "一只猫"])  # dropped, not an error
    return root, out


def test_captions_csv_replaces_the_split_captions(
    val60: tuple[Path, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    root, zh = val60
    res = eval_retrieval(root, "val", captions=zh)
    assert res["captions_file"] == str(zh) and res["images"] == N_VAL and res["captions"] == 5 * N_VAL
    assert res["t2i"]["R@5"] >= 30.0  # measured ~50 on these 60 photos
    monkeypatch.setenv("PIXSEARCH_MULTILINGUAL", "off")  # MiniLM reads no Chinese: near chance (~8)
    english_only = eval_retrieval(root, "val", captions=zh)
    assert english_only["t2i"]["R@5"] < res["t2i"]["R@5"] - 15


def test_a_captions_csv_naming_no_photo_of_the_split_is_a_clear_error(val60: tuple[Path, Path]) -> None:
    root, zh = val60
    bad = zh.parent / "bad.csv"
    bad.write_text("image,caption\nnot-in-the-split.jpg,一只猫\n", encoding="utf-8")
    with pytest.raises(DatasetError, match="no caption names an image of split 'val'"):
        eval_retrieval(root, "val", captions=bad)
    nocol = zh.parent / "nocol.csv"
    nocol.write_text("image,text\na.jpg,x\n", encoding="utf-8")
    with pytest.raises(DatasetError, match="missing column"):
        eval_retrieval(root, "val", captions=nocol)
    with pytest.raises(DatasetError, match="cannot read"):
        eval_retrieval(root, "val", captions=zh.parent / "missing.csv")
