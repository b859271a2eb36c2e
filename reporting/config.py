"""The one settings object: environment variables (``MEETAUDIT_*``) over an optional TOML file.

Built once, by the CLI, and handed down; nothing reads the environment at import time.
Secrets are ``SecretStr`` so that printing or logging a ``Settings`` never shows them, and
:func:`redact_url` removes the password from any database URL that is shown to a person.
"""

from __future__ import annotations

import difflib
import getpass
import os
import re
import socket
import sys
import tomllib
from pathlib import Path
from typing import Annotated, Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import platformdirs
from pydantic import Field, SecretStr, ValidationError, field_validator
from pydantic_settings import (
    BaseSettings,
    NoDecode,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
)
from sqlalchemy.engine import make_url

from reporting.errors import ConfigError

DEFAULT_API_URL = "https://webexapis.com/v1"
# Tokens people paste from examples; refusing them early beats a 401 halfway through a month.
PLACEHOLDER_SECRETS = {"changeme", "change-me", "your-token", "token", "xxx", "<token>", "todo"}


def _default_operator() -> str:
    try:
        user = getpass.getuser()
    except (KeyError, OSError):
        user = "unknown"
    return f"{user}@{socket.gethostname()}"


CommaList = Annotated[list[str], NoDecode]


class Settings(BaseSettings):
    """Everything meetaudit can be told, with the defaults a first run needs."""

    model_config = SettingsConfigDict(
        env_prefix="MEETAUDIT_", extra="forbid", validate_default=True
    )

    # Where the records live. Unset: an embedded PostgreSQL under ``data_dir``.
    database_url: SecretStr | None = None
    data_dir: Path = Field(default_factory=lambda: platformdirs.user_data_path("meetaudit"))
    embedded_database: str = Field(default="meetaudit", pattern=r"^[a-z_][a-z0-9_]{0,62}$")

    # The Webex API and how to authenticate to it.
    webex_base_url: str = DEFAULT_API_URL
    webex_token: SecretStr | None = None
    webex_token_file: Path | None = None
    webex_client_id: str | None = None
    webex_client_secret: SecretStr | None = None
    webex_refresh_token: SecretStr | None = None
    webex_token_url: str | None = None
    webex_site_urls: CommaList = Field(default_factory=list)
    webex_host_emails: CommaList = Field(default_factory=list)

    # Who "we" are, to tell internal participants from external ones.
    org_name: str = "Your organisation"
    org_domains: CommaList = Field(default_factory=list)
    org_ids: CommaList = Field(default_factory=list)

    # Harvest behaviour.
    concurrency: int = Field(default=8, ge=1, le=64)
    page_size: int = Field(default=100, ge=1, le=100)
    settle_minutes: int = Field(default=15, ge=0)
    request_timeout: float = Field(default=30.0, gt=0)
    max_retries: int = Field(default=6, ge=0, le=20)
    window_cap: int = Field(default=10_000, ge=1)
    # Fetch the optional attendee report (needs an admin report scope; a 403 just skips it).
    harvest_attendee_reports: bool = True

    # Reports.
    timezone: str = "UTC"
    output_dir: Path = Path("reports")
    operator: str = Field(default_factory=_default_operator)
    # Investigations: every question must name an open case (``meetaudit case open``).
    require_case: bool = True
    min_attendance_minutes: float = Field(default=2.0, ge=0)
    show_phone_numbers: bool = False
    # Signing: an X.509 certificate and its private key (PEM), or one PKCS#12 file holding both;
    # `meetaudit keys init` creates a starter pair. The key's password, if any, as a secret.
    signing_cert_file: Path | None = None
    signing_key_file: Path | None = None
    signing_p12_file: Path | None = None
    signing_key_password: SecretStr | None = None
    signing_key_password_file: Path | None = None
    # An RFC 3161 time-stamping authority (e.g. an internal TSA): it stamps every signature and
    # each new ledger head.
    tsa_url: str | None = None
    tsa_timeout: float = Field(default=10.0, gt=0)

    # Verification: what the verifier trusts, never what the ledger says. PEM/DER certificate
    # files or folders of them, comma separated.
    trusted_certs: CommaList = Field(default_factory=list)
    trusted_tsa_certs: CommaList = Field(default_factory=list)

    # Where each new ledger head is also published, outside the database (see the README).
    # A file (one JSON line per head) or an existing folder (one file per head, for WORM storage);
    # unset: ``<data_dir>/ledger-witness/<database>.jsonl``.
    ledger_witness: Path | None = None
    # Also send each head to syslog: "local" (the system log) or HOST:PORT (UDP); unset: no.
    ledger_witness_syslog: str | None = None

    # Readable names for outside orgIds and email domains (reporting/report/registry.py).
    org_registry_file: Path | None = None

    # The web console's single sign-on with OpenID Connect; unset: local accounts only.
    oidc_issuer: str | None = None
    oidc_client_id: str | None = None
    oidc_client_secret: SecretStr | None = None
    oidc_redirect_url: str | None = None
    oidc_groups_claim: str = "groups"
    oidc_role_groups: CommaList = Field(default_factory=list)

    @field_validator(
        "webex_site_urls",
        "webex_host_emails",
        "org_domains",
        "org_ids",
        "oidc_role_groups",
        "trusted_certs",
        "trusted_tsa_certs",
        mode="before",
    )
    @classmethod
    def _split_commas(cls, value: Any) -> Any:
        if isinstance(value, str):
            return [part.strip() for part in value.split(",") if part.strip()]
        return value

    @field_validator("org_domains", "webex_host_emails")
    @classmethod
    def _lower(cls, value: list[str]) -> list[str]:
        return [v.strip().lower().lstrip("@") for v in value]

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise ValueError(
                f"unknown time zone {value!r} (use an IANA name such as Europe/Zurich)"
            ) from exc
        return value

    @field_validator("tsa_url")
    @classmethod
    def _tsa_url(cls, value: str | None) -> str | None:
        if value is not None and not value.startswith(("https://", "http://")):
            raise ValueError("must be the time-stamping authority's http:// or https:// address")
        return value or None

    @field_validator("webex_base_url")
    @classmethod
    def _http_url(cls, value: str) -> str:
        if not value.startswith(("https://", "http://")):
            raise ValueError("must start with https:// (or http:// for the local simulator)")
        return value.rstrip("/")

    @property
    def zone(self) -> ZoneInfo:
        """The report time zone as a ``ZoneInfo``."""
        return ZoneInfo(self.timezone)

    def access_token(self) -> str | None:
        """The bearer token, from ``webex_token`` or the file ``webex_token_file`` names."""
        if self.webex_token is not None:
            token = self.webex_token.get_secret_value().strip()
        elif self.webex_token_file is not None:
            try:
                # utf-8-sig: a file saved by Notepad starts with a byte-order mark.
                token = self.webex_token_file.read_text(encoding="utf-8-sig").strip()
            except OSError as exc:
                raise ConfigError(
                    f"cannot read the Webex token file {self.webex_token_file}: {exc.strerror}"
                ) from exc
            except UnicodeDecodeError:
                raise ConfigError(
                    f"the Webex token file {self.webex_token_file} is not text (UTF-8): save the "
                    "token again as plain text"
                ) from None
        else:
            return None
        if not token or token.lower() in PLACEHOLDER_SECRETS:
            raise ConfigError(
                "the Webex token is empty or still a placeholder: set MEETAUDIT_WEBEX_TOKEN "
                "(or MEETAUDIT_WEBEX_TOKEN_FILE) to a real access token"
            )
        return check_secret("the Webex token", token)

    def signing_password(self) -> bytes | None:
        """The signing key's password, from ``signing_key_password`` or its file, else None."""
        if self.signing_key_password is not None:
            return self.signing_key_password.get_secret_value().encode()
        if self.signing_key_password_file is not None:
            try:
                text = self.signing_key_password_file.read_text(encoding="utf-8-sig")
            except OSError as exc:
                raise ConfigError(
                    f"cannot read the signing key password file "
                    f"{self.signing_key_password_file}: {exc.strerror}"
                ) from exc
            return text.rstrip("\r\n").encode()
        return None

    def secret(self, name: str) -> str | None:
        """A secret setting's value (stripped), checked to be something HTTP can carry."""
        value = getattr(self, name)
        if value is None:
            return None
        return check_secret(f"the setting {name}", value.get_secret_value().strip())

    def redacted(self) -> dict[str, Any]:
        """The effective settings as plain data, every secret replaced by ``'***'``."""
        out: dict[str, Any] = {}
        for name in type(self).model_fields:
            value = getattr(self, name)
            if name == "database_url":
                out[name] = redact_url(value.get_secret_value()) if value else None
            elif isinstance(value, SecretStr):
                out[name] = "***" if value.get_secret_value() else ""
            elif isinstance(value, Path):
                out[name] = str(value)
            else:
                out[name] = value
        return out

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        # Explicit arguments (the CLI's --config file) win, then the environment.
        return (init_settings, env_settings)


# libpq connection parameters that carry a secret when given in the URL's query string
# (``postgresql://host/db?password=…``) rather than as ``user:password@``.
_SECRET_QUERY_PARAMETERS = frozenset({"password", "sslpassword"})


def redact_url(url: str) -> str:
    """A database URL with its password replaced by ``***``, wherever in the URL it was given."""
    try:
        parsed = make_url(url)
        if any(k.lower() in _SECRET_QUERY_PARAMETERS for k in parsed.query):
            parsed = parsed.set(
                query={
                    k: "***" if k.lower() in _SECRET_QUERY_PARAMETERS else v
                    for k, v in parsed.query.items()
                }
            )
        # ``***`` is percent-encoded in a query string; shown as typed, it reads as a redaction.
        return parsed.render_as_string(hide_password=True).replace("=%2A%2A%2A", "=***")
    except Exception:  # noqa: BLE001 - an unparsable URL is shown as nothing rather than leaked
        return "<unparsable URL>"


_TOKEN_CHARS = re.compile(r"[!-~]+")  # visible ASCII: what an HTTP header can carry


def check_secret(what: str, value: str) -> str:
    """``value`` if it is made of the characters a token has; else a ConfigError saying so
    (without showing the secret)."""
    if not _TOKEN_CHARS.fullmatch(value):
        odd = sorted({f"U+{ord(c):04X}" for c in value if not _TOKEN_CHARS.fullmatch(c)})
        raise ConfigError(
            f"{what} contains characters a token cannot have ({', '.join(odd[:5])}): it was "
            "probably changed when copied (a typographic dash, a space, a line break, a byte-order "
            "mark); copy it again as plain text"
        )
    return value


def load_settings(config_file: Path | None = None, **overrides: Any) -> Settings:
    """Build the settings from a TOML file (optional), the environment, and explicit overrides.

    The file is ``config_file``, else ``$MEETAUDIT_CONFIG``, else none. Keys in the file are the
    setting names without the prefix (``org_domains = ["acme.example"]``); the environment wins
    over the file, explicit overrides win over both.
    """
    path = config_file or (
        Path(os.environ["MEETAUDIT_CONFIG"]) if os.environ.get("MEETAUDIT_CONFIG") else None
    )
    file_values: dict[str, Any] = {}
    if path is not None:
        try:
            file_values = tomllib.loads(path.read_text(encoding="utf-8-sig"))
        except OSError as exc:
            raise ConfigError(f"cannot read the settings file {path}: {exc.strerror}") from exc
        except UnicodeDecodeError:
            raise ConfigError(f"the settings file {path} is not text (UTF-8)") from None
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"the settings file {path} is not valid TOML: {exc}") from exc
        file_values = file_values.get("meetaudit", file_values)
        for key in file_values:
            if key not in Settings.model_fields:
                close = difflib.get_close_matches(key, list(Settings.model_fields), n=1)
                hint = f" (did you mean {close[0]}?)" if close else ""
                raise ConfigError(
                    f"the settings file {path} has an unknown setting {key!r}{hint}; the README "
                    "lists every setting"
                )
    _warn_unknown_environment()
    env_names = {
        name for name in Settings.model_fields if f"MEETAUDIT_{name.upper()}" in os.environ
    }
    init = {k: v for k, v in file_values.items() if k not in env_names}
    init.update({k: v for k, v in overrides.items() if v is not None})
    try:
        return Settings(**init)
    except ValidationError as exc:
        problems = "; ".join(_problem(err) for err in exc.errors())
        raise ConfigError(f"invalid settings — {problems}") from None


# MEETAUDIT_* variables that are not settings but are read elsewhere on purpose.
_OTHER_VARIABLES = {
    "MEETAUDIT_CONFIG",
    "MEETAUDIT_TEST_DATABASE_URL",
    "MEETAUDIT_BENCH_DATABASE_URL",
}


_warned: set[str] = set()


def _warn_unknown_environment() -> None:
    """A misspelt MEETAUDIT_* variable would be silently ignored: say so on stderr, once."""
    known = {f"MEETAUDIT_{name.upper()}" for name in Settings.model_fields} | _OTHER_VARIABLES
    unknown = {n for n in os.environ if n.startswith("MEETAUDIT_") and n not in known}
    for name in sorted(unknown - _warned):
        _warned.add(name)
        close = difflib.get_close_matches(name, sorted(known), n=1)
        hint = f" (did you mean {close[0]}?)" if close else ""
        print(f"Warning: ignoring {name}: not a meetaudit setting{hint}", file=sys.stderr)


def _problem(err: Any) -> str:
    """One validation error in a compliance officer's words."""
    name = ".".join(str(p) for p in err["loc"]) or "settings"
    if err["type"] == "extra_forbidden":
        close = difflib.get_close_matches(name, list(Settings.model_fields), n=1)
        hint = f" (did you mean {close[0]}?)" if close else ""
        return f"{name}: unknown setting{hint}; the README lists every setting"
    return f"{name}: {err['msg']}"
