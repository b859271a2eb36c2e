"""Pydantic models of the Webex payloads a harvest reads, checked against the official spec.

Validation is the gate between strangers' data and the evidence store: a payload that does not
fit the published schema is not stored (the meeting becomes a gap with the reason), so nothing is
half-written. Unknown extra fields are allowed and kept in ``raw``. No participant field is
required (the spec requires none); a type or enum the spec does not allow is an error.

Two repairs are made on purpose and are visible in the stored raw item: NUL characters (which
PostgreSQL cannot store in text) become U+FFFD — the API client does it in the body before
parsing; :func:`scrub` does it for items from elsewhere — and the meeting's secrets
(``password``, ``hostKey``…) are removed before the raw item is kept.
"""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    TypeAdapter,
    ValidationError,
    field_validator,
)

# Meeting fields that grant access to a meeting: never stored, printed or reported.
MEETING_SECRETS = frozenset(
    {
        "password",
        "hostKey",
        "phoneAndVideoSystemPassword",
        "panelistPassword",
        "phoneAndVideoSystemPanelistPassword",
    }
)
PLACEHOLDER_EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)


def scrub(value: Any) -> Any:
    """Replace NUL characters, which PostgreSQL text and JSONB refuse, in every string."""
    if isinstance(value, str):
        return value.replace("\x00", "\ufffd") if "\x00" in value else value
    if isinstance(value, dict):
        return {scrub(k): scrub(v) for k, v in value.items()}
    if isinstance(value, list):
        return [scrub(v) for v in value]
    return value


def strip_meeting_secrets(item: dict[str, Any]) -> dict[str, Any]:
    """The meeting item without passwords, host key and telephony access code."""
    clean = {k: v for k, v in item.items() if k not in MEETING_SECRETS}
    telephony = clean.get("telephony")
    if isinstance(telephony, dict) and "accessCode" in telephony:
        clean["telephony"] = {k: v for k, v in telephony.items() if k != "accessCode"}
    return clean


def normalise_email(email: str | None) -> str | None:
    """The matching key for an email: trimmed and lower-cased; ``None`` when empty."""
    if email is None:
        return None
    key = email.strip().lower()
    return key or None


def _iso_time(value: Any) -> Any:
    """An ISO 8601 string as an aware datetime (naive means UTC); anything else is refused."""
    if value is None or isinstance(value, dt.datetime):
        return value
    if not isinstance(value, str):
        raise ValueError("must be an ISO 8601 date-time string")
    try:
        parsed = dt.datetime.fromisoformat(value.strip())
    except ValueError:
        raise ValueError(f"{value[:40]!r} is not an ISO 8601 date-time") from None
    return parsed if parsed.tzinfo is not None else parsed.replace(tzinfo=dt.UTC)


#: A timestamp as Webex sends it: an ISO 8601 string, never a number.
ApiTime = Annotated[dt.datetime, BeforeValidator(_iso_time)]


class _Item(BaseModel):
    model_config = ConfigDict(extra="allow", populate_by_name=True, frozen=True, strict=True)


class Device(_Item):
    """One join session (``Device``)."""

    correlation_id: str | None = Field(None, alias="correlationId")
    device_type: str | None = Field(None, alias="deviceType")
    audio_type: Literal["pstn", "voip", "inactive"] | None = Field(None, alias="audioType")
    joined_time: ApiTime | None = Field(None, alias="joinedTime")
    left_time: ApiTime | None = Field(None, alias="leftTime")
    duration_second: float | None = Field(None, alias="durationSecond")
    call_type: Literal["callIn", "callBack"] | None = Field(None, alias="callType")
    phone_number: str | None = Field(None, alias="phoneNumber")


class BreakoutSessionAttended(_Item):
    """One breakout session a participant attended."""

    id: str | None = None
    name: str | None = None
    joined_time: ApiTime | None = Field(None, alias="joinedTime")
    left_time: ApiTime | None = Field(None, alias="leftTime")


class Participant(_Item):
    """A meeting participant (``Participant``): every field optional, as in the spec."""

    id: str | None = None
    org_id: str | None = Field(None, alias="orgId")
    host: bool | None = None
    co_host: bool | None = Field(None, alias="coHost")
    space_moderator: bool | None = Field(None, alias="spaceModerator")
    email: str | None = None
    display_name: str | None = Field(None, alias="displayName")
    invitee: bool | None = None
    muted: bool | None = None
    meeting_start_time: ApiTime | None = Field(None, alias="meetingStartTime")
    video: Literal["on", "off"] | None = None
    state: Literal["lobby", "end", "joined", "breakoutSession"] | None = None
    breakout_session_id: str | None = Field(None, alias="breakoutSessionId")
    joined_time: ApiTime | None = Field(None, alias="joinedTime")
    left_time: ApiTime | None = Field(None, alias="leftTime")
    site_url: str | None = Field(None, alias="siteUrl")
    meeting_id: str | None = Field(None, alias="meetingId")
    host_email: str | None = Field(None, alias="hostEmail")
    devices: list[Device] = Field(default_factory=list)
    breakout_sessions_attended: list[BreakoutSessionAttended] = Field(
        default_factory=list, alias="breakoutSessionsAttended"
    )
    source_id: str | None = Field(None, alias="sourceId")


class Invitee(_Item):
    """A meeting invitee (``GetInviteeObject``; id, email, displayName, meetingId required)."""

    id: str
    email: str
    display_name: str = Field(alias="displayName")
    meeting_id: str = Field(alias="meetingId")
    co_host: bool | None = Field(None, alias="coHost")
    panelist: bool | None = None


class Meeting(_Item):
    """An ended meeting instance (the fields of ``MeetingObjectForListMeeting`` a harvest uses).

    The spec requires ``id``, ``meetingSeriesId``, ``meetingType``, ``state``, ``start`` and
    ``end``, and so does this model: without them an item cannot be placed in a period or known
    to be an ended instance. The spec also requires title, host, site, link, timezone, telephony,
    ``enabledBreakoutSessions``, ``password`` and ``hostKey``; they are kept when sent but not
    demanded — none of them is evidence of attendance, ``password`` and ``hostKey`` are secrets
    never stored, and servers leave several of them out of ended instances.
    """

    id: str
    meeting_series_id: str = Field(alias="meetingSeriesId")
    scheduled_meeting_id: str | None = Field(None, alias="scheduledMeetingId")
    meeting_number: str | None = Field(None, alias="meetingNumber")
    title: str | None = None
    meeting_type: str = Field(alias="meetingType")
    scheduled_type: str | None = Field(None, alias="scheduledType")
    state: str
    timezone: str | None = None
    start: ApiTime
    end: ApiTime
    host_user_id: str | None = Field(None, alias="hostUserId")
    host_display_name: str | None = Field(None, alias="hostDisplayName")
    host_email: str | None = Field(None, alias="hostEmail")
    site_url: str | None = Field(None, alias="siteUrl")
    web_link: str | None = Field(None, alias="webLink")

    @field_validator("id")
    @classmethod
    def _non_empty(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("meeting id is empty")
        return value


class AttendeeReportItem(_Item):
    """One row of ``/meetingReports/attendees`` (``MeetingAttendeeReportObject``)."""

    meeting_id: str | None = Field(None, alias="meetingId")
    email: str | None = None
    display_name: str | None = Field(None, alias="displayName")
    invited: bool | None = None
    registered: bool | None = None
    participant_type: str | None = Field(None, alias="participantType")
    ip_address: str | None = Field(None, alias="ipAddress")
    client_agent: str | None = Field(None, alias="clientAgent")
    company: str | None = None
    duration: float | None = None


PARTICIPANTS: TypeAdapter[list[Participant]] = TypeAdapter(list[Participant])
INVITEES: TypeAdapter[list[Invitee]] = TypeAdapter(list[Invitee])
ATTENDEE_REPORT: TypeAdapter[list[AttendeeReportItem]] = TypeAdapter(list[AttendeeReportItem])


class InvalidItems(ValueError):
    """A listing holds an item that does not fit the schema; ``index`` is the first such item."""

    def __init__(self, reason: str, index: int) -> None:
        super().__init__(reason)
        self.reason = reason
        self.index = index


def validate_listing(
    adapter: TypeAdapter[list[Any]], kind: str, items: list[dict[str, Any]]
) -> list[Any]:
    """Validate a whole listing in one call; :class:`InvalidItems` names the first bad item
    (one bad item spoils the listing: nothing is half-stored)."""
    try:
        return adapter.validate_python(items)
    except ValidationError as exc:
        first = exc.errors()[0]["loc"]
        index = first[0] if first and isinstance(first[0], int) else 0
        raise InvalidItems(describe_validation_error(kind, index, exc, skip=1), index) from None


def validate_items(
    adapter: TypeAdapter[list[Any]], kind: str, items: list[dict[str, Any]]
) -> tuple[list[Any], str | None]:
    """Like :func:`validate_listing`, as ``(models, None)`` or ``([], reason)``."""
    try:
        return validate_listing(adapter, kind, items), None
    except InvalidItems as exc:
        return [], exc.reason


def describe_validation_error(kind: str, index: int, exc: ValidationError, *, skip: int = 0) -> str:
    """One readable sentence naming the item and the fields that failed.

    ``skip`` leading parts of each error location are dropped (the list index, when the error
    comes from validating a whole listing).
    """
    problems = "; ".join(
        f"{'.'.join(str(p) for p in err['loc'][skip:])}: {err['msg']}" for err in exc.errors()[:5]
    )
    more = f" (+{exc.error_count() - 5} more)" if exc.error_count() > 5 else ""
    return f"{kind} item {index} does not match the Webex schema — {problems}{more}"
