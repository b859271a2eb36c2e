"""The pure rules: who is internal, how numbers are masked, how attended time adds up."""

from __future__ import annotations

import datetime as dt

import pytest

from reporting.config import Settings
from reporting.report.classify import classify, email_domain, is_placeholder, mask_phone
from reporting.report.context import union_seconds


@pytest.fixture
def acme(settings: Settings) -> Settings:
    return settings.model_copy(
        update={"org_domains": ["acme.example"], "org_ids": ["Own-Org-1"], "org_name": "Acme"}
    )


@pytest.mark.parametrize(
    ("org_id", "email", "expected"),
    [
        (None, "a@acme.example", ("internal", "Acme")),
        (None, "  A@ACME.Example ", ("internal", "Acme")),
        (None, "a@eu.acme.example", ("internal", "Acme")),  # subdomain of an own domain
        (None, "a@notacme.example", ("external", "notacme.example")),  # not a subdomain
        ("own-org-1", "x@gmail.example", ("internal", "Acme")),  # org ids case-insensitive
        ("OWN-ORG-1", None, ("internal", "Acme")),
        ("Partner-9", "p@partner.example", ("external", "partner-9")),  # org id beats domain
        (None, "p@Partner.Example", ("external", "partner.example")),
        (None, None, ("unidentified", None)),
        ("", "not-an-email", ("unidentified", None)),
    ],
)
def test_classify(acme: Settings, org_id: str | None, email: str | None, expected: tuple) -> None:
    assert classify(org_id, email, acme) == expected


def test_classify_without_configuration_calls_everyone_external(settings: Settings) -> None:
    bare = settings.model_copy(update={"org_domains": [], "org_ids": []})
    assert classify(None, "a@acme.example", bare) == ("external", "acme.example")


@pytest.mark.parametrize(
    ("number", "show", "expected"),
    [
        ("+1-555-0199", False, "+1-555-01••"),
        ("+1 555 01 9 9", False, "+1 555 01 • •"),
        ("+1-555-0199", True, "+1-555-0199"),
        ("123", False, "••"),
        (None, False, None),
        ("  ", False, None),
    ],
)
def test_mask_phone(number: str | None, show: bool, expected: str | None) -> None:
    assert mask_phone(number, show=show) == expected


def test_email_domain() -> None:
    assert email_domain(" x@Sub.Example. ") == "sub.example"
    assert email_domain("@example") is None
    assert email_domain("nobody") is None


def test_union_counts_overlapping_devices_once() -> None:
    assert union_seconds([(0, 1800), (1200, 3000), (3300, 3600)]) == 3300
    assert union_seconds([(0, 100), (0, 100)]) == 100
    assert union_seconds([]) == 0


def test_placeholder() -> None:
    assert is_placeholder(dt.datetime(1970, 1, 1, tzinfo=dt.UTC))
    assert not is_placeholder(dt.datetime(2026, 10, 1, tzinfo=dt.UTC))
    assert not is_placeholder(None)
