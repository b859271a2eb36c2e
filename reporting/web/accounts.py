"""Local accounts and signed-in sessions of the console, stored in PostgreSQL.

Passwords are hashed with Argon2id (argon2-cffi's defaults, RFC 9106's second recommended
parameters). After :data:`MAX_FAILURES` wrong passwords in a row an account is locked for
:data:`LOCKOUT`; a wrong name and a wrong password get the same answer. A session is a random
token in an HttpOnly cookie; the database keeps only its SHA-256, with the CSRF token that every
form of that session must carry and the time it expires.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import secrets
from dataclasses import dataclass

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError
from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from reporting.db.models import WEB_ROLES, WebApiToken, WebSession, WebUser
from reporting.errors import ConfigError

MAX_FAILURES = 5
LOCKOUT = dt.timedelta(minutes=15)
#: How finely an API token's last use is recorded.
LAST_USED_GRANULARITY = dt.timedelta(minutes=1)
SESSION_LIFETIME = dt.timedelta(hours=8)
MIN_PASSWORD = 12
_hasher = PasswordHasher()


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def add_user(session: Session, name: str, role: str, password: str, *, by: str) -> WebUser:
    """Create an account; the password must be at least :data:`MIN_PASSWORD` characters."""
    name = name.strip()
    if not name or len(name) > 120 or any(not c.isprintable() or c.isspace() for c in name):
        raise ConfigError("an account name is 1 to 120 printable characters without spaces")
    if role not in WEB_ROLES:
        raise ConfigError(f"the role must be one of {', '.join(WEB_ROLES)}, not {role!r}")
    if len(password) < MIN_PASSWORD:
        raise ConfigError(f"the password must have at least {MIN_PASSWORD} characters")
    if session.get(WebUser, name) is not None:
        raise ConfigError(f"there is already an account {name!r}")
    user = WebUser(
        name=name,
        role=role,
        password_hash=_hasher.hash(password),
        created_at=_now(),
        created_by=by,
        disabled=False,
        failed_logins=0,
    )
    session.add(user)
    session.flush()
    return user


def set_disabled(session: Session, name: str, disabled: bool) -> WebUser:
    """Disable (or enable again) an account; disabling also ends its sessions."""
    user = session.get(WebUser, name)
    if user is None:
        raise ConfigError(f"there is no account {name!r}")
    user.disabled = disabled
    if disabled:
        session.execute(delete(WebSession).where(WebSession.user_name == name))
    session.flush()
    return user


@dataclass(frozen=True)
class SignIn:
    """The outcome of a sign-in attempt: the new session's cookie token, or why not."""

    user: WebUser | None
    token: str | None
    problem: str | None


BAD_CREDENTIALS = "the name or the password is wrong"


def sign_in(session: Session, name: str, password: str, *, client: str | None) -> SignIn:
    """Check a password; on success start a session, on failure count it (and lock)."""
    now = _now()
    user = session.get(WebUser, name.strip(), with_for_update=True)
    if user is None or user.disabled:
        _hasher.hash(password)  # the same work as a real check: names cannot be probed by time
        return SignIn(None, None, BAD_CREDENTIALS)
    if user.locked_until is not None and user.locked_until > now:
        return SignIn(
            None,
            None,
            f"this account is locked after {MAX_FAILURES} wrong passwords until "
            f"{user.locked_until:%H:%M} UTC",
        )
    try:
        _hasher.verify(user.password_hash, password)
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        user.failed_logins += 1
        if user.failed_logins >= MAX_FAILURES:
            user.locked_until = now + LOCKOUT
            user.failed_logins = 0
        session.flush()
        return SignIn(None, None, BAD_CREDENTIALS)
    if _hasher.check_needs_rehash(user.password_hash):
        user.password_hash = _hasher.hash(password)
    user.failed_logins = 0
    user.locked_until = None
    user.last_login_at = now
    return _start_session(session, user, now, client)


def _start_session(session: Session, user: WebUser, now: dt.datetime, client: str | None) -> SignIn:
    """A new session (and its CSRF token) for ``user``; the cookie token is returned once."""
    token = secrets.token_urlsafe(32)
    session.add(
        WebSession(
            token_sha256=_digest(token),
            user_name=user.name,
            csrf_token=secrets.token_urlsafe(32),
            created_at=now,
            expires_at=now + SESSION_LIFETIME,
            client=client,
        )
    )
    session.flush()
    return SignIn(user, token, None)


SSO_HASH = "!single-sign-on"  # not an Argon2 hash: no password ever matches it


def sign_in_external(session: Session, name: str, role: str, *, client: str | None) -> SignIn:
    """Start a session for a person the identity provider vouched for, with the role their
    groups give (updated at every sign-in); never for a name a local account holds."""
    now = _now()
    user = session.get(WebUser, name, with_for_update=True)
    if user is not None and user.password_hash != SSO_HASH:
        return SignIn(None, None, f"{name} is a local account: sign in with its password")
    if user is not None and user.disabled:
        return SignIn(None, None, "this account is disabled")
    if user is None:
        user = WebUser(name=name, role=role, password_hash=SSO_HASH, created_at=now,
                       created_by="single sign-on", disabled=False, failed_logins=0)  # fmt: skip
        session.add(user)
        session.flush()  # the account exists before its session refers to it
    user.role = role
    user.last_login_at = now
    return _start_session(session, user, now, client)


def session_of(session: Session, token: str | None) -> tuple[WebUser, WebSession] | None:
    """The account and session a cookie token belongs to, if it is current."""
    if not token:
        return None
    row = session.get(WebSession, _digest(token))
    if row is None or row.expires_at <= _now():
        return None
    user = session.get(WebUser, row.user_name)
    if user is None or user.disabled:
        return None
    return user, row


def sign_out(session: Session, token: str | None) -> None:
    """End the session of this cookie token (and any expired ones)."""
    if token:
        session.execute(delete(WebSession).where(WebSession.token_sha256 == _digest(token)))
    session.execute(delete(WebSession).where(WebSession.expires_at <= _now()))


def list_users(session: Session) -> list[WebUser]:
    """Every account, by name."""
    return list(session.scalars(select(WebUser).order_by(WebUser.name)))


API_TOKEN_PREFIX = "mat_"  # noqa: S105 - a prefix that makes tokens recognisable, not a secret


def new_api_token(session: Session, name: str, label: str) -> str:
    """A new personal API token for account ``name`` (shown once; only its hash is kept)."""
    user = session.get(WebUser, name)
    if user is None:
        raise ConfigError(f"there is no account {name!r}")
    token = API_TOKEN_PREFIX + secrets.token_urlsafe(32)
    session.add(WebApiToken(token_sha256=_digest(token), user_name=name,
                            label=label.strip() or "script", created_at=_now()))  # fmt: skip
    session.flush()
    return token


def revoke_api_tokens(session: Session, name: str) -> int:
    """Revoke every API token of account ``name``; how many were still valid."""
    count = 0
    for token in session.scalars(
        select(WebApiToken).where(WebApiToken.user_name == name, WebApiToken.revoked_at.is_(None))
    ):
        token.revoked_at = _now()
        count += 1
    session.flush()
    return count


def api_user(session: Session, token: str | None) -> WebUser | None:
    """The account a bearer token belongs to, if it is valid and the account enabled."""
    if not token or not token.startswith(API_TOKEN_PREFIX):
        return None
    row = session.get(WebApiToken, _digest(token))
    if row is None or row.revoked_at is not None:
        return None
    user = session.get(WebUser, row.user_name)
    if user is None or user.disabled:
        return None
    now = _now()
    # To the minute: a script's burst of requests writes the token's row once, not once per
    # request (20 concurrent requests queued on its row lock and a commit each: issue 13).
    if row.last_used_at is None or now - row.last_used_at >= LAST_USED_GRANULARITY:
        row.last_used_at = now
    return user
