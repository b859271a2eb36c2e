"""The monthly PDF as an auditor sees it: sections, attachments, PDF/A, hostile names, integrity.

One report of the known month is rendered once for the module (rendering is the slow part) and
looked at from every side; tests that change things work on their own copies or databases.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import io
import json
import re
import zlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import page as pdf_checker
import pikepdf
import pytest
from pypdf import PdfReader
from sqlalchemy import func, select, text

from reporting.config import Settings, load_settings
from reporting.db.engine import Database
from reporting.db.models import ReportRun
from reporting.errors import VerificationError
from reporting.report import assemble as assemble_module
from reporting.report import generate_report, templating, verify_file, verify_ledger
from reporting.report.api import ReportResult
from reporting.report.exports import MEETING_COLUMNS, RECONCILIATION_COLUMNS
from reporting.report.signing import StarterKeys, create_starter_keys
from reporting.report.trust import Pins, load_anchors
from reporting.resources import templates_dir
from tests.report.conftest import (
    HOSTILE_IMG,
    HOSTILE_STYLE,
    HOSTILE_URL,
    OCT,
    OWN_ORG_ID,
    build_known_month,
    pdf_sections,
)
from tests.tsa import TSA


@pytest.fixture(scope="module")
def keys(tmp_path_factory: pytest.TempPathFactory) -> StarterKeys:
    """The organisation's starter CA and signing certificate (``meetaudit keys init``)."""
    return create_starter_keys(tmp_path_factory.mktemp("keys") / "k", org_name="Acme Corporation")


@pytest.fixture(scope="module")
def pins(keys: StarterKeys, tsa: TSA) -> Pins:
    """What an auditor pins: the organisation's CA and the TSA's root."""
    return Pins(
        signers=load_anchors([str(keys.ca_cert)], setting="TRUSTED_CERTS"),
        tsas=load_anchors([str(tsa.root_pem)], setting="TRUSTED_TSA_CERTS"),
    )


@pytest.fixture(scope="module")
def module_settings(
    module_db: Database, tmp_path_factory: pytest.TempPathFactory, keys: StarterKeys, tsa: TSA
) -> Settings:
    out = tmp_path_factory.mktemp("reports")
    registry = out / "org-names.toml"
    registry.write_text(
        '[org_ids]\n"partner-org-42" = "Partner Org AG"\n[domains]\n"globex.example" = "Globex Inc."\n',
        encoding="utf-8",
    )
    return load_settings(
        database_url=module_db.url,
        data_dir=out / "data",
        output_dir=out,
        org_name="Acme Corporation",
        org_domains=["acme.example"],
        org_ids=[OWN_ORG_ID],
        operator="auditor-bot@ci",
        org_registry_file=registry,
        signing_cert_file=keys.signing_cert,
        signing_key_file=keys.signing_key,
        tsa_url=tsa.url,
    )


@pytest.fixture(scope="module")
def fetched() -> list[str]:
    return []


@pytest.fixture(scope="module")
def report(
    module_db: Database, module_settings: Settings, fetched: list[str]
) -> Iterator[ReportResult]:
    """The known month, rendered once in-process with a spy on every URL the renderer asks for."""
    build_known_month(module_db)
    real = templating.make_fetcher

    def spying_fetcher() -> Any:
        fetcher = real()
        original = fetcher.fetch

        def fetch(url: str, headers: Any = None) -> Any:
            fetched.append(url)
            return original(url, headers)

        fetcher.fetch = fetch
        return fetcher

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr("reporting.report.render.make_fetcher", spying_fetcher)
        yield generate_report(
            module_settings, module_db, OCT, label="2026-10", formats=("pdf", "csv", "json"),
            workers=1,
        )  # fmt: skip


@pytest.fixture(scope="module")
def pdf_bytes(report: ReportResult) -> bytes:
    return report.path.read_bytes()


@pytest.fixture(scope="module")
def sections(pdf_bytes: bytes) -> dict[str, str]:
    return pdf_sections(pdf_bytes)


def test_names_appear_in_the_sections_they_belong_to(sections: dict[str, str]) -> None:
    assert "Carol Partner" in sections["3.1"]  # attended without invitation
    assert "Erin Early" in sections["3.1"]
    assert "Gina Guest" in sections["3.2"]  # not testable: her meeting has no invitee list
    assert "partner-org-42" in sections["3.3"]  # per organisation, by orgId
    assert "globex.example" in sections["3.3"]  # ... and by email domain
    assert "Дмитрий Смирнов" in sections["3.4"]  # external people, Cyrillic intact
    assert "+1-555-01••" in sections["3.5"]  # unidentified caller, number masked
    assert "Bob Absent" in sections["3.6"]  # invited, never joined
    assert "Dave Lobby" in sections["3.7"]  # left in the lobby
    assert "No invitee list" in sections["3.8"] or "no invitee list" in sections["3.8"].lower()
    assert "Quarterly controls review" in sections["4"]
    assert "Not harvested" in sections["4"]
    roster = sections["5"]
    for name in ("Hana Host", "Alice Ångström", "Frank Field", "Co-host", "Lobby only"):
        assert name in roster
    gaps = sections["A"]
    assert "Board prep (never fetched)" in gaps
    assert "ROUTER_TRACK_777" in gaps and "503" in gaps


def test_cover_method_and_summary(sections: dict[str, str], report: ReportResult) -> None:
    cover = sections["Cover"]
    assert "Acme Corporation" in cover and "October 2026" in cover
    assert report.report_id in cover and "auditor-bot@ci" in cover
    assert "Incomplete." in cover  # M3 was never fetched
    method = sections["1"] + sections["1.2"] + sections["1.3"] + sections["1.4"]
    assert "acme.example" in method and OWN_ORG_ID in method
    assert "harvester@ci" in method  # the harvest run, by whom
    assert "reconciliation.csv" in method and "manifest.json" in method
    assert "X.509 certificate" in method and "SHA-256" in method  # who signs, by fingerprint
    assert "attended without invitation" in sections["2"]
    assert not report.complete and report.gaps == 1
    assert "Prepared by" in cover and "Reviewed by" in cover  # the sign-off block
    # Flagged rows and meetings without an invitee list are counted apart, the rows as the
    # summary counts them.
    rows = report.control_totals["flagged_rows"]
    flags = " ".join(sections["3.8"].split())
    assert f"{rows:,} reconciliation row{'s' if rows != 1 else ''} with flags" in flags
    assert "without an invitee list" in flags


def test_every_page_is_numbered_and_carries_the_report_id(
    pdf_bytes: bytes, report: ReportResult
) -> None:
    reader = PdfReader(io.BytesIO(pdf_bytes))
    total = len(reader.pages)
    assert total == report.pages
    for n, page in enumerate(reader.pages, start=1):
        content = page.extract_text()
        assert f"Page {n} of {total}" in content
        assert report.report_id in content


def test_contents_page_numbers_match_the_bookmarks(
    pdf_bytes: bytes, sections: dict[str, str]
) -> None:
    reader = PdfReader(io.BytesIO(pdf_bytes))
    numbered: list[int] = []

    def walk(items: list[Any]) -> None:
        for item in items:
            if isinstance(item, list):
                walk(item)
            elif re.match(r"^[0-9A]+(\.[0-9]+)?  ", item.title):
                numbered.append(reader.get_destination_page_number(item) + 1)

    walk(reader.outline)
    printed = [int(line) for line in sections["Contents"].splitlines() if line.strip().isdigit()]
    assert printed == numbered
    assert len(printed) == 20  # 1, 1.1–1.5, 2, 3, 3.1–3.9, 4, 5, A


def test_attachments_are_embedded_and_hashed(report: ReportResult) -> None:
    with pikepdf.open(report.path) as pdf:
        files = {name: spec.get_file().read_bytes() for name, spec in pdf.attachments.items()}
        assert {str(x.F) for x in pdf.Root.AF} == {
            "reconciliation.csv",
            "meetings.csv",
            "manifest.json",
        }
    manifest = json.loads(files["manifest.json"])
    hashes = {a["name"]: a["sha256"] for a in manifest["attachments"]}
    assert hashes == {
        n: hashlib.sha256(files[n]).hexdigest() for n in ("reconciliation.csv", "meetings.csv")
    }
    assert manifest["report_id"] == report.report_id
    assert manifest["control_totals"] == report.control_totals
    assert manifest["harvest_run_ids"] == report.harvest_run_ids == [1]
    assert manifest["parameters"]["org_domains"] == ["acme.example"]
    header = files["reconciliation.csv"].decode().splitlines()[0]
    assert header.split(",") == list(RECONCILIATION_COLUMNS)
    assert files["meetings.csv"].decode().splitlines()[0].split(",") == list(MEETING_COLUMNS)
    # The CSV exports are byte for byte the embedded reconciliation and meetings.
    recon_file, meetings_file = (f for f in report.files if f.format == "csv")
    assert recon_file.path.read_bytes() == files["reconciliation.csv"]
    assert meetings_file.path.read_bytes() == files["meetings.csv"]
    assert meetings_file.report_id == report.report_id + ".meetings.csv"


def test_pdfa_3a_and_pdfua_identification_and_metadata(report: ReportResult) -> None:
    with pikepdf.open(report.path) as pdf:
        assert pdf.pdf_version == "1.7"
        xmp = bytes(pdf.Root.Metadata.read_bytes()).decode()
        assert (
            "<pdfaid:part>3</pdfaid:part>" in xmp
            and "<pdfaid:conformance>A</pdfaid:conformance>" in xmp
            and "<pdfuaid:part>1</pdfuaid:part>" in xmp
        )
        assert "<pdfaSchema:prefix>pdfuaid</pdfaSchema:prefix>" in xmp  # described for PDF/A
        assert f"<dc:identifier>{report.report_id}</dc:identifier>" in xmp
        assert "/Filter" not in pdf.Root.Metadata  # PDF/A: metadata stream uncompressed
        assert str(pdf.Root.OutputIntents[0].S) == "/GTS_PDFA1"
        assert str(pdf.docinfo.Title) in xmp  # document information agrees with the XMP
        assert len(pdf.trailer.ID) == 2
        # A screen reader announces the title and the language; the file says it is tagged.
        assert bool(pdf.Root.ViewerPreferences.DisplayDocTitle) is True
        assert str(pdf.Root.Lang) == "en" and bool(pdf.Root.MarkInfo.Marked) is True
        for spec in pdf.Root.AF:
            stream = spec.EF.F
            assert "/ModDate" in stream.Params and "/Subtype" in stream
            assert str(spec.AFRelationship) == "/Data"
        for page in pdf.pages:
            for font in page.Resources.Font.values():
                descendant = font.DescendantFonts[0] if "/DescendantFonts" in font else font
                assert "/FontFile2" in descendant.FontDescriptor, font.BaseFont
            for annot in page.obj.get("/Annots", []):
                assert int(annot.F) & 4  # printable


def test_the_structure_tree_survives_joining_and_signing(report: ReportResult) -> None:
    """Every part's structure is in the one tree, in page order, pointing at pages of this file;
    every link is tagged as a link and says where it goes (the signed file, as delivered)."""
    with pikepdf.open(report.path) as pdf:
        pages = {page.obj.objgen: n for n, page in enumerate(pdf.pages)}
        root = pdf.Root.StructTreeRoot
        assert len(root.K) == 1 and str(root.K[0].S) == "/Document"
        tree: dict[int, Any] = {}
        for leaf in root.ParentTree.Kids:
            nums = list(leaf.Nums)
            assert [int(leaf.Limits[0]), int(leaf.Limits[1])] == [int(nums[0]), int(nums[-2])]
            for key, value in zip(nums[::2], nums[1::2], strict=True):
                assert int(key) not in tree  # no key given twice
                tree[int(key)] = value
        assert int(root.ParentTreeNextKey) == max(tree) + 1
        kinds: dict[str, int] = {}
        order: list[int] = []

        def walk(element: Any) -> None:
            kinds[str(element.S)] = kinds.get(str(element.S), 0) + 1
            if "/Pg" in element:
                assert element.Pg.objgen in pages
                if str(element.S) != "/Form":  # the signature's field, added last, on page 1
                    order.append(pages[element.Pg.objgen])
            kids = element.get("/K", [])
            for kid in kids if isinstance(kids, pikepdf.Array) else [kids]:
                if isinstance(kid, pikepdf.Dictionary) and kid.get("/Type") == "/StructElem":
                    walk(kid)

        walk(root.K[0])
        assert order == sorted(order) and order[-1] == len(pdf.pages) - 1  # the last part too
        assert {"/H1", "/H2", "/Table", "/TH", "/TD", "/Link", "/Figure", "/Form"} <= set(kinds)
        for page in pdf.pages:
            assert int(page.obj.StructParents) in tree  # the page's marked content is mapped
            for annot in page.obj.get("/Annots", []):
                if annot.get("/Subtype") == "/Widget":  # the signature, named and tagged
                    assert str(tree[int(annot.StructParent)].S) == "/Form"
                    assert str(annot.TU).startswith("Signature of this report by ")
                    continue
                assert str(tree[int(annot.StructParent)].S) == "/Link"
                assert re.fullmatch(r"(Section \S+|Roster of meeting) .+, page \d+",
                                    str(annot.Contents)), str(annot.Contents)  # fmt: skip
        contents = [str(a.Contents) for a in pdf.pages[1].obj.Annots]
        assert any(c.startswith("Section 3.1 Attended without invitation, page ") for c in contents)


def test_a_real_validator_finds_the_report_pdfa_3a(report: ReportResult) -> None:
    """page-validation (an independent PDF/A checker) accepts the signed file as PDF/A-3a:
    tagged, every glyph mapped to Unicode, and everything PDF/A-3b asks. (Its PDF/A-3b profile
    would now refuse the file for declaring conformance level A instead of B.)"""
    result = pdf_checker.validate_pdf(
        str(report.path), profile=pdf_checker.ValidationProfile.PDF_A_3A
    )
    assert result.is_compliant, [(f.rule_id, f.message) for f in result.failures]


def test_a_real_validator_finds_the_report_pdfua_1(report: ReportResult) -> None:
    """page-validation's PDF/UA-1 profile accepts the signed file: content tagged or marked as
    an artifact, headings without skipped levels, tables with headers, figures and links
    described, the title shown, the language given."""
    result = pdf_checker.validate_pdf(
        str(report.path), profile=pdf_checker.ValidationProfile.PDF_UA_1
    )
    assert result.is_compliant, [(f.rule_id, f.message) for f in result.failures]


def _save_as_the_assembler_does(pdf: pikepdf.Pdf, target: Path) -> None:
    pdf.save(
        target, object_stream_mode=pikepdf.ObjectStreamMode.generate,
        **assemble_module._SAVE_OPTIONS,
    )  # fmt: skip
    assemble_module._rewrite_streams_ending_in_cr(target)


def test_a_stream_ending_in_a_carriage_return_is_guarded(tmp_path: Path) -> None:
    """A stream whose raw data ends in 0x0D reads as one byte short to a PDF/A validator
    (rule PDFA3B-STREAM-LENGTH-001); about one report in four had one. The writer wraps it so
    the raw data never ends in 0x0D — in a layer qpdf keeps when it compresses the file — and
    its content is unchanged."""
    content = b"0 0 m 10 10 l S\r"
    pdf = pikepdf.new()
    pdf.add_blank_page()
    unfiltered = pdf.make_indirect(pikepdf.Stream(pdf, content))
    flate = pikepdf.Stream(pdf, b"")
    # Search for content whose Flate form ends in 0x0D (the Adler-32's last byte).
    n = next(i for i in range(100_000) if zlib.compress(b"%d" % i, 9).endswith(b"\r"))
    flate.write(zlib.compress(b"%d" % n, 9), filter=pikepdf.Name.FlateDecode)
    flate_ref = pdf.make_indirect(flate)
    pdf.Root.Extra = pikepdf.Array([unfiltered, flate_ref])
    assemble_module._compress_and_guard_streams(pdf)
    target = tmp_path / "guarded.pdf"
    _save_as_the_assembler_does(pdf, target)
    assert b"\r\nendstream" not in target.read_bytes()
    assert not assemble_module._has_cr_before_endstream(target)
    with pikepdf.open(target) as again:
        first, second = again.Root.Extra
        assert assemble_module.stream_bytes(first) == content
        assert assemble_module.stream_bytes(second) == b"%d" % n
        assert not second.read_raw_bytes().endswith(b"\r")


def test_an_object_stream_ending_in_a_carriage_return_is_rewritten(tmp_path: Path) -> None:
    """qpdf compresses the object streams itself; one whose data ends in 0x0D gets one of its
    structure elements written in an equivalent form, and the file is written again."""
    from pikepdf import Array, Dictionary, Name

    def document(seed: int) -> pikepdf.Pdf:
        pdf = pikepdf.new()
        pdf.add_blank_page()
        elements = Array()
        for n in range(300):
            element = Dictionary(Type=Name.StructElem, S=Name.Span, K=Array([n]), T=f"{seed}-{n}")
            elements.append(pdf.make_indirect(element))
        pdf.Root.Extra = elements
        return pdf

    def plain_save_has_cr(seed: int) -> bool:
        probe = tmp_path / "probe.pdf"
        document(seed).save(
            probe, object_stream_mode=pikepdf.ObjectStreamMode.generate,
            **assemble_module._SAVE_OPTIONS,
        )  # fmt: skip
        return assemble_module._has_cr_before_endstream(probe)

    seed = next(s for s in range(5_000) if plain_save_has_cr(s))
    target = tmp_path / "nudged.pdf"
    _save_as_the_assembler_does(document(seed), target)
    assert not assemble_module._has_cr_before_endstream(target)
    with pikepdf.open(target) as again:
        kids = [element.K for element in again.Root.Extra]
        assert any(not isinstance(k, pikepdf.Array) for k in kids)  # the rewritten one
        assert [int(k[0]) if isinstance(k, pikepdf.Array) else int(k) for k in kids] == list(
            range(300)
        )


def test_object_streams_are_compressed_and_none_ends_in_a_carriage_return(
    report: ReportResult, tmp_path: Path
) -> None:
    """Tens of thousands of structure elements go into compressed object streams; the ones
    qpdf writes that would end in 0x0D are rewritten until none does (signed file: its own
    incremental update included)."""
    data = report.path.read_bytes()
    assert b"\r\nendstream" not in data
    with pikepdf.open(report.path) as pdf:
        streams = {e.obj_stream_number for e in pdf.get_xref_table().values() if e.type == 2}
        assert streams
        for number in streams:
            assert "/FlateDecode" in str(pdf.get_object(number, 0).get("/Filter"))


def _pdftotext(path: Path, *args: str) -> str:
    import subprocess

    return subprocess.run(
        ["pdftotext", *args, str(path), "-"], capture_output=True, text=True, check=True
    ).stdout


def test_every_script_reads_back_as_written(
    db: Database, settings: Settings, tmp_path: Path
) -> None:
    """Names in every script the simulator gives — Latin with diacritics, Cyrillic, Greek,
    Japanese, Chinese, Korean, Arabic, Hebrew, Devanagari — extract from the PDF (pdftotext,
    what Evince and Okular search with) exactly as written, from every bundled font, regular and
    bold. Devanagari came out as "प्रिया श ार्मा" and Arabic ligatures reversed ("ليىل")."""
    from reporting.report.pdftext import bundled_fonts
    from reporting.webex.simulator.org import names_by_script
    from tests.report.conftest import add_run, device, meeting, person, store

    run = add_run(db)
    meetings, people = [], {}
    for n, (script, names) in enumerate(names_by_script().items()):
        mid = f"S{n}"
        start = dt.datetime(2026, 10, 2 + n, 9, tzinfo=dt.UTC)
        stamp = start.strftime("%Y-%m-%dT%H:%M:%SZ")
        end = (start + dt.timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M:%SZ")
        # The meeting is titled with a name too: titles are printed in bold.
        meetings.append(meeting(mid, names[-1], stamp, end, "hana.host@acme.example", "Hana"))
        parts = [
            person(f"p-{mid}-{k}", mid, name, f"{script}{k}@partner.example", [device(stamp, end)])
            for k, name in enumerate(names)
        ]
        people[mid] = (parts, [])
    store(db, run, meetings, people)
    result = generate_report(settings, db, OCT, label="scripts", workers=1)
    text = _pdftotext(result.path)
    missing = [name for names in names_by_script().values() for name in names if name not in text]
    assert missing == []
    fonts = _pdftotext_fonts(result.path)
    assert {name for name in bundled_fonts()} <= fonts  # every bundled font, regular and bold


def _pdftotext_fonts(path: Path) -> set[str]:
    import subprocess

    out = subprocess.run(["pdffonts", str(path)], capture_output=True, text=True, check=True)
    return {line.split()[0].split("+", 1)[-1] for line in out.stdout.splitlines()[2:]}


def test_hostile_names_are_shown_literally_and_nothing_is_fetched(
    pdf_bytes: bytes, sections: dict[str, str], fetched: list[str]
) -> None:
    text_all = "\n".join(sections.values())
    for hostile in (HOSTILE_IMG, HOSTILE_STYLE, HOSTILE_URL):
        assert hostile in text_all
    assert "Invoice U+202E fdp.exe" in text_all  # the override is shown, not obeyed
    assert "U+200B" in text_all
    assert "2,000 characters; cut here" in text_all
    root = templates_dir().resolve().as_uri()
    assert fetched, "the spy saw the report's own fonts being loaded"
    assert all(url.startswith(root) for url in fetched), fetched


def test_the_fetcher_refuses_everything_but_the_projects_assets() -> None:
    fetcher = templating.make_fetcher()
    for url in ("file:///etc/passwd", "http://evil.example/x", "data:text/plain,hi",
                templates_dir().resolve().as_uri() + "/../pyproject.toml"):  # fmt: skip
        with pytest.raises(templating.AssetFetcherError):
            fetcher.fetch(url)
    assert fetcher.fetch(templates_dir().resolve().as_uri() + "/report.css").status == 200


def test_verify_accepts_the_file_and_rejects_a_one_byte_change(
    module_db: Database, report: ReportResult, tmp_path: Path, pins: Pins, keys: StarterKeys
) -> None:
    ok = verify_file(module_db, report.path, pins=pins)
    assert ok.ok and ok.known and ok.report_id == report.report_id, ok.lines()
    assert ok.signature == "valid"  # against the pinned CA, not anything the ledger says
    text = "\n".join(ok.lines())
    assert "trusted through Common Name: meetaudit report signing CA" in text
    assert keys.ca_fingerprint in text and "timestamp: valid" in text
    assert ok.generated_by == "auditor-bot@ci" and ok.harvest_run_ids == [1]
    ok.raise_for_status()

    changed = tmp_path / report.path.name
    data = bytearray(report.path.read_bytes())
    data[len(data) // 2] ^= 0x01
    changed.write_bytes(bytes(data))
    bad = verify_file(module_db, changed, pins=pins)
    assert not bad.ok and not bad.known
    assert bad.altered and bad.claimed_report_id == report.report_id
    with pytest.raises(VerificationError) as err:
        bad.raise_for_status()
    assert err.value.exit_code == 4


def test_with_nothing_pinned_the_signature_is_not_called_valid(
    module_db: Database, report: ReportResult
) -> None:
    result = verify_file(module_db, report.path)
    assert result.known and not result.ok
    assert result.signature == "not checked against a trusted certificate"
    assert "signature: not checked against a trusted certificate" in "\n".join(result.lines())


def test_the_pdf_signature_is_accepted_by_pdfsig_and_the_file_stays_pdfa(
    report: ReportResult, keys: StarterKeys
) -> None:
    import subprocess

    out = subprocess.run(
        ["pdfsig", str(report.path)], capture_output=True, text=True, check=False
    ).stdout
    assert "Signer Certificate Common Name: meetaudit report signing" in out
    assert "Signature is Valid." in out and "Total document signed" in out
    with pikepdf.open(report.path) as pdf:
        xmp = bytes(pdf.Root.Metadata.read_bytes()).decode()
        assert "<pdfaid:part>3</pdfaid:part>" in xmp
        assert "/Filter" not in pdf.Root.Metadata
    signed = next(f for f in report.files if f.format == "pdf")
    assert signed.unsigned_sha256 and signed.unsigned_sha256 != signed.sha256


def test_rerendering_gives_the_same_bytes_and_records_nothing(
    module_db: Database, module_settings: Settings, report: ReportResult, tmp_path: Path
) -> None:
    with module_db.sessions() as session:
        before = session.scalar(select(func.count()).select_from(ReportRun))
    again = generate_report(
        module_settings, module_db, OCT, label="ignored", reproduce=report.report_id,
        output=tmp_path / "again.pdf", workers=1,
    )  # fmt: skip
    assert again.matches is True
    # The unsigned render is reproduced; the signed file's hash covers its signature too.
    signed = report.files[0]
    assert again.sha256 == signed.unsigned_sha256 == again.expected_sha256
    assert again.signed_sha256 == signed.sha256 != again.sha256
    assert "compare it with the SHA-256 before signing" in " ".join(" ".join(again.lines()).split())
    with module_db.sessions() as session:
        assert session.scalar(select(func.count()).select_from(ReportRun)) == before


def test_json_export(report: ReportResult) -> None:
    data = json.loads(next(f for f in report.files if f.format == "json").path.read_bytes())
    assert data["manifest"]["report_id"] == report.report_id + ".json"
    assert len(data["rows"]) == report.control_totals["reconciliation_rows"]
    assert set(data["rows"][0]) == set(RECONCILIATION_COLUMNS)
    assert set(data["meetings"][0]) == set(MEETING_COLUMNS)
    phone = next(r for r in data["rows"] if r["person_key"] == "participant:p-phone")
    assert phone["phone_numbers"] == ["+1-555-01••"]  # typed list, not defused text
    assert phone["invited"] is False and phone["sessions"] == 1
    assert [g["tracking_id"] for g in data["gaps"]] == ["ROUTER_TRACK_777"]


def test_ledger_chain_detects_altered_and_removed_entries(db: Database, settings: Settings) -> None:
    build_known_month(db)
    for n in range(3):
        generate_report(settings, db, OCT, label=f"2026-10-{n}", formats=("json",))
    check = verify_ledger(db)
    assert check.ok and check.entries == 3 and check.trigger_present

    with db.engine.begin() as conn:
        with pytest.raises(Exception, match="append-only"):
            with conn.begin_nested():
                conn.execute(text("UPDATE report_runs SET generated_by = 'mallory' WHERE seq = 2"))
    # A superuser can switch the trigger off — and is still caught by the chain.
    with db.engine.begin() as conn:
        conn.execute(text("ALTER TABLE report_runs DISABLE TRIGGER report_runs_append_only"))
        conn.execute(text("UPDATE report_runs SET generated_by = 'mallory' WHERE seq = 2"))
    altered = verify_ledger(db)
    assert not altered.ok and not altered.trigger_present
    assert any("entry 2" in p and "altered" in p for p in altered.problems)

    with db.engine.begin() as conn:
        conn.execute(text("DELETE FROM report_runs WHERE seq = 2"))
    removed = verify_ledger(db)
    assert any("entry 2 is missing" in p for p in removed.problems)
    assert any("entry 3" in p and "does not chain" in p for p in removed.problems)
    with pytest.raises(VerificationError):
        removed.raise_for_status()


def test_a_failed_render_leaves_no_file_and_no_entry(
    db: Database, settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    build_known_month(db)

    def boom(*args: Any, **kwargs: Any) -> None:
        raise RuntimeError("renderer crashed")

    monkeypatch.setattr("reporting.report.api.write_pdf", boom)
    with pytest.raises(RuntimeError):
        generate_report(settings, db, OCT, label="2026-10")
    assert not settings.output_dir.exists() or list(settings.output_dir.iterdir()) == []
    with db.sessions() as session:
        assert session.scalar(select(func.count()).select_from(ReportRun)) == 0


def test_a_very_large_month_lists_one_line_per_meeting(
    db: Database, settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    build_known_month(db)
    monkeypatch.setattr("reporting.report.sections.INDEX_TABLE_LIMIT", 2)  # 4 meetings > 2
    result = generate_report(settings, db, OCT, label="2026-10", workers=1, roster_row_limit=5)
    sections = pdf_sections(result.path.read_bytes())
    index = sections["4"]
    assert "One line per meeting" in index
    assert "Quarterly controls review" in index and "not harvested" in index
    assert "1 absent" in index  # Bob, in the meeting's line
    assert "more than the 5 this PDF prints" in sections["5"]  # rosters left to the attachment


def test_a_reproduction_names_the_software_that_changed_since() -> None:
    from reporting import __version__
    from reporting.report.api import _renderer_changes, _weasyprint_version
    from reporting.report.render import ReportMeta

    def meta(ours: str, weasy: str) -> ReportMeta:
        return ReportMeta(report_id="MAR-x", generated_at=dt.datetime.now(dt.UTC),
                          generated_by="t", meetaudit_version=ours, weasyprint_version=weasy)  # fmt: skip

    assert _renderer_changes(meta(__version__, _weasyprint_version())) == []
    assert _renderer_changes(meta("0.0.1", "1.0")) == [
        f"meetaudit 0.0.1 then, {__version__} now",
        f"WeasyPrint 1.0 then, {_weasyprint_version()} now",
    ]


def test_without_harfbuzz_subset_the_bytes_still_do_not_depend_on_the_clock(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """WeasyPrint's fallback subsetter (fontTools) stamps fonts with the time of rendering."""
    import time

    import weasyprint.pdf.fonts

    from reporting.report.render import _PartJob, _render_job

    monkeypatch.setattr(weasyprint.pdf.fonts, "harfbuzz_subset", None)
    blocks = [{"kind": "p", "text": "Ärztin Ana Ōtsuka — 会議"}]
    outputs = []
    for n in range(2):
        if n:
            time.sleep(1.1)  # the font timestamp has a one-second resolution
        out = tmp_path / f"part-{n}.pdf"
        _render_job(_PartJob(0, "part.html", {"title": "MAR-x", "blocks": blocks}, out))
        outputs.append(out.read_bytes())
    assert outputs[0] == outputs[1]


def test_the_registry_names_outside_organisations_beside_their_keys(
    sections: dict[str, str], report: ReportResult
) -> None:
    text = "\n".join(sections.values())
    assert "Globex Inc." in text and "globex.example" in text
    assert "Partner Org AG" in text and "partner-org-42" in text
    method = sections["1.1"]
    registry = hashlib.sha256((report.path.parent / "org-names.toml").read_bytes()).hexdigest()
    flat = re.sub(r"\s+", "", method)  # a long path or hash wraps across lines
    assert "org-names.toml" in flat and registry in flat


# -- layout -----------------------------------------------------------------------------------

A4_HEIGHT = 841.89
MARGIN_TOP, MARGIN_BOTTOM = 21 / 25.4 * 72, 18 / 25.4 * 72  # the page furniture lives outside


def _body_lines(path: Path) -> list[list[tuple[float, str]]]:
    """Per page, the lines of text between the running header and the footer, top to bottom
    (pdftotext's own line finding, as a reader's search or copy sees them)."""
    import xml.etree.ElementTree as ET

    xhtml = _pdftotext(path, "-bbox-layout")
    xhtml = re.sub(r"<!DOCTYPE[^>]*>", "", xhtml).replace(
        ' xmlns="http://www.w3.org/1999/xhtml"', ""
    )
    pages = []
    for page in ET.fromstring(xhtml).iter("page"):
        lines = []
        for line in page.iter("line"):
            top, bottom = float(line.get("yMin", 0)), float(line.get("yMax", 0))
            if bottom < MARGIN_TOP or top > A4_HEIGHT - MARGIN_BOTTOM:
                continue
            lines.append((top, " ".join(w.text or "" for w in line.iter("word"))))
        pages.append(sorted(lines))
    return pages


def test_no_heading_is_left_at_the_foot_of_a_page(tmp_path: Path) -> None:
    """Thirty subsections of a heading, an introductory line and a table of 1–7 rows, one after
    the other: wherever a heading falls, its page also shows its introduction and the table's
    header and first row (before, three headings sat at a page foot with only their intro)."""
    from reporting.report.render import _PartJob, _render_job

    def row(text: str) -> dict[str, Any]:
        return {"what": text, "scope": "participants", "http_status": 503, "tracking_id": "T",
                "occurred_at": "2026-10-01T00:00:00Z", "attempts": 1, "run_id": 1,
                "reason": "503 after 6 retries", "start": None, "meeting_id": None,
                "meeting_ref": None}  # fmt: skip

    blocks: list[dict[str, Any]] = [
        {"kind": "h1", "num": "9", "title": "Layout", "id": "s9", "cont": False}
    ]
    for k in range(1, 31):
        blocks += [
            {"kind": "h2", "num": f"9.{k}", "title": f"Subsection {k}", "id": f"s{k}", "cont": False},
            {"kind": "p", "text": f"What subsection {k} lists."},
            {"kind": "table", "table": "gaps", "rows": [row(f"Row {i}") for i in range(k % 7 + 1)]},
        ]  # fmt: skip
    out = tmp_path / "part.pdf"
    done = _render_job(_PartJob(0, "part.html", {"title": "MAR-x", "blocks": blocks}, out))
    assert done.pages > 3
    seen = 0
    for page in _body_lines(out):
        for n, (_top, line) in enumerate(page):
            if re.fullmatch(r"9\.\d+ Subsection \d+", line):
                seen += 1
                assert len(page) - n - 1 >= 3, (line, [t for _, t in page[n + 1 :]])
    assert seen == 30


def test_a_full_part_is_cut_before_a_heading_and_a_short_subsection_runs_on() -> None:
    """Parts (rendered apart, each from a new page) are cut before the heading that leads to a
    table, never between a heading and its table; a subsection with no table runs on in the
    part before rather than opening a page of its own under a repeated "(continued)" heading."""
    from reporting.report.sections import plan_parts

    def h(kind: str, num: str) -> dict[str, Any]:
        return {"kind": kind, "num": num, "title": f"Title {num}", "id": num, "cont": False}

    events = [
        h("h1", "3"),
        h("h2", "3.1"),
        {"kind": "p", "text": "intro"},
        {"kind": "table", "table": "gaps", "rows": list(range(10))},
        h("h2", "3.2"),
        {"kind": "note", "text": "None in this period."},
        h("h2", "3.3"),
        {"kind": "p", "text": "intro"},
        {"kind": "table", "table": "gaps", "rows": list(range(4))},
    ]
    parts = list(plan_parts(events, max_rows=20))  # full after 3.1's table
    first, second = ([(b["kind"], b.get("num"), b.get("cont")) for b in p.blocks] for p in parts)
    assert first == [("h1", "3", False), ("h2", "3.1", False), ("p", None, None),
                     ("table", None, None), ("h2", "3.2", False), ("note", None, None)]  # fmt: skip
    assert second == [("h1", "3", True), ("h2", "3.3", False), ("p", None, None),
                      ("table", None, None)]  # fmt: skip


def test_no_near_empty_page_but_the_last_of_a_section(report: ReportResult) -> None:
    """Each main section starts a new page; apart from the last page of a section, no page of
    the report carries only a few lines, and no heading ends its page."""
    reader = PdfReader(str(report.path))
    starts = sorted(
        {reader.get_destination_page_number(item) for item in reader.outline
         if not isinstance(item, list)}
    )  # fmt: skip
    last_of_section = {s - 1 for s in starts if s > 0} | {len(reader.pages) - 1}
    pages = _body_lines(report.path)
    for number, page in enumerate(pages):
        assert page, f"page {number + 1} is empty"
        if number not in last_of_section:
            assert len(page) >= 12, (number + 1, [t for _, t in page])
        headings = [t for _, t in page if re.fullmatch(r"[0-9A]+(\.[0-9]+)? [A-Z].{0,60}", t)]
        if headings and number not in last_of_section:
            assert page[-1][1] not in headings, (number + 1, page[-1][1])
