"""A one-document PDF that is not a period's report, recorded like one: sign, ledger, witness.

A case dossier (:mod:`reporting.report.dossier`) and a sample (:mod:`reporting.report.sample`)
are each rendered as one document by :func:`~reporting.report.render.write_document` and then
handled exactly as a report's PDF is: signed in the file (PAdES) when a signing certificate is
configured, recorded in the report ledger with its own ``kind`` under the first free file name
(never over an existing file), and the new ledger head published to the witness — so
``meetaudit verify`` checks it as it checks a report. :func:`publish_document` is that step,
written once for both.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from reporting import __version__
from reporting.config import Settings
from reporting.db.engine import Database
from reporting.report import signing, timestamps, witness
from reporting.report.api import _OUTPUTS, _attachment_hashes, _publish, _sha256_file, _sign


@dataclass
class PublishedDocument:
    """Where a document was written and how it was recorded."""

    path: Path
    sha256: str
    bytes: int
    ledger_seq: int
    signed: bool
    unsigned_sha256: str | None  # a signed file: its SHA-256 before the signature
    ledger_head: tuple[int, str]
    witness: str
    witness_problems: list[str] = field(default_factory=list)


def publish_document(
    settings: Settings,
    db: Database,
    temp: Path,
    names: Iterator[Path],
    *,
    document_id: str,
    kind: str,
    generated_at: dt.datetime,
    identity: signing.SigningIdentity | None,
    key_text: str | None,
    pages: int,
    parameters: dict[str, Any],
    fields: dict[str, Any],
) -> PublishedDocument:
    """Sign the rendered ``temp`` (when ``identity``), record it in the ledger as ``kind`` under
    the first free name of ``names``, and publish the new head; see the module docstring.

    ``parameters`` are the document's own (its case, its sample…); the format, signing key, page
    count, SHA-256 before signing, attachment hashes and signature are added here. ``fields``
    are the ledger fields only the caller knows: period, harvest runs, control totals,
    completeness. Database and file errors propagate for the caller to word (and ``temp`` stays
    the caller's to discard).
    """
    unsigned, _ = _sha256_file(temp)
    recorded: dict[str, Any] = {
        **parameters,
        "formats": ["pdf"],
        "signing_key": key_text,
        "pages": pages,
        # The unsigned render, as for a report.
        "unsigned_sha256": unsigned,
        **_attachment_hashes(temp),
    }
    if identity is not None:
        recorded["signature"] = _sign(
            identity, timestamps.timestamper(settings), _OUTPUTS["pdf"][0], temp, None, document_id
        )
    sha, size = _sha256_file(temp)
    entry = {
        "report_id": document_id,
        "kind": kind,
        "generated_at": generated_at,
        "generated_by": settings.operator,
        "meetaudit_version": __version__,
        "timezone": settings.timezone,
        "format": "pdf",
        "parameters": recorded,
        "file_sha256": sha,
        "file_bytes": size,
        **fields,
    }
    row, path = _publish(db, entry, temp, None, names)
    witness_ = witness.Witness.from_settings(settings)
    problems = witness_.publish(row.seq, row.entry_sha256, document_id, generated_at)
    return PublishedDocument(
        path=path, sha256=sha, bytes=size, ledger_seq=row.seq, signed=identity is not None,
        unsigned_sha256=unsigned if unsigned != sha else None,
        ledger_head=(row.seq, row.entry_sha256), witness=witness_.describe(),
        witness_problems=problems,
    )  # fmt: skip
