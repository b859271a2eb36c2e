"""What a harvest's listing could see, and so how much a period's "complete" can claim: the one rule.

A harvest lists meetings with one token, and Webex lists what that token may see. With an
administrator's token (admin-level scopes) it lists every meeting of the organisation on the
sites listed; with anyone else's, only the meetings the token's owner hosts or is invited to.
Listing per host (setting ``WEBEX_HOST_EMAILS``) lists only those hosts' meetings; listing named
sites (``WEBEX_SITE_URLS``) leaves the token's other sites out. A period can then be complete —
nothing the listing showed is missing (:mod:`reporting.coverage`) — and still hold only part of
the organisation's meetings, because what the listing could not see is not known to be missing.

:func:`assess` gives one run's verdict, from what Webex said about its token
(:mod:`reporting.webex.principal`), the settings it listed with, and what it listed:

* ``organisation`` — nothing limits the listing: an administrator's token (``roles`` on
  ``/people/me``) listing every host on every site of the token;
* ``limited`` — something certainly does: a member's token, hosts listed one by one, or sites of
  the token left out;
* ``unconfirmed`` — Webex would not say enough to tell: whose token it is, or (when sites are
  named) which sites it has, could not be asked; or an administrator's listing showed only
  meetings the owner hosts or is invited to, exactly what a token without the admin scopes
  lists. A listing that showed a meeting its owner neither hosts nor is invited to reached past
  the owner's own meetings, which only an administrator's (or a site administrator's) can.

:func:`period_reach` gives a period's: the time of the period that finished runs listed, but no
run that could see the whole organisation did. The report's cover and method page, its
manifest, its ledger entry and the command's closing lines all read it; none of them says
"complete" without it.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import bindparam, text
from sqlalchemy.orm import Session

from reporting.coverage import FINISHED_LISTING, Period, Span, uncovered
from reporting.webex.principal import SCOPES_NOT_KNOWABLE

ORGANISATION, LIMITED, UNCONFIRMED = "organisation", "limited", "unconfirmed"


@dataclass(frozen=True)
class Evidence:
    """What one run's listing showed: meetings listed, those of them whose people are stored
    (so whether the token's owner hosts or is invited to them is known), how many of those the
    owner neither hosts nor is invited to, the distinct hosts, and the sites they were held on."""

    listed: int = 0
    checked: int = 0
    beyond_own: int = 0
    hosts: int = 0
    sites_seen: tuple[str, ...] = ()


_EVIDENCE_SQL = text(
    """
    SELECT count(*) AS listed,
           count(*) FILTER (WHERE m.complete_at IS NOT NULL) AS checked,
           count(*) FILTER (
               WHERE m.complete_at IS NOT NULL
                 AND NOT (lower(btrim(coalesce(m.host_email, ''))) IN :emails)
                 AND NOT EXISTS (SELECT 1 FROM invitees i
                                 WHERE i.meeting_id = m.meeting_id AND i.email_norm IN :emails)
           ) AS beyond_own,
           count(DISTINCT lower(btrim(m.host_email))) AS hosts,
           coalesce(array_agg(DISTINCT m.site_url) FILTER (WHERE m.site_url IS NOT NULL),
                    '{}') AS sites
    FROM meetings m
    WHERE m.last_listed_run_id = :run
    """
).bindparams(bindparam("emails", expanding=True))


def evidence_of_run(session: Session, run_id: int, owner_emails: Sequence[str]) -> Evidence:
    """What run ``run_id`` listed, read back from the meetings it listed (see :class:`Evidence`).
    Without the owner's emails no meeting can be told to be someone else's: ``beyond_own`` 0."""
    emails = [e.strip().lower() for e in owner_emails if e.strip()]
    if not emails:
        row = session.execute(_EVIDENCE_SQL, {"run": run_id, "emails": [""]}).one()
        return Evidence(row.listed, row.checked, 0, row.hosts, tuple(sorted(row.sites)))
    row = session.execute(_EVIDENCE_SQL, {"run": run_id, "emails": emails}).one()
    return Evidence(row.listed, row.checked, row.beyond_own, row.hosts, tuple(sorted(row.sites)))


def assess(
    principal: dict[str, Any],
    sites: dict[str, Any],
    *,
    site_urls: Sequence[str],
    host_emails: Sequence[str],
    evidence: Evidence,
) -> dict[str, Any]:
    """One run's listing reach, as the run records it (``harvest_runs.listing_reach``)."""
    limits: list[str] = []
    doubts: list[str] = []
    owner = owner_words(principal)
    beyond = evidence.beyond_own
    if not principal.get("known"):
        # Without the owner, no meeting can be told to be someone else's: nothing shows reach.
        beyond = 0
        doubts.append(
            "whose token this is could not be asked (GET /people/me: "
            f"{_failure(principal)}), so whether it could list the whole organisation is not known"
        )
    elif not principal.get("admin") and not beyond:
        limits.append(
            f"the token belongs to {owner}, who is no administrator of the organisation: Webex "
            "lists only the meetings they host or are invited to"
        )
    elif principal.get("admin") and evidence.checked and not beyond:
        doubts.append(
            f"the token's owner {owner} is an administrator, but every one of the "
            f"{evidence.checked:,} meetings checked is one they host or are invited to — what a "
            "token without the admin scopes (meeting:admin_schedule_read) lists"
        )
    if host_emails:
        n = len(host_emails)
        limits.append(
            f"the listing was made per host ({n:,} host{'s' if n != 1 else ''}, setting "
            "WEBEX_HOST_EMAILS): meetings of other hosts are listed only where one of these is "
            "invited"
        )
    token_sites = sites.get("sites") if sites.get("known") else None
    if site_urls:
        named = {s.strip().lower() for s in site_urls}
        if token_sites is None:
            doubts.append(
                "only the sites named in the settings were listed, and which other sites the "
                f"token has could not be asked (GET /meetingPreferences/sites: {_failure(sites)})"
            )
        else:
            left_out = [s for s in token_sites if s.strip().lower() not in named]
            if left_out:
                limits.append(
                    "sites of the token not listed (setting WEBEX_SITE_URLS names others): "
                    + ", ".join(left_out)
                )
    verdict = LIMITED if limits else UNCONFIRMED if doubts else ORGANISATION
    return {
        "verdict": verdict,
        "whole_organisation": verdict == ORGANISATION,
        "limits": limits + doubts,
        "scopes": SCOPES_NOT_KNOWABLE,
        "token_sites": token_sites,
        "sites_listed": list(site_urls) or None,  # None: every site of the token
        "hosts_listed": list(host_emails) or None,  # None: every host
        "meetings_listed": evidence.listed,
        "meetings_checked": evidence.checked,
        "meetings_beyond_owner": beyond,
        "hosts_seen": evidence.hosts,
        "sites_seen": list(evidence.sites_seen),
    }


def owner_words(principal: dict[str, Any] | None) -> str:
    """The token's owner as a reader names them: ``Name <email>``, else what is known."""
    if not principal or not principal.get("known"):
        return "an unknown person"
    name = principal.get("display_name") or ""
    emails = principal.get("emails") or []
    if name and emails:
        return f"{name} <{emails[0]}>"
    return name or (emails[0] if emails else principal.get("id") or "an unnamed person")


def reach_words(principal: dict[str, Any] | None, reach: dict[str, Any] | None) -> str:
    """One line for an operator: whose token listed, and whether it could see the whole
    organisation (and if not, why)."""
    if reach is None:
        return "whose token listed was not recorded (a run of an earlier meetaudit)"
    who = owner_words(principal)
    if principal and principal.get("known"):
        who += ", an administrator" if principal.get("admin") else ", no administrator"
    if reach.get("verdict") == ORGANISATION:
        return f"token of {who}: the listing could see the whole organisation"
    could = "could not see" if reach.get("verdict") == LIMITED else "may not have seen"
    limits = reach.get("limits") or []
    # The owner once: a limit that names them already says whose token it was.
    named = any(owner_words(principal) in limit for limit in limits)
    return ("" if named else f"token of {who}: ") + (
        f"the listing {could} the whole organisation — " + "; ".join(limits)
    )


def _failure(answer: dict[str, Any]) -> str:
    status = answer.get("http_status")
    tracking = answer.get("tracking_id")
    said = f"HTTP {status}" if status else (answer.get("problem") or "no answer")
    return f"{said}, trackingId {tracking}" if tracking else said


# -- a period ------------------------------------------------------------------------------------

_RUNS_SQL = text(
    """
    SELECT id, window_from, window_to, token_principal, listing_reach FROM harvest_runs
    WHERE status IN :finished AND finished_at <= :as_of
      AND window_from < :end AND window_to > :start
    ORDER BY id
    """
).bindparams(bindparam("finished", value=FINISHED_LISTING, expanding=True))

NOT_RECORDED = (
    "harvest run {id} was made by an earlier version of meetaudit, which did not record whose "
    "token it used or what its listing could see"
)


@dataclass
class PeriodReach:
    """What the listing of a period could see, as of a moment (see :func:`period_reach`).

    ``limited``: the parts of the period that finished runs listed, but no run that could see
    the whole organisation; ``reasons``: why, per run that listed them, in run order;
    ``runs``: every finished run overlapping the period with its token and verdict.
    """

    limited: list[Span] = field(default_factory=list)
    reasons: list[str] = field(default_factory=list)
    runs: list[dict[str, Any]] = field(default_factory=list)
    # ``limited`` when a run that certainly could not see the whole organisation listed part of
    # the period, ``unconfirmed`` when only doubts are left, else ``organisation``.
    verdict: str = ORGANISATION

    @property
    def whole_organisation(self) -> bool:
        """Every part of the period that was listed was listed by a run that could see the
        whole organisation (time listed by no run is missing, which coverage says)."""
        return not self.limited

    def as_json(self) -> dict[str, Any]:
        """Plain data for the manifest and the ledger entry."""
        return {
            "whole_organisation": self.whole_organisation,
            "verdict": self.verdict,
            "limited_spans": [[_iso(a), _iso(b)] for a, b in self.limited],
            "reasons": self.reasons,
            "runs": self.runs,
        }


def period_reach(session: Session, window: Period, *, as_of: dt.datetime) -> PeriodReach:
    """The listing reach of ``window`` as of ``as_of``, from the harvest runs that finished
    listing it then (the runs :mod:`reporting.coverage` counts as covering it)."""
    params = {"start": window.start, "end": window.end, "as_of": as_of}
    rows = session.execute(_RUNS_SQL, params).all()
    covered: list[Span] = []
    whole: list[Span] = []
    runs: list[dict[str, Any]] = []
    for row in rows:
        span = (max(row.window_from, window.start), min(row.window_to, window.end))
        covered.append(span)
        reach = row.listing_reach
        if reach is None:
            verdict, limits = None, [NOT_RECORDED.format(id=row.id)]
        else:
            verdict, limits = reach.get("verdict"), list(reach.get("limits") or [])
        if verdict == ORGANISATION:
            whole.append(span)
        runs.append({"id": row.id, "verdict": verdict or "not recorded", "limits": limits,
                     "token": owner_words(row.token_principal) if row.token_principal else None,
                     "admin": (row.token_principal or {}).get("admin")})  # fmt: skip
    listed = _merge(covered)
    limited = [part for span in uncovered((window.start, window.end), whole)
               for part in _intersect(span, listed)]  # fmt: skip
    reasons: list[str] = []
    verdict = UNCONFIRMED if limited else ORGANISATION
    for run, span in zip(runs, covered, strict=True):
        if run["verdict"] != ORGANISATION and any(_overlap(span, part) for part in limited):
            reasons.extend(r for r in run["limits"] if r not in reasons)
            if run["verdict"] == LIMITED:
                verdict = LIMITED
    return PeriodReach(limited=limited, reasons=reasons, runs=runs, verdict=verdict)


def _merge(spans: list[Span]) -> list[Span]:
    out: list[Span] = []
    for start, end in sorted(spans):
        if out and start <= out[-1][1]:
            out[-1] = (out[-1][0], max(out[-1][1], end))
        else:
            out.append((start, end))
    return out


def _intersect(span: Span, spans: list[Span]) -> list[Span]:
    return [(max(span[0], a), min(span[1], b)) for a, b in spans if _overlap(span, (a, b))]


def _overlap(a: Span, b: Span) -> bool:
    return a[0] < b[1] and b[0] < a[1]


def _iso(value: dt.datetime) -> str:
    return value.astimezone(dt.UTC).isoformat().replace("+00:00", "Z")
