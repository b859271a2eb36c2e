"""The console under test: the real ASGI application on a real database, driven through
httpx (Starlette's TestClient) over https, with one signed-in client per role."""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient

from reporting.config import Settings
from reporting.db.engine import Database
from reporting.web import accounts
from reporting.web.app import create_app
from reporting.web.permissions import ROLES

PASSWORD = "correct horse battery staple"


@pytest.fixture
def web_settings(settings: Settings) -> Settings:
    return settings.model_copy(update={"require_case": True})


@pytest.fixture
def app(web_settings: Settings, db: Database) -> object:
    with db.session() as session:
        for role in ROLES:
            accounts.add_user(session, f"{role}-user", role, PASSWORD, by="test")
    return create_app(web_settings, db)


def csrf_of(html: str, action: str | None = None) -> str:
    """The CSRF token of the page's form posting to ``action`` (default: the first form)."""
    if action is not None:
        html = html[html.index(f'action="{action}"') :]
    match = re.search(r'name="csrf_token" value="([^"]+)"', html)
    assert match, "no CSRF token in the page"
    return match.group(1)


def sign_in(client: TestClient, name: str, password: str = PASSWORD) -> object:
    form = client.get("/login")
    return client.post(
        "/login",
        data={
            "name": name,
            "password": password,
            "csrf_token": csrf_of(form.text, "/login"),
            "next": "/",
        },
        follow_redirects=False,
    )


@pytest.fixture
def clients(app: object) -> Iterator[dict[str | None, TestClient]]:
    """A signed-in client per role, and ``None``: a client that never signed in."""
    out: dict[str | None, TestClient] = {}
    for role in (*ROLES, None):
        client = TestClient(app, base_url="https://testserver")  # type: ignore[arg-type]
        if role is not None:
            response = sign_in(client, f"{role}-user")
            assert response.status_code == 303, response.text  # type: ignore[attr-defined]
        out[role] = client
    yield out
    for client in out.values():
        client.close()
