"""Joins the rendered parts into one PDF/A-3b file with pikepdf.

The front matter (rendered by WeasyPrint as PDF/A-3b: sRGB output intent, embedded fonts) is the
base document; the body parts' pages are appended, the page furniture stamped over every page,
the contents entries turned into links, the bookmarks built, the attachments embedded as PDF/A-3
associated files, and the XMP metadata and document information written from the report's
ledger entry. Saved with a content-derived ``/ID``, so the bytes depend only on the inputs.

Every part embeds its own font subsets. WeasyPrint names a subset after the font, not after its
glyphs, so two parts would carry different subsets under the same name — which some viewers
confuse. Each part's subset tags are therefore renamed to tags derived from the part's number.
"""

from __future__ import annotations

import base64
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


def _retag_fonts(pdf: pikepdf.Pdf, seed: str) -> None:
    """Give this part's font subsets tags of their own (see the module docstring)."""
    for obj in pdf.objects:
        if not isinstance(obj, Dictionary):
            continue
        kind = obj.get("/Type")
        if kind == Name.Font and "/BaseFont" in obj:
            key = "/BaseFont"
        elif kind == Name.FontDescriptor and "/FontName" in obj:
            key = "/FontName"
        else:
            continue
        match = _TAG.match(str(obj[key]))
        if match:
            obj[key] = Name("/" + _new_tag(seed, match.group(1)) + "+" + match.group(2))


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
    """The XMP metadata of the report: PDF/A-3b identification and the document information."""
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
    xmlns:xmpMM="http://ns.adobe.com/xap/1.0/mm/">
   <pdfaid:part>3</pdfaid:part>
   <pdfaid:conformance>B</pdfaid:conformance>
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
        for n, path in enumerate(parts):
            src = pikepdf.open(path)
            sources.append(src)
            _retag_fonts(src, f"part{n}")
            pdf.pages.extend(src.pages)
        page = 0
        for n, path in enumerate(overlays):
            src = pikepdf.open(path)
            sources.append(src)
            _retag_fonts(src, f"overlay{n}")
            for overlay_page in src.pages:
                _stamp(pdf.pages[page], overlay_page, Name(f"/MAfurniture{page}"))
                page += 1
        if page != len(pdf.pages):
            raise RuntimeError(f"overlay has {page} pages for a document of {len(pdf.pages)}")

        anchors = {e.anchor: e for e in toc}
        for page_obj in pdf.pages:
            _resolve_links(pdf, page_obj, anchors)
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
        for mode in (pikepdf.ObjectStreamMode.generate, pikepdf.ObjectStreamMode.disable):
            pdf.save(
                target,
                deterministic_id=True,
                object_stream_mode=mode,
                # Every stream is already compressed and guarded (above); qpdf must not
                # re-encode them, or the guard would be undone.
                compress_streams=False,
                fix_metadata_version=False,
                preserve_pdfa=True,
            )
            if not _has_cr_before_endstream(target):
                break
        else:  # pragma: no cover - every stream qpdf writes itself is gone with object streams
            raise RuntimeError(f"{target}: a stream still ends in a carriage return")
    finally:
        pdf.close()
        for src in sources:
            src.close()


def _compress_and_guard_streams(pdf: pikepdf.Pdf) -> None:
    """Compress every stream, and give none raw data that ends in a carriage return.

    qpdf writes ``stream``, the raw data, then ``\\nendstream``. Raw data ending in byte 0x0D
    therefore reads as ``\\r\\n`` before ``endstream``, which a PDF/A validator takes as the
    end-of-line marker and so finds the stream one byte shorter than its ``/Length``
    (veraPDF and page-validation rule PDFA3B-STREAM-LENGTH-001). A Flate stream's last byte is
    part of the Adler-32 checksum of its content, so about one stream in 256 ends in 0x0D
    whatever the compression level. Such a stream is wrapped in an ASCII85 layer (allowed in
    PDF/A, ends in ``~>``): the decoded content, and so everything a reader sees, is unchanged.
    The XMP metadata stays uncompressed, as PDF/A readers expect to find it.
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
        new_filters = Array([Name.ASCII85Decode, *filters])
        if parms is None:
            obj.write(base64.a85encode(raw) + b"~>", filter=new_filters)
        else:
            old = parms if isinstance(parms, Array) else Array([parms])
            obj.write(
                base64.a85encode(raw) + b"~>",
                filter=new_filters,
                decode_parms=Array([None, *old]),
            )


def _has_cr_before_endstream(path: Path) -> bool:
    """Whether any stream of the written file ends in a carriage return (see above): the
    object and cross-reference streams qpdf compresses itself can, too."""
    return b"\r\nendstream" in path.read_bytes()


def _stamp(page: pikepdf.Page, overlay: pikepdf.Page, name: Name) -> None:
    """Draw ``overlay`` over ``page`` under a fixed resource name (pikepdf's own overlay picks
    a random one, which would make the bytes differ between two renderings)."""
    formx = overlay.as_form_xobject()
    page.add_resource(formx, Name.XObject, name=name)
    placement = page.calc_form_xobject_placement(
        formx, name, pikepdf.Rectangle(page.trimbox), allow_shrink=True, allow_expand=True
    )
    page.contents_add(b"q\n", prepend=True)
    page.contents_add(b"Q\n", prepend=False)
    page.contents_add(placement, prepend=False)
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
            if entry is None:
                continue  # a heading this document does not have: no link rather than a dead one
            del annot["/A"]
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
