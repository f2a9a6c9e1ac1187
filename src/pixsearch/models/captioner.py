"""Caption generation at run time: two ONNX graphs + a vocabulary, beam search in NumPy (no torch).

A captioner is a folder (``weights/captioners/NAME/`` when shipped, or a training run's ``export/``)
holding ``init.onnx`` (image features -> decoder caches and the first log-probabilities), ``step.onnx``
(one token per beam -> next log-probabilities), ``vocab.json`` and ``card.json`` (the encoder it was
trained on, metrics, recipe, sha256 of each file). It reads the *spatial* output of exactly that encoder
(the 7x7 map after its fine-tuned top), so :meth:`Captioner.check_encoder` refuses any other encoder.

Beam search keeps ``beam`` live hypotheses per image, moves a hypothesis that emits ``<eos>`` to the
image's finished list with the length-normalised score ``logp / len**alpha`` (len counts ``<eos>``), stops
an image once it has ``beam`` finished hypotheses (or at ``max_len``) and returns the best normalised one.
``<pad>``, ``<bos>`` and ``<unk>`` are never generated and ``<eos>`` is not allowed first, so captions
are never empty. A beam wider than the number of words it can generate is clamped to that number.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Callable
from functools import lru_cache, partial
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from pixsearch.errors import ModelError, ModelMismatchError
from pixsearch.models.shipped import CAPTIONERS_DIR
from pixsearch.models.vocab import BOS, EOS, PAD, SPECIALS, UNK, Vocab

if TYPE_CHECKING:
    from PIL import Image

    from pixsearch.models.encoder import JointEncoder

__all__ = [
    "Captioner",
    "beam_search",
    "available_captioners",
    "create_captioner",
    "shared_captioner",
    "caption_image",
    "DEFAULT_CAPTIONER",
]

DEFAULT_CAPTIONER = "lite0-cap-v1"
FILES = ("init.onnx", "step.onnx", "vocab.json")

State = tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]  # past_k, past_v, mem_k, mem_v
InitFn = Callable[[np.ndarray], tuple[np.ndarray, State]]
StepFn = Callable[[np.ndarray, int, State], tuple[np.ndarray, State]]


def beam_search(
    init: InitFn,
    step: StepFn,
    spatial: np.ndarray,
    beam: int,
    vocab_size: int,
    max_len: int,
    alpha: float = 0.7,
    no_repeat: bool = True,
) -> list[list[int]]:
    """Token ids (without <bos>/<eos>) of the best length-normalised hypothesis per image."""
    n = spatial.shape[0]
    if n == 0:
        return []
    k = max(1, min(beam, vocab_size - len(SPECIALS)))
    banned = [PAD, BOS, UNK]
    logp0, state = init(spatial)
    logp0 = logp0.astype(np.float64)
    logp0[:, banned + [EOS]] = -np.inf
    top = np.argsort(-logp0, axis=1)[:, :k]
    scores = np.take_along_axis(logp0, top, 1)  # (n, k)
    seqs: list[list[list[int]]] = [[[int(t)] for t in row] for row in top]
    rows = np.repeat(np.arange(n), k)
    state = _rows(state, rows)
    finished: list[list[tuple[float, list[int]]]] = [[] for _ in range(n)]
    alive = list(range(n))  # images still searching; their beams are rows a*k .. a*k+k-1 of the state
    for pos in range(1, max_len):
        tokens = np.array([seqs[i][b][-1] for i in alive for b in range(k)], dtype=np.int64)
        logp, state = step(tokens, pos, state)
        logp = logp.astype(np.float64)
        logp[:, banned] = -np.inf
        if no_repeat:  # "is is is": a word never follows itself in the training captions' style
            logp[np.arange(len(tokens)), tokens] = -np.inf
        if pos == max_len - 1:  # last position: only <eos> may follow
            keep_eos = logp[:, EOS].copy()
            logp[:] = -np.inf
            logp[:, EOS] = keep_eos
        v = logp.shape[1]
        cand = (scores[:, :, None] + logp.reshape(len(alive), k, v)).reshape(len(alive), k * v)
        m = min(2 * k, cand.shape[1])
        best = np.argpartition(-cand, m - 1, axis=1)[:, :m]
        order = np.take_along_axis(cand, best, 1).argsort(axis=1)[:, ::-1]
        best = np.take_along_axis(best, order, 1)
        new_scores = np.full((len(alive), k), -np.inf)
        src_rows = np.zeros((len(alive), k), dtype=np.int64)
        new_seqs: list[list[list[int]]] = []
        still: list[int] = []
        for a, img in enumerate(alive):
            live: list[list[int]] = []
            for c in best[a]:
                s = float(cand[a, c])
                if not np.isfinite(s):
                    break
                b, tok = divmod(int(c), v)
                seq = seqs[img][b]
                if tok == EOS:
                    if len(finished[img]) < k:
                        finished[img].append((s / (len(seq) + 1) ** alpha, seq))
                elif len(live) < k:
                    new_scores[a, len(live)] = s
                    src_rows[a, len(live)] = a * k + b
                    live.append([*seq, tok])
                if len(live) == k and len(finished[img]) >= k:
                    break
            if len(finished[img]) >= k or not live:
                new_seqs.append([])
                continue
            while len(live) < k:  # fewer candidates than beams: pad with a dead copy
                live.append(live[0])
                src_rows[a, len(live) - 1] = src_rows[a, 0]
            still.append(a)
            new_seqs.append(live)
        for a, img in enumerate(alive):
            seqs[img] = new_seqs[a]
        if not still:
            alive = []
            break
        sel = src_rows[still].reshape(-1)
        state = _rows(state, sel)
        scores = new_scores[still]
        alive = [alive[a] for a in still]
    for a, img in enumerate(alive):  # ran out of length: score what is live
        for b, seq in enumerate(seqs[img]):
            finished[img].append((float(scores[a, b]) / (len(seq) + 1) ** alpha, seq))
    return [max(f, key=lambda x: x[0])[1] if f else [] for f in finished]


def _rows(state: State, idx: np.ndarray) -> State:
    """The decoder state of the beams ``idx`` (rows along axis 1 of every cache)."""
    pk, pv, mk, mv = state
    return pk[:, idx], pv[:, idx], mk[:, idx], mv[:, idx]


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


class Captioner:
    """A trained captioner folder, run with ONNX Runtime."""

    def __init__(self, name: str, folder: Path) -> None:
        self.name = name
        self.folder = folder
        missing = [f for f in (*FILES, "card.json") if not (folder / f).is_file()]
        if missing:
            raise ModelError(f"captioner {name!r} at {folder} lacks {', '.join(missing)}")
        try:
            self.card = json.loads((folder / "card.json").read_text())
        except ValueError as exc:
            raise ModelError(f"captioner {name!r}: unreadable card.json ({exc})") from exc
        if self.card.get("format") != "pixsearch-captioner/1":
            raise ModelError(f"captioner {name!r}: not a pixsearch captioner card")
        self.vocab = Vocab.load(folder / "vocab.json")
        net = self.card.get("net", {})
        self.n_tokens, self.feat_dim = int(net.get("n_tokens", 49)), int(net.get("feat_dim", 1280))
        self.max_len = int(net.get("max_len", 24))
        self.alpha = float(self.card.get("decode", {}).get("alpha", 0.7))
        self._sessions: tuple[Any, Any] | None = None
        self._fp: str | None = None

    @property
    def encoder_name(self) -> str:
        return str(self.card.get("encoder", {}).get("name", ""))

    @property
    def fingerprint(self) -> str:
        """Name + digest of the graphs and vocabulary: stored captions are stale when it changes."""
        if self._fp is None:
            h = hashlib.sha256()
            for f in FILES:
                h.update(_sha256(self.folder / f).encode())
            self._fp = f"{self.name}:{h.hexdigest()[:12]}"
        return self._fp

    def check_encoder(self, encoder: JointEncoder) -> None:
        """The captioner reads one encoder's spatial map; any other encoder (backbone, top) is refused."""
        want = self.card.get("encoder", {})
        if want.get("maps") and want["maps"] == encoder.maps_fingerprint:
            return  # another model on the very same maps (lite02-minilm-v2 on lite0-minilm-v1's)
        got_fp = encoder.fingerprint
        want_fp = str(want.get("fingerprint", ""))
        # name:heads-digest | image backbone: both shape the spatial map; the text side does not.
        if encoder.name != want.get("name") or got_fp.split("|")[:2] != want_fp.split("|")[:2]:
            raise ModelMismatchError(
                f"captioner {self.name} was trained on the features of encoder {want.get('name')} "
                f"({want_fp.split('|')[0]}), not {encoder.name} ({got_fp.split('|')[0]})"
            )

    def _load(self) -> tuple[Any, Any]:
        if self._sessions is None:
            import onnxruntime as ort

            opts = ort.SessionOptions()
            n = int(os.environ.get("PIXSEARCH_THREADS", "0") or 0) or (os.cpu_count() or 1)
            opts.intra_op_num_threads = max(1, n)
            opts.inter_op_num_threads = 1
            try:
                init, step = (
                    ort.InferenceSession(str(self.folder / f), opts, providers=["CPUExecutionProvider"])
                    for f in FILES[:2]
                )
            except Exception as exc:  # onnxruntime raises its own (untyped) errors for a bad file
                raise ModelError(f"captioner {self.name}: cannot load its ONNX graphs ({exc})") from exc
            self._sessions = (init, step)
        return self._sessions

    def _init(self, spatial: np.ndarray) -> tuple[np.ndarray, State]:
        logp, pk, pv, mk, mv = self._load()[0].run(None, {"spatial": spatial})
        return logp, (pk, pv, mk, mv)

    def _step(self, tokens: np.ndarray, pos: int, state: State) -> tuple[np.ndarray, State]:
        pk, pv, mk, mv = state
        feed = {
            "token": tokens,
            "pos": np.array([pos], dtype=np.int64),
            "past_k": pk,
            "past_v": pv,
            "mem_k": mk,
            "mem_v": mv,
        }
        logp, nk, nv = self._load()[1].run(None, feed)
        return logp, (nk, nv, mk, mv)

    def caption_features(
        self, spatial: np.ndarray, beam: int = 3, alpha: float | None = None, batch: int = 64
    ) -> list[str]:
        """One caption per row of ``spatial`` (N, 49, 1280), the encoder's ``spatial`` output."""
        spatial = np.asarray(spatial)
        if spatial.ndim != 3 or spatial.shape[1:] != (self.n_tokens, self.feat_dim):
            raise ModelError(
                f"captioner {self.name} reads spatial features of shape (N, {self.n_tokens}, "
                f"{self.feat_dim}) from encoder {self.encoder_name}; got {tuple(spatial.shape)}"
            )
        if beam < 1:
            raise ModelError("beam must be >= 1")
        out: list[str] = []
        a = self.alpha if alpha is None else alpha
        for s in range(0, len(spatial), batch):
            x = np.ascontiguousarray(spatial[s : s + batch], dtype=np.float32)
            ids = beam_search(self._init, self._step, x, beam, len(self.vocab), self.max_len, a)
            out += [self.vocab.decode(i) for i in ids]
        return out


def available_captioners(folder: Path = CAPTIONERS_DIR) -> dict[str, Callable[[], Captioner]]:
    """Name -> factory for every shipped captioner folder."""
    if not folder.is_dir():
        return {}
    return {
        d.name: partial(Captioner, d.name, d) for d in sorted(folder.iterdir()) if (d / "card.json").is_file()
    }


def caption_image(
    img: Image.Image, beam: int = 3, encoder: JointEncoder | None = None, captioner: str | None = None
) -> str:
    """Caption one decoded photo: its encoder's spatial map (``encoder`` when it is the captioner's own
    one, else the captioner's encoder is loaded) through the shared captioner."""
    cap = shared_captioner(captioner)
    if encoder is not None:
        try:
            cap.check_encoder(encoder)
        except ModelMismatchError:
            encoder = None
    if encoder is None:
        encoder = _shared_encoder(cap.encoder_name)
    spatial = encoder.encode_image_features(encoder.preprocess(img)[None])["spatial"]
    return cap.caption_features(spatial, beam=beam)[0]


@lru_cache(maxsize=2)
def _shared_encoder(name: str) -> JointEncoder:
    from pixsearch.models.encoder import create_encoder

    return create_encoder(name)


@lru_cache(maxsize=4)
def shared_captioner(name: str | None = None) -> Captioner:
    """One loaded captioner per name for the process (its ONNX sessions take ~0.2 s to build)."""
    return create_captioner(name)


def create_captioner(name: str | Path | None = None) -> Captioner:
    """A shipped captioner by name (default: the shipped default), or a captioner folder by path."""
    name = str(name or DEFAULT_CAPTIONER)
    path = Path(name)
    if path.is_dir():
        folder = path / "export" if (path / "export" / "card.json").is_file() else path
        return Captioner(str(folder.absolute()), folder)
    reg = available_captioners()
    if name not in reg:
        raise ModelError(f"unknown captioner {name!r}; available: {', '.join(sorted(reg)) or 'none'}")
    return reg[name]()
