"""Signatures of report files with the organisation's X.509 certificate.

* A PDF report is signed inside the file, as a PDF signature (PAdES, with pyHanko): Acrobat,
  ``pdfsig`` (poppler) and pyHanko show who signed it and that it is unaltered. The signature is
  an incremental update appended to the finished PDF/A-3a file, so the unsigned render before it
  stays byte-reproducible; the ledger records the SHA-256 of both.
* A CSV or JSON file gets a detached CMS signature beside it, ``FILE.p7s`` (DER), which
  ``openssl cms -verify -binary -inform DER -in FILE.p7s -content FILE -CAfile ca.pem`` checks too.

With a time-stamping authority configured (``tsa_url``) every signature carries an RFC 3161
timestamp (PAdES-B-T), so when it was signed does not rest on the report host's clock.

The certificate and key come from the settings: ``signing_cert_file`` + ``signing_key_file``
(PEM; the certificate file may carry the issuing chain after the certificate), or
``signing_p12_file`` (PKCS#12); a password from ``signing_key_password`` or
``signing_key_password_file``. :func:`create_starter_keys` (``meetaudit keys init``) makes a
small certificate authority and a signing certificate for a start.

Earlier versions wrote a raw Ed25519 signature ``FILE.sig``; those are only checked, against an
Ed25519 public key the verifier pins (:func:`legacy_verify`), never written any more.
"""

from __future__ import annotations

import asyncio
import base64
import datetime as dt
import hashlib
import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from asn1crypto import pem
from asn1crypto import x509 as asn1_x509
from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.x509.oid import NameOID

from reporting.errors import ConfigError, ReportError

if TYPE_CHECKING:
    from pyhanko.sign.signers import SimpleSigner
    from pyhanko.sign.timestamps import TimeStamper

    from reporting.config import Settings

SIGNATURE_SUFFIX = ".p7s"
LEGACY_SUFFIX = ".sig"
SIGNATURE_FIELD = "meetaudit-signature"


def cert_fingerprint(cert: asn1_x509.Certificate) -> str:
    """SHA-256 of the certificate's DER, as ``openssl x509 -noout -fingerprint -sha256`` shows it."""
    digest = hashlib.sha256(cert.dump()).hexdigest().upper()
    return ":".join(digest[i : i + 2] for i in range(0, len(digest), 2))


def describe_cert(cert: asn1_x509.Certificate) -> str:
    """``subject (SHA-256 AA:BB:…)``: how a certificate is named to a person."""
    return f"{cert.subject.human_friendly} (SHA-256 {cert_fingerprint(cert)})"


def load_certs(data: bytes) -> list[asn1_x509.Certificate]:
    """Every certificate in PEM ``data`` (several may follow each other), or the one DER one."""
    if pem.detect(data):
        return [
            asn1_x509.Certificate.load(der)
            for kind, _, der in pem.unarmor(data, multiple=True)
            if kind == "CERTIFICATE"
        ]
    return [asn1_x509.Certificate.load(data)]


@dataclass(frozen=True)
class SigningIdentity:
    """Who signs: pyHanko's signer over the certificate and key, and how to name them."""

    signer: SimpleSigner
    cert: asn1_x509.Certificate

    @property
    def subject(self) -> str:
        """The certificate's subject, as a person reads it."""
        return str(self.cert.subject.human_friendly)

    @property
    def fingerprint(self) -> str:
        """SHA-256 fingerprint of the signing certificate."""
        return cert_fingerprint(self.cert)

    def describe(self) -> str:
        """``subject (SHA-256 …)``."""
        return describe_cert(self.cert)

    def ledger_facts(self) -> dict[str, Any]:
        """What the ledger records about the signer (never trusted at verification)."""
        return {
            "subject": self.subject,
            "cert_sha256": self.fingerprint,
            "certificate": base64.b64encode(self.cert.dump()).decode(),
        }


def _read(path: Path, what: str) -> bytes:
    try:
        return path.read_bytes()
    except OSError as exc:
        raise ConfigError(f"cannot read the {what} {path}: {exc.strerror}") from exc


def load_identity(settings: Settings) -> SigningIdentity | None:
    """The signing certificate and key the settings name, or ``None`` when none is set."""
    from pyhanko.keys import load_private_key_from_pemder_data
    from pyhanko.sign.signers import SimpleSigner
    from pyhanko_certvalidator.registry import SimpleCertificateStore

    password = settings.signing_password()
    if settings.signing_p12_file is not None:
        data = _read(settings.signing_p12_file, "signing certificate file (PKCS#12)")
        try:
            signer = SimpleSigner.load_pkcs12_data(data, other_certs=(), passphrase=password)
        except (ValueError, TypeError) as exc:
            raise ConfigError(
                f"the PKCS#12 file {settings.signing_p12_file} could not be opened ({exc}): "
                "check the password (SIGNING_KEY_PASSWORD or SIGNING_KEY_PASSWORD_FILE)"
            ) from None
        if signer is None or signer.signing_cert is None:
            raise ConfigError(
                f"the PKCS#12 file {settings.signing_p12_file} holds no certificate and key"
            )
        return SigningIdentity(signer, signer.signing_cert)
    if settings.signing_key_file is None and settings.signing_cert_file is None:
        return None
    if settings.signing_cert_file is None and settings.signing_key_file is not None:
        data = _read(settings.signing_key_file, "signing key")
        if legacy_public_key(data) is not None:
            raise ConfigError(
                f"the signing key {settings.signing_key_file} is an Ed25519 key of an earlier "
                "meetaudit: reports are now signed with an X.509 certificate that auditors can "
                "pin. Run `meetaudit keys init` (or use a certificate your organisation issues) "
                "and set SIGNING_CERT_FILE and SIGNING_KEY_FILE; earlier .sig files still verify "
                "against the Ed25519 public key listed in TRUSTED_CERTS"
            )
    if settings.signing_key_file is None or settings.signing_cert_file is None:
        raise ConfigError(
            "signing needs both SIGNING_CERT_FILE (the certificate) and SIGNING_KEY_FILE (its "
            "private key), or SIGNING_P12_FILE; `meetaudit keys init` creates a starter pair"
        )
    key_data = _read(settings.signing_key_file, "signing key")
    certs = load_certs(_read(settings.signing_cert_file, "signing certificate"))
    if not certs:
        raise ConfigError(f"the signing certificate file {settings.signing_cert_file} holds none")
    try:
        key = load_private_key_from_pemder_data(key_data, passphrase=password)
    except (ValueError, TypeError) as exc:
        raise ConfigError(
            f"the signing key {settings.signing_key_file} could not be read ({exc}); if it is "
            "encrypted, set SIGNING_KEY_PASSWORD or SIGNING_KEY_PASSWORD_FILE"
        ) from None
    signer = SimpleSigner(
        signing_cert=certs[0],
        signing_key=key,
        cert_registry=SimpleCertificateStore.from_certs(certs),  # type: ignore[no-untyped-call]
    )
    return SigningIdentity(signer, certs[0])


def signature_path(path: Path) -> Path:
    """Where the detached signature of a CSV or JSON file lives: ``path`` + ``.p7s``."""
    return path.with_name(path.name + SIGNATURE_SUFFIX)


def legacy_signature_path(path: Path) -> Path:
    """Where an earlier version's Ed25519 signature lives: ``path`` + ``.sig``."""
    return path.with_name(path.name + LEGACY_SUFFIX)


def _run(coro: Any) -> Any:
    from reporting.report.timestamps import TimestampError

    try:
        return asyncio.run(coro)
    except TimestampError:
        raise
    except Exception as exc:
        from pyhanko.sign.timestamps import TimestampRequestError

        if isinstance(exc, TimestampRequestError):
            raise TimestampError(
                f"the time-stamping authority refused to stamp the signature ({exc}). Nothing "
                "was written or recorded; check the TSA_URL setting and run again"
            ) from None
        raise ReportError(
            f"signing failed ({type(exc).__name__}: {exc}). Nothing was written or recorded; "
            "check the signing certificate and key settings"
        ) from exc


def sign_pdf(
    identity: SigningIdentity,
    source: Path,
    target: Path,
    *,
    timestamper: TimeStamper | None,
    reason: str,
) -> None:
    """Write ``source`` with a PAdES signature (and timestamp) appended to ``target``."""
    from pyhanko.pdf_utils.incremental_writer import IncrementalPdfFileWriter
    from pyhanko.sign import fields, signers

    meta = signers.PdfSignatureMetadata(
        field_name=SIGNATURE_FIELD,
        md_algorithm="sha256",
        subfilter=fields.SigSeedSubFilter.PADES,
        reason=reason,
        name=identity.subject,
    )
    with source.open("rb") as inf, target.open("wb") as out:
        writer = IncrementalPdfFileWriter(inf, strict=False)
        # pyHanko rewrites the XMP metadata and the document information on every save, with
        # its own producer in one and not the other: PDF/A wants both unchanged and equal, and
        # the report's metadata are its ledger entry's. The signature is the only change.
        writer._update_meta = lambda: None  # type: ignore[method-assign]
        # The field is made here rather than by the signer, so that in the same update it is
        # named for a screen reader (/TU) and tagged as a form in the structure tree, as the
        # report's PDF/UA asks of every widget.
        fields.append_signature_field(
            writer,
            fields.SigFieldSpec(
                SIGNATURE_FIELD,
                on_page=0,
                readable_field_name=f"Signature of this report by {identity.subject}",
            ),
        )
        _tag_signature_field(writer)
        pdf_signer = signers.PdfSigner(meta, signer=identity.signer, timestamper=timestamper)
        _run(pdf_signer.async_sign_pdf(writer, output=out))


def _tag_signature_field(writer: Any) -> None:
    """Give the (invisible) signature widget a /Form element in the structure tree, under the
    document's top element, and its key in the parent tree (a new leaf of it)."""
    from pyhanko.pdf_utils import generic as pdf_generic
    from pyhanko.pdf_utils.generic import pdf_name

    generic: Any = pdf_generic  # its constructors are untyped
    root = writer.root
    if "/StructTreeRoot" not in root:
        return
    tree = root["/StructTreeRoot"]
    field_ref = next(
        ref for ref in root["/AcroForm"]["/Fields"] if ref.get_object().get("/T") == SIGNATURE_FIELD
    )
    widget = field_ref.get_object()
    page_ref = writer.find_page_for_modification(0)[0]
    document_ref = (
        tree.raw_get("/K")[0] if isinstance(tree["/K"], generic.ArrayObject) else tree.raw_get("/K")
    )
    document = document_ref.get_object()
    key = int(tree["/ParentTreeNextKey"])
    objr = generic.DictionaryObject(
        {
            pdf_name("/Type"): pdf_name("/OBJR"),
            pdf_name("/Obj"): field_ref,
            pdf_name("/Pg"): page_ref,
        }
    )
    element_ref = writer.add_object(
        generic.DictionaryObject(
            {
                pdf_name("/Type"): pdf_name("/StructElem"),
                pdf_name("/S"): pdf_name("/Form"),
                pdf_name("/P"): document_ref,
                pdf_name("/Pg"): page_ref,
                pdf_name("/K"): writer.add_object(objr),
            }
        )
    )
    document["/K"].append(element_ref)
    writer.update_container(document)
    widget[pdf_name("/StructParent")] = generic.NumberObject(key)
    writer.update_container(widget)
    leaf = generic.DictionaryObject(
        {
            pdf_name("/Limits"): generic.ArrayObject([generic.NumberObject(key)] * 2),
            pdf_name("/Nums"): generic.ArrayObject([generic.NumberObject(key), element_ref]),
        }
    )
    parent_tree = tree["/ParentTree"]
    parent_tree["/Kids"].append(writer.add_object(leaf))
    writer.update_container(parent_tree)
    tree[pdf_name("/ParentTreeNextKey")] = generic.NumberObject(key + 1)
    writer.update_container(tree)


def sign_detached(
    identity: SigningIdentity, source: Path, *, timestamper: TimeStamper | None
) -> bytes:
    """A detached CMS signature (DER) of the file ``source``, timestamped when a TSA is set."""
    with source.open("rb") as fh:
        content = _run(
            identity.signer.async_sign_general_data(
                fh, "sha256", detached=True, timestamper=timestamper
            )
        )
    return bytes(content.dump())


# -- a starter certificate authority: meetaudit keys init ---------------------------------------


@dataclass(frozen=True)
class StarterKeys:
    """What :func:`create_starter_keys` wrote."""

    folder: Path
    ca_cert: Path
    ca_key: Path
    signing_cert: Path
    signing_key: Path
    ca_fingerprint: str
    ca_subject: str
    signing_fingerprint: str
    signing_subject: str


def _write_private(path: Path, data: bytes) -> None:
    """Create ``path`` readable by its owner only (never replacing a file)."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as fh:
        fh.write(data)


def _write_public(path: Path, data: bytes) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
    with os.fdopen(fd, "wb") as fh:
        fh.write(data)


def create_starter_keys(folder: Path, *, org_name: str, years: int = 5) -> StarterKeys:
    """A certificate authority of ``org_name`` and a report-signing certificate it issued.

    Writes ``ca.pem`` (to give auditors), ``ca.key``, ``signing.pem`` (certificate, then the
    CA's) and ``signing.key`` into ``folder``; keys readable by their owner only. Refuses to
    replace any existing file. ECDSA P-256 keys, SHA-256.
    """
    names = ("ca.pem", "ca.key", "signing.pem", "signing.key")
    paths = [folder / n for n in names]
    existing = [str(p) for p in paths if os.path.lexists(p)]
    if existing:
        raise ConfigError(
            f"{', '.join(existing)} already exist{'s' if len(existing) == 1 else ''}: keys are "
            "never replaced (reports signed with them must stay verifiable). Choose another "
            "folder with --dir"
        )
    try:
        folder.mkdir(parents=True, exist_ok=True, mode=0o700)
    except OSError as exc:
        raise ConfigError(f"cannot create {folder}: {exc.strerror}") from exc
    now = dt.datetime.now(dt.UTC).replace(microsecond=0) - dt.timedelta(minutes=5)
    until = now + dt.timedelta(days=365 * years)
    org = org_name.strip() or "meetaudit"

    def name(cn: str) -> x509.Name:
        return x509.Name(
            [
                x509.NameAttribute(NameOID.ORGANIZATION_NAME, org[:64]),
                x509.NameAttribute(NameOID.COMMON_NAME, cn),
            ]
        )

    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = name("meetaudit report signing CA")
    ca = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now)
        .not_valid_after(until)
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(False, False, False, False, False, True, True, False, False),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), False)
        .sign(ca_key, hashes.SHA256())
    )
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (
        x509.CertificateBuilder()
        .subject_name(name("meetaudit report signing"))
        .issuer_name(ca_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now)
        .not_valid_after(until)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            # digitalSignature + nonRepudiation (contentCommitment): document signing.
            x509.KeyUsage(True, True, False, False, False, False, False, False, False),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), False
        )
        .sign(ca_key, hashes.SHA256())
    )
    pem_enc = serialization.Encoding.PEM

    def private(k: ec.EllipticCurvePrivateKey) -> bytes:
        return k.private_bytes(
            pem_enc, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )

    ca_pem, cert_pem = ca.public_bytes(pem_enc), cert.public_bytes(pem_enc)
    _write_public(paths[0], ca_pem)
    _write_private(paths[1], private(ca_key))
    _write_public(paths[2], cert_pem + ca_pem)
    _write_private(paths[3], private(key))
    ca_asn1, cert_asn1 = load_certs(ca_pem)[0], load_certs(cert_pem)[0]
    return StarterKeys(
        folder=folder,
        ca_cert=paths[0],
        ca_key=paths[1],
        signing_cert=paths[2],
        signing_key=paths[3],
        ca_fingerprint=cert_fingerprint(ca_asn1),
        ca_subject=str(ca_asn1.subject.human_friendly),
        signing_fingerprint=cert_fingerprint(cert_asn1),
        signing_subject=str(cert_asn1.subject.human_friendly),
    )


# -- legacy: Ed25519 .sig files of earlier versions (checked, never written) ---------------------


def legacy_public_key(data: bytes) -> Ed25519PublicKey | None:
    """The Ed25519 public key in PEM ``data`` (public, or private: its public half), if any."""
    try:
        if b"PRIVATE KEY" in data:
            key: Any = serialization.load_pem_private_key(data, password=None)
            key = key.public_key() if isinstance(key, Ed25519PrivateKey) else None
        else:
            key = serialization.load_pem_public_key(data)
    except (ValueError, TypeError):
        return None
    return key if isinstance(key, Ed25519PublicKey) else None


def legacy_fingerprint(key: Ed25519PublicKey) -> str:
    """``SHA256:<base64>`` of the raw public key, as OpenSSH prints key fingerprints."""
    raw = key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return "SHA256:" + base64.b64encode(hashlib.sha256(raw).digest()).decode().rstrip("=")


def legacy_verify(key: Ed25519PublicKey, data: bytes, signature: bytes) -> bool:
    """True when ``signature`` is a valid Ed25519 signature of ``data`` by ``key``."""
    try:
        key.verify(signature, data)
    except InvalidSignature:
        return False
    return True
