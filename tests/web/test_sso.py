"""Single sign-on with OpenID Connect, against an identity provider on loopback."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest
from fastapi.testclient import TestClient

from reporting.config import Settings
from reporting.db.engine import Database
from reporting.web.app import create_app
from tests.web.idp import CLIENT_ID, CLIENT_SECRET, LoopbackIdP


@pytest.fixture(scope="module")
def idp() -> Iterator[LoopbackIdP]:
    provider = LoopbackIdP().start()
    yield provider
    provider.stop()


@pytest.fixture
def sso_client(idp: LoopbackIdP, web_settings: Settings, db: Database, app: object) -> TestClient:
    settings = web_settings.model_copy(update={
        "oidc_issuer": idp.issuer,
        "oidc_client_id": CLIENT_ID,
        "oidc_client_secret": CLIENT_SECRET,
        "oidc_redirect_url": "https://testserver/auth/callback",
        "oidc_role_groups": ["ma-investigators=investigator", "ma-auditors=auditor"],
    })  # fmt: skip
    from pydantic import SecretStr

    settings = settings.model_copy(update={"oidc_client_secret": SecretStr(CLIENT_SECRET)})
    idp.wrong_nonce = False
    return TestClient(create_app(settings, db, worker=False), base_url="https://testserver")


def _sign_on(client: TestClient, idp: LoopbackIdP, identity: dict[str, object]) -> httpx.Response:
    """What a browser does: to the provider and back."""
    idp.next_identity = identity
    start = client.get("/auth/sso", params={"next": "/investigate"}, follow_redirects=False)
    assert start.status_code == 303 and start.headers["location"].startswith(idp.issuer)
    at_idp = httpx.get(start.headers["location"], follow_redirects=False)
    assert at_idp.status_code == 302
    back = httpx.URL(at_idp.headers["location"])
    return client.get(f"{back.path}?{back.query.decode()}", follow_redirects=False)


def test_a_group_of_the_identity_provider_gives_the_role(
    sso_client: TestClient, idp: LoopbackIdP
) -> None:
    login_page = sso_client.get("/login")
    assert "single sign-on" in login_page.text
    back = _sign_on(sso_client, idp, {"sub": "u-1", "email": "ivy@acme.example",
                                      "groups": ["staff", "ma-investigators"]})  # fmt: skip
    assert back.status_code == 303 and back.headers["location"] == "/investigate"
    assert sso_client.get("/investigate").status_code == 200
    assert sso_client.get("/reports").status_code == 403
    assert "ivy@acme.example · investigator" in sso_client.get("/").text


def test_no_mapped_group_no_entry_and_a_state_is_used_once(
    sso_client: TestClient, idp: LoopbackIdP
) -> None:
    refused = _sign_on(sso_client, idp, {"sub": "u-2", "email": "x@acme.example",
                                         "groups": ["staff"]})  # fmt: skip
    assert refused.status_code == 401 and "none of your groups" in refused.text
    assert sso_client.get("/", follow_redirects=False).status_code == 303

    idp.next_identity = {"sub": "u-3", "email": "a@acme.example", "groups": ["ma-auditors"]}
    start = sso_client.get("/auth/sso", follow_redirects=False)
    back = httpx.URL(httpx.get(start.headers["location"]).headers["location"])
    url = f"{back.path}?{back.query.decode()}"
    assert sso_client.get(url, follow_redirects=False).status_code == 303
    replay = TestClient(sso_client.app, base_url="https://testserver")
    again = replay.get(url, follow_redirects=False)
    assert again.status_code == 401 and "unknown or too old" in again.text


def test_a_token_for_another_sign_in_is_refused(sso_client: TestClient, idp: LoopbackIdP) -> None:
    idp.wrong_nonce = True
    refused = _sign_on(sso_client, idp, {"sub": "u-4", "email": "m@acme.example",
                                         "groups": ["ma-auditors"]})  # fmt: skip
    assert refused.status_code == 401 and "not valid" in refused.text


def test_single_sign_on_never_takes_over_a_local_account(
    sso_client: TestClient, idp: LoopbackIdP
) -> None:
    refused = _sign_on(sso_client, idp, {"sub": "u-5", "email": "admin-user",
                                         "groups": ["ma-auditors"]})  # fmt: skip
    assert refused.status_code == 401 and "local account" in refused.text
