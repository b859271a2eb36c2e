"""RFC 3161 timestamps from the time-stamping authority (TSA) the settings name.

A timestamp token is the TSA's signed statement that a given SHA-256 existed at a given time:
the time does not come from the report host's clock, which whoever runs that host controls.
Every report signature carries one (pyHanko asks :class:`HttpxTimeStamper` for it), and
:func:`timestamp_token` stamps any other bytes, :func:`token_over_digest` a SHA-256 itself (the
ledger witness stamps each new head's entry hash).

The TSA is reached over HTTP with httpx (``application/timestamp-query``), one request per
stamp, with the ``tsa_timeout`` setting; no other address is contacted.
"""

from __future__ import annotations

import asyncio
import hashlib
from typing import TYPE_CHECKING

import httpx
from asn1crypto import tsp
from pyhanko.sign.timestamps import TimeStamper, TimestampRequestError

from reporting.errors import ReportError

if TYPE_CHECKING:
    from reporting.config import Settings


class TimestampError(ReportError):
    """The time-stamping authority could not be reached or refused to stamp."""


class HttpxTimeStamper(TimeStamper):
    """A pyHanko timestamper that asks the TSA at ``url`` over HTTP(S) with httpx."""

    def __init__(self, url: str, *, timeout: float = 10.0) -> None:
        super().__init__(include_nonce=True)  # type: ignore[no-untyped-call]
        self.url = url
        self.timeout = timeout

    async def async_request_tsa_response(self, req: tsp.TimeStampReq) -> tsp.TimeStampResp:
        """Send one timestamp request; a network failure or a non-200 answer is a TimestampError."""
        try:
            async with httpx.AsyncClient(timeout=self.timeout) as client:
                response = await client.post(
                    self.url,
                    content=req.dump(),
                    headers={"Content-Type": "application/timestamp-query"},
                )
        except httpx.HTTPError as exc:
            raise TimestampError(_unreachable(self.url, str(exc) or type(exc).__name__)) from None
        if response.status_code != 200:
            raise TimestampError(_unreachable(self.url, f"HTTP {response.status_code}"))
        try:
            return tsp.TimeStampResp.load(response.content)
        except ValueError:
            raise TimestampError(
                _unreachable(self.url, "its answer is not an RFC 3161 timestamp response")
            ) from None


def _unreachable(url: str, why: str) -> str:
    return (
        f"the time-stamping authority at {url} did not give a timestamp ({why}). Nothing was "
        "written or recorded. Check the TSA_URL setting and that the TSA answers, then run "
        "again"
    )


def timestamper(settings: Settings) -> HttpxTimeStamper | None:
    """The timestamper of ``settings.tsa_url``, or ``None`` when no TSA is configured."""
    if not settings.tsa_url:
        return None
    return HttpxTimeStamper(settings.tsa_url, timeout=settings.tsa_timeout)


def timestamp_token(data: bytes, settings: Settings) -> bytes | None:
    """The DER RFC 3161 timestamp token (a CMS ContentInfo) over SHA-256(``data``) from the
    configured TSA, or ``None`` when no TSA is configured. Raises :class:`TimestampError` when
    the TSA fails."""
    stamper = timestamper(settings)
    if stamper is None:
        return None
    return token_over_digest(stamper, hashlib.sha256(data).digest())


def token_over_digest(stamper: HttpxTimeStamper, digest: bytes) -> bytes:
    """The DER timestamp token whose message imprint is the SHA-256 ``digest`` itself (a ledger
    head's entry hash, say). Raises :class:`TimestampError` when the TSA fails."""
    try:
        token = asyncio.run(stamper.async_timestamp(digest, "sha256"))
    except TimestampRequestError as exc:
        raise TimestampError(_unreachable(stamper.url, str(exc))) from None
    return bytes(token.dump())
