"""Whose token a harvest runs with, as Webex itself says: ``GET /people/me`` and the token's sites.

Webex tells an API caller who the token belongs to (``Get My Own Details``: id, emails, display
name, orgId) and, through ``roles``, whether that person is an administrator: the spec gives
``roles`` as "the roles to which this admin user belongs", an administrative field only admin
users receive. ``Get Site List`` (``GET /meetingPreferences/sites``) names the Webex sites the
token's owner is set up to use. Webex does not tell which scopes a token was granted: no answer
carries them, so they are recorded as not knowable (:data:`SCOPES_NOT_KNOWABLE`).

Both are asked once per harvest run, after its listing, and never make a gap: a refusal or a
failure (no scope for the people API, an older server) is recorded with its HTTP status and
trackingId, and the run's reach is then unconfirmed (:mod:`reporting.reach`). Only plain text
from the answers is kept, each value bounded, as every string from the API is a stranger's.
"""

from __future__ import annotations

import base64
import binascii
import re
from typing import TYPE_CHECKING, Any

from reporting.errors import WebexError

if TYPE_CHECKING:  # the report reads SCOPES_NOT_KNOWABLE without loading the HTTP client
    from reporting.webex.client import WebexClient

SCOPES_NOT_KNOWABLE = (
    "not knowable: Webex does not tell an API caller which scopes its token was granted, and "
    "meetaudit's settings do not name them"
)
# Bounds on what is kept of an answer (a stranger's text): characters per value, values per list.
_TEXT_MAX = 320
_LIST_MAX = 20
_CISCOSPARK = re.compile(r"^ciscospark://[a-z0-9-]+/([A-Z_]+)/(.+)$")


async def ask_principal(client: WebexClient) -> dict[str, Any]:
    """Who the token belongs to: ``{"known": True, id, emails, display_name, org_id,
    org_uuid, roles, admin, tracking_id}``, or ``{"known": False, problem, http_status,
    tracking_id}`` when Webex would not say."""
    try:
        person, tracking = await client.get_object("people/me")
    except WebexError as exc:
        return _unknown(exc)
    roles = _texts(person.get("roles"))
    org_id = _text(person.get("orgId"))
    return {
        "known": True,
        "id": _text(person.get("id")),
        "emails": _texts(person.get("emails")),
        "display_name": _text(person.get("displayName")),
        "org_id": org_id,
        "org_uuid": decoded_id(org_id, "ORGANIZATION"),
        "roles": roles,
        # The spec: ``roles`` are "the roles to which this admin user belongs", sent to admin
        # users only. None of them, or none sent: no administrator of the organisation.
        "admin": bool(roles),
        "tracking_id": tracking,
    }


async def ask_sites(client: WebexClient) -> dict[str, Any]:
    """The sites the token's owner is set up to use: ``{"known": True, sites, default,
    tracking_id}``, or ``{"known": False, ...}`` as for :func:`ask_principal`."""
    try:
        body, tracking = await client.get_object("meetingPreferences/sites")
    except WebexError as exc:
        return _unknown(exc)
    listed = body.get("sites")
    sites: list[str] = []
    default = None
    for item in listed[:_LIST_MAX] if isinstance(listed, list) else []:
        url = _text(item.get("siteUrl")) if isinstance(item, dict) else None
        if url:
            sites.append(url)
            if item.get("default") is True:
                default = url
    return {"known": True, "sites": sites, "default": default, "tracking_id": tracking}


def decoded_id(value: str | None, kind: str) -> str | None:
    """The plain id inside a Webex id of ``kind`` (base64 of ``ciscospark://us/<KIND>/<id>``,
    as the People API gives an orgId), else ``None``: the UUID the organisation's settings name."""
    if not value:
        return None
    try:
        # Either base64 alphabet, padding or not: Webex ids come in both.
        plain = value.strip().rstrip("=").replace("-", "+").replace("_", "/")
        raw = base64.b64decode(plain + "=" * (-len(plain) % 4), validate=True).decode("ascii")
    except (binascii.Error, UnicodeDecodeError, ValueError):
        return None
    match = _CISCOSPARK.match(raw)
    return match.group(2) if match and match.group(1) == kind else None


def _unknown(exc: WebexError) -> dict[str, Any]:
    return {
        "known": False,
        "problem": _text(str(exc)),
        "http_status": exc.status,
        "tracking_id": exc.tracking_id,
    }


def _text(value: Any) -> str | None:
    return value[:_TEXT_MAX] if isinstance(value, str) and value else None


def _texts(value: Any) -> list[str]:
    if not isinstance(value, list):
        return []
    return [v[:_TEXT_MAX] for v in value[:_LIST_MAX] if isinstance(v, str) and v]
