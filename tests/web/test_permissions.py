"""Every route of the console, with every role and with none: 200, 403 or sign-in first.

The routes come from the application itself, so a new route cannot escape this test; each must
declare its action, and the declaration is what the gate enforces."""

from __future__ import annotations

import pytest
from fastapi.routing import APIRoute
from fastapi.testclient import TestClient

from reporting.db.engine import Database
from reporting.web import accounts
from reporting.web.app import PUBLIC
from reporting.web.permissions import GRANTS, ROLES
from tests.web.conftest import csrf_of

SAMPLE_PATH = {"report_id": "MAR-2026-10-NOPE", "job_id": "999999", "ref": "INV-NOPE"}


def _routes(app: object) -> list[tuple[str, str, str]]:
    out = []
    for route in app.routes:  # type: ignore[attr-defined]
        if not isinstance(route, APIRoute):
            continue
        action = (route.openapi_extra or {}).get("x-action")
        for method in sorted(route.methods):
            out.append((method, route.path_format, action))
    return out


def test_every_route_declares_a_known_action(app: object) -> None:
    routes = _routes(app)
    assert len(routes) >= 15
    for method, path, action in routes:
        assert action == PUBLIC or action in GRANTS, f"{method} {path} declares {action!r}"
    # Anything not an APIRoute (a mount, a plain Starlette route) would bypass the declaration.
    others = [r for r in app.routes if not isinstance(r, APIRoute)]  # type: ignore[attr-defined]
    assert all(getattr(r, "path", "") in ("/api/v1/openapi.json",) for r in others), others


def test_route_by_role_matrix(
    app: object, clients: dict[str | None, TestClient], db: Database
) -> None:
    # Under /api/ a script signs in with its account's personal token, a browser with a cookie.
    with db.session() as session:
        tokens = {role: accounts.new_api_token(session, f"{role}-user", "matrix") for role in ROLES}
    checked = 0
    # Signing out ends the session the other requests need: it comes last.
    for method, path, action in sorted(_routes(app), key=lambda r: r[1] == "/logout"):
        url = path.format(**SAMPLE_PATH)
        for role in (*ROLES, None):
            client = clients[role]
            data = None
            if method == "POST":
                # A valid CSRF token of this client's session where it has one, so the answer
                # is about permission, not about the form.
                page = client.get("/") if role and path != "/login" else client.get("/login")
                token = csrf_of(page.text, path if path == "/login" else None)
                data = {"csrf_token": token}
            headers = {}
            if path.startswith("/api/"):
                client = clients[None]
                data = None
                if role is not None:
                    headers["Authorization"] = f"Bearer {tokens[role]}"
            response = client.request(
                method, url, data=data, headers=headers, follow_redirects=False
            )
            status = response.status_code
            where = f"{method} {path} as {role or 'nobody'}: {status}"
            if action == PUBLIC:
                assert status < 500 and status != 403, where
            elif role is None:
                if path.startswith("/api/"):
                    assert status == 401, where
                else:
                    assert status == 303 and response.headers["location"].startswith("/login"), (
                        where
                    )
            elif path == "/logout" and role is not None:
                assert status == 303, where  # signed out, back to the sign-in page
            elif role in GRANTS[action]:
                assert status not in (401, 403) and status < 500, where
                assert not response.headers.get("location", "").startswith("/login"), where
            else:
                assert status == 403, where
            checked += 1
    assert checked >= 15 * (len(ROLES) + 1)


@pytest.mark.parametrize(
    ("role", "allowed_pages", "refused_pages"),
    [
        ("auditor", ["/reports", "/verify", "/gaps", "/access-log"], ["/investigate", "/users"]),
        ("investigator", ["/investigate"], ["/reports", "/verify", "/gaps", "/users"]),
        ("officer", ["/reports", "/gaps", "/verify"], ["/investigate", "/access-log", "/users"]),
        ("admin", ["/users", "/access-log"], ["/investigate", "/reports"]),
    ],
)
def test_each_role_sees_its_pages(
    clients: dict[str | None, TestClient], role: str, allowed_pages: list[str],
    refused_pages: list[str],
) -> None:  # fmt: skip
    client = clients[role]
    for page in allowed_pages:
        assert client.get(page).status_code == 200, page
    for page in refused_pages:
        assert client.get(page).status_code == 403, page
