"""The console in a real browser: Chromium driven by Playwright against a served console.

Debian's ``chromium`` is used (``executable_path``); Playwright's own browser download is not
reachable here. ``.ci/run`` installs it; elsewhere the test is skipped when it is missing, but
never under CI. Screenshots of every page visited are written to the test's folder.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import uvicorn

from reporting.config import Settings
from reporting.db.engine import Database
from reporting.report import generate_report
from reporting.web import accounts
from reporting.web.app import create_app
from tests.report.conftest import OCT, build_known_month
from tests.web.conftest import PASSWORD

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
pytestmark = pytest.mark.slow


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def served(web_settings: Settings, db: Database) -> Iterator[tuple[str, object]]:
    """The console on a loopback port, with a month of records and one CSV report."""
    if not Path(CHROMIUM).exists():
        if os.environ.get("CI"):
            pytest.fail("chromium is missing: .ci/run installs Debian's chromium package")
        pytest.skip("Debian's chromium is not installed")
    build_known_month(db)
    report = generate_report(web_settings, db, OCT, label="2026-10", formats=("csv",))
    with db.session() as session:
        for role in ("officer", "auditor", "investigator"):
            accounts.add_user(session, role, role, PASSWORD, by="test")
    port = _free_port()
    server = uvicorn.Server(
        uvicorn.Config(
            create_app(web_settings, db), host="127.0.0.1", port=port, log_level="warning"
        )
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        assert time.monotonic() < deadline, "the console did not start"
        time.sleep(0.05)
    yield f"http://127.0.0.1:{port}", report
    server.should_exit = True
    thread.join(timeout=10)


def test_the_console_in_chromium(served: tuple[str, object], tmp_path: Path) -> None:
    from playwright.sync_api import expect, sync_playwright

    base, report = served
    entry = report.files[0]  # type: ignore[attr-defined]
    shots = tmp_path / "screenshots"
    shots.mkdir()

    def shot(page: object, name: str) -> None:
        page.screenshot(path=str(shots / f"{name}.png"), full_page=True)  # type: ignore[attr-defined]

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        try:
            # An auditor: signs in, sees the overview, downloads a report, uploads a tampered one.
            context = browser.new_context(accept_downloads=True)
            page = context.new_page()
            page.goto(base + "/reports")
            expect(page).to_have_url(f"{base}/login?next=/reports")
            shot(page, "01-sign-in")
            page.fill("input[name=name]", "auditor")
            page.fill("input[name=password]", PASSWORD)
            page.click("button[type=submit]")
            expect(page.locator("h1")).to_have_text("Reports: the ledger")
            expect(page.locator("text=Ledger intact")).to_be_visible()
            shot(page, "02-reports")
            with page.expect_download() as info:
                page.click(f"a[href='/reports/{entry.report_id}/file']")
            downloaded = Path(info.value.path())
            assert hashlib.sha256(downloaded.read_bytes()).hexdigest() == entry.sha256
            page.goto(base + "/")
            expect(page.locator("h1")).to_have_text("Overview")
            shot(page, "03-overview")
            page.goto(base + "/verify")
            tampered = downloaded.read_bytes().replace(b"Acme", b"Acne", 1)
            page.set_input_files("input[name=file]", files=[
                {"name": "october.csv", "mimeType": "text/csv", "buffer": tampered}])  # fmt: skip
            page.click("form[action='/verify'] button[type=submit]")
            expect(page.locator(".verdict")).to_have_text("FAILED")
            shot(page, "04-verify-tampered")
            page.goto(base + "/gaps?month=2026-10")
            shot(page, "05-gaps")
            refused = page.goto(base + "/investigate")
            assert refused is not None and refused.status == 403
            expect(page.locator("h1")).to_have_text("Not allowed")
            shot(page, "06-auditor-refused-search")
            page.click("text=Sign out")
            expect(page).to_have_url(f"{base}/login")
            page.goto(base + "/")
            expect(page).to_have_url(f"{base}/login?next=/")
            context.close()

            # An investigator: opens a case, searches in it, compiles its dossier; a form
            # without its token fails.
            context = browser.new_context(accept_downloads=True)
            page = context.new_page()
            page.goto(base + "/cases")
            page.fill("input[name=name]", "investigator")
            page.fill("input[name=password]", PASSWORD)
            page.click("button[type=submit]")
            page.fill("input[name=ref]", "INV-2026-001")
            page.fill("input[name=purpose]", "Supplier contacts in October")
            page.click("text=Open the case")
            expect(page.locator("p.ok")).to_contain_text("Case INV-2026-001 opened")
            shot(page, "07-case-opened")
            page.goto(base + "/investigate")
            page.select_option("select[name=question]", "orgs")
            page.fill("input[name=month]", "2026-10")
            page.fill("input[name=case]", "INV-2026-001")
            page.click("form[action='/investigate'] button[type=submit]")
            expect(page.locator("h2")).to_contain_text("Outside organisations")
            assert page.locator("tbody tr").count() > 0
            shot(page, "08-investigation")
            # The case's dossier: a background job this console's worker runs; then its PDF.
            page.goto(base + "/cases")
            page.click("form[action='/cases/dossier'] button[type=submit]")
            expect(page.locator("h1")).to_have_text("Dossier of case INV-2026-001")
            expect(page.locator("p.ok")).to_contain_text("Done: dossier DOS-INV-2026-001-",
                                                         timeout=60_000)  # fmt: skip
            shot(page, "09-dossier")
            with page.expect_download() as info:
                page.click("a[href$='/file']")
            assert Path(info.value.path()).read_bytes().startswith(b"%PDF")
            page.goto(base + "/cases")
            page.evaluate(
                "document.querySelector(\"form[action='/cases'] input[name=csrf_token]\").remove()"
            )
            page.fill("input[name=ref]", "INV-2026-002")
            page.fill("input[name=purpose]", "no token")
            page.click("text=Open the case")
            expect(page.locator("h1")).to_have_text("Form refused")
            shot(page, "10-form-without-token")
            context.close()
        finally:
            browser.close()
    assert len(list(shots.iterdir())) == 10
    keep = os.environ.get("MEETAUDIT_KEEP_SCREENSHOTS")
    if keep:
        shutil.copytree(shots, keep, dirs_exist_ok=True)
