"""Reports: the monthly audit PDF/A, its CSV and JSON exports, the ledger, and verification.

Flow: :func:`build_context` reads one period into plain data (``context``), the templates under
``templates/`` format it (``templating``, ``sections``), WeasyPrint renders bounded parts that
``assemble`` joins into one PDF/A-3b (``render``), ``exports`` writes CSV and JSON, ``ledger``
chains every file's SHA-256, ``signing`` writes detached Ed25519 signatures. The functions the
CLI calls are in ``api``: :func:`generate_report`, :func:`verify_file`, :func:`verify_ledger`.
"""

from reporting.report.api import (
    FORMATS,
    LedgerCheck,
    ReportFile,
    ReportResult,
    VerifyResult,
    generate_report,
    verify_file,
    verify_ledger,
)
from reporting.report.classify import classify, mask_phone
from reporting.report.context import ReportContext, ReportParameters, build_context
from reporting.report.render import ReportMeta, render_pdf, write_pdf

__all__ = [
    "FORMATS",
    "LedgerCheck",
    "ReportContext",
    "ReportFile",
    "ReportMeta",
    "ReportParameters",
    "ReportResult",
    "VerifyResult",
    "build_context",
    "classify",
    "generate_report",
    "mask_phone",
    "render_pdf",
    "verify_file",
    "verify_ledger",
    "write_pdf",
]
