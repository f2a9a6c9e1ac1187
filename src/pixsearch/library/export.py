"""``pixsearch export --xmp``: generated captions and labels written to XMP sidecars that photo managers
read (digiKam, darktable, Lightroom), never into the photos themselves.

Where: ``photo.jpg.xmp``, beside the photo. darktable reads and writes only that name, digiKam writes it
by default and reads both; ``photo.xmp`` (Lightroom's, for raw files) is shared by every photo of that
stem, and a raw + JPEG pair is common: writing the JPEG's words into it would give them to the raw too.

What, and whose: a sidecar that exists is merged, never replaced. Its owner's ``dc:description`` and
``dc:subject`` entries stay as they are; the generated caption becomes ``dc:description`` only when no
sidecar of the photo has a description, each label is added to ``dc:subject`` unless there already, and
to ``lr:hierarchicalSubject`` as ``pixsearch|label`` (grouped where the user can find or drop them) when
that cannot hide the user's flat keywords from a reader that prefers the hierarchy. What we added is listed
under our own namespace (``pixsearch:Caption``, ``pixsearch:Keywords``): the next export removes exactly
those entries before adding the current ones, and the metadata reader (``indexing/metadata/xmp.py``)
skips them, so indexing the folder again never takes our captions for the owner's. A caption the user
edited in their photo manager no longer equals ``pixsearch:Caption``, and is theirs from then on.

Parsed with defusedxml (a sidecar is a stranger's file); written with the stdlib's XML writer, keeping the
file's namespace prefixes, through a temporary file renamed over the old one (a crash leaves the old or
the new sidecar, never half of one). A sidecar that cannot be parsed is left alone and reported.
"""

from __future__ import annotations

import io
import os
import stat
import tempfile
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any
from xml.etree.ElementTree import Element, ParseError, SubElement, indent
from xml.sax.saxutils import XMLGenerator
from xml.sax.xmlreader import AttributesNSImpl

import defusedxml.ElementTree as SafeET
from defusedxml import DefusedXmlException

from pixsearch.errors import NotFoundError
from pixsearch.indexing.metadata.xmp import MAX_SIDECAR_BYTES, PIXSEARCH_NS, parse_xmp, sidecar_paths

if TYPE_CHECKING:
    from pixsearch.storage.catalog import Catalog

__all__ = ["ExportReport", "Words", "export_xmp", "merge_sidecar", "sidecar_for"]

X = "adobe:ns:meta/"
RDF = "http://www.w3.org/1999/02/22-rdf-syntax-ns#"
DC = "http://purl.org/dc/elements/1.1/"
LR = "http://ns.adobe.com/lightroom/1.0/"
XML = "http://www.w3.org/XML/1998/namespace"
PREFIXES = {X: "x", RDF: "rdf", DC: "dc", LR: "lr", PIXSEARCH_NS: "pixsearch"}
GROUP = "pixsearch|"  # our lr:hierarchicalSubject entries: the keywords under a "pixsearch" parent
_BATCH = 500  # photos read from the catalog at a time


def _q(ns: str, name: str) -> str:
    return f"{{{ns}}}{name}"


@dataclass(frozen=True)
class Words:
    """What pixsearch has to say about one photo."""

    caption: str | None = None  # its generated caption
    keywords: tuple[str, ...] = ()  # its labels, best first


@dataclass
class ExportReport:
    written: int = 0  # sidecars created or changed
    unchanged: int = 0  # sidecars that already said all of it
    skipped: list[tuple[str, str]] = field(default_factory=list)  # (photo, why its sidecar was left alone)

    def to_dict(self) -> dict[str, Any]:
        return {
            "written": self.written,
            "unchanged": self.unchanged,
            "skipped": [{"path": p, "reason": r} for p, r in self.skipped],
        }


def sidecar_for(photo: Path) -> Path:
    """The sidecar export writes: ``photo.jpg.xmp`` (the module's docstring says why)."""
    return photo.with_name(photo.name + ".xmp")


def export_xmp(
    catalog: Catalog,
    path: Path | str | None = None,
    hidden: Callable[[Iterable[int]], set[int]] | None = None,
) -> ExportReport:
    """Write the generated caption and labels of every indexed photo (under ``path`` when given) to its
    sidecar. Photos with nothing generated and no sidecar get none; ``hidden(ids)``: the photos the
    region in force withholds (``Enforcer.hidden``), which are left out as everywhere else. Raises
    NotFoundError when ``path`` holds no indexed photo."""
    if path is None:
        paths = sorted(catalog.all_paths())
    else:
        where = str(Path(path).expanduser().absolute())
        paths = catalog.paths_at(where)
        if not paths:
            raise NotFoundError(f"no indexed photos under {where}")
    report = ExportReport()
    for s in range(0, len(paths), _BATCH):
        chunk = paths[s : s + _BATCH]
        ids = {p: iid for p in chunk if (iid := catalog.image_for_path(p)) is not None}
        withheld = hidden(ids.values()) if hidden is not None else set()
        words = _words(catalog, sorted(set(ids.values()) - withheld))
        for p, iid in ids.items():
            if iid in withheld:
                report.skipped.append((p, "withheld in this region"))
            else:
                _export_one(Path(p), words.get(iid, Words()), report)
    return report


def _words(catalog: Catalog, ids: Sequence[int]) -> dict[int, Words]:
    caps = catalog.captions_by_image(ids)
    labels = catalog.enrichments.labels_of(ids)
    out: dict[int, Words] = {}
    for iid in ids:
        generated = [t for t, src in caps.get(iid, []) if src == "generated"]
        out[iid] = Words(generated[0] if generated else None, tuple(lb for lb, _ in labels.get(iid, [])))
    return out


def _export_one(photo: Path, words: Words, report: ExportReport) -> None:
    if not photo.is_file():
        report.skipped.append((str(photo), "photo not found"))
        return
    target = sidecar_for(photo)
    try:
        st = os.lstat(target)
    except FileNotFoundError:
        st = None
    except OSError as exc:
        report.skipped.append((str(photo), f"cannot read {target.name}: {exc.strerror or exc}"))
        return
    if st is None and words == Words():
        return  # nothing to say, and no sidecar whose old entries of ours would need removing
    old: bytes | None = None
    if st is not None:
        if not stat.S_ISREG(st.st_mode) or st.st_size > MAX_SIDECAR_BYTES:
            report.skipped.append((str(photo), f"{target.name} is not a regular sidecar file; left as is"))
            return
        try:
            old = target.read_bytes()
        except OSError as exc:
            report.skipped.append((str(photo), f"cannot read {target.name}: {exc.strerror or exc}"))
            return
    user_described = _described_elsewhere(photo, target)
    try:
        new = merge_sidecar(old, words, user_described)
    except ValueError as exc:
        report.skipped.append((str(photo), f"{target.name}: {exc}; left as is"))
        return
    if new == old:
        report.unchanged += 1
        return
    try:
        # an old sidecar keeps its mode; a new one is readable by whoever may read the photo
        mode = stat.S_IMODE(st.st_mode) if st is not None else stat.S_IMODE(photo.stat().st_mode) & 0o666
        _write(target, new, mode)
    except OSError as exc:
        report.skipped.append((str(photo), f"cannot write {target.name}: {exc.strerror or exc}"))
        return
    report.written += 1


def _described_elsewhere(photo: Path, target: Path) -> bool:
    """Whether another sidecar of the photo (``photo.xmp``) holds the owner's description."""
    for p in sidecar_paths(photo):
        if p.name == target.name:
            continue
        try:
            with open(p, "rb") as f:
                data = f.read(MAX_SIDECAR_BYTES + 1)
        except OSError:
            continue
        if parse_xmp(data).descriptions:  # the reader leaves our own caption out
            return True
    return False


def _write(target: Path, data: bytes, mode: int) -> None:
    """Through a temporary file beside ``target``, renamed over it: never half a sidecar."""
    fd, tmp = tempfile.mkstemp(prefix="." + target.name + ".", suffix=".tmp", dir=target.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, mode)
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


# -- the merge ------------------------------------------------------------------------------------------
def merge_sidecar(old: bytes | None, words: Words, user_described: bool = False) -> bytes:
    """The sidecar ``old`` (None: a new one) with our previous entries replaced by ``words``; the user's
    own entries untouched. ``user_described``: another sidecar of the photo has a description.
    Raises ValueError for a sidecar that is not XMP we can parse."""
    root, prefixes = _parse(old) if old is not None else (_skeleton(), {})
    rdf = root if root.tag == _q(RDF, "RDF") else root.find(_q(RDF, "RDF"))
    if rdf is None:
        raise ValueError("no rdf:RDF in it")
    descs = rdf.findall(_q(RDF, "Description"))
    if not descs:
        descs = [SubElement(rdf, _q(RDF, "Description"), {_q(RDF, "about"): ""})]
    old_caption = {t for d in descs for t in _texts(d, PIXSEARCH_NS, "Caption")}
    old_keywords = {t for d in descs for t in _texts(d, PIXSEARCH_NS, "Keywords")}
    for d in descs:  # forget what we wrote last time (and only that)
        _drop(d, PIXSEARCH_NS, "Caption")
        _drop(d, PIXSEARCH_NS, "Keywords")
        _drop_items(d, DC, "description", lambda t: t in old_caption)
        _drop_items(d, DC, "subject", lambda t: t in old_keywords)
        _drop_items(d, LR, "hierarchicalSubject", lambda t: t.startswith(GROUP))
        for el in list(d):  # an array left without items goes with its property
            if len(el) and not el.findall(f"./*/{_q(RDF, 'li')}"):
                d.remove(el)
    user_subjects = [t for d in descs for t in _texts(d, DC, "subject")]
    user_tree = [t for d in descs for t in _texts(d, LR, "hierarchicalSubject")]
    has_description = user_described or any(_texts(d, DC, "description") for d in descs)
    main = descs[0]
    if words.caption and not has_description:
        alt = SubElement(_prop(main, DC, "description"), _q(RDF, "Alt"))
        SubElement(alt, _q(RDF, "li"), {_q(XML, "lang"): "x-default"}).text = words.caption
    have = {t.casefold() for t in user_subjects}
    added = [k for k in dict.fromkeys(words.keywords) if k.casefold() not in have]
    if added:
        _add_items(main, DC, "subject", added)
    leaves = {t.rsplit("|", 1)[-1].casefold() for t in user_tree}
    if words.keywords and all(t.casefold() in leaves for t in user_subjects):
        _add_items(main, LR, "hierarchicalSubject", [GROUP + k for k in dict.fromkeys(words.keywords)])
    if words.caption:  # ours, even where the user's description kept it out of dc:description
        _prop(main, PIXSEARCH_NS, "Caption").text = words.caption
    if added:
        _add_items(main, PIXSEARCH_NS, "Keywords", added)
    indent(root, space=" ")
    return _serialize(root, prefixes)


def _skeleton() -> Element:
    root = Element(_q(X, "xmpmeta"), {_q(X, "xmptk"): "pixsearch"})
    rdf = SubElement(root, _q(RDF, "RDF"))
    SubElement(rdf, _q(RDF, "Description"), {_q(RDF, "about"): ""})
    return root


def _parse(data: bytes) -> tuple[Element, dict[str, str]]:
    """The sidecar's tree and its namespace prefixes (uri -> prefix, as the file spells them)."""
    body = data.rstrip(b"\x00 \t\r\n")
    try:
        events = SafeET.iterparse(io.BytesIO(body), events=("start-ns",), forbid_dtd=True)
        prefixes: dict[str, str] = {}
        for _, (prefix, uri) in events:
            prefixes.setdefault(uri, prefix)
        root = events.root  # type: ignore[attr-defined]
    except (ParseError, DefusedXmlException, ValueError, UnicodeError) as exc:
        raise ValueError("not valid XML") from exc
    if root is None or root.tag not in (_q(X, "xmpmeta"), _q(RDF, "RDF")):
        raise ValueError("not an XMP sidecar")
    return root, prefixes


def _texts(desc: Element, ns: str, name: str) -> list[str]:
    """A property's values in one rdf:Description: array items, a plain value, or an attribute."""
    key = _q(ns, name)
    out = [desc.attrib[key]] if key in desc.attrib else []
    for el in desc.findall(key):
        items = el.findall(f"./*/{_q(RDF, 'li')}")
        out += [li.text or "" for li in items] if items else [el.text or ""]
    return [s for s in (" ".join(t.split()) for t in out) if s]


def _drop(desc: Element, ns: str, name: str) -> None:
    desc.attrib.pop(_q(ns, name), None)
    for el in desc.findall(_q(ns, name)):
        desc.remove(el)


def _drop_items(desc: Element, ns: str, name: str, ours: Any) -> None:
    """Remove the array items (or the plain value) of a property for which ``ours(text)`` holds."""
    key = _q(ns, name)
    if key in desc.attrib and ours(" ".join(desc.attrib[key].split())):
        del desc.attrib[key]
    for el in desc.findall(key):
        arrays = list(el)
        if not arrays and ours(" ".join((el.text or "").split())):
            desc.remove(el)
            continue
        for arr in arrays:
            for li in arr.findall(_q(RDF, "li")):
                if ours(" ".join((li.text or "").split())):
                    arr.remove(li)


def _prop(desc: Element, ns: str, name: str) -> Element:
    el = desc.find(_q(ns, name))
    return el if el is not None else SubElement(desc, _q(ns, name))


def _add_items(desc: Element, ns: str, name: str, items: Iterable[str]) -> None:
    """Append to the property's rdf:Bag (made when missing; an rdf:Seq the file uses is kept)."""
    el = _prop(desc, ns, name)
    if (el.text or "").strip() and not len(el):  # a plain value: make it the array's first item
        first, el.text = el.text, None
        SubElement(SubElement(el, _q(RDF, "Bag")), _q(RDF, "li")).text = first
    arr = next(iter(el), None)
    if arr is None:
        arr = SubElement(el, _q(RDF, "Bag"))
    for t in items:
        SubElement(arr, _q(RDF, "li")).text = t


def _serialize(root: Element, prefixes: dict[str, str]) -> bytes:
    """The tree as UTF-8 XML, each namespace declared once on the root with the file's own prefix."""
    uris: list[str] = []
    for el in root.iter():
        for name in (el.tag, *el.attrib):
            if name.startswith("{"):
                uri = name[1:].split("}", 1)[0]
                if uri != XML and uri not in uris:
                    uris.append(uri)
    names: dict[str, str] = {}
    for uri in uris:
        want = prefixes.get(uri) or PREFIXES.get(uri) or "ns"
        prefix, n = want, 1
        while prefix in names.values() or prefix in ("xml", "xmlns", ""):
            prefix, n = f"{want}{n}", n + 1
        names[uri] = prefix
    buf = io.BytesIO()
    gen = XMLGenerator(buf, encoding="utf-8", short_empty_elements=True)
    gen.startDocument()
    for uri in uris:
        gen.startPrefixMapping(names[uri], uri)

    def emit(el: Element) -> None:
        attrs: dict[tuple[str | None, str], str] = {}
        qnames: dict[tuple[str | None, str], str] = {}
        for k, v in el.attrib.items():
            key = _split(k)
            attrs[key] = v
            qnames[key] = k
        gen.startElementNS(_split(el.tag), None, AttributesNSImpl(attrs, qnames))
        if el.text:
            gen.characters(el.text)
        for child in el:
            emit(child)
            if child.tail:
                gen.characters(child.tail)
        gen.endElementNS(_split(el.tag), None)

    emit(root)
    for uri in uris:
        gen.endPrefixMapping(names[uri])
    gen.endDocument()
    return buf.getvalue() + b"\n"


def _split(name: str) -> tuple[str | None, str]:
    if name.startswith("{"):
        uri, local = name[1:].split("}", 1)
        return uri, local
    return None, name
