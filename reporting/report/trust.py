"""Checking signatures against what the verifier pins, never against what a file or ledger says.

The verifier names the certificates it trusts (``trusted_certs``: the organisation's signing
certificate or the CA that issued it; ``trusted_tsa_certs``: the time-stamping authority's
root). A signature counts only when its certificate chains to one of them; a certificate found
in the signed file or recorded in the ledger is just a claim. No system trust store is used and
nothing is fetched from the network, so verification works offline and gives the same answer
everywhere.

:func:`check_pdf` validates a PDF's embedded signature (pyHanko), :func:`check_detached` a
``.p7s`` beside a CSV or JSON file; both give a :class:`SignatureCheck`.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import io
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from asn1crypto import cms
from asn1crypto import x509 as asn1_x509

from reporting.errors import ConfigError
from reporting.report.signing import (
    cert_fingerprint,
    describe_cert,
    legacy_public_key,
    load_certs,
)

if TYPE_CHECKING:
    from reporting.config import Settings

_CERT_SUFFIXES = (".pem", ".crt", ".cer", ".der")

# What SignatureCheck.state means, in an auditor's words.
VALID = "valid"  # intact, chains to a pinned certificate
UNTRUSTED = "NOT TRUSTED"  # intact, but its certificate chains to no pinned certificate
UNCHECKED = "not checked against a trusted certificate"  # nothing pinned
INVALID = "INVALID"  # the file or the signature was changed
ABSENT = "absent"


@dataclass(frozen=True)
class Anchor:
    """A certificate the verifier pins, and the file it came from."""

    cert: asn1_x509.Certificate
    source: Path

    def describe(self) -> str:
        """``subject (SHA-256 …), from FILE``."""
        return f"{describe_cert(self.cert)}, pinned in {self.source}"


@dataclass(frozen=True)
class Pins:
    """What the verifier trusts: signing certificates (or their CAs), TSA roots, and Ed25519
    public keys for the ``.sig`` files of earlier versions."""

    signers: list[Anchor] = field(default_factory=list)
    tsas: list[Anchor] = field(default_factory=list)
    legacy_keys: list[tuple[Any, Path]] = field(default_factory=list)


def pins_from(settings: Settings) -> Pins:
    """The pins of ``trusted_certs`` and ``trusted_tsa_certs``."""
    legacy: list[tuple[Any, Path]] = []
    signers = load_anchors(settings.trusted_certs, setting="TRUSTED_CERTS", legacy=legacy)
    tsas = load_anchors(settings.trusted_tsa_certs, setting="TRUSTED_TSA_CERTS")
    return Pins(signers, tsas, legacy)


def load_anchors(
    paths: list[str], *, setting: str, legacy: list[tuple[Any, Path]] | None = None
) -> list[Anchor]:
    """The certificates in ``paths`` (files, or folders of .pem/.crt/.cer/.der files).

    ``legacy``: where to put Ed25519 public keys found among them (else they are refused)."""
    anchors: list[Anchor] = []
    for text in paths:
        path = Path(text).expanduser()
        files = (
            sorted(p for p in path.iterdir() if p.suffix.lower() in _CERT_SUFFIXES)
            if path.is_dir()
            else [path]
        )
        for file in files:
            try:
                data = file.read_bytes()
                key = legacy_public_key(data) if legacy is not None else None
                if key is not None and legacy is not None:
                    legacy.append((key, file))
                    continue
                certs = load_certs(data)
            except OSError as exc:
                raise ConfigError(
                    f"cannot read the pinned certificate {file} ({setting}): {exc.strerror}"
                ) from exc
            except ValueError:
                raise ConfigError(
                    f"{file} ({setting}) is not a certificate (PEM or DER); give the "
                    "certificate file itself, e.g. the ca.pem `meetaudit keys init` printed"
                ) from None
            anchors.extend(Anchor(c, file) for c in certs)
    return anchors


@dataclass
class SignatureCheck:
    """What checking one signature found."""

    state: str
    signer: str | None = None  # subject (SHA-256 …) of the signing certificate, as claimed
    anchor: str | None = None  # the pinned certificate it chains to
    signed_at: dt.datetime | None = None  # the time the signer's host claims
    timestamp: dt.datetime | None = None  # the TSA's time
    timestamp_state: str = ABSENT  # like state, for the timestamp
    tsa: str | None = None
    tsa_anchor: str | None = None
    whole_file: bool = True  # a PDF: the signature covers every byte of the file
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """Valid, trusted, covering the whole file, and any timestamp valid and trusted."""
        return (
            self.state == VALID
            and self.whole_file
            and self.timestamp_state in (VALID, ABSENT)
            and not self.problems
        )

    def lines(self) -> list[str]:
        """The signature's facts, one line each (indented by the caller)."""
        out = [f"signature: {self.state}" + (f", signed by {self.signer}" if self.signer else "")]
        if self.anchor:
            out.append(f"  trusted through {self.anchor}")
        if self.timestamp_state != ABSENT:
            when = f" {self.timestamp:%Y-%m-%d %H:%M:%S} UTC" if self.timestamp else ""
            out.append(
                f"timestamp: {self.timestamp_state}{when}" + (f" by {self.tsa}" if self.tsa else "")
            )
            if self.tsa_anchor:
                out.append(f"  trusted through {self.tsa_anchor}")
        elif self.state != ABSENT:
            out.append("timestamp: none (the signing time is only the report host's clock)")
        return out


def _context(anchors: list[Anchor], others: list[asn1_x509.Certificate]) -> Any:
    from pyhanko_certvalidator import ValidationContext

    # pyHanko logs every certificate it cannot chain, with a traceback; the verdict says it.
    for name in ("pyhanko", "pyhanko_certvalidator"):
        log = logging.getLogger(name)
        if not log.handlers:
            log.addHandler(logging.NullHandler())
            log.propagate = False

    # trust_roots is always given (an empty list when nothing is pinned): never the system's.
    return ValidationContext(
        trust_roots=[a.cert for a in anchors],
        other_certs=others,
        allow_fetching=False,
        revocation_mode="soft-fail",
    )


def _anchor_of(path: Any, anchors: list[Anchor]) -> str | None:
    """The pinned anchor a validation path starts at, described."""
    if path is None:
        return None
    try:
        root = path[0]
    except (IndexError, TypeError):
        root = None
    if root is None:
        return None
    fp = cert_fingerprint(root) if isinstance(root, asn1_x509.Certificate) else None
    for a in anchors:
        if cert_fingerprint(a.cert) == fp:
            return a.describe()
    return describe_cert(root) if isinstance(root, asn1_x509.Certificate) else None


def _judge(status: Any, check: SignatureCheck, signers: list[Anchor], tsas: list[Anchor]) -> None:
    """Fill ``check`` from a pyHanko signature status."""
    cert = status.signing_cert
    check.signer = describe_cert(cert) if cert is not None else None
    check.signed_at = getattr(status, "signer_reported_dt", None)
    if not (status.intact and status.valid):
        check.state = INVALID
        check.problems.append(
            "the signature does not match the file: the file was changed after it was signed "
            "(or the signature was)"
        )
    elif not signers:
        check.state = UNCHECKED
        check.problems.append(
            "no trusted certificate is configured, so who signed cannot be confirmed: pin the "
            "organisation's signing certificate or its CA (TRUSTED_CERTS, e.g. the ca.pem that "
            "`meetaudit keys init` printed), obtained from the organisation, not from the file"
        )
    elif not status.trusted:
        check.state = UNTRUSTED
        pinned = "; ".join(a.describe() for a in signers)
        check.problems.append(
            f"the file is signed by {check.signer}, which is not a certificate you trust (pinned: "
            f"{pinned}). Whoever signed it is not the organisation's signing certificate: treat "
            "the file as forged until the organisation confirms that certificate"
        )
    else:
        check.state = VALID
        check.anchor = _anchor_of(status.validation_path, signers)
    ts = getattr(status, "timestamp_validity", None)
    if ts is None:
        return
    check.timestamp = ts.timestamp
    verdict = _timestamp_verdict(
        ts, tsas, altered="the timestamp does not match the signature: it was altered"
    )
    check.timestamp_state, check.tsa, check.tsa_anchor = verdict.state, verdict.tsa, verdict.anchor
    if verdict.problem:
        check.problems.append(verdict.problem)


def _timestamp_verdict(status: Any, tsas: list[Anchor], *, altered: str) -> TokenCheck:
    """A timestamp's verdict from its pyHanko status, against the pinned TSA roots: the one
    rule for a signature's timestamp and a ledger head's. ``altered``: what to say when the
    token does not match what it stamps."""
    cert = status.signing_cert
    check = TokenCheck(UNCHECKED, tsa=describe_cert(cert) if cert is not None else None,
                       at=status.timestamp)  # fmt: skip
    if not (status.intact and status.valid):
        check.state, check.problem = INVALID, altered
    elif not tsas:
        check.problem = (
            "no trusted time-stamping authority is configured, so the time it states cannot be "
            "confirmed: pin the TSA's root certificate (TRUSTED_TSA_CERTS)"
        )
    elif not status.trusted:
        check.state = UNTRUSTED
        check.problem = (
            f"the timestamp is from {check.tsa}, which is not a time-stamping authority you "
            "trust (TRUSTED_TSA_CERTS)"
        )
    else:
        check.state = VALID
        check.anchor = _anchor_of(status.validation_path, tsas)
    return check


def check_pdf(data: bytes, signers: list[Anchor], tsas: list[Anchor]) -> SignatureCheck:
    """The PDF signature of ``data`` against the pinned ``signers`` and ``tsas``."""
    from pyhanko.pdf_utils.reader import PdfFileReader
    from pyhanko.sign.validation import async_validate_pdf_signature
    from pyhanko.sign.validation.errors import SignatureValidationError
    from pyhanko.sign.validation.status import SignatureCoverageLevel

    try:
        reader = PdfFileReader(io.BytesIO(data), strict=False)
        embedded = reader.embedded_signatures
    except Exception:  # noqa: BLE001 - a PDF pyHanko cannot read has no checkable signature
        return SignatureCheck(
            state=INVALID, problems=["the PDF's structure cannot be read to find its signature"]
        )
    if not embedded:
        return SignatureCheck(state=ABSENT)
    check = SignatureCheck(state=INVALID)
    if len(embedded) > 1:
        check.problems.append(
            f"the PDF carries {len(embedded)} signatures; a meetaudit report carries one"
        )
    sig = embedded[-1]
    certs = list(sig.signed_data["certificates"] or [])
    others = [c.chosen for c in certs if isinstance(c.chosen, asn1_x509.Certificate)]
    try:
        status = asyncio.run(
            async_validate_pdf_signature(
                sig,
                signer_validation_context=_context(signers, others),
                ts_validation_context=_context(tsas, []),
                skip_diff=True,
            )
        )
    except (SignatureValidationError, ValueError) as exc:
        check.problems.append(f"the signature cannot be validated: {exc}")
        return check
    _judge(status, check, signers, tsas)
    check.whole_file = status.coverage == SignatureCoverageLevel.ENTIRE_FILE
    if not check.whole_file:
        check.problems.append(
            "the signature does not cover the whole file: something was added to the PDF after "
            "it was signed"
        )
    return check


def check_detached(
    data: bytes, p7s: bytes, signers: list[Anchor], tsas: list[Anchor]
) -> SignatureCheck:
    """The detached CMS signature ``p7s`` of ``data`` against the pinned anchors."""
    from pyhanko.sign.validation.errors import SignatureValidationError
    from pyhanko.sign.validation.generic_cms import async_validate_detached_cms

    try:
        info = cms.ContentInfo.load(p7s)
        signed = info["content"]
        certs = list(signed["certificates"] or [])
    except (ValueError, TypeError, KeyError):
        return SignatureCheck(
            state=INVALID, problems=["the .p7s file is not a CMS signature (it was damaged)"]
        )
    others = [c.chosen for c in certs if isinstance(c.chosen, asn1_x509.Certificate)]
    check = SignatureCheck(state=INVALID)
    try:
        status = asyncio.run(
            async_validate_detached_cms(
                data,
                signed,
                signer_validation_context=_context(signers, others),
                ts_validation_context=_context(tsas, []),
            )
        )
    except (SignatureValidationError, ValueError) as exc:
        check.problems.append(f"the signature cannot be validated: {exc}")
        return check
    _judge(status, check, signers, tsas)
    return check


@dataclass
class TokenCheck:
    """What checking one RFC 3161 timestamp token (a ledger head's) against the pinned TSA roots
    found: ``state`` as for signatures; ``anchor`` the pinned root it chains to."""

    state: str
    tsa: str | None = None
    anchor: str | None = None
    at: dt.datetime | None = None
    problem: str | None = None


def check_timestamp_token(token: bytes, digest: bytes, tsas: list[Anchor]) -> TokenCheck:
    """The timestamp token ``token`` (DER) over the SHA-256 ``digest``, against ``tsas``: the
    token must be over that digest, intact, and signed by a TSA certificate chaining to a pinned
    root (with the timeStamping key usage); nothing else makes its time trusted."""
    from pyhanko.sign.validation.errors import SignatureValidationError
    from pyhanko.sign.validation.generic_cms import validate_tst_signed_data
    from pyhanko.sign.validation.status import TimestampSignatureStatus

    try:
        signed = cms.ContentInfo.load(token)["content"]
        others = [
            c.chosen
            for c in (signed["certificates"] or [])
            if isinstance(c.chosen, asn1_x509.Certificate)
        ]
        kwargs = asyncio.run(
            validate_tst_signed_data(signed, _context(tsas, others), lambda _algo: digest)
        )
        status = TimestampSignatureStatus(**kwargs)
    except (SignatureValidationError, ValueError, TypeError, KeyError) as exc:
        return TokenCheck(INVALID, problem=f"it cannot be validated ({exc})")
    return _timestamp_verdict(
        status, tsas, altered="it is not over this entry's SHA-256, or it was altered"
    )
