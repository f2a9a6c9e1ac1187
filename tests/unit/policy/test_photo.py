"""Photo side of the content policy: real face/age models, the shipped classifier, real gallery photos.

One small library (8 gallery photos with their captions) is indexed once per module; tests that change
it (recompute, broken face model) index their own copy.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from pixsearch import Library
from pixsearch.errors import BlockedError, ModelError
from pixsearch.media import load_image, thumbnail_bytes
from pixsearch.policy.enforcement import Withheld
from pixsearch.policy.faces import FaceAges
from pixsearch.policy.minor_words import caption_mentions_minor, photo_is_positive
from pixsearch.policy.photo import (
    MinorsClassifier,
    PhotoChecker,
    photo_checker,
    rgb_of_thumbnail,
    shipped_classifiers,
)
from tests.conftest import GALLERY, gallery_photos

# Chosen by their captions: 3 photos of children (one a baby's face), 3 of dogs, 2 of adults.
CHILD = ["2060031241_a3ae7a06bb.jpg", "1468389504_c724bdcad0.jpg", "2201192417_d934730fea.jpg"]
DOGS = ["1319634306_816f21677f.jpg", "1429546659_44cb09cbe2.jpg", "1745110280_0cbff5e273.jpg"]
ADULTS = ["2346402952_e47d0065b6.jpg", "2448210587_9fe7ea5f42.jpg"]
DISCLAIMER = "This image is unavailable in your country in compliance with local laws."


def _rgb(name: str):  # the pixels the index-time face check sees: the stored thumbnail
    return rgb_of_thumbnail(thumbnail_bytes(load_image(GALLERY / "images" / name, draft=256)))


@pytest.fixture(scope="module")
def lib_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    d = gallery_photos(tmp_path_factory.mktemp("pp"), CHILD + DOGS + ADULTS)
    with Library.open(d / "lib") as lib:
        rep = lib.add([d / "photos"], captions_csv=d / "captions.csv")
        assert rep.added == 8 and not rep.failed
    return d


def _flags(lib: Library) -> dict[str, tuple[int, dict, str]]:
    rows = lib.catalog.connection_for_tests().execute(
        "SELECT p.path, f.flagged, f.evidence, f.policy FROM flags f JOIN paths p ON p.image_id = f.image_id"
    )
    return {Path(p).name: (int(fl), json.loads(ev), pol) for p, fl, ev, pol in rows}


# -- the label rule -----------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("text", "minor"),
    [
        ("A little girl in pink", True),
        ("Two kids play soccer", True),
        ("a baby in a stroller", True),
        ("a 10-year-old on a bike", True),
        ("teenagers skate", True),
        ("a baby goat in a field", False),
        ("a cowboy rides a horse", False),
        ("a 30 year old man", False),
        ("kidding around with friends", False),
        ("A young man jumps", False),
    ],
)
def test_caption_rule(text: str, minor: bool) -> None:
    assert caption_mentions_minor(text) is minor


def test_photo_label_is_any_caption() -> None:
    assert photo_is_positive(["A man on a bench", "A father and his son sit", "a man and a boy"])
    assert not photo_is_positive(["A man on a bench", "an old man sits"])


# -- faces --------------------------------------------------------------------------------------
def test_faces_real_models() -> None:
    fa = FaceAges()
    baby = fa.faces(_rgb("2060031241_a3ae7a06bb.jpg"))
    assert baby and max(f.p_minor for f in baby) > 0.9 and min(f.age for f in baby) < 8
    adults = fa.faces(_rgb("2346402952_e47d0065b6.jpg"))
    assert adults and all(f.p_minor < 0.2 and f.age > 20 for f in adults)
    assert fa.faces(_rgb("1319634306_816f21677f.jpg")) == []  # a dog: no face


def test_broken_face_model_fails_closed(tmp_path: Path) -> None:
    bad = tmp_path / "models"
    shutil.copytree(FaceAges().model_dir, bad)
    (bad / "age-v1.onnx").write_bytes(b"not an onnx graph")
    fa = FaceAges(model_dir=bad)
    with pytest.raises(ModelError):
        fa.load()
    checker = PhotoChecker(None, MinorsClassifier.shipped(), fa)
    assert "faces" in checker.errors and "faces" in checker.fingerprint.split("|err:")[1].split(",")
    assert "classifier" in checker.errors  # the stacked classifier reads the faces: it cannot run either
    feats = {"pooled": np.zeros((2, 1280), np.float32), "embedding": np.zeros((2, 256), np.float32)}
    verdicts = checker.check(feats, [_rgb(DOGS[0]), _rgb(DOGS[1])])
    assert all(v.flagged and "fail-closed" in v.evidence["reasons"] for v in verdicts)


def test_broken_face_model_hides_everything_in_restricted_region(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import pixsearch.policy.faces as faces

    bad = tmp_path / "models"
    bad.mkdir()  # no model files at all
    monkeypatch.setattr(faces, "age_model_dir", lambda: bad)
    d = gallery_photos(tmp_path, DOGS[:2])
    with Library.open(d / "lib") as lib:
        lib.add([d / "photos"])
        flags = _flags(lib)
        assert {n: f[0] for n, f in flags.items()} == {DOGS[0]: 1, DOGS[1]: 1}
        assert all("faces" in f[1]["errors"] for f in flags.values())
        res = lib.with_region("restricted").search("a dog in the grass", k=2)
        assert res and all(isinstance(r, Withheld) for r in res)
        assert all(not isinstance(r, Withheld) for r in lib.search("a dog in the grass", k=2))


# -- index time ---------------------------------------------------------------------------------
def test_flags_written_at_index_time(lib_dir: Path) -> None:
    with Library.open(lib_dir / "lib") as lib:
        flags = _flags(lib)
    assert set(flags) == set(CHILD + DOGS + ADULTS)
    assert len({f[2] for f in flags.values()}) == 1  # one policy fingerprint
    for n in CHILD:
        assert flags[n][0] == 1, (n, flags[n][1])
    assert flags[CHILD[0]][1]["reasons"]  # why it was flagged is recorded
    for n in DOGS:  # children score >= 0.99 (policy-minors-v3), dogs < 0.002
        assert 0.0 <= flags[n][1]["classifier"] < 0.01, (n, flags[n][1])
        assert set(flags[n][1]["reasons"]) <= {"classifier"}, (n, flags[n][1])
    # v3's val-calibrated threshold (0.00054, docs/policy.md) sits among dog photos' scores: one of these
    # three dogs (0.00105) is flagged; policy-minors-v2 on lite0-minilm-v1 (threshold 0.038) flags none
    assert sum(flags[n][0] for n in DOGS) <= 1


def test_flags_recomputed_when_policy_changes(tmp_path: Path) -> None:
    from pixsearch.config import load_settings

    d = gallery_photos(tmp_path, [CHILD[0], DOGS[0]])
    with Library.open(d / "lib") as lib:
        lib.add([d / "photos"], captions_csv=d / "captions.csv")
        before = _flags(lib)
    user = tmp_path / "policy.toml"
    user.write_text("[topics.minors]\nmax_age = 14\n")  # a stricter text policy: new fingerprint
    settings = load_settings(library=d / "lib", policy_file=user)
    with Library.open(settings=settings) as lib:
        rep = lib.add([d / "photos"])
        after = _flags(lib)
    assert rep.enriched.get("policy") == 2
    assert {f[2] for f in after.values()} != {f[2] for f in before.values()}
    assert {n: f[0] for n, f in after.items()} == {CHILD[0]: 1, DOGS[0]: 0}


# -- enforcement --------------------------------------------------------------------------------
def test_withheld_in_result_lists(lib_dir: Path) -> None:
    with Library.open(lib_dir / "lib") as lib:
        flagged = {n for n, f in _flags(lib).items() if f[0]}
        shown = lib.search("people outdoors", k=8)
        assert not any(isinstance(r, Withheld) for r in shown)  # default region: nothing hidden
        view = lib.with_region("restricted")
        res = view.search("people outdoors", k=8)
        hidden = [r for r in res if isinstance(r, Withheld)]
        assert len(res) == 8 and len(hidden) == len(flagged)
        assert all(r.to_dict() == {"withheld": True, "disclaimer": DISCLAIMER} for r in hidden)
        assert {Path(r.path).name for r in res if not isinstance(r, Withheld)} == set(
            CHILD + DOGS + ADULTS
        ) - flagged
        dog = str(lib_dir / "photos" / DOGS[0])
        sim = view.similar(dog, k=7)
        assert sum(isinstance(r, Withheld) for r in sim) == len(flagged)
        desc = view.describe(dog, k=40)
        shown_caps = [r for r in desc if not isinstance(r, Withheld)]
        assert any(isinstance(r, Withheld) for r in desc)
        assert all(Path(r.path).name not in flagged for r in shown_caps)
        assert not any(caption_mentions_minor(r.caption) for r in shown_caps)


def test_flagged_photo_blocked_by_id_path_and_bytes(lib_dir: Path) -> None:
    child = lib_dir / "photos" / CHILD[0]
    with Library.open(lib_dir / "lib") as lib:
        iid = lib.catalog.image_for_path(str(child))
        assert iid is not None
        lib.similar(iid, k=2)  # default region: allowed
        view = lib.with_region("restricted")
        for ask in (iid, str(child), child.read_bytes()):
            with pytest.raises(BlockedError) as e:
                view.similar(ask, k=2)
            assert e.value.disclaimer == DISCLAIMER
            with pytest.raises(BlockedError):
                view.describe(ask, k=2)
        with pytest.raises(BlockedError):
            view.check_photo(iid)
        dog = lib.catalog.image_for_path(str(lib_dir / "photos" / DOGS[0]))
        assert dog is not None
        view.check_photo(dog)


def test_unchecked_photo_is_hidden(lib_dir: Path, tmp_path: Path) -> None:
    shutil.copytree(lib_dir / "lib", tmp_path / "lib")
    with Library.open(tmp_path / "lib") as lib:
        dog = lib.catalog.image_for_path(str(lib_dir / "photos" / DOGS[0]))
        assert dog is not None
        with lib.catalog.transaction():
            lib.catalog.connection_for_tests().execute("DELETE FROM flags WHERE image_id = ?", (dog,))
        with pytest.raises(BlockedError):
            lib.with_region("restricted").check_photo(dog)


# -- eval ---------------------------------------------------------------------------------------
def test_eval_policy_photos_keys(tmp_path: Path) -> None:
    from pixsearch.evaluation.policy_photos import eval_policy_photos

    names = CHILD + DOGS[:2]
    d = gallery_photos(tmp_path, names)
    (d / "photos").rename(d / "images")
    (d / "val.txt").write_text("\n".join(names) + "\n")
    res = eval_policy_photos(d, "val")
    assert {"n_images", "n_positive", "precision", "recall", "flagged"} <= set(res)
    assert res["n_images"] == 5 and res["n_positive"] == 3
    assert set(CHILD) <= set(res["flagged"]) and res["recall"] == 1.0
    assert 0.0 < res["precision"] <= 1.0


@pytest.mark.parametrize(
    ("encoder", "classifier", "precision", "ap"),
    [
        ("lite02-minilm-v2", "policy-minors-v3", 0.50, 0.83),
        ("lite0-minilm-v1", "policy-minors-v2", 0.58, 0.78),
    ],
)
def test_photo_check_floor_on_a_fixed_val_slice(
    flickr8k: Path, tmp_path: Path, encoder: str, classifier: str, precision: float, ap: float
) -> None:
    """The first 60 Flickr8k val photos (30 positive) through the whole pixel check (encoder, faces,
    stacked classifier at its shipped threshold), per encoder with its own classifier. Measured:
    policy-minors-v3 recall 1.0, precision 0.545 (55 flagged), AP 0.875; policy-minors-v2 recall 1.0,
    precision 0.625 (48 flagged), AP 0.824. The floors leave room for one miss and a few more flags."""
    from pixsearch.evaluation.policy_photos import eval_policy_photos
    from tests.conftest import flickr8k_subset

    (tmp_path / "val60").mkdir()
    d = flickr8k_subset(flickr8k, tmp_path / "val60", 0, 60)
    res = eval_policy_photos(d, "val", encoder)
    assert res["model"]["classifier"].startswith(f"{classifier}:")
    assert res["n_images"] == 60 and res["n_positive"] == 30 and not res["errors"]
    assert res["recall"] >= 0.96, res["recall"]
    assert res["precision"] >= precision, res["precision"]
    assert res["average_precision"] >= ap, res["average_precision"]


def test_face_summary_of_real_faces() -> None:
    from pixsearch.policy.faces import FACE_FEATURES, face_summary

    fa = FaceAges()
    col = {n: i for i, n in enumerate(FACE_FEATURES)}
    img = _rgb(CHILD[0])
    baby = face_summary(fa.faces(img), img.shape)
    assert baby[col["has_face"]] == 1 and baby[col["p16_max"]] > 0.9 and baby[col["age_min"]] < 8
    assert 0 < baby[col["size_largest"]] <= 1 and baby[col["p16_weighted"]] > 0.5
    img = _rgb(ADULTS[0])
    adult = face_summary(fa.faces(img), img.shape)
    assert adult[col["has_face"]] == 1 and adult[col["p16_max"]] < 0.2 and adult[col["n_adult"]] >= 1
    none = face_summary([], (256, 256, 3))
    assert none[col["has_face"]] == 0 and none[col["age_min"]] == 80 and none[col["n_faces"]] == 0


# -- which classifier: the one trained on the library's encoder ---------------------------------
@pytest.mark.parametrize(
    ("encoder", "classifier"),
    [("lite02-minilm-v2", "policy-minors-v3"), ("lite0-minilm-v1", "policy-minors-v2")],
)
def test_checker_picks_the_classifier_trained_on_the_library_encoder(encoder: str, classifier: str) -> None:
    checker = photo_checker(None, encoder)
    assert checker.classifier is not None and checker.classifier.path.stem == classifier
    assert checker.classifier.encoder == encoder and "classifier" not in checker.errors
    assert checker.fingerprint.startswith(f"photo-v2|{classifier}:")


def test_no_classifier_for_the_encoder_fails_closed() -> None:
    """A library on an encoder no shipped classifier was trained on (its features would be noise to
    every one): no classifier, an error naming the encoder, every photo flagged with the reason."""
    checker = photo_checker(None, "lite0-raw")
    assert checker.classifier is None
    assert "lite0-raw" in checker.errors["classifier"] and "policy-minors-v3" in checker.errors["classifier"]
    assert "classifier" in checker.fingerprint.split("|err:")[1].split(",")
    feats = {"pooled": np.zeros((2, 1280), np.float32), "embedding": np.zeros((2, 256), np.float32)}
    verdicts = checker.check(feats, [_rgb(DOGS[0]), _rgb(DOGS[1])])
    assert all(v.flagged and "fail-closed" in v.evidence["reasons"] for v in verdicts)
    assert all("classifier" in v.evidence["errors"] for v in verdicts)
    # handed one trained on another encoder's features, the checker refuses it the same way
    v2 = MinorsClassifier.shipped("policy-minors-v2")
    assert "lite0-minilm-v1" in PhotoChecker(None, v2, None, "lite02-minilm-v2").errors["classifier"]


def test_classifier_lookup_newest_first_by_card(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Versions compare as numbers (v10 after v9); an unreadable card fits no encoder (it is never
    swapped for an older model silently), and a card whose weights are missing fails to load."""
    import pixsearch.policy.classifier as classifier

    src = classifier._weights_dir()
    for name, enc in [
        ("policy-minors-v9", "enc-a"),
        ("policy-minors-v10", "enc-a"),
        ("policy-minors-v2", "enc-b"),
    ]:
        card = json.loads((src / "policy-minors-v2.json").read_text())
        (tmp_path / f"{name}.json").write_text(json.dumps({**card, "encoder": enc}))
        shutil.copy(src / "policy-minors-v2.safetensors", tmp_path / f"{name}.safetensors")
    (tmp_path / "policy-minors-v11.json").write_text("{not json")
    shutil.copy(src / "policy-minors-v2.safetensors", tmp_path / "policy-minors-v11.safetensors")
    (tmp_path / "policy-minors-v12.json").write_text(json.dumps({"encoder": "enc-c"}))  # no weights
    (tmp_path / "policy-minors-old.json").write_text("{}")  # not a version: ignored
    monkeypatch.setattr(classifier, "_weights_dir", lambda: tmp_path)
    assert shipped_classifiers() == [
        ("policy-minors-v12", "enc-c"),
        ("policy-minors-v11", ""),
        ("policy-minors-v10", "enc-a"),
        ("policy-minors-v9", "enc-a"),
        ("policy-minors-v2", "enc-b"),
    ]
    assert MinorsClassifier.for_encoder("enc-a").path.stem == "policy-minors-v10"
    assert MinorsClassifier.for_encoder("enc-b").path.stem == "policy-minors-v2"
    with pytest.raises(ModelError, match="enc-z"):
        MinorsClassifier.for_encoder("enc-z")
    with pytest.raises(ModelError, match="policy-minors-v12"):
        MinorsClassifier.for_encoder("enc-c")
    assert "does not load" in photo_checker(None, "enc-c").errors["classifier"]


def test_shipped_classifier_is_stacked_and_v1_still_loads() -> None:
    v3 = MinorsClassifier.shipped()  # the newest: the default encoder's
    assert v3.fingerprint.startswith("policy-minors-v3:") and v3.needs_faces
    assert v3.stack_inputs[:2] == ["mlp", "knn"] and v3.encoder == "lite02-minilm-v2"
    v2 = MinorsClassifier.shipped("policy-minors-v2")
    assert v2.needs_faces and v2.stack_inputs == v3.stack_inputs and v2.encoder == "lite0-minilm-v1"
    feats = {"pooled": np.zeros((1, 1280), np.float32), "embedding": np.ones((1, 256), np.float32)}
    with pytest.raises(ModelError):
        v3.scores(feats)  # no face summary given: a stacked model refuses to guess
    v1 = MinorsClassifier.shipped("policy-minors-v1")
    assert not v1.stack_inputs and not v1.needs_faces
    assert 0.0 <= float(v1.scores(feats)[0]) <= 1.0


def test_generated_text_about_a_child_is_withheld(lib_dir: Path) -> None:
    with Library.open(lib_dir / "lib") as lib:
        lib.withhold.ensure_text("a little girl on a swing")  # default region: allowed
        w = lib.with_region("restricted").withhold
        with pytest.raises(BlockedError):
            w.ensure_text("a little girl on a swing")
        w.ensure_text("a brown dog runs on the beach")


def test_new_query_photo_is_checked_too(lib_dir: Path) -> None:
    import io

    from PIL import Image

    def reencoded(name: str) -> bytes:  # same picture, other bytes: not in the library
        buf = io.BytesIO()
        Image.open(GALLERY / "images" / name).convert("RGB").save(buf, format="JPEG", quality=90)
        return buf.getvalue()

    with Library.open(lib_dir / "lib") as lib:
        view = lib.with_region("restricted")
        child, dog = reencoded(CHILD[0]), reencoded(DOGS[0])
        assert lib.catalog.image_id_for_hash(__import__("pixsearch.media").media.content_hash(child)) is None
        lib.similar(child, k=2)  # default region: allowed
        with pytest.raises(BlockedError):
            view.similar(child, k=2)
        assert len(view.similar(dog, k=2)) == 2


def test_face_model_load_keeps_the_terminal_clean_but_not_silent() -> None:
    """TF Lite's XNNPACK banner (written to fd 2 by C++) is dropped; anything else on fd 2 is kept."""
    pytest.importorskip("ai_edge_litert")  # the [policy] extra
    code = (
        "import os\n"
        "from pixsearch.policy.faces import FaceAges, _without_xnnpack_banner\n"
        "FaceAges().load()\n"
        "with _without_xnnpack_banner():\n"
        "    os.write(2, b'INFO: Created TensorFlow Lite XNNPACK delegate for CPU.\\nreal problem\\n')\n"
        "print('ok')\n"
    )
    p = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert p.returncode == 0 and p.stdout.strip() == "ok", p.stderr
    assert "XNNPACK" not in p.stderr and p.stderr.strip().splitlines() == ["real problem"]
