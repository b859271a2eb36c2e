"""A harvest records whose token listed and what that listing could see (reporting.reach).

An administrator's token lists the whole organisation; a member's lists only the meetings its
owner hosts or is invited to, and the run must say so rather than look complete; a listing made
per host or over some of the token's sites is limited too; when Webex will not say whose token
it is, the run's reach is unconfirmed, never assumed.
"""

from __future__ import annotations

import httpx
import pytest
from sqlalchemy import select

from reporting.cli import _print_harvest_summary
from reporting.config import Settings
from reporting.db.engine import Database
from reporting.db.models import HarvestRun
from reporting.webex.simulator import SimulatedOrg, Simulator, TokenOwner
from tests.factories import TOKEN, harvest_org
from tests.harvest.conftest import NOW, WINDOW


def _run(db: Database) -> HarvestRun:
    with db.sessions() as session:
        return session.scalars(select(HarvestRun).order_by(HarvestRun.id.desc())).first()  # type: ignore[return-value]


def test_an_administrators_token_lists_the_whole_organisation(
    settings: Settings, db: Database, org: SimulatedOrg
) -> None:
    summary = harvest_org(settings, org, WINDOW, now=NOW, db=db)
    assert summary.status == "complete"
    run = _run(db)
    assert run.token_principal is not None and run.listing_reach is not None
    principal, reach = run.token_principal, run.listing_reach
    assert principal["known"] and principal["admin"] and principal["roles"]
    assert principal["emails"] == [f"compliance.admin@{org.domains[0]}"]
    assert principal["org_uuid"] == org.org_id  # the orgId the settings name, decoded
    assert reach["verdict"] == "organisation" and reach["limits"] == []
    assert reach["token_sites"] == [org.site_url] and reach["sites_listed"] is None
    assert reach["meetings_listed"] == len(org.meetings)
    assert reach["meetings_beyond_owner"] == len(org.meetings)  # the admin hosts none of them
    assert "not knowable" in reach["scopes"]


def test_a_members_token_is_recorded_as_limited(
    settings: Settings, db: Database, org: SimulatedOrg, capsys: pytest.CaptureFixture[str]
) -> None:
    host = org.meetings[0]
    owner = TokenOwner.member(host["hostEmail"], host["hostDisplayName"])
    sim = Simulator(org, token=TOKEN, now=NOW, token_owner=owner)
    summary = harvest_org(settings, org, WINDOW, now=NOW, db=db, simulator=sim)
    # Nothing the member's listing showed is missing: the run itself is complete...
    assert summary.status == "complete"
    assert 0 < summary.meetings_listed < len(org.meetings)
    # ...and its record says how little that means.
    run = _run(db)
    assert run.token_principal is not None and run.listing_reach is not None
    assert run.token_principal["admin"] is False and run.token_principal["roles"] == []
    reach = run.listing_reach
    assert reach["verdict"] == "limited" and not reach["whole_organisation"]
    assert reach["meetings_beyond_owner"] == 0
    (limit,) = reach["limits"]
    assert host["hostEmail"] in limit and "no administrator" in limit
    assert summary.listing_reach == reach
    # The closing lines say it before anyone relies on the run, naming the owner once.
    _print_harvest_summary(summary)
    said = capsys.readouterr().err
    assert "LISTING REACH: the listing could not see the whole organisation" in said
    assert said.count(host["hostEmail"]) == 1


def test_hosts_listed_one_by_one_and_sites_left_out_limit_the_listing(
    settings: Settings, db: Database, org: SimulatedOrg
) -> None:
    owner = TokenOwner("boss@acme.example", "Big Boss", sites=(org.site_url, "acme-eu.webex.com"))
    sim = Simulator(org, token=TOKEN, now=NOW, token_owner=owner)
    hosts = sorted({m["hostEmail"].lower() for m in org.meetings})[:2]
    harvest_org(settings, org, WINDOW, now=NOW, db=db, simulator=sim,
                webex_host_emails=hosts, webex_site_urls=[org.site_url])  # fmt: skip
    reach = _run(db).listing_reach
    assert reach is not None and reach["verdict"] == "limited"
    assert reach["hosts_listed"] == hosts and reach["sites_listed"] == [org.site_url]
    assert any("per host (2 hosts" in limit for limit in reach["limits"])
    assert any("not listed" in limit and "acme-eu.webex.com" in limit for limit in reach["limits"])


def test_when_webex_will_not_say_whose_token_it_is_the_reach_is_unconfirmed(
    settings: Settings, db: Database, org: SimulatedOrg
) -> None:
    """/people/me refused (a token without the scope for it): whose token it is is not known.
    A site list refused while sites are named: which others exist is not known either. Neither
    is a gap, and neither is taken as the whole organisation."""
    sim = Simulator(org, token=TOKEN, now=NOW)
    member = TokenOwner.member(org.meetings[0]["hostEmail"])
    member_sim = Simulator(org, token=TOKEN, now=NOW, token_owner=member)

    def refusing(target: Simulator) -> httpx.MockTransport:
        def handle(request: httpx.Request) -> httpx.Response:
            if request.url.path in ("/v1/people/me", "/v1/meetingPreferences/sites"):
                return httpx.Response(403, json={"message": "Forbidden", "trackingId": "ROUTER_NO"},
                                      headers={"trackingid": "ROUTER_NO"})  # fmt: skip
            return target.handle_sync(request)

        return httpx.MockTransport(handle)

    summary = harvest_org(settings, org, WINDOW, now=NOW, db=db, transport=refusing(sim),
                          webex_site_urls=[org.site_url])  # fmt: skip
    assert summary.status == "complete" and summary.gaps == 0
    run = _run(db)
    assert run.token_principal == {"known": False, "problem": run.token_principal["problem"],
                                   "http_status": 403, "tracking_id": "ROUTER_NO"}  # fmt: skip
    reach = run.listing_reach
    # Without its owner, no meeting listed can be told to be someone else's: even a listing
    # that did reach the whole organisation is not taken to have.
    assert reach is not None and reach["verdict"] == "unconfirmed"
    assert reach["meetings_beyond_owner"] == 0
    who, sites = reach["limits"]
    assert "whose token this is could not be asked (GET /people/me: HTTP 403" in who
    assert "GET /meetingPreferences/sites: HTTP 403, trackingId ROUTER_NO" in sites

    # Without a site named, a refused site list is no doubt: the listing took every site.
    harvest_org(settings, org, WINDOW, now=NOW, db=db, transport=refusing(member_sim),
                refresh=True)  # fmt: skip
    reach = _run(db).listing_reach
    assert reach is not None and reach["verdict"] == "unconfirmed"
    (who,) = reach["limits"]
    assert "whose token this is could not be asked" in who
