"""Settings, parsed once at the edge (env, an optional TOML file, then flags) into frozen dataclasses.

Precedence, lowest to highest: defaults < ``$XDG_CONFIG_HOME/pixsearch/config.toml`` (or
``$PIXSEARCH_CONFIG``) < ``PIXSEARCH_*`` environment variables < explicit arguments (CLI flags).
"""

from __future__ import annotations

import os
import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any

from pixsearch.errors import ConfigError

__all__ = ["FusionWeights", "Settings", "load_settings", "default_library_dir"]
__all__ += ["LOCAL", "MilvusStore", "canonical_store", "parse_store"]

LOCAL = "local"  # --store local: usearch / exact files in the library dir (the default)
_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,200}$")


@dataclass(frozen=True)
class FusionWeights:
    """Weights of the text->image signals in the fused score (see ``search/text.py``).

    Each signal is calibrated to log-odds of relevance first; a photo's score is the weighted mean over
    the signals it has, plus ``label`` x a matching label's evidence (search/labels.py). Tuned on Flickr8k val
    (docs/model.md, "Fusion"): captions #0-2 in the library, #3-4 as queries, all photos captioned R@1
    66.6 (old fusion 66.8); half of them captioned 36.8 / 66.7 / 78.0 R@1/5/10 (old 37.0 / 46.7 / 48.4).
    Generated captions and labels weigh less than human captions (they are often wrong).
    """

    dense: float = 0.5  # joint-space cosine between query and image
    caption: float = 1.0  # MiniLM cosine between query and the image's best human caption
    bm25: float = 0.2  # FTS5 BM25 over human captions, squashed to 0..1
    generated: float = 0.25  # MiniLM cosine between query and the image's generated caption
    label: float = 3.0  # log-odds per unit of label evidence (probability x query words covered)
    # log-odds per unit of the photo's own words matching the query (the share of the query's words among
    # its keywords, place name, text read in it): a word the owner gave a photo, or its sign, lifts it
    words: float = 4.0


@dataclass(frozen=True)
class Settings:
    library: Path
    model: str | None = None  # None: the library's own model, or the default for a new library
    vector_backend: str = "usearch"
    vector_dtype: str = "f16"
    weights: FusionWeights = field(default_factory=FusionWeights)
    threshold: float | None = None  # match-score cut for search, 0..1 (None: no cut; see search/matching.py)
    batch_size: int = 32
    threads: int | None = None  # ONNX Runtime intra-op threads (PIXSEARCH_THREADS); None: every core
    region: str | None = None  # content-policy region (policy/rules.py); None: the policy's default_region
    generate_captions: bool = False  # --caption: caption photos that have none (enrichers/captions.py)
    captioner: str | None = None  # captioner name or folder (PIXSEARCH_CAPTIONER); None: the shipped default
    ocr: bool = False  # --ocr: read text in photos at index time (enrichers/ocr.py, the [ocr] extra)
    ocr_languages: str = "eng"  # tesseract languages, '+'-joined (PIXSEARCH_OCR_LANGUAGES), e.g. eng+deu
    policy_file: Path | None = None  # user policy TOML merged over the shipped one (policy/rules.py)
    store: str | None = None  # milvus-lite:PATH.db or milvus://HOST:PORT/COLL (storage/store.py); None: files
    readers: int | None = (
        None  # REST server: searches served at once (PIXSEARCH_READERS); None: one per two cores
    )


@dataclass(frozen=True)
class MilvusStore:
    """Where a library's vectors live in Milvus: a client URI and a collection-name prefix."""

    uri: str
    collection: str
    lite: bool
    token: str = ""

    def __str__(self) -> str:
        return f"milvus-lite:{self.uri}" if self.lite else f"{self.uri} ({self.collection})"


def parse_store(spec: str, env: dict[str, str] | None = None) -> MilvusStore:
    """``milvus-lite:PATH.db`` or ``milvus://HOST:PORT/COLLECTION`` (anything else: ConfigError)."""
    env = dict(os.environ) if env is None else env
    if spec.startswith("milvus-lite:"):
        path = Path(spec.removeprefix("milvus-lite:")).expanduser().absolute()
        if path.suffix != ".db":
            raise ConfigError(f"--store {spec}: Milvus Lite needs a file name ending in .db")
        return MilvusStore(str(path), "pixsearch", lite=True)
    m = re.fullmatch(r"milvus(\+https)?://([^/:]+)(?::(\d+))?/([^/]+)", spec)
    if not m:
        raise ConfigError(f"--store {spec!r}: expected milvus-lite:PATH.db or milvus://HOST:PORT/COLLECTION")
    scheme = "https" if m.group(1) else "http"
    coll = m.group(4)
    if not _NAME.match(coll):
        raise ConfigError(f"--store {spec}: collection names are letters, digits and _")
    uri = f"{scheme}://{m.group(2)}:{m.group(3) or 19530}"
    return MilvusStore(uri, coll, lite=False, token=env.get("PIXSEARCH_MILVUS_TOKEN", ""))


def canonical_store(spec: str) -> str:
    """One spelling per store (absolute Lite path, explicit port), so the recorded store compares equal
    however the user typed it; ``local`` names the library's own files (to move back with ``reindex``).
    Raises ConfigError for anything else."""
    if spec.strip() == LOCAL:
        return LOCAL
    s = parse_store(spec.strip(), env={})
    if s.lite:
        return f"milvus-lite:{s.uri}"
    scheme = "milvus+https" if s.uri.startswith("https://") else "milvus"
    return f"{scheme}://{s.uri.split('://', 1)[1]}/{s.collection}"


def default_library_dir(env: Mapping[str, str] = os.environ) -> Path:
    base = env.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(base) / "pixsearch" / "library"


def _config_file(env: Mapping[str, str]) -> Path:
    if env.get("PIXSEARCH_CONFIG"):
        return Path(env["PIXSEARCH_CONFIG"])
    base = env.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(base) / "pixsearch" / "config.toml"


def _num(name: str, value: Any) -> float:
    try:
        return float(value)
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"{name} must be a number, got {value!r}") from exc


def load_settings(env: Mapping[str, str] = os.environ, **overrides: Any) -> Settings:
    """Build Settings; ``overrides`` whose value is None are ignored (unset CLI flags)."""
    raw: dict[str, Any] = {}
    cfg_path = _config_file(env)
    if cfg_path.is_file():
        try:
            raw.update(tomllib.loads(cfg_path.read_text()))
        except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
            raise ConfigError(f"{cfg_path}: invalid TOML ({exc})") from exc
    for key, var in (
        ("library", "PIXSEARCH_LIBRARY"),
        ("model", "PIXSEARCH_MODEL"),
        ("vector_backend", "PIXSEARCH_VECTOR_BACKEND"),
        ("region", "PIXSEARCH_REGION"),
        ("policy_file", "PIXSEARCH_POLICY"),
        ("batch_size", "PIXSEARCH_BATCH_SIZE"),
        ("threads", "PIXSEARCH_THREADS"),
        ("captioner", "PIXSEARCH_CAPTIONER"),
        ("ocr_languages", "PIXSEARCH_OCR_LANGUAGES"),
        ("store", "PIXSEARCH_STORE"),
        ("readers", "PIXSEARCH_READERS"),
    ):
        if env.get(var):
            raw[key] = env[var]
    raw.update({k: v for k, v in overrides.items() if v is not None})

    known = {f.name for f in fields(Settings)}
    unknown = set(raw) - known
    if unknown:
        raise ConfigError(f"unknown setting(s): {', '.join(sorted(unknown))}")
    w = raw.pop("weights", {})
    if isinstance(w, FusionWeights):
        weights = w
    else:
        keys = [f.name for f in fields(FusionWeights)]
        if not isinstance(w, dict) or set(w) - set(keys):
            raise ConfigError(f"weights must be a table with keys {', '.join(keys)}")
        weights = FusionWeights(**{k: _num(f"weights.{k}", v) for k, v in w.items()})
    if min(getattr(weights, f.name) for f in fields(FusionWeights)) < 0:
        raise ConfigError("fusion weights must be >= 0")
    lib = Path(raw.pop("library", default_library_dir(env))).expanduser()
    s = Settings(library=lib, weights=weights)
    if "threshold" in raw:
        raw["threshold"] = _num("threshold", raw["threshold"])
        if not 0.0 <= raw["threshold"] <= 1.0:  # it cuts the calibrated match score (models/scorer.py)
            raise ConfigError(f"threshold must be between 0 and 1, got {raw['threshold']}")
    if "batch_size" in raw:
        raw["batch_size"] = int(_num("batch_size", raw["batch_size"]))
        if raw["batch_size"] < 1:
            raise ConfigError("batch_size must be >= 1")
    for key in ("threads", "readers"):
        if key in raw:
            t = raw[key]
            if isinstance(t, bool) or not str(t).strip().isdigit() or int(t) < 1:
                raise ConfigError(f"{key} / PIXSEARCH_{key.upper()} must be a whole number >= 1, got {t!r}")
            raw[key] = int(t)
    if raw.get("policy_file") is not None:
        raw["policy_file"] = Path(raw["policy_file"]).expanduser()
    if "region" in raw and not isinstance(raw["region"], str):
        raise ConfigError(f"region must be a string, got {raw['region']!r}")
    if raw.get("store") is not None:  # a typo fails here, before any model loads
        raw["store"] = canonical_store(str(raw["store"]))
    if raw.get("vector_backend", "usearch") not in ("usearch", "exact"):
        raise ConfigError(f"vector_backend must be usearch or exact, got {raw['vector_backend']!r}")
    return replace(s, **raw)
