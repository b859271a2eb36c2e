"""SQL views for analysts: meetings, attendances, join sessions, reconciliation, organisations

Stable, documented views (every name begins ``analyst_``) that psql, Metabase or a spreadsheet
can read, granted to a read-only role with ``meetaudit db views grant``. They live in meetaudit's
own schema, beside the tables, so the owner role that runs ``meetaudit db upgrade`` owns them
and can replace them in a later revision (a schema of their own would need the right to create
schemas in the database, which the owner does not have).

The report's rules are written once, in SQL functions that both the views and
``meetaudit investigate`` call: ``meetaudit_classify`` and ``meetaudit_org_key`` (internal,
external or unidentified, by orgId and email domain), ``meetaudit_mask_phone`` and
``meetaudit_caller_name`` (a phone number's last two digits hidden). They follow Python's
``str.strip``, ``\\d`` and ``str.isdigit`` character by character, so the character tables are
written out here (Unicode 14, Python 3.11), frozen with the revision.

The organisation's own name, domains and orgIds are settings, not data: ``view_settings`` holds
the copy the views classify by (one row), written by ``meetaudit db views grant`` and
``meetaudit db views settings`` from meetaudit's configuration.

Revision ID: 0114
Revises: 0113
Create Date: 2026-12-02 05:00:00+00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0114"
down_revision: str | Sequence[str] | None = "0113"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# Characters Python's str.strip() removes, its regex \d matches and str.isdigit() accepts.
_WHITESPACE = (
    (0x0009, 0x000D), (0x001C, 0x0020), (0x0085, 0x0085), (0x00A0, 0x00A0), (0x1680, 0x1680),
    (0x2000, 0x200A), (0x2028, 0x2029), (0x202F, 0x202F), (0x205F, 0x205F), (0x3000, 0x3000),
)  # fmt: skip
_DECIMAL = (
    (0x0030, 0x0039), (0x0660, 0x0669), (0x06F0, 0x06F9), (0x07C0, 0x07C9), (0x0966, 0x096F),
    (0x09E6, 0x09EF), (0x0A66, 0x0A6F), (0x0AE6, 0x0AEF), (0x0B66, 0x0B6F), (0x0BE6, 0x0BEF),
    (0x0C66, 0x0C6F), (0x0CE6, 0x0CEF), (0x0D66, 0x0D6F), (0x0DE6, 0x0DEF), (0x0E50, 0x0E59),
    (0x0ED0, 0x0ED9), (0x0F20, 0x0F29), (0x1040, 0x1049), (0x1090, 0x1099), (0x17E0, 0x17E9),
    (0x1810, 0x1819), (0x1946, 0x194F), (0x19D0, 0x19D9), (0x1A80, 0x1A89), (0x1A90, 0x1A99),
    (0x1B50, 0x1B59), (0x1BB0, 0x1BB9), (0x1C40, 0x1C49), (0x1C50, 0x1C59), (0xA620, 0xA629),
    (0xA8D0, 0xA8D9), (0xA900, 0xA909), (0xA9D0, 0xA9D9), (0xA9F0, 0xA9F9), (0xAA50, 0xAA59),
    (0xABF0, 0xABF9), (0xFF10, 0xFF19), (0x104A0, 0x104A9), (0x10D30, 0x10D39),
    (0x11066, 0x1106F), (0x110F0, 0x110F9), (0x11136, 0x1113F), (0x111D0, 0x111D9),
    (0x112F0, 0x112F9), (0x11450, 0x11459), (0x114D0, 0x114D9), (0x11650, 0x11659),
    (0x116C0, 0x116C9), (0x11730, 0x11739), (0x118E0, 0x118E9), (0x11950, 0x11959),
    (0x11C50, 0x11C59), (0x11D50, 0x11D59), (0x11DA0, 0x11DA9), (0x16A60, 0x16A69),
    (0x16AC0, 0x16AC9), (0x16B50, 0x16B59), (0x1D7CE, 0x1D7FF), (0x1E140, 0x1E149),
    (0x1E2F0, 0x1E2F9), (0x1E950, 0x1E959), (0x1FBF0, 0x1FBF9),
)  # fmt: skip
_ISDIGIT = (
    (0x0030, 0x0039), (0x00B2, 0x00B3), (0x00B9, 0x00B9), (0x0660, 0x0669), (0x06F0, 0x06F9),
    (0x07C0, 0x07C9), (0x0966, 0x096F), (0x09E6, 0x09EF), (0x0A66, 0x0A6F), (0x0AE6, 0x0AEF),
    (0x0B66, 0x0B6F), (0x0BE6, 0x0BEF), (0x0C66, 0x0C6F), (0x0CE6, 0x0CEF), (0x0D66, 0x0D6F),
    (0x0DE6, 0x0DEF), (0x0E50, 0x0E59), (0x0ED0, 0x0ED9), (0x0F20, 0x0F29), (0x1040, 0x1049),
    (0x1090, 0x1099), (0x1369, 0x1371), (0x17E0, 0x17E9), (0x1810, 0x1819), (0x1946, 0x194F),
    (0x19D0, 0x19DA), (0x1A80, 0x1A89), (0x1A90, 0x1A99), (0x1B50, 0x1B59), (0x1BB0, 0x1BB9),
    (0x1C40, 0x1C49), (0x1C50, 0x1C59), (0x2070, 0x2070), (0x2074, 0x2079), (0x2080, 0x2089),
    (0x2460, 0x2468), (0x2474, 0x247C), (0x2488, 0x2490), (0x24EA, 0x24EA), (0x24F5, 0x24FD),
    (0x24FF, 0x24FF), (0x2776, 0x277E), (0x2780, 0x2788), (0x278A, 0x2792), (0xA620, 0xA629),
    (0xA8D0, 0xA8D9), (0xA900, 0xA909), (0xA9D0, 0xA9D9), (0xA9F0, 0xA9F9), (0xAA50, 0xAA59),
    (0xABF0, 0xABF9), (0xFF10, 0xFF19), (0x104A0, 0x104A9), (0x10A40, 0x10A43),
    (0x10D30, 0x10D39), (0x10E60, 0x10E68), (0x11052, 0x1105A), (0x11066, 0x1106F),
    (0x110F0, 0x110F9), (0x11136, 0x1113F), (0x111D0, 0x111D9), (0x112F0, 0x112F9),
    (0x11450, 0x11459), (0x114D0, 0x114D9), (0x11650, 0x11659), (0x116C0, 0x116C9),
    (0x11730, 0x11739), (0x118E0, 0x118E9), (0x11950, 0x11959), (0x11C50, 0x11C59),
    (0x11D50, 0x11D59), (0x11DA0, 0x11DA9), (0x16A60, 0x16A69), (0x16AC0, 0x16AC9),
    (0x16B50, 0x16B59), (0x1D7CE, 0x1D7FF), (0x1E140, 0x1E149), (0x1E2F0, 0x1E2F9),
    (0x1E950, 0x1E959), (0x1F100, 0x1F10A), (0x1FBF0, 0x1FBF9),
)  # fmt: skip


def _escape(cp: int) -> str:
    return f"\\U{cp:08X}"


def _chars(ranges: tuple[tuple[int, int], ...]) -> str:
    """Every character of ``ranges`` as escapes, for an E'' string (btrim's character set)."""
    return "".join(_escape(c) for a, b in ranges for c in range(a, b + 1))


def _bracket(ranges: tuple[tuple[int, int], ...], *, negate: bool = False) -> str:
    """A regular-expression bracket of ``ranges`` (PostgreSQL's ARE escapes)."""
    body = "".join(_escape(a) if a == b else f"{_escape(a)}-{_escape(b)}" for a, b in ranges)
    return f"[{'^' if negate else ''}{body}]"


_D, _ND = _bracket(_DECIMAL), _bracket(_DECIMAL, negate=True)
_NOT_ISDIGIT = _bracket(_ISDIGIT, negate=True)
# 1971-01-01 UTC: Webex writes 1970-01-01 where it does not know a time (classify.PLACEHOLDER_BEFORE).
_PLACEHOLDER_EPOCH = 31536000

FUNCTIONS = {
    "meetaudit_strip(text)": f"""
CREATE FUNCTION meetaudit_strip(value text) RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$ SELECT btrim(value, E'{_chars(_WHITESPACE)}') $$""",
    "meetaudit_mask_phone(text)": f"""
CREATE FUNCTION meetaudit_mask_phone(number text) RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
SELECT CASE
    WHEN n IS NULL OR n = '' THEN NULL
    WHEN length(regexp_replace(n, '{_ND}', '', 'g')) < 5 THEN '••'
    ELSE regexp_replace(n, '{_D}({_ND}*){_D}({_ND}*)$', '•\\1•\\2')
END FROM (SELECT meetaudit_strip(number) AS n) s $$""",  # noqa: S608 - constant SQL
    "meetaudit_digits(text)": f"""
CREATE FUNCTION meetaudit_digits(value text) RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
SELECT regexp_replace(value, '{_NOT_ISDIGIT}', '', 'g') $$""",
    "meetaudit_caller_name(text,text[])": """
CREATE FUNCTION meetaudit_caller_name(name text, phones text[]) RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
SELECT CASE
    WHEN coalesce(name, '') = '' THEN name
    WHEN meetaudit_digits(name) <> '' AND EXISTS (
        SELECT 1 FROM unnest(phones) n
        WHERE coalesce(n, '') <> '' AND meetaudit_digits(n) = meetaudit_digits(name))
    THEN meetaudit_mask_phone(name)
    ELSE name
END $$""",
    "meetaudit_email_domain(text)": """
CREATE FUNCTION meetaudit_email_domain(email text) RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
SELECT CASE WHEN strpos(e, '@') > 0 AND regexp_replace(e, '@[^@]*$', '') <> ''
            THEN nullif(lower(btrim(meetaudit_strip(regexp_replace(e, '^.*@', '')), '.')), '')
       END
FROM (SELECT meetaudit_strip(email) AS e) s $$""",
    "meetaudit_org_id(text)": """
CREATE FUNCTION meetaudit_org_id(org_id text) RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$ SELECT nullif(lower(meetaudit_strip(org_id)), '') $$""",
    "meetaudit_classify(text,text,text[],text[])": """
CREATE FUNCTION meetaudit_classify(org_id text, email text, own_ids text[], own_domains text[])
RETURNS text LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
SELECT CASE
    WHEN oid IN (SELECT lower(meetaudit_strip(o)) FROM unnest(own_ids) o
                 WHERE meetaudit_strip(o) <> '')
      OR EXISTS (SELECT 1 FROM unnest(own_domains) d0
                 CROSS JOIN LATERAL (SELECT ltrim(lower(meetaudit_strip(d0)), '@') AS d) n
                 WHERE meetaudit_strip(d0) <> ''
                   AND (domain = n.d OR right(domain, length(n.d) + 1) = '.' || n.d))
    THEN 'internal'
    WHEN oid IS NOT NULL OR domain IS NOT NULL THEN 'external'
    ELSE 'unidentified'
END
FROM (SELECT meetaudit_org_id(org_id) AS oid, meetaudit_email_domain(email) AS domain) s $$""",
    "meetaudit_org_key(text,text,text[],text[],text)": """
CREATE FUNCTION meetaudit_org_key(org_id text, email text, own_ids text[], own_domains text[],
                                  org_name text)
RETURNS text LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
SELECT CASE WHEN meetaudit_classify(org_id, email, own_ids, own_domains) = 'internal'
            THEN org_name
            ELSE coalesce(meetaudit_org_id(org_id), meetaudit_email_domain(email)) END $$""",
}

# Each view: its comment, its query, and a comment per column (in the order of the query).
VIEWS: dict[str, tuple[str, str, dict[str, str]]] = {}

VIEWS["analyst_own_organisation"] = (
    "The organisation's own name, email domains and Webex orgIds the other views classify by "
    "(internal when the orgId or the email domain is one of these), as last stored by "
    "`meetaudit db views grant` or `meetaudit db views settings` from meetaudit's settings.",
    """
    SELECT coalesce(s.org_name, 'Your organisation') AS org_name,
           coalesce(s.org_domains, '{}') AS org_domains,
           coalesce(s.org_ids, '{}') AS org_ids,
           coalesce(s.timezone, 'UTC') AS timezone,
           coalesce(s.min_attendance_minutes, 2.0) AS min_attendance_minutes,
           s.stored_at, s.stored_by
    FROM (SELECT 1) AS one LEFT JOIN view_settings s ON s.id
    """,
    {
        "org_name": "Name internal people are counted under.",
        "org_domains": "Email domains that are the organisation's own (subdomains count too).",
        "org_ids": "Webex orgIds that are the organisation's own.",
        "timezone": "Time zone whose calendar months the views count in (the report's).",
        "min_attendance_minutes": "Attendance shorter than this is flagged short_attendance.",
        "stored_at": "When these settings were stored from meetaudit's configuration "
        "(empty: never; then nobody is internal).",
        "stored_by": "The database role that stored them.",
    },
)

VIEWS["analyst_meetings"] = (
    "One row per meeting instance meetaudit knows of (listed by Webex), harvested or not.",
    """
    SELECT m.meeting_id, m.meeting_series_id, m.meeting_number, m.title, m.meeting_type,
           m.scheduled_type, m.timezone AS meeting_timezone, m.start_at, m.end_at,
           m.host_display_name, m.host_email, m.site_url,
           CASE WHEN m.complete_at IS NOT NULL THEN 'complete' ELSE 'not_harvested' END
               AS harvest_status,
           m.complete_at AS harvested_at,
           (SELECT count(*) FROM participants p WHERE p.meeting_id = m.meeting_id)
               AS participant_records,
           (SELECT count(*) FROM invitees i WHERE i.meeting_id = m.meeting_id) AS invitees,
           (SELECT count(*) FROM data_quality_flags f WHERE f.meeting_id = m.meeting_id)
               AS quality_flags
    FROM meetings m
    """,
    {
        "meeting_id": "Webex's id of this meeting instance.",
        "meeting_series_id": "Webex's id of the series the instance belongs to.",
        "meeting_number": "The meeting number people dial or type to join.",
        "title": "The meeting's title.",
        "meeting_type": "Webex's meetingType (meeting, webinar, personalRoomMeeting...).",
        "scheduled_type": "Webex's scheduledType (meeting, webinar, personalRoomMeeting).",
        "meeting_timezone": "The time zone the meeting was scheduled in.",
        "start_at": "When the meeting actually started.",
        "end_at": "When the meeting ended.",
        "host_display_name": "The host's name.",
        "host_email": "The host's email address.",
        "site_url": "The Webex site the meeting was held on.",
        "harvest_status": "complete: participants and invitees are all stored; not_harvested: "
        "listed only, so its people are not in the other views.",
        "harvested_at": "When its participants and invitees were stored.",
        "participant_records": "Participant records Webex gave (one person may have several).",
        "invitees": "People on the meeting's invitee list (0: no invitee list).",
        "quality_flags": "Plausibility flags the harvest put on the meeting or its people.",
    },
)

VIEWS["analyst_known_org_ids"] = (
    "The one Webex orgId given for a person (by email) in a calendar month's harvested meetings. "
    "Webex mostly leaves orgId out of finished meetings, so a person is classified by the orgId "
    "Webex gave for the same email elsewhere in the month, as the monthly report does; a person "
    "seen with two orgIds in a month has none here.",
    """
    SELECT nullif(p.email_norm, '') AS email_norm,
           date_trunc('month', m.start_at AT TIME ZONE s.timezone)::date AS month,
           min(meetaudit_org_id(p.org_id)) AS org_id
    FROM participants p
    JOIN meetings m ON m.meeting_id = p.meeting_id
    CROSS JOIN analyst_own_organisation s
    WHERE m.complete_at IS NOT NULL AND nullif(p.email_norm, '') IS NOT NULL AND meetaudit_org_id(p.org_id) IS NOT NULL
      AND NOT EXISTS (SELECT 1 FROM data_quality_flags f
                      WHERE f.meeting_id = p.meeting_id AND f.check_name = 'org_id_not_uuid'
                        AND f.subject_id = p.participant_id)
    GROUP BY 1, 2
    HAVING count(DISTINCT meetaudit_org_id(p.org_id)) = 1
    """,
    {
        "email_norm": "The person's email address, trimmed and lower-cased.",
        "month": "First day of the calendar month (in the settings' time zone).",
        "org_id": "The orgId Webex gave for this email that month, lower-cased.",
    },
)

_PERSON_KEY = "coalesce(nullif(p.email_norm, ''), 'participant:' || p.participant_id)"
_PHONES = """ARRAY(SELECT x.phone_number FROM (
        SELECT d.phone_number, min(d.seq) AS first_seq FROM participant_devices d
        WHERE d.participant_id = p.participant_id AND coalesce(d.phone_number, '') <> ''
        GROUP BY d.phone_number) x ORDER BY x.first_seq)"""

VIEWS["analyst_attendances"] = (
    "One row per participant record Webex gave: someone who joined a meeting, or waited in its "
    "lobby. A person who rejoined has several records; analyst_reconciliation has one row per "
    "person and meeting. Phone numbers are masked (last two digits hidden), and so is a caller's "
    "name when it is their number.",
    f"""
    SELECT p.participant_id, p.meeting_id, m.start_at AS meeting_start_at,
           {_PERSON_KEY} AS person_key,
           meetaudit_caller_name(p.display_name, {_PHONES}) AS display_name,
           p.email, meetaudit_email_domain(p.email) AS email_domain,
           g.org_id, c.org_id AS classified_org_id,
           meetaudit_classify(c.org_id, p.email, s.org_ids, s.org_domains) AS classification,
           meetaudit_org_key(c.org_id, p.email, s.org_ids, s.org_domains, s.org_name)
               AS organisation,
           CASE WHEN p.host THEN 'host' WHEN p.co_host THEN 'cohost' ELSE 'attendee' END AS role,
           coalesce(p.invitee, false) AS marked_invitee, p.state,
           p.state IS DISTINCT FROM 'lobby' AS admitted, p.joined_at, p.left_at,
           (SELECT count(*) FROM participant_devices d WHERE d.participant_id = p.participant_id)
               AS sessions,
           ARRAY(SELECT meetaudit_mask_phone(n) FROM unnest({_PHONES}) n) AS phone_numbers
    FROM participants p
    JOIN meetings m ON m.meeting_id = p.meeting_id
    CROSS JOIN analyst_own_organisation s
    CROSS JOIN LATERAL (
        SELECT CASE WHEN EXISTS (SELECT 1 FROM data_quality_flags f
                                 WHERE f.meeting_id = p.meeting_id
                                   AND f.check_name = 'org_id_not_uuid'
                                   AND f.subject_id = p.participant_id)
                    THEN NULL ELSE p.org_id END AS org_id) g
    CROSS JOIN LATERAL (
        SELECT CASE WHEN meetaudit_org_id(g.org_id) IS NOT NULL THEN g.org_id
                    ELSE (SELECT k.org_id FROM analyst_known_org_ids k
                          WHERE k.email_norm = nullif(p.email_norm, '')
                            AND k.month = date_trunc('month', m.start_at AT TIME ZONE s.timezone)::date)
               END AS org_id) c
    """,  # noqa: S608 - constant SQL, no user input
    {
        "participant_id": "Webex's id of this participant record.",
        "meeting_id": "The meeting (analyst_meetings.meeting_id).",
        "meeting_start_at": "When the meeting actually started.",
        "person_key": "Who this is, as the report counts people: the email address trimmed and "
        "lower-cased, else participant:<id> (every caller without email is a person of their own).",
        "display_name": "The name shown in the meeting; masked like a phone number when it is "
        "the number the person joined from.",
        "email": "The email address Webex gave.",
        "email_domain": "The email address's domain, lower-cased.",
        "org_id": "The Webex orgId given with this record (left out when the harvest flagged it "
        "as no organisation id).",
        "classified_org_id": "The orgId the person is classified by: this record's, else the one "
        "Webex gave for the same email that month (analyst_known_org_ids).",
        "classification": "internal (the organisation's own orgId or email domain), external "
        "(another orgId or domain) or unidentified (neither: phone callers, mostly).",
        "organisation": "Whom the person is counted under: the organisation's name when "
        "internal, else the orgId (lower-cased), else the email domain; empty when unidentified.",
        "role": "host, cohost or attendee.",
        "marked_invitee": "Webex marked the person an invitee.",
        "state": "Webex's state: end (left), lobby (waited, never admitted), joined...",
        "admitted": "Admitted to the meeting (anything but waiting in the lobby).",
        "joined_at": "When the person joined.",
        "left_at": "When the person left.",
        "sessions": "Join sessions (devices) of this record (analyst_join_sessions).",
        "phone_numbers": "Numbers joined from, each with its last two digits hidden.",
    },
)

_SESSIONS_SQL = f"""
    SELECT d.participant_id, d.seq, d.meeting_id, {_PERSON_KEY} AS person_key,
           d.correlation_id, d.device_type, d.audio_type, d.call_type,
           {{phone}} AS phone_number, d.joined_at, d.left_at, d.duration_seconds
    FROM participant_devices d JOIN participants p ON p.participant_id = d.participant_id
    """  # noqa: S608 - constant SQL, no user input
_SESSION_COLUMNS = {
    "participant_id": "The participant record (analyst_attendances.participant_id).",
    "seq": "Order of the session within the record, from 0.",
    "meeting_id": "The meeting (analyst_meetings.meeting_id).",
    "person_key": "Who this is (see analyst_attendances.person_key).",
    "correlation_id": "Webex's correlationId of the session.",
    "device_type": "Webex's deviceType (webex_app, phone, tp_endpoint...).",
    "audio_type": "Webex's audioType (voip, pstn, inactive).",
    "call_type": "Webex's callType (callIn, callBack) for phone sessions.",
    "phone_number": "The number joined from, last two digits hidden.",
    "joined_at": "When the session began.",
    "left_at": "When the session ended.",
    "duration_seconds": "The session's length as Webex gave it.",
}
VIEWS["analyst_join_sessions"] = (
    "One row per join session (device) of a participant record; phone numbers masked.",
    _SESSIONS_SQL.format(phone="meetaudit_mask_phone(d.phone_number)"),
    _SESSION_COLUMNS,
)
VIEWS["analyst_join_sessions_unmasked"] = (
    "analyst_join_sessions with phone numbers in full. Readable only by roles granted it with "
    "`meetaudit db views grant ROLE --unmasked-phones`.",
    _SESSIONS_SQL.format(phone="nullif(meetaudit_strip(d.phone_number), '')"),
    {**_SESSION_COLUMNS, "phone_number": "The number joined from, in full."},
)

VIEWS["analyst_reconciliation"] = (
    "The monthly report's reconciliation rows: one row per person and harvested meeting, "
    "invitees against attendees (invited and attended, host, not invited, no invitee list, "
    "lobby only, invited and absent). Phone numbers and callers' names that are their numbers "
    "are masked.",
    f"""
    WITH s AS (SELECT * FROM analyst_own_organisation),
    m AS (
        SELECT m.meeting_id, m.start_at, m.title, m.host_email,
               date_trunc('month', m.start_at AT TIME ZONE s.timezone)::date AS month,
               EXISTS (SELECT 1 FROM invitees i WHERE i.meeting_id = m.meeting_id) AS has_list
        FROM meetings m CROSS JOIN s
        WHERE m.complete_at IS NOT NULL
    ),
    rec AS (
        SELECT p.participant_id, p.meeting_id, p.email, p.display_name, p.host, p.co_host,
               p.invitee, p.state, p.joined_at, p.left_at, {_PERSON_KEY} AS key,
               a.org_id AS given_org_id,
               {_PHONES} AS phones
        FROM participants p JOIN m ON m.meeting_id = p.meeting_id
        JOIN analyst_attendances a ON a.participant_id = p.participant_id
    ),
    dev AS (
        SELECT r.meeting_id, r.key, extract(epoch FROM d.joined_at)::float8 AS s,
               extract(epoch FROM d.left_at)::float8 AS e
        FROM rec r JOIN participant_devices d ON d.participant_id = r.participant_id
    ),
    iv AS (  -- the person's valid device sessions, else their records' own times
        SELECT meeting_id, key, s, e FROM dev WHERE s >= {_PLACEHOLDER_EPOCH} AND e > s
        UNION ALL
        SELECT r.meeting_id, r.key, extract(epoch FROM r.joined_at)::float8,
               extract(epoch FROM r.left_at)::float8
        FROM rec r
        WHERE extract(epoch FROM r.joined_at) >= {_PLACEHOLDER_EPOCH}
          AND r.left_at > r.joined_at
          AND NOT EXISTS (SELECT 1 FROM dev x WHERE x.meeting_id = r.meeting_id AND x.key = r.key
                            AND x.s >= {_PLACEHOLDER_EPOCH} AND x.e > x.s)
    ),
    islands AS (  -- overlapping sessions count once
        SELECT meeting_id, key, s, e,
               sum(CASE WHEN prev_end IS NULL OR s > prev_end THEN 1 ELSE 0 END)
                   OVER (PARTITION BY meeting_id, key ORDER BY s, e) AS island
        FROM (SELECT *, max(e) OVER (PARTITION BY meeting_id, key ORDER BY s, e
                                     ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING) AS prev_end
              FROM iv) ordered
    ),
    spans AS (
        SELECT meeting_id, key, sum(e - s) AS seconds, min(s) AS first_s, max(e) AS last_e
        FROM (SELECT meeting_id, key, island, min(s) AS s, max(e) AS e
              FROM islands GROUP BY meeting_id, key, island) i
        GROUP BY meeting_id, key
    ),
    persons AS (
        SELECT r.meeting_id, r.key,
               (array_agg(r.display_name ORDER BY r.participant_id)
                   FILTER (WHERE coalesce(r.display_name, '') <> ''))[1] AS display_name,
               (array_agg(r.email ORDER BY r.participant_id)
                   FILTER (WHERE coalesce(r.email, '') <> ''))[1] AS email,
               (array_agg(r.given_org_id ORDER BY r.participant_id)
                   FILTER (WHERE coalesce(r.given_org_id, '') <> ''))[1] AS org_id,
               bool_or(coalesce(r.host, false)) AS host,
               bool_or(coalesce(r.co_host, false)) AS co_host,
               bool_or(coalesce(r.invitee, false)) AS invitee_flag,
               bool_or(r.state IS DISTINCT FROM 'lobby') AS admitted,
               array_agg(r.participant_id ORDER BY r.participant_id) AS participant_ids,
               (SELECT count(*) FROM dev x WHERE x.meeting_id = r.meeting_id AND x.key = r.key)
                   AS sessions,
               bool_or(r.joined_at < to_timestamp({_PLACEHOLDER_EPOCH})
                       OR r.left_at < to_timestamp({_PLACEHOLDER_EPOCH})) OR EXISTS (
                   SELECT 1 FROM dev x WHERE x.meeting_id = r.meeting_id AND x.key = r.key
                     AND (x.s < {_PLACEHOLDER_EPOCH} OR x.e < {_PLACEHOLDER_EPOCH})) AS placeholder
        FROM rec r
        GROUP BY r.meeting_id, r.key
    ),
    person_phones AS (  -- numbers in the order first joined from, each once
        SELECT meeting_id, key, array_agg(ph ORDER BY participant_id, n) AS phones
        FROM (SELECT DISTINCT ON (r.meeting_id, r.key, u.ph) r.meeting_id, r.key, u.ph,
                     r.participant_id, u.n
              FROM rec r, unnest(r.phones) WITH ORDINALITY AS u(ph, n)
              ORDER BY r.meeting_id, r.key, u.ph, r.participant_id, u.n) first_use
        GROUP BY meeting_id, key
    ),
    invited AS (
        SELECT DISTINCT ON (i.meeting_id, key) i.meeting_id,
               coalesce(nullif(i.email_norm, ''), 'invitee:' || i.invitee_id) AS key,
               i.email, i.display_name, coalesce(i.co_host, false) AS co_host
        FROM invitees i JOIN m ON m.meeting_id = i.meeting_id
        ORDER BY i.meeting_id, key, i.invitee_id
    ),
    people AS (
        SELECT pe.meeting_id, pe.key AS person_key,
               meetaudit_caller_name(pe.display_name, coalesce(ph.phones, '{{}}')) AS display_name, pe.email,
               CASE WHEN pe.host THEN 'host' WHEN pe.co_host THEN 'cohost' ELSE 'attendee' END
                   AS role,
               inv.key IS NOT NULL AS invited, pe.admitted,
               CASE WHEN NOT pe.admitted THEN 'lobby_only'
                    WHEN inv.key IS NOT NULL THEN 'invited_attended'
                    WHEN pe.host THEN 'host_attended'
                    WHEN NOT m.has_list THEN 'attended_no_invitee_list'
                    ELSE 'uninvited_attended' END AS status,
               pe.org_id,
               CASE WHEN meetaudit_org_id(pe.org_id) IS NOT NULL THEN pe.org_id
                    ELSE k.org_id END AS classified_org_id,
               pe.sessions,
               CASE WHEN pe.admitted THEN round(coalesce(sp.seconds, 0))::bigint ELSE 0 END
                   AS attended_seconds,
               to_timestamp(sp.first_s) AS first_joined, to_timestamp(sp.last_e) AS last_left,
               ARRAY(SELECT meetaudit_mask_phone(n) FROM unnest(ph.phones) n) AS phone_numbers,
               pe.participant_ids, pe.placeholder, pe.invitee_flag
        FROM persons pe
        JOIN m ON m.meeting_id = pe.meeting_id
        LEFT JOIN invited inv ON inv.meeting_id = pe.meeting_id AND inv.key = pe.key
        LEFT JOIN spans sp ON sp.meeting_id = pe.meeting_id AND sp.key = pe.key
        LEFT JOIN person_phones ph ON ph.meeting_id = pe.meeting_id AND ph.key = pe.key
        LEFT JOIN analyst_known_org_ids k ON k.email_norm = pe.key AND k.month = m.month
    ),
    absent AS (
        SELECT inv.meeting_id, inv.key AS person_key, inv.display_name, inv.email,
               CASE WHEN inv.co_host THEN 'cohost' ELSE 'invitee' END AS role,
               true AS invited, false AS admitted, 'invited_absent' AS status,
               NULL::text AS org_id, k.org_id AS classified_org_id, 0::bigint AS sessions,
               0::bigint AS attended_seconds, NULL::timestamptz AS first_joined,
               NULL::timestamptz AS last_left, '{{}}'::text[] AS phone_numbers,
               '{{}}'::text[] AS participant_ids, false AS placeholder, false AS invitee_flag
        FROM invited inv
        JOIN m ON m.meeting_id = inv.meeting_id
        LEFT JOIN analyst_known_org_ids k ON k.email_norm = inv.key AND k.month = m.month
        WHERE NOT EXISTS (SELECT 1 FROM persons pe
                          WHERE pe.meeting_id = inv.meeting_id AND pe.key = inv.key)
    )
    SELECT r.meeting_id, m.start_at AS meeting_start_at, m.title AS meeting_title, m.host_email,
           m.month, r.person_key, r.display_name, r.email, r.role, r.invited, r.admitted,
           r.status,
           meetaudit_classify(r.classified_org_id, r.email, s.org_ids, s.org_domains)
               AS classification,
           meetaudit_org_key(r.classified_org_id, r.email, s.org_ids, s.org_domains, s.org_name)
               AS organisation,
           r.org_id, meetaudit_email_domain(r.email) AS email_domain, r.sessions,
           r.attended_seconds, r.first_joined, r.last_left, r.phone_numbers, r.participant_ids,
           array_remove(ARRAY[
               CASE WHEN r.placeholder THEN 'placeholder_time' END,
               CASE WHEN coalesce(r.email, '') = '' AND r.status <> 'invited_absent'
                    THEN 'missing_email' END,
               CASE WHEN r.invitee_flag AND NOT r.invited THEN 'invitee_without_invitation' END,
               CASE WHEN r.admitted AND r.attended_seconds < s.min_attendance_minutes * 60
                    THEN 'short_attendance' END
           ], NULL) AS flags
    FROM (SELECT * FROM people UNION ALL SELECT * FROM absent) r
    JOIN m ON m.meeting_id = r.meeting_id
    CROSS JOIN s
    """,  # noqa: S608 - constant SQL, no user input
    {
        "meeting_id": "The meeting (analyst_meetings.meeting_id); harvested meetings only.",
        "meeting_start_at": "When the meeting actually started.",
        "meeting_title": "The meeting's title.",
        "host_email": "The host's email address.",
        "month": "First day of the meeting's calendar month (in the settings' time zone).",
        "person_key": "Who this is (see analyst_attendances.person_key); an invitee without "
        "email is invitee:<id>.",
        "display_name": "The person's name; masked like a phone number when it is the number "
        "they joined from.",
        "email": "The person's email address.",
        "role": "host, cohost or attendee; for someone invited who never came: cohost or invitee.",
        "invited": "On the meeting's invitee list.",
        "admitted": "Admitted to the meeting (not only waiting in the lobby).",
        "status": "host_attended, invited_attended, uninvited_attended, "
        "attended_no_invitee_list, lobby_only or invited_absent (the report's meanings).",
        "classification": "internal, external or unidentified (see analyst_attendances).",
        "organisation": "Whom the person is counted under (see analyst_attendances).",
        "org_id": "The Webex orgId given with the person's records, if any.",
        "email_domain": "The email address's domain, lower-cased.",
        "sessions": "Join sessions (devices) over all the person's records.",
        "attended_seconds": "Time admitted, in seconds: overlapping sessions count once; 0 when "
        "never admitted.",
        "first_joined": "Start of the person's first session.",
        "last_left": "End of the person's last session.",
        "phone_numbers": "Numbers joined from, each with its last two digits hidden.",
        "participant_ids": "The person's participant records (analyst_attendances).",
        "flags": "placeholder_time (Webex's 1970 placeholder), missing_email, "
        "invitee_without_invitation, short_attendance.",
    },
)

VIEWS["analyst_organisations"] = (
    "Per calendar month, each organisation whose people were admitted to harvested meetings "
    "(internal, external by orgId or domain, unidentified): the report's organisation table.",
    """
    SELECT month, classification, organisation,
           count(DISTINCT meeting_id) AS meetings, count(DISTINCT person_key) AS people,
           sum(attended_seconds)::bigint AS attended_seconds
    FROM analyst_reconciliation
    WHERE admitted
    GROUP BY month, classification, organisation
    """,
    {
        "month": "First day of the calendar month (in the settings' time zone).",
        "classification": "internal, external or unidentified.",
        "organisation": "The organisation's name (internal), orgId or email domain; empty for "
        "unidentified people.",
        "meetings": "Harvested meetings of the month its people were admitted to.",
        "people": "Distinct people (person keys) admitted.",
        "attended_seconds": "Their time admitted, in seconds, summed over meetings.",
    },
)


def _literal(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


def upgrade() -> None:
    op.create_table(
        "view_settings",
        sa.Column("id", sa.Boolean(), server_default=sa.text("true"), nullable=False),
        sa.Column("org_name", sa.Text(), nullable=False),
        sa.Column("org_domains", postgresql.ARRAY(sa.Text()), nullable=False),
        sa.Column("org_ids", postgresql.ARRAY(sa.Text()), nullable=False),
        sa.Column("timezone", sa.Text(), nullable=False),
        sa.Column("min_attendance_minutes", sa.Double(), nullable=False),
        sa.Column("stored_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("stored_by", sa.Text(), nullable=True),
        sa.CheckConstraint("id", name=op.f("ck_view_settings_one_row")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_view_settings")),
    )
    conn = op.get_bind()
    for sql in FUNCTIONS.values():
        conn.exec_driver_sql(sql)
    for name, (comment, query, columns) in VIEWS.items():
        conn.exec_driver_sql(f"CREATE VIEW {name} ({', '.join(columns)}) AS {query}")
        conn.exec_driver_sql(f"COMMENT ON VIEW {name} IS {_literal(comment)}")
        for column, text_ in columns.items():
            conn.exec_driver_sql(f"COMMENT ON COLUMN {name}.{column} IS {_literal(text_)}")


def downgrade() -> None:
    conn = op.get_bind()
    for name in reversed(VIEWS):
        conn.exec_driver_sql(f"DROP VIEW IF EXISTS {name}")
    for signature in reversed(FUNCTIONS):
        conn.exec_driver_sql(f"DROP FUNCTION IF EXISTS {signature}")
    op.drop_table("view_settings")
