"""``--preview``: each result's thumbnail inline, in a terminal that shows images; plain text elsewhere.

Why textual-image (LGPL-3.0+, the optional ``[preview]`` extra): it asks the terminal what it can show
(Sixel: WezTerm, foot, iTerm2 3.5+, xterm -ti vt340; kitty's graphics protocol: kitty) and renders a
Rich renderable for it, so the thumbnail prints through the same console as the rest. A terminal
without either, a pipe, ``NO_COLOR`` or the package missing gets the plain table and one line saying
why. The library's stored thumbnails (256 px JPEG) are shown: no original is decoded.
"""

from __future__ import annotations

import io
import os
import sys
from collections.abc import Callable, Sequence
from typing import Any

from pixsearch.cli.output import note, out
from pixsearch.results import Result, Withheld

__all__ = ["emit_previews", "image_renderer"]

PREVIEW_CELLS = 24  # thumbnail width in terminal columns (its height follows the photo's shape)
WHY_NOT = (
    "previews need a terminal that shows images (kitty, or Sixel: WezTerm, foot, iTerm2) and "
    "pip install 'pixsearch[preview]'; showing text"
)


def image_renderer() -> Callable[[bytes], Any] | None:
    """A function making a Rich renderable of a JPEG thumbnail, where stdout is a terminal that shows
    images (textual-image decides); None where it is not (see the module doc)."""
    if os.environ.get("NO_COLOR") or not sys.stdout.isatty():
        return None
    try:
        from textual_image.renderable import Image, SixelImage, TGPImage
    except ImportError:
        return None
    if Image not in (SixelImage, TGPImage):  # half-cell blocks are no photo: plain text instead
        return None

    def render(jpeg: bytes) -> Any:
        from PIL import Image as PILImage

        return Image(PILImage.open(io.BytesIO(jpeg)), width=PREVIEW_CELLS)

    return render


def emit_previews(
    results: Sequence[Result | Withheld],
    thumbnail: Callable[[int], bytes],
    render: Callable[[bytes], Any],
    shown_path: Callable[[str], str],
) -> None:
    """Each result as a line (rank, match, path) with its caption, then its thumbnail."""
    from rich.text import Text

    for i, r in enumerate(results, 1):
        if isinstance(r, Withheld):  # the content policy hides this photo: the disclaimer, no picture
            out.print(Text(f"{i:>2}  {r.disclaimer}"))
            continue
        match = "" if r.match is None else f"{r.match:.0%}  "
        head = Text(f"{i:>2}  {match}")
        head.append(shown_path(r.path), style="bold")
        cap = r.matched_caption or (r.captions[0] if r.captions else "")
        out.print(head, Text(f"    {cap}") if cap else Text(""), sep="\n", soft_wrap=True)
        try:
            out.print(render(thumbnail(r.image_id)))
        except Exception as exc:  # a thumbnail that cannot be shown: say so, keep the list going
            note.print(f"    (no preview: {type(exc).__name__})", highlight=False, markup=False)


def why_not() -> None:
    """One line on stderr: why ``--preview`` shows text here."""
    note.print(WHY_NOT, style="yellow", highlight=False, markup=False)
