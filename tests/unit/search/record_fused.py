"""Record ``fused_expected.json``: what ``TextSearch.run`` returned on the mixed library (conftest.py).

The file was written by the per-candidate fusion that came before ``fusion.fuse_many`` (git 0c87f5e):

    python tests/unit/search/record_fused.py build DIR             # any version: indexes the library
    PYTHONPATH=OLD/src python tests/unit/search/record_fused.py dump DIR   # the old search code

``dump`` encodes queries the old way (MiniLM, then the text head), as the old ``TextSearch`` did.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
FLICKR8K = HERE.parents[2].parent / "shared" / "data" / "flickr8k"
OUT = HERE / "fused_expected.json"
DEPTH = 20
QUERIES = [
    "dog in the snow",
    "people climbing a rock",
    "a child in a pool",
    "man riding a bicycle",
    "two dogs playing in the grass",
    "a girl in a pink dress",
    "people on the beach",
    "basketball game",
    "a crowd at a concert",
]


def main() -> None:
    sys.path.insert(0, str(HERE))
    from conftest import build_mixed_library, val_captions

    from pixsearch import Library

    cmd, work = sys.argv[1], Path(sys.argv[2])
    if cmd == "build":
        build_mixed_library(FLICKR8K, work)
        return
    names = (FLICKR8K / "val.txt").read_text().split()[:24]
    caps = val_captions(FLICKR8K, names)
    queries = QUERIES + [caps[n][3] for n in names[:6]]  # held-out captions: of captioned, uncaptioned
    from pixsearch.search.text import TextSearch

    out = {}
    with Library.open(work / "lib") as lib:
        db = lib.catalog.connection_for_tests()
        name = {i: Path(p).name for p, i in db.execute("SELECT path, image_id FROM paths")}
        ts = TextSearch(
            lib.catalog,
            lib.encoder,
            lib.vectors.view("images"),
            lib.vectors.view("captions"),
            lib.settings.weights,
        )
        for q in queries:
            out[q] = [[name[h.image_id], h.score, h.scores] for h in ts.run(q, DEPTH)]
    lines = [
        f"  {json.dumps(q)}: [\n" + ",\n".join(f"    {json.dumps(r)}" for r in rs) + "\n  ]"
        for q, rs in out.items()
    ]
    OUT.write_text(f'{{"depth": {DEPTH}, "results": {{\n' + ",\n".join(lines) + "\n}}\n")


if __name__ == "__main__":
    main()
