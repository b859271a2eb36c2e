"""Joins the rendered parts into one tagged PDF/A-3a (and PDF/UA-1) file with pikepdf.

The front matter (rendered by WeasyPrint as tagged PDF/A-3a: sRGB output intent, embedded fonts,
a structure tree) is the base document; the body parts' pages are appended and their structure
trees joined to the base's, in page order, under its one ``Document`` element; the page
furniture is stamped over every page as a pagination artifact (it is not read out as content),
the contents entries turned into links, every link given a description, the bookmarks built,
the attachments embedded as PDF/A-3 associated files, and the XMP metadata and document
information written from the report's ledger entry. Saved with a content-derived ``/ID``, so the
bytes depend only on the inputs.

Every part embeds its own font subsets. WeasyPrint names a subset after the font, not after its
glyphs, so two parts would carry different subsets under the same name — which some viewers
confuse. Each part's subset tags are therefore renamed to tags derived from the part's number,
and so are the identifiers of its table header cells (WeasyPrint numbers them per document),
which the data cells name as their headers. Each font's ToUnicode map is repaired on the way
(:func:`reporting.report.pdftext.repair_to_unicode`), so every script extracts as it reads.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import re
import uuid
import zlib
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any
from xml.sax.saxutils import escape as xml_escape

import pikepdf
from pikepdf import Array, Dictionary, Name, String

from reporting.report.pdftext import repair_to_unicode
from reporting.report.templating import plain_text

if TYPE_CHECKING:
    from reporting.report.context import ReportContext
    from reporting.report.render import ReportMeta
    from reporting.report.sections import TocEntry

_TAG = re.compile(r"^/([A-Z]{6})\+(.*)$")
A4_HEIGHT_PT = 841.8898


def _new_tag(seed: str, old: str) -> str:
    digest = hashlib.sha256(f"{seed}:{old}".encode()).digest()
    return "".join(chr(65 + b % 26) for b in digest[:6])


def _prepare_part(pdf: pikepdf.Pdf, seed: str) -> None:
    """Give this part's font subsets and table header ids names of their own, repair its
    fonts' ToUnicode maps (see the module docstring), and fold its one-piece text spans into
    their parents (:func:`_fold_spans`)."""
    spans: dict[tuple[int, int], Dictionary] = {}
    for obj in pdf.objects:
        if not isinstance(obj, Dictionary):
            continue
        kind = obj.get("/Type")
        if kind == Name.StructElem:
            _own_ids(obj, seed)
            if _is_bare_span(obj):
                spans[obj.objgen] = obj
            continue
        if kind == Name.Font and "/BaseFont" in obj:
            key = "/BaseFont"
            repair_to_unicode(obj)
        elif kind == Name.FontDescriptor and "/FontName" in obj:
            key = "/FontName"
        else:
            continue
        match = _TAG.match(str(obj[key]))
        if match:
            obj[key] = Name("/" + _new_tag(seed, match.group(1)) + "+" + match.group(2))
    _fold_spans(pdf, spans)


_BARE_SPAN_KEYS = frozenset({"/Type", "/S", "/K", "/P", "/Pg"})


def _is_bare_span(element: Dictionary) -> bool:
    """A ``Span`` element that only wraps one piece of marked content on its parent's page:
    WeasyPrint writes one for every run of text."""
    if element.get("/S") != Name.Span or not set(element.keys()) <= _BARE_SPAN_KEYS:
        return False
    kids, parent = element.get("/K"), element.get("/P")
    if not isinstance(kids, Array) or len(kids) != 1 or isinstance(kids[0], Dictionary):
        return False
    return (
        isinstance(parent, Dictionary)
        and "/Pg" in element
        and "/Pg" in parent
        and parent.Pg.objgen == element.Pg.objgen
    )


def _fold_spans(pdf: pikepdf.Pdf, spans: dict[tuple[int, int], Dictionary]) -> None:
    """Put the marked content of each bare span (:func:`_is_bare_span`) straight into its
    parent, as tagged PDF allows, and point the parent tree at the parent. A third of a
    report's structure elements were such spans: fewer objects to copy, hold and write."""
    if not spans or "/StructTreeRoot" not in pdf.Root:
        return
    parents: dict[tuple[int, int], Any] = {}
    for span in spans.values():
        parents.setdefault(span.P.objgen, span.P)
    for parent in parents.values():
        kids = parent.K if isinstance(parent.K, Array) else Array([parent.K])
        parent.K = Array(
            [
                spans[kid.objgen].K[0]
                if isinstance(kid, Dictionary) and kid.objgen in spans
                else kid
                for kid in kids
            ]
        )
    nums = pdf.Root.StructTreeRoot.ParentTree.Nums
    for n in range(1, len(nums), 2):
        entry = nums[n]
        if isinstance(entry, Array):  # a page's marked content, by MCID
            nums[n] = Array(
                [
                    spans[e.objgen].P if isinstance(e, Dictionary) and e.objgen in spans else e
                    for e in entry
                ]
            )


def _own_ids(element: Dictionary, seed: str) -> None:
    """Prefix a structure element's id, and the header ids it names, with ``seed``."""
    if "/ID" in element:
        element.ID = String(f"{seed}-{element.ID}")
    attributes = element.get("/A")
    if attributes is None:
        return
    for attribute in attributes if isinstance(attributes, Array) else [attributes]:
        headers = attribute.get("/Headers") if isinstance(attribute, Dictionary) else None
        if headers is not None and len(headers):
            attribute.Headers = Array([String(f"{seed}-{h}") for h in headers])


def _pdf_date(value: dt.datetime) -> str:
    return value.astimezone(dt.UTC).strftime("D:%Y%m%d%H%M%SZ")


def _xmp_date(value: dt.datetime) -> str:
    return value.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _xml_text(value: str) -> str:
    # XML 1.0 has no place for control characters; the report shows them as code points anyway.
    return xml_escape("".join(ch for ch in value if ch >= " " or ch in "\t\n"))


def xmp_packet(
    *, title: str, author: str, subject: str, keywords: str, creator_tool: str, producer: str,
    report_id: str, when: dt.datetime,
) -> bytes:  # fmt: skip
    """The XMP metadata of the report: PDF/A-3a and PDF/UA-1 identification (with the PDF/UA
    schema described, as PDF/A asks of a schema it does not predefine) and the document
    information."""
    doc_id = uuid.uuid5(uuid.NAMESPACE_URL, f"meetaudit:report:{report_id}")
    date = _xmp_date(when)
    body = f"""<?xpacket begin="\ufeff" id="W5M0MpCehiHzreSzNTczkc9d"?>
<x:xmpmeta xmlns:x="adobe:ns:meta/">
 <rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#">
  <rdf:Description rdf:about=""
    xmlns:pdfaid="http://www.aiim.org/pdfa/ns/id/"
    xmlns:dc="http://purl.org/dc/elements/1.1/"
    xmlns:xmp="http://ns.adobe.com/xap/1.0/"
    xmlns:pdf="http://ns.adobe.com/pdf/1.3/"
    xmlns:xmpMM="http://ns.adobe.com/xap/1.0/mm/"
    xmlns:pdfuaid="http://www.aiim.org/pdfua/ns/id/"
    xmlns:pdfaExtension="http://www.aiim.org/pdfa/ns/extension/"
    xmlns:pdfaSchema="http://www.aiim.org/pdfa/ns/schema#"
    xmlns:pdfaProperty="http://www.aiim.org/pdfa/ns/property#">
   <pdfaid:part>3</pdfaid:part>
   <pdfaid:conformance>A</pdfaid:conformance>
   <pdfuaid:part>1</pdfuaid:part>
   <pdfaExtension:schemas><rdf:Bag><rdf:li rdf:parseType="Resource">
    <pdfaSchema:schema>PDF/UA Universal Accessibility Schema</pdfaSchema:schema>
    <pdfaSchema:namespaceURI>http://www.aiim.org/pdfua/ns/id/</pdfaSchema:namespaceURI>
    <pdfaSchema:prefix>pdfuaid</pdfaSchema:prefix>
    <pdfaSchema:property><rdf:Seq><rdf:li rdf:parseType="Resource">
     <pdfaProperty:name>part</pdfaProperty:name>
     <pdfaProperty:valueType>Integer</pdfaProperty:valueType>
     <pdfaProperty:category>internal</pdfaProperty:category>
     <pdfaProperty:description>Indicates, which part of ISO 14289 standard is followed</pdfaProperty:description>
    </rdf:li></rdf:Seq></pdfaSchema:property>
   </rdf:li></rdf:Bag></pdfaExtension:schemas>
   <dc:format>application/pdf</dc:format>
   <dc:title><rdf:Alt><rdf:li xml:lang="x-default">{_xml_text(title)}</rdf:li></rdf:Alt></dc:title>
   <dc:creator><rdf:Seq><rdf:li>{_xml_text(author)}</rdf:li></rdf:Seq></dc:creator>
   <dc:description><rdf:Alt>
    <rdf:li xml:lang="x-default">{_xml_text(subject)}</rdf:li>
   </rdf:Alt></dc:description>
   <dc:identifier>{_xml_text(report_id)}</dc:identifier>
   <pdf:Keywords>{_xml_text(keywords)}</pdf:Keywords>
   <pdf:Producer>{_xml_text(producer)}</pdf:Producer>
   <xmp:CreatorTool>{_xml_text(creator_tool)}</xmp:CreatorTool>
   <xmp:CreateDate>{date}</xmp:CreateDate>
   <xmp:ModifyDate>{date}</xmp:ModifyDate>
   <xmp:MetadataDate>{date}</xmp:MetadataDate>
   <xmpMM:DocumentID>uuid:{doc_id}</xmpMM:DocumentID>
   <xmpMM:InstanceID>uuid:{doc_id}</xmpMM:InstanceID>
  </rdf:Description>
 </rdf:RDF>
</x:xmpmeta>
<?xpacket end="r"?>
"""
    return body.encode("utf-8")


def _embed(
    pdf: pikepdf.Pdf,
    name: str,
    source: Path | bytes,
    *,
    mime: str,
    description: str,
    when: dt.datetime,
) -> Dictionary:
    """One PDF/A-3 associated file, compressed while it is read (a big CSV never sits in memory)."""
    md5 = hashlib.md5(usedforsecurity=False)
    size = 0
    packer = zlib.compressobj(9)
    chunks: list[bytes] = []
    blocks: Iterable[bytes]
    if isinstance(source, bytes):
        blocks = [source]
    else:
        fh = source.open("rb")
        blocks = iter(lambda: fh.read(1 << 20), b"")
    for block in blocks:
        md5.update(block)
        size += len(block)
        chunks.append(packer.compress(block))
    chunks.append(packer.flush())
    if not isinstance(source, bytes):
        fh.close()
    stream = pikepdf.Stream(pdf, b"")
    stream.write(b"".join(chunks), filter=Name.FlateDecode)
    stream.Type = Name.EmbeddedFile
    stream.Subtype = Name("/" + mime)
    date = String(_pdf_date(when))
    stream.Params = Dictionary(
        Size=size, CheckSum=String(md5.digest()), CreationDate=date, ModDate=date
    )
    ref = pdf.make_indirect(stream)
    spec = Dictionary(
        Type=Name.Filespec,
        F=String(name),
        UF=String(name),
        Desc=String(description),
        AFRelationship=Name.Data,
        EF=Dictionary(F=ref, UF=ref),
    )
    return pdf.make_indirect(spec)


@dataclass(frozen=True)
class DocumentInfo:
    """What the document information and XMP say about a document besides its id and time.

    A parameter rather than read from the report's context, so any meetaudit document (the
    monthly report, a case dossier) is assembled by the same code into the same kind of file.
    ``contents_page``: whether the second page is a contents page (a bookmark points to it).
    """

    title: str
    subject: str
    keywords: str
    contents_page: bool = True


def report_info(ctx: ReportContext, meta: ReportMeta) -> DocumentInfo:
    """The monthly report's document information."""
    return DocumentInfo(
        title=f"{ctx.params.org_name} — Webex meeting audit report, {ctx.period_title}",
        subject=(
            f"Invitees against attendees, external and unidentified participants, data quality "
            f"and completeness of the Webex meetings of {ctx.period_title}. Report "
            f"{meta.report_id}."
        ),
        keywords=f"meetaudit; Webex; audit; {meta.report_id}; {ctx.params.label}",
    )


def assemble(
    target: Path,
    *,
    front: Path,
    parts: list[Path],
    overlays: list[Path],
    toc: list[TocEntry],
    attachments: list[dict[str, Any]],
    manifest_bytes: bytes,
    info: DocumentInfo,
    meta: ReportMeta,
) -> None:
    """Write the final PDF to ``target``; see the module docstring."""
    pdf = pikepdf.open(front)
    sources: list[pikepdf.Pdf] = []
    try:
        _prepare_part(pdf, "front")
        structure = _Structure(pdf)
        for n, path in enumerate(parts):
            src = pikepdf.open(path)
            sources.append(src)
            _prepare_part(src, f"part{n}")
            first = len(pdf.pages)
            pdf.pages.extend(src.pages)
            structure.append(src, first)
        structure.finish()
        page = 0
        for n, path in enumerate(overlays):
            src = pikepdf.open(path)
            sources.append(src)
            _prepare_part(src, f"overlay{n}")
            for overlay_page in src.pages:
                _stamp(pdf.pages[page], overlay_page, Name(f"/MAfurniture{page}"))
                page += 1
        if page != len(pdf.pages):
            raise RuntimeError(f"overlay has {page} pages for a document of {len(pdf.pages)}")

        anchors = {e.anchor: e for e in toc}
        for page_obj in pdf.pages:
            _resolve_links(pdf, page_obj, anchors)
        _describe_links(pdf)
        _outline(pdf, toc, contents_page=info.contents_page)

        names = Array()
        specs = Array()
        for a in attachments:
            source = manifest_bytes if a["path"] is None else a["path"]
            spec = _embed(
                pdf, a["name"], source, mime=a["mime"], description=a["description"],
                when=meta.generated_at,
            )  # fmt: skip
            names.append(String(a["name"]))
            names.append(spec)
            specs.append(spec)
        # The name tree must be sorted by name.
        pairs = sorted(
            zip(list(names)[::2], list(names)[1::2], strict=True), key=lambda p: str(p[0])
        )
        root = pdf.Root
        if "/Names" not in root:
            root.Names = Dictionary()
        root.Names.EmbeddedFiles = Dictionary(Names=Array([x for pair in pairs for x in pair]))
        root.AF = specs
        root.PageMode = Name.UseOutlines

        _metadata(pdf, info, meta)
        _compress_and_guard_streams(pdf)
        pdf.save(target, object_stream_mode=pikepdf.ObjectStreamMode.generate, **_SAVE_OPTIONS)
    finally:
        pdf.close()
        for src in sources:
            src.close()
    # With the parts closed: the rewriting reads the written file afresh.
    _rewrite_streams_ending_in_cr(target)


def _compress_and_guard_streams(pdf: pikepdf.Pdf) -> None:
    """Compress every stream, and give none raw data that ends in a carriage return.

    qpdf writes ``stream``, the raw data, then ``\nendstream``. Raw data ending in byte 0x0D
    therefore reads as ``\r\n`` before ``endstream``, which a PDF/A validator takes as the
    end-of-line marker and so finds the stream one byte shorter than its ``/Length``
    (veraPDF and page-validation rule PDFA3B-STREAM-LENGTH-001). A Flate stream's last byte is
    part of the Adler-32 checksum of its content, so about one stream in 256 ends in 0x0D
    whatever the compression level. Such a stream's raw data is wrapped in a run-length layer
    (allowed in PDF/A; it ends in its end-of-data byte 0x80): the decoded content, and so
    everything a reader sees, is unchanged, and qpdf, which decodes only general-purpose
    filters when it writes, leaves the layer in place. The XMP metadata stays uncompressed,
    as PDF/A readers expect to find it.
    """
    for obj in pdf.objects:
        if not isinstance(obj, pikepdf.Stream):
            continue
        if obj.get("/Type") == Name.Metadata:
            continue
        if "/Filter" not in obj:
            obj.write(zlib.compress(obj.read_raw_bytes(), 9), filter=Name.FlateDecode)
        raw = obj.read_raw_bytes()
        if not raw.endswith(b"\r"):
            continue
        filters = obj.Filter if isinstance(obj.Filter, Array) else Array([obj.Filter])
        parms = obj.get("/DecodeParms")
        if parms is None:
            obj.write(run_length(raw), filter=Array([Name.RunLengthDecode, *filters]))
        else:
            old = parms if isinstance(parms, Array) else Array([parms])
            obj.write(
                run_length(raw),
                filter=Array([Name.RunLengthDecode, *filters]),
                decode_parms=Array([None, *old]),
            )


def run_length(data: bytes) -> bytes:
    """``data`` in the PDF's RunLengthDecode encoding, as literal runs of up to 128 bytes (the
    data is compressed already: there are no runs worth finding)."""
    out = bytearray()
    for start in range(0, len(data), 128):
        chunk = data[start : start + 128]
        out.append(len(chunk) - 1)
        out += chunk
    out.append(128)  # end of data
    return bytes(out)


def stream_bytes(stream: pikepdf.Object) -> bytes:
    """The decoded data of a stream this module wrote, run-length layer included (pikepdf
    decodes only general-purpose filters unless asked)."""
    return bytes(stream.read_bytes(pikepdf.StreamDecodeLevel.specialized))


# How the final file is written: its objects in compressed object streams (a tagged report has
# tens of thousands of small structure elements), then :func:`_rewrite_streams_ending_in_cr`.
_SAVE_OPTIONS: dict[str, Any] = {
    "deterministic_id": True,
    # Compressed, object streams included; streams already compressed (every one, above) are
    # written as they are, so their guard stays.
    "compress_streams": True,
    "stream_decode_level": pikepdf.StreamDecodeLevel.none,
    "fix_metadata_version": False,
    "preserve_pdfa": True,
}


def _rewrite_streams_ending_in_cr(target: Path) -> None:
    """qpdf writes the object and cross-reference streams itself, and about one in 256 ends in
    0x0D (see :func:`_compress_and_guard_streams`). Each such object stream gets one of its
    objects rewritten in an equivalent form (:func:`_nudge`), which changes its checksum, and
    the file is written again with the same object streams and numbers."""
    for _ in range(8):
        if not _has_cr_before_endstream(target):
            return
        again = target.with_name(target.name + ".again")
        with pikepdf.open(target) as written:
            _nudge_streams_ending_in_cr(written)
            written.save(
                again, object_stream_mode=pikepdf.ObjectStreamMode.preserve, **_SAVE_OPTIONS
            )
        again.replace(target)
    raise RuntimeError(f"{target}: a stream still ends in a carriage return")  # pragma: no cover


def _nudge_streams_ending_in_cr(pdf: pikepdf.Pdf) -> None:
    """Rewrite one object of each object stream whose raw data ends in 0x0D (and one object of
    the file, when the cross-reference stream does) in an equivalent form."""
    members: dict[int, list[tuple[int, int]]] = {}
    for objgen, entry in pdf.get_xref_table().items():
        if entry.type == 2 and entry.obj_stream_number is not None:
            members.setdefault(entry.obj_stream_number, []).append(objgen)
    bad = [n for n in members if pdf.get_object(n, 0).read_raw_bytes().endswith(b"\r")]
    for n in bad:
        if not any(_nudge(pdf.get_object(og)) for og in members[n]):  # pragma: no cover
            raise RuntimeError(f"object stream {n} ends in 0x0D and has nothing to rewrite")
    if not bad:  # the cross-reference stream: any change moves the objects after it
        if not any(_nudge(pdf.get_object(og)) for ogs in members.values() for og in ogs):
            raise RuntimeError("the cross-reference stream ends in 0x0D")  # pragma: no cover


def _nudge(obj: Any) -> bool:
    """Rewrite a structure element's kids in the other of two equivalent forms (a single kid
    alone, or in an array of one), or a page's rotation (none, or 0: the default); whether
    ``obj`` was one that can be."""
    if not isinstance(obj, Dictionary):
        return False
    if obj.get("/Type") == Name.Page:
        if "/Rotate" in obj:
            if int(obj.Rotate) != 0:
                return False
            del obj["/Rotate"]
        else:
            obj.Rotate = 0
        return True
    if obj.get("/Type") != Name.StructElem:
        return False
    kids = obj.get("/K")
    if isinstance(kids, Array) and len(kids) == 1:
        obj.K = kids[0]
        return True
    if kids is not None and not isinstance(kids, Array):
        obj.K = Array([kids])
        return True
    return False


def _has_cr_before_endstream(path: Path) -> bool:
    """Whether any stream of the written file ends in a carriage return (see above): the
    object and cross-reference streams qpdf compresses itself can, too."""
    return b"\r\nendstream" in path.read_bytes()


PARENT_TREE_LEAF = 512


class _Structure:
    """The base document's structure tree, to which each part's is joined in page order.

    WeasyPrint writes one tree per document: a ``Document`` element whose kids are the content
    of its pages, and a parent tree keyed by the pages' ``/StructParents`` and the links'
    ``/StructParent`` numbers (0, 1, … in each document). A part's tree is copied over with its
    pages (the copies of pages and links the page copy already made are reused), its top
    elements become kids of the base's ``Document``, and its keys are shifted past the base's.
    """

    def __init__(self, pdf: pikepdf.Pdf) -> None:
        self.pdf = pdf
        self.root = pdf.Root.StructTreeRoot
        self.document = self.root.K[0]
        self.nums: list[Any] = list(self.root.ParentTree.Nums)
        self.next_key = max((int(k) for k in self.nums[::2]), default=-1) + 1

    def append(self, src: pikepdf.Pdf, first_page: int) -> None:
        """Join the tree of ``src``, whose pages were appended from ``first_page`` on."""
        if "/StructTreeRoot" not in src.Root:
            return
        tree = self.pdf.copy_foreign(src.Root.StructTreeRoot)
        offset = self.next_key
        kids = tree.K[0].K
        for kid in kids if isinstance(kids, Array) else [kids]:
            kid.P = self.document
            self.document.K.append(kid)
        nums = list(tree.ParentTree.Nums)
        last = -1
        for key, value in zip(nums[::2], nums[1::2], strict=True):
            self.nums.extend([int(key) + offset, value])
            last = max(last, int(key))
        for page in self.pdf.pages[first_page:]:
            if "/StructParents" in page.obj:
                page.obj.StructParents = int(page.obj.StructParents) + offset
            for annot in page.obj.get("/Annots", []):
                if "/StructParent" in annot:
                    annot.StructParent = int(annot.StructParent) + offset
        self.next_key = offset + last + 1

    def finish(self) -> None:
        """Write the joined parent tree: a root whose kids are leaves of
        :data:`PARENT_TREE_LEAF` keys each, so a later incremental update (the signature's
        tagged field) adds a leaf and rewrites only the small root."""
        leaves = Array()
        for start in range(0, len(self.nums), 2 * PARENT_TREE_LEAF):
            pairs = self.nums[start : start + 2 * PARENT_TREE_LEAF]
            leaf = Dictionary(Limits=Array([pairs[0], pairs[-2]]), Nums=Array(pairs))
            leaves.append(self.pdf.make_indirect(leaf))
        self.root.ParentTree = self.pdf.make_indirect(Dictionary(Kids=leaves))
        self.root.ParentTreeNextKey = self.next_key


def _stamp(page: pikepdf.Page, overlay: pikepdf.Page, name: Name) -> None:
    """Draw ``overlay`` over ``page`` under a fixed resource name (pikepdf's own overlay picks
    a random one, which would make the bytes differ between two renderings), marked as a
    pagination artifact: running headers and page numbers are not content to read out."""
    formx = overlay.as_form_xobject()
    page.add_resource(formx, Name.XObject, name=name)
    placement = page.calc_form_xobject_placement(
        formx, name, pikepdf.Rectangle(page.trimbox), allow_shrink=True, allow_expand=True
    )
    page.contents_add(b"q\n", prepend=True)
    page.contents_add(b"Q\n", prepend=False)
    page.contents_add(b"/Artifact <</Type /Pagination>> BDC\n" + placement + b"\nEMC\n")
    page.contents_coalesce()


def _dest(pdf: pikepdf.Pdf, entry: TocEntry) -> Array:
    index = max(0, (entry.page or 1) - 1)
    top = A4_HEIGHT_PT - (entry.top or 0.0) * 0.75 + 6
    return Array([pdf.pages[index].obj, Name.XYZ, None, round(min(top, A4_HEIGHT_PT), 2), None])


def _resolve_links(pdf: pikepdf.Pdf, page: pikepdf.Page, anchors: dict[str, TocEntry]) -> None:
    """Turn ``ma-goto:`` links (the contents', a meeting reference's) into links to the page of
    the heading, each with a description of where it leads (what a screen reader says).

    The parts are separate documents until now, so a link from one to another is written as
    ``ma-goto:ANCHOR`` and resolved here, where every heading's page is known."""
    if "/Annots" not in page.obj:
        return
    kept = Array()
    for annot in page.obj.Annots:
        action = annot.get("/A")
        uri = bytes(action.URI).decode("latin-1") if action and "/URI" in action else ""
        if uri.startswith("ma-goto:"):
            entry = anchors.get(uri.removeprefix("ma-goto:"))
            del annot["/A"]
            if entry is None:
                # A heading this document does not have: no link rather than a dead one. The
                # annotation stays (the structure tree refers to it), inert and described so.
                annot.Contents = String("No link: its target is not in this document")
            else:
                annot.Dest = _dest(pdf, entry)
                annot.Contents = String(_link_description(entry))
        if "/F" not in annot:
            annot.F = 4  # printable, as PDF/A asks (the body parts are not rendered as PDF/A)
        kept.append(annot)
    page.obj.Annots = kept


def _link_description(entry: TocEntry) -> str:
    """``Section 3.1 Attended without invitation, page 9``; a meeting's roster (a heading
    without a number): ``Roster of meeting M-017 2026-11-05 06:11 Title, page 36``."""
    title = plain_text(" ".join(entry.title.split()), 200)
    where = f"Section {entry.num} {title}" if entry.num else f"Roster of meeting {title}"
    return f"{where}, page {entry.page}"


def _describe_links(pdf: pikepdf.Pdf) -> None:
    """Give every link a description (``/Contents``) that says where it goes, for readers that
    announce links; WeasyPrint writes the bare target there (a URL, an anchor name), or nothing.
    A description already written (by :func:`_resolve_links`) is kept."""
    pages = {page.obj.objgen: n for n, page in enumerate(pdf.pages)}
    for page in pdf.pages:
        for annot in page.obj.get("/Annots", []):
            if annot.get("/Subtype") != Name.Link:
                continue
            action = annot.get("/A")
            uri = str(action.URI) if action is not None and "/URI" in action else None
            dest = annot.get("/Dest")
            contents = str(annot.Contents) if "/Contents" in annot else None
            if contents not in (None, "", uri, str(dest) if isinstance(dest, String) else None):
                continue
            if uri is not None:
                text = f"Link to {uri}"
            elif isinstance(dest, Array) and len(dest) and dest[0].objgen in pages:
                text = f"Go to page {pages[dest[0].objgen] + 1}"
            else:
                text = "Link"
            annot.Contents = String(text)


def _outline(pdf: pikepdf.Pdf, toc: list[TocEntry], *, contents_page: bool = True) -> None:
    """Bookmarks: sections, subsections, and one per meeting in the per-meeting section."""
    with pdf.open_outline() as outline:
        outline.root.clear()
        cover = pikepdf.OutlineItem("Cover", 0)
        outline.root.append(cover)
        if contents_page:
            contents = pikepdf.OutlineItem("Contents", 1 if len(pdf.pages) > 1 else 0)
            outline.root.append(contents)
        current: pikepdf.OutlineItem | None = None
        for e in toc:
            title = plain_text(f"{e.num}  {e.title}" if e.num else e.title, 120)
            item = pikepdf.OutlineItem(title, _dest(pdf, e))
            if e.level == 1 or current is None:
                outline.root.append(item)
                current = item
            else:
                current.children.append(item)


def _metadata(pdf: pikepdf.Pdf, info: DocumentInfo, meta: ReportMeta) -> None:
    title = plain_text(info.title, 300)
    author = plain_text(meta.generated_by, 200)
    subject = info.subject
    keywords = info.keywords
    creator = f"meetaudit {meta.meetaudit_version}"
    producer = f"meetaudit {meta.meetaudit_version} (WeasyPrint {meta.weasyprint_version}, pikepdf)"
    xmp = xmp_packet(
        title=title, author=author, subject=subject, keywords=keywords, creator_tool=creator,
        producer=producer, report_id=meta.report_id, when=meta.generated_at,
    )  # fmt: skip
    stream = pikepdf.Stream(pdf, xmp)
    stream.Type = Name.Metadata
    stream.Subtype = Name.XML
    pdf.Root.Metadata = pdf.make_indirect(stream)
    date = _pdf_date(meta.generated_at)
    pdf.trailer.Info = pdf.make_indirect(
        Dictionary(
            Title=String(title),
            Author=String(author),
            Subject=String(subject),
            Keywords=String(keywords),
            Creator=String(creator),
            Producer=String(producer),
            CreationDate=String(date),
            ModDate=String(date),
        )
    )
    pdf.Root.Lang = String("en")
    # Tagged (PDF/A-3a, PDF/UA-1): readers are told so, and show the title, not the file name.
    pdf.Root.MarkInfo = Dictionary(Marked=True)
    pdf.Root.ViewerPreferences = Dictionary(DisplayDocTitle=True)
