"""Who may do what in the console: one function, asked by every route.

Roles (a person has one):

* **officer** — runs harvests and reports, sees gaps and harvest runs, the ledger and verdicts;
* **auditor** — reads reports, the ledger, verification and the method; no personal search;
* **investigator** — searches the records and exports answers, inside a case, and compiles a
  case's dossier;
* **admin** — manages accounts, and reads the access log.

The table :data:`GRANTS` is the whole policy; :func:`allowed` is the only place it is read, so a
route cannot check a role inline and drift from it.
"""

from __future__ import annotations

from dataclasses import dataclass

ROLES = ("officer", "auditor", "investigator", "admin")

# action -> roles that may do it
GRANTS: dict[str, frozenset[str]] = {
    "overview.view": frozenset({"officer", "auditor", "investigator", "admin"}),
    "reports.view": frozenset({"officer", "auditor"}),
    "reports.download": frozenset({"officer", "auditor"}),
    "reports.verify": frozenset({"officer", "auditor"}),
    "reports.generate": frozenset({"officer"}),
    "gaps.view": frozenset({"officer", "auditor"}),
    "investigate.search": frozenset({"investigator"}),
    "cases.manage": frozenset({"investigator"}),
    "cases.dossier": frozenset({"investigator"}),
    "access_log.view": frozenset({"auditor", "admin"}),
    "users.manage": frozenset({"admin"}),
}


@dataclass(frozen=True)
class Actor:
    """Who is asking: a signed-in account."""

    name: str
    role: str


def allowed(actor: Actor | None, action: str) -> bool:
    """Whether ``actor`` may do ``action`` (an unknown action is refused to everyone)."""
    if actor is None:
        return False
    return actor.role in GRANTS.get(action, frozenset())
