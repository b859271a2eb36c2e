"""Evidence that holds against whoever runs the database: the attacks of issue 10, each a test.

An auditor pins the organisation's CA and the time-stamping authority's root; the report host
signs with a certificate that CA issued and stamps with a loopback TSA. Every forgery — a report
signed by another key that the ledger happily records, a manifest edited to list a changed CSV,
an attachment swapped inside the PDF — ends in exit status 4 with a message saying why; a
genuine report verifies offline with nothing but the pinned certificates.
"""

from __future__ import annotations

import json
import shutil
import stat
import subprocess
from pathlib import Path

import pikepdf
import pytest
from click.testing import CliRunner, Result
from pydantic import SecretStr
from sqlalchemy import func, select

from reporting.cli import cli
from reporting.config import Settings, load_settings
from reporting.db.engine import Database
from reporting.db.models import ReportRun
from reporting.errors import ConfigError, ReportError
from reporting.report import generate_report, signing, verify_file
from reporting.report.api import ReportResult
from reporting.report.assemble import stream_bytes
from reporting.report.signing import StarterKeys, create_starter_keys
from reporting.report.timestamps import timestamp_token
from reporting.report.trust import Pins, load_anchors
from tests.report.conftest import OCT, OWN_ORG_ID, build_known_month
from tests.tsa import TSA

UNREACHABLE_DB = "postgresql://nobody@127.0.0.1:9/none"


@pytest.fixture(scope="module")
def keys(tmp_path_factory: pytest.TempPathFactory) -> StarterKeys:
    return create_starter_keys(tmp_path_factory.mktemp("org") / "keys", org_name="Acme")


@pytest.fixture(scope="module")
def mallory(tmp_path_factory: pytest.TempPathFactory) -> StarterKeys:
    """Keys the database administrator made: same names, another key."""
    return create_starter_keys(tmp_path_factory.mktemp("mallory") / "keys", org_name="Acme")


@pytest.fixture(scope="module")
def base(
    module_db: Database, tmp_path_factory: pytest.TempPathFactory, keys: StarterKeys, tsa: TSA
) -> Settings:
    build_known_month(module_db)
    out = tmp_path_factory.mktemp("reports")
    return load_settings(
        database_url=module_db.url, data_dir=out / "data", output_dir=out,
        org_name="Acme", org_domains=["acme.example"], org_ids=[OWN_ORG_ID],
        operator="auditor-bot@ci", signing_cert_file=keys.signing_cert,
        signing_key_file=keys.signing_key, tsa_url=tsa.url,
    )  # fmt: skip


@pytest.fixture(scope="module")
def report(module_db: Database, base: Settings) -> ReportResult:
    """One genuine signed report: the PDF with its attachments, the CSVs and the JSON."""
    return generate_report(base, module_db, OCT, label="2026-10", formats=("pdf", "csv"), workers=1)


def env_for(
    db_url: str, keys: StarterKeys | None, tsa: TSA | None, **extra: str
) -> dict[str, str | None]:
    """The auditor's environment: what they pin, and nothing of the report host's."""
    return {
        "MEETAUDIT_CONFIG": None,
        "MEETAUDIT_DATABASE_URL": db_url,
        "MEETAUDIT_SIGNING_CERT_FILE": None,
        "MEETAUDIT_SIGNING_KEY_FILE": None,
        "MEETAUDIT_TSA_URL": None,
        "MEETAUDIT_TRUSTED_CERTS": str(keys.ca_cert) if keys else None,
        "MEETAUDIT_TRUSTED_TSA_CERTS": str(tsa.root_pem) if tsa else None,
        **extra,
    }


def meetaudit(env: dict[str, str | None], *args: str) -> Result:
    return CliRunner().invoke(cli, ["--log-format", "plain", *args], env=env)


def flat(result: Result) -> str:
    return " ".join(result.output.split())


def pdf_of(report: ReportResult) -> Path:
    return next(f.path for f in report.files if f.format == "pdf")


# -- a genuine report ---------------------------------------------------------------------------


def test_a_genuine_report_verifies_offline_with_only_the_pinned_certificates(
    report: ReportResult, keys: StarterKeys, tsa: TSA
) -> None:
    pdf = pdf_of(report)
    result = meetaudit(env_for(UNREACHABLE_DB, keys, tsa), "verify", str(pdf), "--offline")
    assert result.exit_code == 0, result.output
    assert result.output.startswith(f"OK (offline): {pdf} is signed by a certificate you trust")
    text = flat(result)
    assert "trusted through Common Name: meetaudit report signing CA, Organization: Acme" in text
    assert f"SHA-256 {keys.ca_fingerprint}), pinned in {keys.ca_cert}" in text
    assert "timestamp: valid" in text and f"pinned in {tsa.root_pem}" in text

    csv = next(f for f in report.files if f.format == "csv")
    assert csv.signature_path == signing.signature_path(csv.path) and csv.signature_path.exists()
    detached = meetaudit(env_for(UNREACHABLE_DB, keys, tsa), "verify", str(csv.path), "--offline")
    assert detached.exit_code == 0, detached.output

    # Without --offline the ledger is consulted, and an unreachable database is an error.
    assert meetaudit(env_for(UNREACHABLE_DB, keys, tsa), "verify", str(pdf)).exit_code != 0


def test_pdfsig_and_openssl_accept_the_signatures(report: ReportResult, keys: StarterKeys) -> None:
    pdfsig = subprocess.run(
        ["pdfsig", str(pdf_of(report))], capture_output=True, text=True, check=False
    ).stdout
    assert "Signature is Valid." in pdfsig and "Total document signed" in pdfsig
    csv = next(f for f in report.files if f.format == "csv")
    openssl = subprocess.run(
        ["openssl", "cms", "-verify", "-binary", "-inform", "DER", "-in", str(csv.signature_path),
         "-content", str(csv.path), "-CAfile", str(keys.ca_cert), "-purpose", "any",
         "-out", "/dev/null"],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert openssl.returncode == 0, openssl.stderr


# -- attack: sign a forged report with a new key, and record that key in the ledger -------------


def test_a_report_signed_with_another_key_fails_even_though_the_ledger_records_it(
    module_db: Database, base: Settings, report: ReportResult, mallory: StarterKeys,
    keys: StarterKeys, tsa: TSA,
) -> None:  # fmt: skip
    forger = base.model_copy(
        update={
            "signing_cert_file": mallory.signing_cert,
            "signing_key_file": mallory.signing_key,
            "output_dir": base.output_dir / "forged",
        }
    )
    forged = generate_report(forger, module_db, OCT, label="2026-10", workers=1)
    with module_db.sessions() as session:
        row = session.scalars(
            select(ReportRun).where(ReportRun.report_id == forged.report_id)
        ).one()
        recorded = row.parameters["signature"]["signer"]["cert_sha256"]
    assert recorded == mallory.signing_fingerprint  # the ledger vouches for the forger's key

    for offline in ([], ["--offline"]):
        result = meetaudit(env_for(module_db.url, keys, tsa), "verify", str(forged.path), *offline)
        assert result.exit_code == 4, result.output
        text = flat(result)
        assert "signature: NOT TRUSTED" in text
        assert (
            f"SHA-256 {mallory.signing_fingerprint}), which is not a certificate you trust" in text
        )
        assert "treat the file as forged" in text

    # With nothing pinned, neither the file's certificate nor the ledger's is taken on trust.
    bare = meetaudit(env_for(module_db.url, None, None), "verify", str(forged.path))
    assert bare.exit_code == 4, bare.output
    assert "signature: not checked against a trusted certificate" in bare.output
    assert "no trusted certificate is configured" in flat(bare)


def test_an_unsigned_file_fails_when_the_auditor_pins_a_certificate(
    module_db: Database, base: Settings, keys: StarterKeys, tsa: TSA
) -> None:
    unsigned = base.model_copy(
        update={"signing_cert_file": None, "signing_key_file": None, "tsa_url": None,
                "output_dir": base.output_dir / "unsigned"}
    )  # fmt: skip
    written = generate_report(unsigned, module_db, OCT, label="2026-10", formats=("json",))
    result = meetaudit(env_for(module_db.url, keys, tsa), "verify", str(written.path))
    assert result.exit_code == 4
    assert "an unsigned file proves nothing about who made it" in flat(result)


# -- attack: an attachment and the manifest ----------------------------------------------------


def test_a_genuine_extracted_csv_names_its_pdf_and_an_edited_manifest_fails(
    module_db: Database, report: ReportResult, keys: StarterKeys, tsa: TSA, tmp_path: Path
) -> None:
    pdf = pdf_of(report)
    subprocess.run(["pdfdetach", "-saveall", "-o", str(tmp_path), str(pdf)], check=True)
    env = env_for(module_db.url, keys, tsa)
    extracted = tmp_path / "reconciliation.csv"
    result = meetaudit(env, "verify", str(extracted))
    assert result.exit_code == 0, result.output
    # Identical to the CSV export of the same run, so named as that too; and its PDF.
    assert result.output.startswith(f"OK: {extracted} is report {report.report_id}.csv, unaltered")
    assert f"also attached to PDF report(s) {report.report_id}" in flat(result)

    # A changed CSV, and the manifest edited to list its hash with zeroed flag counts.
    manifest = json.loads((tmp_path / "manifest.json").read_bytes())
    tampered = extracted.read_bytes().replace(b"Bob Absent", b"Bob Present")
    (tmp_path / "tampered.csv").write_bytes(tampered)
    import hashlib

    for a in manifest["attachments"]:
        if a["name"] == "reconciliation.csv":
            a["sha256"] = hashlib.sha256(tampered).hexdigest()
    manifest["flag_counts"] = dict.fromkeys(manifest["flag_counts"], 0)
    edited = tmp_path / "edited-manifest.json"
    edited.write_bytes(
        (json.dumps(manifest, ensure_ascii=False, sort_keys=True, indent=2) + "\n").encode()
    )
    result = meetaudit(env, "verify", str(edited))
    assert result.exit_code == 4, result.output
    assert "it was edited (an attachment's SHA-256, a flag count" in flat(result)
    assert meetaudit(env, "verify", str(tmp_path / "tampered.csv")).exit_code == 4


def test_a_pdf_whose_attachment_was_swapped_fails_offline(
    report: ReportResult, keys: StarterKeys, tsa: TSA, tmp_path: Path
) -> None:
    """Swapping an attachment breaks the signature; re-signing with the organisation's own key
    still leaves the manifest disagreeing with the attachment."""
    env = env_for(UNREACHABLE_DB, keys, tsa)
    swapped = tmp_path / "swapped.pdf"
    with pikepdf.open(pdf_of(report)) as pdf:
        spec = pdf.attachments["reconciliation.csv"]
        data = stream_bytes(spec.get_file().obj).replace(b"Bob Absent", b"Bob Present")
        pdf.attachments["reconciliation.csv"] = pikepdf.AttachedFileSpec(
            pdf, data, filename="reconciliation.csv"
        )
        pdf.save(swapped)
    result = meetaudit(env, "verify", str(swapped), "--offline")
    assert result.exit_code == 4
    assert "signature: absent" in result.output or "INVALID" in result.output
    assert "the attachment reconciliation.csv has SHA-256" in flat(result)

    # The administrator holds the signing key: strip the signature field, sign again.
    stripped = tmp_path / "stripped.pdf"
    with pikepdf.open(swapped) as pdf:
        del pdf.Root.AcroForm
        for page in pdf.pages:
            if "/Annots" in page.obj:
                kept = [a for a in page.obj.Annots if a.get("/FT") != pikepdf.Name.Sig]
                page.obj.Annots = pikepdf.Array(kept)
        pdf.save(stripped)
    resigned = tmp_path / "resigned.pdf"
    identity = signing.load_identity(
        Settings(signing_cert_file=keys.signing_cert, signing_key_file=keys.signing_key)
    )
    assert identity is not None
    signing.sign_pdf(identity, stripped, resigned, timestamper=None, reason="forged")
    result = meetaudit(env, "verify", str(resigned), "--offline")
    assert result.exit_code == 4, result.output
    text = flat(result)
    assert (
        "its manifest.json lists" in text and "the attachment or the manifest was changed" in text
    )
    assert "the signature has no timestamp, and you pin a time-stamping authority" in text


def test_bytes_appended_after_signing_fail(
    report: ReportResult, keys: StarterKeys, tsa: TSA, tmp_path: Path
) -> None:
    grown = tmp_path / "grown.pdf"
    shutil.copyfile(pdf_of(report), grown)
    with grown.open("ab") as fh:
        fh.write(b"\n% appended later\n")
    result = meetaudit(env_for(UNREACHABLE_DB, keys, tsa), "verify", str(grown), "--offline")
    assert result.exit_code == 4
    assert "does not cover the whole file" in flat(result)


# -- the reproduction and the ledger's two hashes ------------------------------------------------


def test_the_ledger_records_the_hash_before_and_after_signing(
    module_db: Database, report: ReportResult
) -> None:
    pdf = report.files[0]
    with module_db.sessions() as session:
        row = session.scalars(select(ReportRun).where(ReportRun.report_id == pdf.report_id)).one()
    assert row.file_sha256 == pdf.sha256
    assert row.parameters["unsigned_sha256"] == pdf.unsigned_sha256 != pdf.sha256
    assert set(row.parameters["attachments"]) == {"reconciliation.csv", "meetings.csv"}
    assert len(row.parameters["manifest_sha256"]) == 64
    assert row.parameters["signature"]["timestamp_authority"].startswith("http://127.0.0.1:")
    assert row.signature_path is None  # the PDF carries its signature inside


# -- timestamps and keys --------------------------------------------------------------------------


def test_an_unreachable_tsa_writes_and_records_nothing(
    module_db: Database, base: Settings, tmp_path: Path
) -> None:
    with module_db.sessions() as session:
        before = session.scalar(select(func.count()).select_from(ReportRun))
    broken = base.model_copy(
        update={"tsa_url": "http://127.0.0.1:9/tsa", "tsa_timeout": 2.0, "output_dir": tmp_path}
    )
    with pytest.raises(ReportError, match=r"time-stamping authority at http://127\.0\.0\.1:9/tsa"):
        generate_report(broken, module_db, OCT, label="2026-10", formats=("csv",))
    assert list(tmp_path.iterdir()) == []
    with module_db.sessions() as session:
        assert session.scalar(select(func.count()).select_from(ReportRun)) == before


def test_timestamp_token_stamps_any_bytes(base: Settings, tsa: TSA) -> None:
    from asn1crypto import cms, tsp

    token = timestamp_token(b"ledger head", base)
    assert token is not None
    info = cms.ContentInfo.load(token)["content"]["encap_content_info"]["content"].parsed
    assert isinstance(info, tsp.TSTInfo)
    import hashlib

    assert (
        info["message_imprint"]["hashed_message"].native == hashlib.sha256(b"ledger head").digest()
    )
    assert timestamp_token(b"x", base.model_copy(update={"tsa_url": None})) is None


def test_keys_init_writes_owner_only_keys_and_says_what_to_pin(tmp_path: Path) -> None:
    env = {"MEETAUDIT_CONFIG": None, "MEETAUDIT_ORG_NAME": "Acme Corporation",
           "MEETAUDIT_DATA_DIR": str(tmp_path / "data")}  # fmt: skip
    result = meetaudit(env, "keys", "init", "--dir", str(tmp_path / "k"))
    assert result.exit_code == 0, result.output
    for name, mode in (("ca.key", 0o600), ("signing.key", 0o600), ("ca.pem", 0o644)):
        assert stat.S_IMODE((tmp_path / "k" / name).stat().st_mode) == mode
    anchors = load_anchors([str(tmp_path / "k" / "ca.pem")], setting="TRUSTED_CERTS")
    fingerprint = signing.cert_fingerprint(anchors[0].cert)
    assert f"SHA-256 {fingerprint}" in result.output
    assert "MEETAUDIT_TRUSTED_CERTS=ca.pem" in flat(result)
    assert f"MEETAUDIT_SIGNING_CERT_FILE={tmp_path / 'k' / 'signing.pem'}" in result.output

    again = meetaudit(env, "keys", "init", "--dir", str(tmp_path / "k"))
    assert again.exit_code == 1 and "keys are never replaced" in flat(again)


def test_a_legacy_ed25519_signature_counts_only_against_a_pinned_key(
    module_db: Database, report: ReportResult, tmp_path: Path
) -> None:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    csv = next(f for f in report.files if f.format == "csv")
    copy = tmp_path / "old.csv"
    shutil.copyfile(csv.path, copy)
    key = Ed25519PrivateKey.generate()
    (tmp_path / "old.csv.sig").write_bytes(key.sign(copy.read_bytes()))
    public = tmp_path / "old-key.pub.pem"
    public.write_bytes(
        key.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
    )
    legacy: list[tuple[object, Path]] = []
    load_anchors([str(public)], setting="TRUSTED_CERTS", legacy=legacy)
    assert verify_file(module_db, copy, pins=Pins(legacy_keys=legacy)).ok
    unpinned = verify_file(module_db, copy)
    assert not unpinned.ok and "a key recorded in the ledger is never enough" in " ".join(
        unpinned.problems
    )


def test_a_pkcs12_file_with_a_password_file_signs(
    keys: StarterKeys, tsa: TSA, tmp_path: Path
) -> None:
    from cryptography import x509
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.serialization import pkcs12

    key = serialization.load_pem_private_key(keys.signing_key.read_bytes(), password=None)
    cert, ca = x509.load_pem_x509_certificates(keys.signing_cert.read_bytes())
    p12 = tmp_path / "signing.p12"
    p12.write_bytes(
        pkcs12.serialize_key_and_certificates(
            b"report signing", key, cert, [ca],  # type: ignore[arg-type]
            serialization.BestAvailableEncryption(b"s3cret-pass"),
        )
    )  # fmt: skip
    (tmp_path / "password").write_text("s3cret-pass\n")
    settings = Settings(
        signing_p12_file=p12, signing_key_password_file=tmp_path / "password", tsa_url=tsa.url
    )
    identity = signing.load_identity(settings)
    assert identity is not None and identity.fingerprint == keys.signing_fingerprint
    data = tmp_path / "data.csv"
    data.write_bytes(b"a,b\n1,2\n")
    from reporting.report.timestamps import timestamper

    p7s = signing.sign_detached(identity, data, timestamper=timestamper(settings))
    pins = Pins(
        signers=load_anchors([str(keys.ca_cert)], setting="TRUSTED_CERTS"),
        tsas=load_anchors([str(tsa.root_pem)], setting="TRUSTED_TSA_CERTS"),
    )
    from reporting.report.trust import check_detached

    assert check_detached(data.read_bytes(), p7s, pins.signers, pins.tsas).ok
    wrong = settings.model_copy(update={"signing_key_password_file": None,
                                        "signing_key_password": SecretStr("nope")})  # fmt: skip
    with pytest.raises(ConfigError, match="check the password"):
        signing.load_identity(wrong)


def test_an_old_ed25519_signing_key_is_refused_with_what_to_do(tmp_path: Path) -> None:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    old = tmp_path / "old.pem"
    old.write_bytes(
        Ed25519PrivateKey.generate().private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    with pytest.raises(ConfigError, match="Run `meetaudit keys init`"):
        signing.load_identity(Settings(signing_key_file=old))
