"""What the body of the report says, in order, and how it is cut into bounded parts.

:func:`body_events` turns a :class:`ReportContext` into a flat stream of headings, notes, meeting
headings and table rows (reading the spools lazily). :func:`plan_parts` cuts that stream into
parts of at most ``max_rows`` table rows: each part is rendered as its own WeasyPrint document
(WeasyPrint's cost grows with the rows of one document), a table cut in two continues in the next
part under a "(continued)" heading with its header row repeated, and every part starts on a new
page. The cut depends only on the data, never on timing or the number of workers, so the PDF is
the same bytes however it was rendered.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

from reporting.report.context import ReportContext, roster_anchor

DEFAULT_PART_ROWS = 600
# Above this many meetings the index prints one line of text per meeting instead of a table row:
# WeasyPrint lays a text line out in about half the time of a table row of seven cells, which is
# what keeps a 20,000-meeting month within minutes.
INDEX_TABLE_LIMIT = 3_000
_COST = {"h1": 3, "h2": 3, "p": 2, "note": 2, "meeting": 3}


@dataclass
class Part:
    """One bounded run of blocks, rendered as one document."""

    index: int
    section: str
    blocks: list[dict[str, Any]] = field(default_factory=list)
    cost: int = 0


@dataclass
class TocEntry:
    """A heading that appears in the contents and/or the PDF bookmarks."""

    anchor: str
    num: str
    title: str
    level: int
    toc: bool
    page: int | None = None
    top: float | None = None


def _h(kind: str, num: str, title: str, anchor: str, toc: bool = True) -> dict[str, Any]:
    return {"kind": kind, "num": num, "title": title, "id": anchor, "toc": toc, "cont": False}


# The subsections of section 3, in order: (table, exception list or None, title, introduction);
# numbered 3.1, 3.2, … in this order (see exception_numbers).
EXCEPTION_SECTIONS: tuple[tuple[str, str | None, str, str], ...] = (
    ("uninvited", "uninvited", "Attended without invitation",
     "Admitted to a meeting that has an invitee list, with an email that is not on it (the "
     "host is not counted). Attendances that cannot be tested against a list are not here but "
     "in {not_testable}."),
    ("not_testable", "not_testable", "Attended, not testable against an invitee list",
     "Admitted, but the reconciliation cannot test the attendance: the meeting has no invitee "
     "list, or the person has no email to look for on it (invitees are matched by email). "
     "Counted apart: neither invited nor uninvited. Each line gives the reason."),
    ("orgs", None, "Participants by organisation and domain",
     "Everyone admitted, per organisation: internal, each external orgId or email domain, and "
     "unidentified participants. One line per organisation: people are distinct persons (an "
     "email is one person all period; someone without one is a person per attendance), "
     "attendances count each person once per meeting, minutes are attended minutes."),
    ("external_people", "external_people", "External participants",
     "One line per external person (not per attendance), under the orgId Webex gave for them "
     "(in any meeting of the period), else their email domain; meetings and minutes are "
     "summed over their attendances."),
    ("unidentified", "unidentified", "Unidentified participants",
     "No orgId and no email — mostly phone callers. Each has a caller reference (C-012) of "
     "their own, as nothing else tells them apart; admitted, each is one attendance and one "
     "person."),
    ("no_shows", "no_shows", "Invited, never joined",
     "On the invitee list, never in the meeting (not even the lobby)."),
    ("lobby", "lobby", "Waited in the lobby, never admitted", ""),
    ("flags", "flags", "Data-quality flags",
     "Placeholder times (1970), missing emails, participants Webex marks as invitees with no "
     "matching invitation, short attendance, meetings without an invitee list."),
    ("quality", "quality", "Plausibility flags from the harvest",
     "Details Webex gave that cannot be true (a session leaving before it joined, a negative "
     "duration, a session far outside its meeting, more minutes than the meeting lasted, an "
     "email that is not an address, an orgId that is not an organisation id). The meeting "
     "is stored and counted as Webex gave it; each flag names the check (see section 1.5). "
     "Items a check refused are gaps (appendix), not listed here."),
)  # fmt: skip


def exception_numbers() -> dict[str, str]:
    """The number of each subsection of section 3 (``{"uninvited": "3.1", …}``), for the
    cross-references of the report's other pages."""
    return {table: f"3.{n}" for n, (table, *_) in enumerate(EXCEPTION_SECTIONS, start=1)}


def body_events(ctx: ReportContext) -> Iterator[dict[str, Any]]:
    """The body of the report, in reading order: exceptions, meetings, rosters, gaps."""
    limit = ctx.params.exception_row_limit
    exc = {**ctx.exceptions, "quality": ctx.quality_flags}
    yield _h("h1", "3", "Exceptions", "exceptions")
    yield {
        "kind": "p",
        "cls": "lead",
        "text": "What an auditor reads first: attendances without an invitation, attendances "
        "that cannot be tested against an invitee list, organisations and people from outside, "
        "participants who could not be identified, invitees who never joined, people left in "
        "the lobby, and data-quality flags. A line is one reconciliation row (one person at one "
        "meeting, section 1.1) unless the list says otherwise, opening with the row's reference. "
        f"Lists are in order of meeting start; each prints at most {limit:,} rows, and the "
        "attached reconciliation.csv holds every row (filter on the status, classification and "
        "flags columns).",
    }
    # Cross-references are looked up, not typed: a section added later cannot leave one stale.
    numbers = exception_numbers()
    for table, key, title, intro in EXCEPTION_SECTIONS:
        num = numbers[table]
        yield _h("h2", num, title, f"exc-{table}")
        if intro:
            yield {"kind": "p", "text": intro.format(**numbers)}
        if key is None:
            rows = ctx.org_table
            shown: list[dict[str, Any]] = rows[:limit]
            total = len(rows)
        else:
            shown = exc[key].rows
            total = exc[key].total
        if not total:
            yield {"kind": "note", "cls": "ok", "text": "None in this period."}
            continue
        if key == "flags":
            counts = ", ".join(
                f"{n:,} × {label}" for flag, label in _flag_labels() if (n := ctx.flag_counts[flag])
            )
            # Rows (people in meetings) and meetings are counted apart, never added together:
            # the summary's tile counts the rows.
            meetings = ctx.flag_counts.get("no_invitee_list", 0)
            flagged = ctx.totals.flagged_rows
            yield {"kind": "p", "text": (
                f"{flagged:,} reconciliation row{'s' if flagged != 1 else ''} with flags (the summary's "
                f"figure) and {meetings:,} meeting{'s' if meetings != 1 else ''} without an "
                f"invitee list; one line per flag below. Counts: {counts}."
            )}  # fmt: skip
        if key == "not_testable":
            t = ctx.totals
            yield {"kind": "p", "text": (
                f"{_n(t.not_testable, 'attendance')} not testable: "
                f"{t.not_testable_no_invitee_list:,} at the "
                f"{_n(t.meetings_without_invitee_list, 'meeting')} without an invitee list, "
                f"{t.not_testable_no_email:,} of people without an email at meetings with one."
            )}  # fmt: skip
        yield {"kind": "table", "table": table, "rows": shown}
        if total > len(shown):
            yield {
                "kind": "note",
                "cls": "warn",
                "text": f"{total - len(shown):,} more of {total:,} are not printed; "
                + (
                    "the manifest counts them per check."
                    if key == "quality"
                    else "every one is in the attached reconciliation.csv."
                ),
            }
        else:
            yield {
                "kind": "p",
                "cls": "muted small",
                "text": f"{total:,} line{'s' if total != 1 else ''} in all.",
            }

    yield _h("h1", "4", "Meetings of the period", "meetings")
    yield {
        "kind": "p",
        "cls": "lead",
        "text": f"All {ctx.totals.meetings:,} meetings whose actual start falls in the period, "
        "in order of start, with the reconciliation counts per meeting. A meeting that was not "
        "harvested completely is marked and explained in Appendix A. The attached meetings.csv "
        "has the same rows.",
    }
    if ctx.totals.meetings > INDEX_TABLE_LIMIT:
        yield {
            "kind": "p",
            "text": "One line per meeting: reference, start, title, host, invitees and "
            "attendances, the meeting's exceptions, and its Webex meeting id.",
        }
        yield {"kind": "table", "table": "meetings_lines", "rows": iter(ctx.meetings)}
    elif ctx.totals.meetings:
        yield {"kind": "table", "table": "meetings", "rows": iter(ctx.meetings)}
    else:
        yield {"kind": "note", "cls": "warn", "text": "No meeting is stored for this period."}

    yield _h("h1", "5", "Per-meeting reconciliation", "rosters")
    if ctx.rosters is not None:
        yield {
            "kind": "p",
            "cls": "lead",
            "text": "For each harvested meeting, everyone invited or present: invited and "
            "attended, invited and absent, attended without invitation, never admitted from the "
            "lobby. Hosts and co-hosts are marked; minutes are the union of a person's sessions.",
        }
        for block in ctx.rosters:
            m = block["meeting"]
            yield {"kind": "meeting", "m": m, "id": roster_anchor(m["meeting_ref"]), "cont": False}
            if block["rows"]:
                yield {"kind": "table", "table": "roster", "rows": block["rows"]}
            else:
                yield {"kind": "p", "cls": "muted small", "text": "Nobody joined or was invited."}
    else:
        yield {
            "kind": "note",
            "text": f"This period has {ctx.roster_rows:,}+ roster rows, more than the "
            f"{ctx.params.roster_row_limit:,} this PDF prints in full. Section 4 accounts for "
            "every meeting with its counts, section 3 lists the exceptions, and the attached "
            "reconciliation.csv holds every reconciliation row (one per person per meeting, "
            "with the same references, statuses, classification and flags).",
        }

    yield _h("h1", "A", "Gaps (appendix)", "gaps")
    if ctx.gaps.count:
        yield {
            "kind": "p",
            "cls": "lead",
            "text": "What is missing from this period as this report was generated — the same "
            "list meetaudit gaps gives for it: time no finished harvest has listed, each "
            "listing window that failed, each list item refused (with the meeting id Webex "
            "sent), each meeting not harvested completely or not ended yet, with the HTTP status "
            "and Webex trackingId of the last attempt. Figures elsewhere in this "
            "report do not include these meetings. Running meetaudit harvest again for the "
            "period tries them again and closes every gap it can fetch; a meeting Webex "
            "refuses (HTTP 403, 404 or 410) stays a gap, with its number of attempts, until "
            f"access is granted. Times are in {ctx.params.timezone}.",
        }
        yield {"kind": "table", "table": "gaps", "rows": iter(ctx.gaps)}
    else:
        yield {
            "kind": "note",
            "cls": "ok",
            "text": "No gaps: every ended meeting of the period that Webex listed is harvested "
            "completely, and every listing request succeeded.",
        }


def _n(count: int, word: str) -> str:
    """``1 meeting``, ``2 meetings``."""
    return f"{count:,} {word}{'' if count == 1 else 's'}"


def _flag_labels() -> Iterable[tuple[str, str]]:
    from reporting.report.context import FLAG_LABELS

    return FLAG_LABELS.items()


def plan_parts(
    events: Iterable[dict[str, Any]], max_rows: int = DEFAULT_PART_ROWS
) -> Iterator[Part]:
    """Cut the event stream into :class:`Part` s of at most about ``max_rows`` rows.

    A part is cut only where rows would exceed the budget: before a table whose part is full
    already — together with the headings and introduction that lead up to the table, so no
    heading is left at the end of a part and a short subsection without a table (a heading and
    "None in this period") runs on in the part before instead of starting a page of its own —
    or inside a long table, which then continues under "(continued)" headings.
    """
    index = 0
    part: Part | None = None
    h1: dict[str, Any] | None = None
    context: dict[str, Any] | None = None  # the heading a continued table repeats

    def new_part(cont: bool, repeat_context: bool = True) -> Part:
        nonlocal index
        p = Part(index=index, section=f"{h1['num']}  {h1['title']}" if h1 else "")
        index += 1
        if cont and h1 is not None:
            p.blocks.append({**h1, "id": None, "cont": True})
            if repeat_context and context is not None and context is not h1:
                p.blocks.append({**context, "id": None, "cont": True})
            p.cost += 6
        return p

    for ev in events:
        kind = ev["kind"]
        if kind == "h1":
            if part is not None and part.blocks:
                yield part
            h1 = ev
            context = ev
            part = new_part(cont=False)
            part.blocks.append(ev)
            part.cost += _COST["h1"]
            continue
        if part is None:
            part = new_part(cont=False)
        if kind in ("h2", "meeting"):
            context = ev
        if kind != "table":
            if part.cost >= 2 * max_rows and kind in ("h2", "meeting"):
                # Headings and notes without tables in their thousands: bounded all the same.
                yield part
                part = new_part(cont=True, repeat_context=False)
            part.blocks.append(ev)
            part.cost += _COST.get(kind, 2)
            continue
        if part.cost >= max_rows:
            # The part is full before this table: the blocks that introduce it go with it
            # (unless they are all the part would be left with but its heading).
            lead = _trailing_lead(part.blocks)
            rest = part.blocks[: len(part.blocks) - len(lead)]
            if any(b["kind"] == "table" for b in rest):
                del part.blocks[len(rest) :]
                yield part
                heading_first = bool(lead) and lead[0]["kind"] in ("h2", "meeting")
                part = new_part(cont=True, repeat_context=not heading_first)
                part.blocks.extend(lead)
                part.cost += sum(_COST.get(b["kind"], 2) for b in lead)
        block: dict[str, Any] = {"kind": "table", "table": ev["table"], "rows": []}
        part.blocks.append(block)
        for row in ev["rows"]:
            if part.cost >= max_rows and block["rows"]:
                yield part
                part = new_part(cont=True)
                block = {"kind": "table", "table": ev["table"], "rows": []}
                part.blocks.append(block)
            block["rows"].append(row)
            part.cost += 1
    if part is not None and part.blocks:
        yield part


def _trailing_lead(blocks: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The blocks at the end of ``blocks`` that lead up to the table that follows them: back
    to the last subsection heading (or meeting), never past a table or a section heading."""
    n = len(blocks)
    while n > 0 and blocks[n - 1]["kind"] not in ("table", "h1"):
        n -= 1
        if blocks[n]["kind"] in ("h2", "meeting"):
            break
    return blocks[n:]


def outline_entries(part: Part) -> list[TocEntry]:
    """The headings of a part that become contents lines or bookmarks."""
    out = []
    for b in part.blocks:
        if not b.get("id"):
            continue
        if b["kind"] == "h1":
            out.append(TocEntry(b["id"], b["num"], b["title"], 1, b.get("toc", True)))
        elif b["kind"] == "h2":
            out.append(TocEntry(b["id"], b["num"], b["title"], 2, b.get("toc", True)))
        elif b["kind"] == "meeting":
            m = b["m"]
            title = f"{m['meeting_ref']}  {m['start_short']}  {m['title'] or '(untitled)'}"
            out.append(TocEntry(b["id"], "", title, 2, False))
    return out
