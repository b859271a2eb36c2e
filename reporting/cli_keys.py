"""``meetaudit keys``: the certificate that signs reports.

``keys init`` creates a small certificate authority and a report-signing certificate for a
start, and prints what to configure and what to give auditors. An organisation with its own
PKI issues the signing certificate instead and sets SIGNING_CERT_FILE and SIGNING_KEY_FILE.
"""

from __future__ import annotations

from pathlib import Path

import click

from reporting.cli import State, handle_errors

pass_state = click.make_pass_decorator(State)


@click.group("keys")
def keys_group() -> None:
    """The certificate that signs reports, and what auditors pin to check it."""


@keys_group.command("init")
@click.option(
    "--dir",
    "folder",
    type=click.Path(file_okay=False, path_type=Path),
    help="Folder for the keys (default: keys/ in the data_dir setting). Existing keys are "
    "never replaced.",
)
@click.option(
    "--years", default=5, show_default=True, type=click.IntRange(1, 30),
    help="How long the certificates are valid.",
)  # fmt: skip
@pass_state
@handle_errors
def keys_init(state: State, folder: Path | None, years: int) -> None:
    """Create a certificate authority and a report-signing certificate for a start.

    Writes ca.pem (give it to auditors: they pin it), ca.key (keep it offline: it can issue
    signing certificates), signing.pem and signing.key (the report host signs with them).
    Private keys are readable by their owner only.
    """
    from reporting.report.signing import create_starter_keys

    settings = state.settings()
    target = folder or settings.data_dir / "keys"
    made = create_starter_keys(target, org_name=settings.org_name, years=years)
    click.echo(f"Created in {made.folder}:")
    click.echo(f"  {made.ca_cert}       certificate authority (CA): give this to auditors")
    click.echo(f"  {made.ca_key}       the CA's private key: move it offline, off the report host")
    click.echo(f"  {made.signing_cert}  report-signing certificate (issued by the CA)")
    click.echo(f"  {made.signing_key}  its private key (owner-only; the report host signs with it)")
    click.echo("")
    click.echo("Sign every report with it (environment or settings file):")
    click.echo(f"  MEETAUDIT_SIGNING_CERT_FILE={made.signing_cert}")
    click.echo(f"  MEETAUDIT_SIGNING_KEY_FILE={made.signing_key}")
    click.echo("")
    click.echo("Give auditors ca.pem through a channel they trust, with its fingerprint:")
    click.echo(f"  {made.ca_subject}")
    click.echo(f"  SHA-256 {made.ca_fingerprint}")
    click.echo(
        "They check it with `openssl x509 -noout -fingerprint -sha256 -in ca.pem` and set "
        "MEETAUDIT_TRUSTED_CERTS=ca.pem when they verify."
    )
    click.echo(f"Signing certificate: {made.signing_subject}, SHA-256 {made.signing_fingerprint}")
