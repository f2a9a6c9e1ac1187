"""Photo metadata at index time: what reading it costs per photo, on real Flickr8k photos.

Prints one JSON object. Usage:
  python benchmarks/bench_metadata.py [--n 200] [--data ../shared/data/flickr8k] [--library]
Half the photos are given camera EXIF with a GPS position (five cities), a quarter an XMP sidecar with a
description and keywords, the rest nothing (file times only), as a mixed library would be. Reported:
``read_ms`` per photo (p50/mean, the place table already loaded), ``geocoder_load_s`` (once per process,
only when a photo has GPS), and with ``--library`` the next ``pixsearch index`` of a library indexed
before the metadata enricher existed: its seconds and the photos encoded (0 but for policy re-checks of
photos whose description became a caption).
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import sys
import tempfile
import time
from importlib.metadata import version
from pathlib import Path

from _timing import machine

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.unit.indexing.metadata.photos import exif_for, photo, xmp_packet  # noqa: E402

CITIES = [
    (48.8566, 2.3522),
    (40.7128, -74.006),
    (35.6762, 139.6503),
    (-33.8688, 151.2093),
    (51.5072, -0.1276),
]


def _photos(data: Path, n: int, dst: Path) -> list[Path]:
    src = sorted((data / "images").glob("*.jpg"))[:n]
    out = []
    for i, s in enumerate(src):
        p = dst / s.name
        if i % 2 == 0:
            taken = f"2019:05:{1 + i % 28:02d} 12:00:00"
            exif = exif_for(
                taken, "+02:00", "Canon", "Canon EOS R6", "RF24-105mm", CITIES[i % len(CITIES)], 1
            )
            photo(s, p, exif)
        else:
            shutil.copy(s, p)
        if i % 4 == 1:
            p.with_suffix(".xmp").write_bytes(
                xmp_packet(f"photo number {i} on holiday", ("holiday", f"k{i}"))
            )
        out.append(p)
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=200)
    ap.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "data" / "flickr8k")
    ap.add_argument("--library", action="store_true", help="also time the next index of a v5 library")
    args = ap.parse_args()

    from pixsearch.indexing.metadata import read_photo_meta
    from pixsearch.indexing.metadata.places import OfflinePlaces

    result: dict = {"photos": args.n}
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp) / "photos"
        folder.mkdir()
        paths = _photos(args.data, args.n, folder)
        places = OfflinePlaces()
        t = time.perf_counter()
        places.names([CITIES[0]])
        result["geocoder_load_s"] = round(time.perf_counter() - t, 3)
        for label, subset in (("all", paths), ("exif_gps", paths[0::2]), ("plain", paths[3::4])):
            ms = []
            for p in subset:
                t = time.perf_counter()
                read_photo_meta(p, places)
                ms.append((time.perf_counter() - t) * 1000)
            result[f"read_ms_{label}"] = {
                "p50": round(statistics.median(ms), 3),
                "mean": round(statistics.fmean(ms), 3),
            }
        if args.library:
            result["v5_upgrade"] = _v5_upgrade(folder, Path(tmp) / "lib")
    result["machine"] = machine(reverse_geocode=version("reverse_geocode"))
    print(json.dumps(result))


def _v5_upgrade(folder: Path, lib_dir: Path) -> dict:
    import sqlite3

    from pixsearch import Library
    from pixsearch.indexing.enrichers.registry import enrichers
    from pixsearch.indexing.indexer import Indexer

    with Library.open(lib_dir) as lib:
        old = [e for e in enrichers(lib.settings, lib.encoder) if e.name != "metadata"]
        Indexer(lib.catalog, lib.vectors, lib.encoder, 32, old, settings=lib.settings).run([folder])
    db = sqlite3.connect(lib_dir / "catalog.db")
    with db:
        for t in ("photo_texts_fts", "photo_texts", "photo_meta"):
            db.execute(f"DROP TABLE {t}")
    db.execute("PRAGMA user_version=5")
    db.close()
    with Library.open(lib_dir) as lib:
        encoded = [0]
        real = lib.encoder.encode_image_features

        def counting(arrays):  # type: ignore[no-untyped-def]
            encoded[0] += len(arrays)
            return real(arrays)

        lib.encoder.encode_image_features = counting  # type: ignore[method-assign]
        t = time.perf_counter()
        rep = lib.add([folder])
        secs = time.perf_counter() - t
    return {
        "seconds": round(secs, 2),
        "metadata_s": round(rep.timings.get("metadata", 0.0), 2),
        "photos_read": rep.enriched.get("metadata", 0),
        "photos_encoded": encoded[0],
        "policy_rechecked": rep.enriched.get("policy", 0),
    }


if __name__ == "__main__":
    main()
