"""Pure rules the report applies to every person: who is internal, how a phone number is shown.

Nothing here touches the database or the templates, so each rule is unit-tested on its own and
the same rule serves the PDF, the CSV and the JSON.
"""

from __future__ import annotations

import datetime as dt
import functools
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Literal

from reporting.config import Settings
from reporting.webex.plausibility import plausible_org_id

Classification = Literal["internal", "external", "unidentified"]

# Webex writes 1970-01-01 where it does not know a time; anything before this is such a placeholder.
PLACEHOLDER_BEFORE = dt.datetime(1971, 1, 1, tzinfo=dt.UTC)
_MASK = "••"


def email_domain(email: str | None) -> str | None:
    """The lower-cased domain of an email address, or ``None`` when there is none."""
    if not email:
        return None
    local, at, domain = email.strip().rpartition("@")
    if not at or not local:
        return None
    domain = domain.strip().strip(".").lower()
    return domain or None


def is_own_domain(domain: str, own_domains: list[str] | tuple[str, ...]) -> bool:
    """True when ``domain`` is one of ``own_domains`` or a subdomain of one."""
    return any(domain == own or domain.endswith("." + own) for own in own_domains)


def classify(
    org_id: str | None, email: str | None, settings: Settings
) -> tuple[Classification, str | None]:
    """Classify a person as internal, external or unidentified, with the key they are counted under.

    Internal when the orgId is one of ``settings.org_ids`` (compared case-insensitively) or the
    email's domain is one of ``settings.org_domains`` or a subdomain of one; the key is then the
    organisation's name. External when Webex gave an orgId (the key is that orgId, lower-cased)
    or, failing that, the email has a domain (the key is the domain). Unidentified when there is
    neither (phone callers, most often); the key is ``None``.
    """
    return classify_with(org_id, email, settings.org_ids, settings.org_domains, settings.org_name)


def classify_with(
    org_id: str | None,
    email: str | None,
    org_ids: list[str] | tuple[str, ...],
    org_domains: list[str] | tuple[str, ...],
    org_name: str,
) -> tuple[Classification, str | None]:
    """:func:`classify` with the parameters spelled out (as a ledger entry stores them)."""
    own_ids, own_domains = _own(tuple(org_ids), tuple(org_domains))
    oid = org_id.strip().lower() if org_id and org_id.strip() else None
    domain = email_domain(email)
    if (oid is not None and oid in own_ids) or (
        domain is not None and is_own_domain(domain, own_domains)
    ):
        return "internal", org_name
    if oid is not None:
        return "external", oid
    if domain is not None:
        return "external", domain
    return "unidentified", None


@functools.lru_cache(maxsize=16)
def _own(
    org_ids: tuple[str, ...], org_domains: tuple[str, ...]
) -> tuple[frozenset[str], tuple[str, ...]]:
    """The organisation's own orgIds and domains, normalised once (classify runs per person)."""
    return (
        frozenset(o.strip().lower() for o in org_ids if o.strip()),
        tuple(d.strip().lower().lstrip("@") for d in org_domains if d.strip()),
    )


@dataclass(frozen=True)
class KnownOrgIds:
    """The orgIds Webex gave for each person (normalised email) anywhere in a period.

    Webex gives ``orgId`` for participants of ongoing meetings and mostly leaves it out of
    finished ones, so the same person can come with it in one meeting and without it in the
    next. Classified meeting by meeting, that person would be counted under the orgId once and
    under their email domain the next time: one person, two organisations. A person is therefore
    counted under the orgId Webex gave *for that same email address* somewhere in the period —
    an observed fact, not a guess from the domain (many people share ``gmail.com``). A person
    seen with two different orgIds keeps each meeting's own.
    """

    by_email: Mapping[str, str] = field(default_factory=dict)
    # orgId -> the email domains of the people Webex gave it for (shown beside the orgId).
    domains: Mapping[str, tuple[str, ...]] = field(default_factory=dict)

    @classmethod
    def from_pairs(cls, pairs: Iterable[tuple[str, str]]) -> KnownOrgIds:
        """From ``(normalised email, orgId)`` pairs as stored."""
        seen: dict[str, set[str]] = {}
        domains: dict[str, set[str]] = {}
        for email, org_id in pairs:
            oid = org_id.strip().lower() if org_id else ""
            if not email or not oid or not plausible_org_id(org_id):
                continue
            seen.setdefault(email, set()).add(oid)
            domain = email_domain(email)
            if domain:
                domains.setdefault(oid, set()).add(domain)
        return cls(
            {email: next(iter(ids)) for email, ids in seen.items() if len(ids) == 1},
            {oid: tuple(sorted(d)) for oid, d in domains.items()},
        )

    def org_id(self, given: str | None, email_norm: str | None) -> str | None:
        """The orgId to classify a person by: the one Webex gave here, else the person's own.
        A value that is no Webex organisation id (plausibility check ``org_id_not_uuid``: a
        word, a name) is never one: the person is classified as if Webex had given none."""
        if given and given.strip() and plausible_org_id(given):
            return given
        return self.by_email.get(email_norm) if email_norm else None


_DIGIT = re.compile(r"\d")


def mask_phone(number: str | None, *, show: bool = False) -> str | None:
    """A phone number with its last two digits hidden (``+1-555-0199`` → ``+1-555-01••``).

    With ``show`` (``settings.show_phone_numbers``) the number is returned unchanged. Numbers of
    fewer than five digits are hidden entirely.
    """
    if number is None or not number.strip():
        return None
    number = number.strip()
    if show:
        return number
    positions = [m.start() for m in _DIGIT.finditer(number)]
    if len(positions) < 5:
        return _MASK
    chars = list(number)
    for pos in positions[-2:]:
        chars[pos] = "•"
    return "".join(chars)


def caller_name(name: str | None, phones: Iterable[str], *, show: bool = False) -> str | None:
    """A display name as the report shows it: masked as a phone number is when it is one.

    A phone caller's display name is often their number (``+1-555-0188``). When the digits of the
    name are those of a number the person joined from, the report masks the name as it masks the
    number, unless ``show`` (``settings.show_phone_numbers``); the report and every
    investigate answer apply this one rule.
    """
    if not name or show:
        return name
    numbers = [n for n in phones if n]
    if not numbers:  # most people joined from no number: their name needs no look
        return name
    digits = _digits(name)
    if digits and any(digits == _digits(n) for n in numbers):
        return mask_phone(name)
    return name


def _digits(text: str) -> str:
    return "".join(ch for ch in text if ch.isdigit())


def is_placeholder(value: dt.datetime | None) -> bool:
    """True for Webex's ``1970-01-01`` "time not known" placeholder."""
    return value is not None and value < PLACEHOLDER_BEFORE
