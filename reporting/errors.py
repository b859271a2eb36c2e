"""Every failure meetaudit reports to its user, as one hierarchy.

The library raises these; the CLI turns each into one plain line and an exit status, never a
traceback. Messages say what happened, what was kept, and what to do next — and never contain a
secret (tokens and database passwords are redacted before a message is built).

    MeetauditError                 root; exit status 1
    ├── ConfigError                a setting is missing, malformed or a placeholder
    │   └── PeriodError            a period (month, from/to) given wrongly; exit status 2
    ├── DatabaseError              PostgreSQL cannot be reached or refused a statement
    ├── WebexError                 talking to the Webex API failed
    │   ├── WebexAuthError         401 (token missing, expired or revoked; refresh failed)
    │   ├── WebexHTTPError         any other non-success answer after retries (status, trackingId)
    │   ├── WebexPayloadError      a 200 answer whose body is not what the spec promises
    │   ├── UnsafeLinkError        a paging link that leaves the configured API origin or listing
    │   └── EndlessListing         a listing that makes no progress or outgrows its documented bound
    ├── QuestionError              an investigate question asked wrongly (whom, which number); exit 2
    ├── HarvestIncomplete          the harvest finished but some meetings are gaps; exit status 3
    ├── ReportError                a report cannot be built or written
    ├── WitnessError               a report was recorded, but its ledger head was not published
    ├── VerificationError          a file or the ledger failed verification; exit status 4
    └── CaseError                  an investigation case is missing, unknown or closed; exit 2
"""

from __future__ import annotations


class MeetauditError(Exception):
    """Root of every error meetaudit raises on purpose."""

    exit_code = 1


class ConfigError(MeetauditError):
    """A setting is missing, malformed, or still a placeholder."""


class PeriodError(ConfigError):
    """A period was given wrongly (a month not ``YYYY-MM``, ``--from`` without ``--to``, an end
    before the start): a usage mistake, which the CLI shows with its usage (exit status 2) and
    the console as a form or request error (400)."""

    exit_code = 2


class DatabaseError(MeetauditError):
    """PostgreSQL could not be reached, or refused what was asked of it."""


class WebexError(MeetauditError):
    """Talking to the Webex API failed."""

    def __init__(
        self,
        message: str,
        *,
        status: int | None = None,
        tracking_id: str | None = None,
        url: str | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.tracking_id = tracking_id
        self.url = url


class WebexUnreachable(WebexError):
    """No connection to the Webex API could be made at all (wrong address, network down)."""


class WebexAuthError(WebexError):
    """The API answered 401: the token is missing, expired or revoked, and refreshing failed."""


class WebexHTTPError(WebexError):
    """A non-success answer that retrying did not cure."""


class WebexPayloadError(WebexError):
    """A successful answer whose body does not match the published schema."""


class WebexNotJson(WebexPayloadError):
    """A successful answer that is not JSON at all (an HTML page: a proxy's, a sign-in page)."""


class UnsafeLinkError(WebexError):
    """A paging ``Link`` pointed away from the configured API origin or the listing's path."""


class EndlessListing(WebexError):
    """Webex kept paging one listing without end: a link or page it had sent before, or more
    pages or items than the listing can hold; paging was stopped. ``pages`` were fetched."""

    def __init__(self, message: str, *, pages: int = 0, **kw: object) -> None:
        super().__init__(message, **kw)  # type: ignore[arg-type]
        self.pages = pages


class QuestionError(MeetauditError):
    """An investigate question was asked wrongly (no one to look for, too few digits of a phone
    number): a usage mistake, as :class:`PeriodError` (exit status 2; the console: 400)."""

    exit_code = 2


class HarvestIncomplete(MeetauditError):
    """The harvest ended, but some meetings of the window could not be fetched (recorded as gaps)."""

    exit_code = 3


class ReportError(MeetauditError):
    """A report could not be built or written."""


class WitnessError(MeetauditError):
    """A report was written and recorded in the ledger, but the new ledger head could not be
    published to the witness (or timestamped): exit status 1, so a scheduler raises an alarm."""


class VerificationError(MeetauditError):
    """A report file or the report ledger failed verification."""

    exit_code = 4


class CaseError(MeetauditError):
    """A question needs an open investigation case, and none (or a closed one) was given."""

    exit_code = 2
