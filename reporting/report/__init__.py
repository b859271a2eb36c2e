"""Reports: the monthly audit PDF/A, its CSV and JSON exports, the ledger, and verification.

Flow: :func:`build_context` reads one period into plain data (``context``), the templates under
``templates/`` format it (``templating``, ``sections``), WeasyPrint renders bounded parts that
``assemble`` joins into one PDF/A-3a (``render``), ``exports`` writes CSV and JSON, ``ledger``
chains every file's SHA-256, ``signing`` writes detached Ed25519 signatures. The functions the
CLI calls are :func:`generate_report` (``api``), :func:`verify_file` and :func:`verify_ledger`
(``verify``).
"""

from typing import Any

# Names are imported when first used (PEP 562), so that importing one part of the package (the
# classification rules, for `meetaudit investigate`) does not load WeasyPrint and pikepdf.
_WHERE = {
    "FORMATS": "api", "ReportFile": "api", "ReportResult": "api", "generate_report": "api",
    "LedgerCheck": "verify", "VerifyResult": "verify", "verify_file": "verify",
    "verify_ledger": "verify",
    "classify": "classify", "mask_phone": "classify",
    "ReportContext": "context", "ReportParameters": "context", "build_context": "context",
    "ReportMeta": "render", "render_pdf": "render", "write_pdf": "render",
}  # fmt: skip


def __getattr__(name: str) -> Any:
    if name not in _WHERE:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    import importlib

    return getattr(importlib.import_module(f"{__name__}.{_WHERE[name]}"), name)


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
