"""Where the bearer token comes from: a fixed token, or an OAuth integration that refreshes.

A provider hands out the current access token; an OAuth provider refreshes it shortly before it
expires and once more when the API answers 401, then gives up with :class:`WebexAuthError`. The
token itself is never put into a message, a log line or an exception.
"""

from __future__ import annotations

import asyncio
import time
from typing import Protocol

import httpx

from reporting.errors import WebexAuthError

# Refresh this long before the token's announced expiry, so no request is sent with a dying token.
EXPIRY_MARGIN_SECONDS = 300.0


class TokenProvider(Protocol):
    """Supplies bearer tokens to the API client."""

    async def token(self, client: httpx.AsyncClient) -> str:
        """The access token to send now."""
        ...

    async def refresh_after_401(self, client: httpx.AsyncClient, rejected: str) -> bool:
        """Get a new token after ``rejected`` was refused; ``False`` when that is impossible."""
        ...


class StaticToken:
    """A token given as is (environment variable or secret file); it cannot be refreshed."""

    def __init__(self, token: str) -> None:
        self._token = token

    def __repr__(self) -> str:
        return "StaticToken(***)"

    async def token(self, client: httpx.AsyncClient) -> str:
        """The configured token."""
        return self._token

    async def refresh_after_401(self, client: httpx.AsyncClient, rejected: str) -> bool:
        """A fixed token cannot be refreshed."""
        return False


class OAuthRefresher:
    """An OAuth integration's access token, refreshed with its refresh token when needed."""

    def __init__(
        self, token_url: str, client_id: str, client_secret: str, refresh_token: str
    ) -> None:
        self._token_url = token_url
        self._client_id = client_id
        self._client_secret = client_secret
        self._refresh_token = refresh_token
        self._access: str | None = None
        self._refresh_at = 0.0
        self.refreshes = 0
        self._lock = asyncio.Lock()

    def __repr__(self) -> str:
        return f"OAuthRefresher(client_id={self._client_id!r}, secrets=***)"

    async def token(self, client: httpx.AsyncClient) -> str:
        """The current access token, refreshed first when it is missing or about to expire."""
        async with self._lock:
            if self._access is None or time.monotonic() >= self._refresh_at:
                await self._refresh(client)
            assert self._access is not None
            return self._access

    async def refresh_after_401(self, client: httpx.AsyncClient, rejected: str) -> bool:
        """Refresh once after a 401, unless another request already did."""
        async with self._lock:
            if self._access != rejected:
                return True
            await self._refresh(client)
            return True

    async def _refresh(self, client: httpx.AsyncClient) -> None:
        try:
            response = await client.post(
                self._token_url,
                data={
                    "grant_type": "refresh_token",
                    "client_id": self._client_id,
                    "client_secret": self._client_secret,
                    "refresh_token": self._refresh_token,
                },
            )
        except httpx.TransportError as exc:
            raise WebexAuthError(
                f"could not reach the Webex token endpoint to refresh the access token "
                f"({type(exc).__name__}); the harvest stopped, stored meetings are kept"
            ) from None
        if response.status_code != 200:
            raise WebexAuthError(
                f"refreshing the Webex access token failed (HTTP {response.status_code}): the "
                "integration's refresh token may be revoked or expired. Authorise the integration "
                "again and set MEETAUDIT_WEBEX_REFRESH_TOKEN; stored meetings are kept",
                status=response.status_code,
                tracking_id=response.headers.get("trackingid"),
            )
        try:
            body = response.json()
            self._access = str(body["access_token"])
            expires_in = float(body.get("expires_in", 3600))
        except (ValueError, KeyError, TypeError):
            raise WebexAuthError(
                "the Webex token endpoint answered without an access token; the harvest stopped, "
                "stored meetings are kept"
            ) from None
        # A new refresh token, when the endpoint rotates them, replaces the old one.
        self._refresh_token = str(body.get("refresh_token") or self._refresh_token)
        # Refresh a margin before expiry; a short-lived token is refreshed at 80 % of its life.
        margin = min(EXPIRY_MARGIN_SECONDS, expires_in / 5)
        self._refresh_at = time.monotonic() + expires_in - margin
        self.refreshes += 1
