"""Reports: the monthly audit PDF/A, its CSV and JSON exports, the ledger, and verification.

Flow: :func:`build_context` reads one period into plain data (``context``), the templates under
``templates/`` format it (``templating``, ``sections``), WeasyPrint renders bounded parts that
``assemble`` joins into one PDF/A-3b (``render``), ``exports`` writes CSV and JSON, ``ledger``
chains every file's SHA-256, ``signing`` writes detached Ed25519 signatures. The functions the
CLI calls are :func:`generate_report` (``api``), :func:`verify_file` and :func:`verify_ledger`
(``verify``).
"""

from reporting.report.api import FORMATS, ReportFile, ReportResult, generate_report
from reporting.report.classify import classify, mask_phone
from reporting.report.context import ReportContext, ReportParameters, build_context
from reporting.report.render import ReportMeta, render_pdf, write_pdf
from reporting.report.verify import LedgerCheck, VerifyResult, verify_file, verify_ledger

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
