"""A deterministic simulator of the Webex meetings REST API, for tests and benchmarks.

``org`` generates a realistic organisation (meetings, participants, invitees, attendee
reports), ``faults`` describes injectable failures, ``app`` answers HTTP requests like
``https://webexapis.com/v1`` does (in-process through ``httpx.MockTransport``), and ``server``
serves the same behaviour over real loopback HTTP.

Typical use::

    org = generate_org(start=..., end=...)
    sim = Simulator(org, faults=FaultPlan(rate_limit_every=7))
    client = httpx.Client(transport=httpx.MockTransport(sim.handle_sync))
    # or: with serve(sim) as base_url: ...
"""

from reporting.webex.simulator.app import (
    OAuthIntegration,
    SimResponse,
    SimStats,
    Simulator,
    TokenOwner,
)
from reporting.webex.simulator.faults import HAND_FAULTS, ConnectionReset, FaultPlan, hand_faults
from reporting.webex.simulator.org import (
    PLACEHOLDER_TIME,
    SimulatedOrg,
    generate_org,
    hostile_names,
)
from reporting.webex.simulator.server import serve

__all__ = [
    "HAND_FAULTS",
    "PLACEHOLDER_TIME",
    "ConnectionReset",
    "FaultPlan",
    "OAuthIntegration",
    "SimResponse",
    "SimStats",
    "SimulatedOrg",
    "Simulator",
    "TokenOwner",
    "generate_org",
    "hand_faults",
    "hostile_names",
    "serve",
]
