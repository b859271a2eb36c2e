"""Readable names for outside organisations: an optional registry the organisation keeps.

Webex names an outside organisation only by its orgId (a UUID), and a person without one by
their email domain. The registry (setting ``org_registry_file``) is a TOML file mapping either to
a name the auditor recognises::

    [org_ids]
    "1eb65fdf-9643-417f-9974-ad72cae0e10f" = "Globex Inc."

    [domains]
    "globex.example" = "Globex Inc."     # subdomains of it too (eu.globex.example)

The names are only labels: they never change how a person is classified or counted. The report
prints them beside the orgId or domain, and its method page names the registry file and its
SHA-256; the names are recorded in the report's parameters, so a reproduction shows the same
names whatever the file says later.
"""

from __future__ import annotations

import hashlib
import tomllib
from dataclasses import dataclass, field
from pathlib import Path

from reporting.errors import ConfigError

MAX_NAME = 200


@dataclass(frozen=True)
class OrgRegistry:
    """Names by orgId and by email domain, and which file they came from."""

    org_ids: dict[str, str] = field(default_factory=dict)
    domains: dict[str, str] = field(default_factory=dict)
    path: str | None = None
    sha256: str | None = None

    def name_of(self, org_key: str | None) -> str | None:
        """The registered name of an orgId or an email domain (or a parent domain of it)."""
        if not org_key:
            return None
        if org_key in self.org_ids:
            return self.org_ids[org_key]
        domain = org_key.lower()
        while domain:
            if domain in self.domains:
                return self.domains[domain]
            _, _, domain = domain.partition(".")
        return None

    def to_json(self) -> dict[str, object]:
        """As recorded in a report's parameters."""
        return {"path": self.path, "sha256": self.sha256, "org_ids": self.org_ids,
                "domains": self.domains}  # fmt: skip

    @classmethod
    def from_json(cls, data: dict[str, object] | None) -> OrgRegistry:
        """Back from :meth:`to_json` (``None``: no registry)."""
        if not data:
            return cls()
        return cls(
            org_ids=dict(data.get("org_ids") or {}),  # type: ignore[call-overload]
            domains=dict(data.get("domains") or {}),  # type: ignore[call-overload]
            path=data.get("path"),  # type: ignore[arg-type]
            sha256=data.get("sha256"),  # type: ignore[arg-type]
        )


def load_registry(path: Path | None) -> OrgRegistry:
    """Read the registry file; a missing or malformed file is a clear configuration error."""
    if path is None:
        return OrgRegistry()
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise ConfigError(
            f"the organisation registry {path} cannot be read ({exc.strerror}); fix "
            "MEETAUDIT_ORG_REGISTRY_FILE or leave it unset"
        ) from None
    try:
        doc = tomllib.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise ConfigError(f"the organisation registry {path} is not valid TOML: {exc}") from None
    unknown = set(doc) - {"org_ids", "domains"}
    if unknown:
        raise ConfigError(
            f"the organisation registry {path} has sections {sorted(unknown)}; only [org_ids] "
            "and [domains] are read"
        )
    tables: dict[str, dict[str, str]] = {}
    for section in ("org_ids", "domains"):
        table = doc.get(section, {})
        if not isinstance(table, dict):
            raise ConfigError(f"the organisation registry {path}: [{section}] must be a table")
        clean: dict[str, str] = {}
        for key, name in table.items():
            if not isinstance(name, str) or not name.strip() or len(name) > MAX_NAME:
                raise ConfigError(
                    f"the organisation registry {path}: the name of {key!r} in [{section}] "
                    f"must be text of 1 to {MAX_NAME} characters"
                )
            k = key.strip().lower().lstrip("@") if section == "domains" else key.strip()
            clean[k] = name.strip()
        tables[section] = clean
    return OrgRegistry(
        org_ids=tables["org_ids"],
        domains=tables["domains"],
        path=str(path.resolve()),
        sha256=hashlib.sha256(data).hexdigest(),
    )
