"""Single sign-on with OpenID Connect: the authorization code flow with PKCE.

The identity provider is found from ``oidc_issuer`` (its ``/.well-known/openid-configuration``).
Signing in sends the browser there with a fresh ``state``, ``nonce`` and PKCE challenge (kept in
``web_logins`` so any instance can finish the flow); the provider sends it back with a code,
which is exchanged for an ID token. The token's signature (the provider's published keys), issuer,
audience, expiry and nonce are checked; the groups in ``oidc_groups_claim`` give the role through
``oidc_role_groups`` (``group=role`` pairs). A person in no mapped group is not let in.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import secrets
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

import httpx
from joserfc import jwt
from joserfc.errors import JoseError
from joserfc.jwk import KeySet
from sqlalchemy import delete
from sqlalchemy.orm import Session

from reporting.config import Settings
from reporting.db.models import WEB_ROLES, WebLogin
from reporting.errors import ConfigError, MeetauditError

LOGIN_LIFETIME = dt.timedelta(minutes=10)
ALGORITHMS = ["RS256", "ES256", "PS256"]
TIMEOUT = 10.0


class SignOnError(MeetauditError):
    """Single sign-on did not succeed; the message says why, in a person's words."""


def enabled(settings: Settings) -> bool:
    """Whether single sign-on is configured."""
    return bool(settings.oidc_issuer and settings.oidc_client_id and settings.oidc_redirect_url)


def role_map(settings: Settings) -> dict[str, str]:
    """``oidc_role_groups`` as group → role; a malformed pair is a configuration error."""
    out: dict[str, str] = {}
    for pair in settings.oidc_role_groups:
        group, sep, role = pair.partition("=")
        if not sep or not group.strip() or role.strip() not in WEB_ROLES:
            raise ConfigError(
                f"oidc_role_groups: {pair!r} is not GROUP=ROLE with a role among "
                f"{', '.join(WEB_ROLES)}"
            )
        out[group.strip()] = role.strip()
    return out


def _discover(settings: Settings) -> dict[str, Any]:
    url = f"{(settings.oidc_issuer or '').rstrip('/')}/.well-known/openid-configuration"
    try:
        response = httpx.get(url, timeout=TIMEOUT)
        response.raise_for_status()
        config: dict[str, Any] = response.json()
    except (httpx.HTTPError, ValueError) as exc:
        raise SignOnError(
            f"the identity provider at {settings.oidc_issuer} could not be reached ({exc}); "
            "sign in with a local account, or ask an administrator"
        ) from None
    return config


def _challenge(verifier: str) -> str:
    digest = hashlib.sha256(verifier.encode()).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


def start(session: Session, settings: Settings, next_path: str) -> str:
    """Record a sign-on under way; the provider's URL to send the browser to."""
    config = _discover(settings)
    state, nonce, verifier = (secrets.token_urlsafe(32) for _ in range(3))
    now = dt.datetime.now(dt.UTC)
    session.execute(delete(WebLogin).where(WebLogin.created_at < now - LOGIN_LIFETIME))
    session.add(WebLogin(state=state, nonce=nonce, code_verifier=verifier,
                         next_path=next_path, created_at=now))  # fmt: skip
    session.flush()
    query = urlencode({
        "response_type": "code",
        "client_id": settings.oidc_client_id,
        "redirect_uri": settings.oidc_redirect_url,
        "scope": "openid email profile",
        "state": state,
        "nonce": nonce,
        "code_challenge": _challenge(verifier),
        "code_challenge_method": "S256",
    })  # fmt: skip
    return f"{config['authorization_endpoint']}?{query}"


@dataclass(frozen=True)
class Identity:
    """Who the identity provider says signed in, and the role their groups give."""

    name: str
    role: str
    next_path: str


def finish(session: Session, settings: Settings, *, state: str, code: str) -> Identity:
    """Exchange the code, check the ID token, map the groups to a role."""
    login = session.get(WebLogin, state, with_for_update=True)
    if login is None or login.created_at < dt.datetime.now(dt.UTC) - LOGIN_LIFETIME:
        raise SignOnError("this sign-in link is unknown or too old: start signing in again")
    session.delete(login)  # a state is used once
    session.flush()
    config = _discover(settings)
    secret = settings.oidc_client_secret.get_secret_value() if settings.oidc_client_secret else ""
    try:
        response = httpx.post(
            config["token_endpoint"],
            data={
                "grant_type": "authorization_code",
                "code": code,
                "redirect_uri": settings.oidc_redirect_url,
                "client_id": settings.oidc_client_id,
                "code_verifier": login.code_verifier,
            },
            auth=(settings.oidc_client_id or "", secret) if secret else None,
            timeout=TIMEOUT,
        )
        response.raise_for_status()
        id_token = response.json()["id_token"]
        keys = httpx.get(config["jwks_uri"], timeout=TIMEOUT).json()
    except (httpx.HTTPError, ValueError, KeyError) as exc:
        raise SignOnError(f"the identity provider refused the sign-in ({exc})") from None
    try:
        token = jwt.decode(id_token, KeySet.import_key_set(keys), algorithms=ALGORITHMS)
        jwt.JWTClaimsRegistry(
            leeway=60,
            iss={"essential": True, "value": str(config.get("issuer", settings.oidc_issuer))},
            aud={"essential": True, "value": str(settings.oidc_client_id)},
            exp={"essential": True},
            nonce={"essential": True, "value": login.nonce},
        ).validate(token.claims)
    except (JoseError, ValueError, TypeError) as exc:
        raise SignOnError(f"the identity provider's token is not valid ({exc})") from None
    claims = token.claims
    groups = claims.get(settings.oidc_groups_claim) or []
    if isinstance(groups, str):
        groups = [groups]
    mapping = role_map(settings)
    roles = [mapping[g] for g in groups if g in mapping]
    if not roles:
        raise SignOnError(
            "you are signed in at the identity provider, but none of your groups gives a role "
            "in meetaudit: ask an administrator to add you to one"
        )
    # Several groups: the role listed first in WEB_ROLES order is not a privilege ladder, so
    # take the first group the provider lists that maps, which the provider controls.
    name = str(claims.get("email") or claims.get("preferred_username") or claims["sub"])
    return Identity(name=name, role=roles[0], next_path=login.next_path)
