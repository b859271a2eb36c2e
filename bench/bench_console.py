"""Benchmark of the web console under 20 signed-in people at once (issue 13, on demand).

    python bench/bench_console.py --database-url postgresql://postgres@127.0.0.1/postgres \\
        [--participants 200000] [--clients 20] [--requests 10] [--keep] [--reuse] [--json out.json]

It builds the organisation of ``bench_investigate.py`` (``bench/investigate_data.py``: two years,
about ``--participants`` participant rows; the issue's size is 10 million, ``--participants
10000000``, about an hour to generate on 2 cores) in ``meetaudit_cbench<size>``, opens case
``BENCH-11`` and creates an officer and an investigator account with Argon2id passwords and an
API token for the investigator. It then serves the real console (``create_app`` under uvicorn,
as ``meetaudit serve`` does, without the job worker) in a child process on a free loopback port,
signs ``--clients`` httpx clients in through the sign-in form (each with its own session cookie)
and, page by page, lets every client fetch the page ``--requests`` times at once with the others:

* **overview** — ``GET /`` as an officer (``month_overview``: six months' completeness, runs,
  reports);
* **person search** — ``GET /investigate?question=person&who=EMAIL&case=BENCH-11`` as an
  investigator, for real people of the data (ordinary and busy ones), every search recorded in
  the access log (part of the page's cost);
* **person search, API** — ``GET /api/v1/investigate`` with the same questions and a bearer token.

Every response must be 200 and hold the expected content (the months; the row count of the
answer). In the same run the **query layer alone** — the very functions the routes call
(``views.month_overview``; ``views.answer``, which opens the case and calls
``investigate.attendance_of``), each in a fresh session of the library's ``Database`` (pool of
5, as the console's) — is timed sequentially and with ``--clients`` threads making as many calls.
``ratio`` is the page's p95 over the layer's p95 at the same concurrency; the target is ≤ 2×
with no error.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import psutil
import psycopg
from sqlalchemy.engine import make_url

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.bench_investigate import (  # noqa: E402
    BUSY,
    CASE,
    DOMAINS,
    ORDINARY,
    _admin,
    _env,
    _label,
    _libpq,
    _pct,
    prepare,
)
from bench.investigate_data import OWN_ORG_ID  # noqa: E402

PASSWORD = "bench console password"  # a throw-away account of the bench database
OFFICER, INVESTIGATOR = "bench-officer", "bench-investigator"
SESSION_COOKIE, LOGIN_COOKIE = "meetaudit_session", "meetaudit_login_csrf"
RATIO_TARGET = 2.0


@dataclass
class Page:
    """One page under load: how a client asks for it, what it must hold, its library call."""

    name: str
    role: str  # "officer" or "investigator"
    api: bool
    request: Callable[[int], tuple[str, dict[str, str]]]
    expect: Callable[[int, str], bool]
    layer: Callable[[Any, int], Any]
    result: dict[str, Any] = field(default_factory=dict)


# -- the console in a child process -------------------------------------------------------------


def _settings(url: str, data_dir: Path) -> Any:
    """The settings the console and the layer run with (the bench case is required)."""
    from reporting.config import load_settings

    return load_settings(database_url=url, data_dir=data_dir, org_domains=list(DOMAINS),
                         org_ids=[OWN_ORG_ID], operator="bench", require_case=True)  # fmt: skip


def serve(port: int) -> None:
    """The child: the console for the environment's settings, as ``meetaudit serve`` runs it
    (one process, uvicorn, log level warning), without the background job worker."""
    import uvicorn

    from reporting.config import load_settings
    from reporting.web.app import create_app

    app = create_app(load_settings(), worker=False)
    uvicorn.run(app, host="127.0.0.1", port=port, log_level="warning")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start_console(env: dict[str, str]) -> tuple[subprocess.Popen[bytes], str]:
    """Start the console on a free loopback port; wait until ``/health`` answers."""
    port = _free_port()
    proc = subprocess.Popen([sys.executable, __file__, "--serve", str(port)], env=env)
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"{base}/health", timeout=2).status_code == 200:
                return proc, base
        except httpx.HTTPError:
            pass
        if proc.poll() is not None:
            raise SystemExit("the console did not start")
        time.sleep(0.2)
    proc.terminate()
    raise SystemExit("the console did not answer /health within 60 s")


# -- accounts and clients -------------------------------------------------------------------------


def make_accounts(url: str, data_dir: Path) -> str:
    """(Re)create the officer and investigator accounts; an API token of the investigator."""
    from sqlalchemy import delete

    from reporting.db.engine import Database
    from reporting.db.models import WebApiToken, WebSession, WebUser
    from reporting.web import accounts

    with Database(url, data_dir=data_dir) as db, db.session() as session:
        names = (OFFICER, INVESTIGATOR)
        for model in (WebSession, WebApiToken):
            session.execute(delete(model).where(model.user_name.in_(names)))
        session.execute(delete(WebUser).where(WebUser.name.in_(names)))
        accounts.add_user(session, OFFICER, "officer", PASSWORD, by="bench")
        accounts.add_user(session, INVESTIGATOR, "investigator", PASSWORD, by="bench")
        return accounts.new_api_token(session, INVESTIGATOR, "bench")


def _cookie(response: httpx.Response, name: str) -> str:
    """A cookie the response sets. The console's cookies are ``Secure``, which httpx's jar
    never sends over plain http, so the bench carries them by hand."""
    for header in response.headers.get_list("set-cookie"):
        key, _, rest = header.partition("=")
        if key.strip() == name:
            return rest.split(";", 1)[0]
    raise AssertionError(f"no {name} cookie in the response ({response.status_code})")


async def sign_in(base: str, name: str) -> httpx.AsyncClient:
    """A client signed in through the sign-in form, carrying its own session cookie."""
    import re

    client = httpx.AsyncClient(base_url=base, timeout=120)
    form = await client.get("/login")
    csrf = re.search(r'name="csrf_token" value="([^"]+)"', form.text)
    assert csrf, "no CSRF token on the sign-in page"
    done = await client.post(
        "/login", data={"name": name, "password": PASSWORD, "csrf_token": csrf.group(1),
                        "next": "/"},
        headers={"Cookie": f"{LOGIN_COOKIE}={_cookie(form, LOGIN_COOKIE)}"},
    )  # fmt: skip
    assert done.status_code == 303, f"sign-in of {name}: {done.status_code}"
    client.headers["Cookie"] = f"{SESSION_COOKIE}={_cookie(done, SESSION_COOKIE)}"
    return client


# -- the pages ------------------------------------------------------------------------------------


def pick_people(url: str) -> list[str]:
    """Emails of real people: the ordinary and the very busy person of the data, the three
    next busiest and three ordinary members of staff."""
    with psycopg.connect(_libpq(url)) as conn:
        busy = [r[0] for r in conn.execute(
            "SELECT email_norm FROM participants WHERE email_norm LIKE '%%@acme.example'"
            " AND email_norm NOT IN (%s, %s) GROUP BY 1 ORDER BY count(*) DESC LIMIT 3",
            (ORDINARY, BUSY))]  # fmt: skip
        plain = [r[0] for r in conn.execute(
            "SELECT DISTINCT email_norm FROM participants WHERE email_norm LIKE '%%@acme.example'"
            " ORDER BY 1 OFFSET 40 LIMIT 3")]  # fmt: skip
    return [ORDINARY, BUSY, *busy, *plain]


def pages(settings: Any, people: list[str]) -> tuple[list[Page], dict[int, int]]:
    """The pages measured, and the rows of each person's answer (filled by :func:`count_rows`)."""
    from reporting.web.views import _months, answer, month_overview

    months = _months(settings, 6)

    def search(session: Any, i: int) -> Any:
        return answer(session, settings, "person", who=people[i % len(people)], month="",
                      case=CASE)  # fmt: skip

    rows: dict[int, int] = {}

    def person(i: int) -> tuple[str, dict[str, str]]:
        return "/investigate", {"question": "person", "who": people[i % len(people)], "case": CASE}

    def api(i: int) -> tuple[str, dict[str, str]]:
        return "/api/v1/investigate", person(i)[1]

    def html_rows(i: int, body: str) -> bool:
        return f"{rows[i % len(people)]} row(s), case {CASE}" in body

    def json_rows(i: int, body: str) -> bool:
        return len(json.loads(body)["rows"]) == rows[i % len(people)]

    return [
        Page("overview", "officer", False, lambda i: ("/", {}),
             lambda i, body: all(f"<td>{m}</td>" in body for m in months),
             lambda session, i: month_overview(session, settings)),
        Page("person search", "investigator", False, person, html_rows, search),
        Page("person search, API", "investigator", True, api, json_rows, search),
    ], rows  # fmt: skip


def count_rows(db: Any, page: Page, people: list[str], rows: dict[int, int]) -> None:
    """The expected row count of each person's answer, from the layer itself."""
    for i in range(len(people)):
        with db.session() as session:
            rows[i] = len(page.layer(session, i).rows)


# -- measuring ------------------------------------------------------------------------------------


def time_layer(db: Any, page: Page, clients: int, requests: int) -> dict[str, float]:
    """p50/p95 (ms) of the page's library call in a fresh session: one after the other, and
    from ``clients`` threads at once, ``requests`` calls each."""

    errors: list[str] = []

    def one(i: int) -> float | None:
        started = time.perf_counter()
        try:
            with db.session() as session:
                page.layer(session, i)
        except Exception as exc:  # counted and shown, as the page's errors are
            errors.append(f"{type(exc).__name__}: {str(exc)[:160]}")
            return None
        return (time.perf_counter() - started) * 1000

    for i in range(3):
        one(i)
    seq = [t for i in range(requests) if (t := one(i)) is not None]

    def worker(c: int) -> list[float | None]:
        return [one(c + n) for n in range(requests)]

    cpu = time.process_time()
    with ThreadPoolExecutor(clients) as pool:
        conc = [t for ts in pool.map(worker, range(clients)) for t in ts if t is not None]
    cpu_ms = (time.process_time() - cpu) * 1000 / (clients * requests)
    for e in errors[:3]:
        print(f"  ! layer {page.name}: {e}", flush=True)
    return {"seq_p50": _pct(seq, 0.5), "seq_p95": _pct(seq, 0.95), "layer_errors": len(errors),
            "layer_cpu_ms": cpu_ms,
            "layer_p50": _pct(conc or [0.0], 0.5), "layer_p95": _pct(conc or [0.0], 0.95)}  # fmt: skip


def _cpu(proc: psutil.Process) -> float:
    """CPU seconds (user and system) a process has used so far."""
    times = proc.cpu_times()
    return float(times.user + times.system)


async def time_page(
    page: Page, clients: list[httpx.AsyncClient], requests: int, token: str, server: int
) -> dict[str, Any]:
    """Every client asks for the page ``requests`` times, all clients at once: p50/p95 (ms),
    requests, errors (not 200, or not the expected content), wall seconds, and the CPU time
    per request of the console's process and of the clients (this process)."""
    times: list[float] = []
    errors: list[str] = []
    headers = {"Authorization": f"Bearer {token}", "Cookie": ""} if page.api else {}

    async def run(c: int, client: httpx.AsyncClient) -> None:
        for n in range(requests):
            path, params = page.request(c + n)
            started = time.perf_counter()
            try:
                r = await client.get(path, params=params, headers=headers)
            except httpx.HTTPError as exc:
                errors.append(f"{type(exc).__name__}: {exc}")
                continue
            times.append((time.perf_counter() - started) * 1000)
            if r.status_code != 200 or not page.expect(c + n, r.text):
                errors.append(f"{r.status_code} {path} {params}: {r.text[:200]!r}")

    # Fresh connections first: uvicorn closes one idle for 5 s (its keep-alive timeout), and a
    # client that finished the last page early would race that close with its first request.
    await asyncio.gather(*(client.get("/health") for client in clients))
    for c, client in enumerate(clients[:3]):  # warm-up: templates, the server's connections
        path, params = page.request(c)
        await client.get(path, params=params, headers=headers)
    console, me = psutil.Process(server), psutil.Process()
    started, cpu_console, cpu_me = time.perf_counter(), _cpu(console), _cpu(me)
    await asyncio.gather(*(run(c, client) for c, client in enumerate(clients)))
    wall = time.perf_counter() - started
    n = len(clients) * requests
    cpu = {"console_cpu_ms": (_cpu(console) - cpu_console) * 1000 / n,
           "client_cpu_ms": (_cpu(me) - cpu_me) * 1000 / n}  # fmt: skip
    for e in errors[:3]:
        print(f"  ! {page.name}: {e}", flush=True)
    return {"requests": n, "errors": len(errors), "wall_s": wall, **cpu,
            "page_p50": _pct(times or [0.0], 0.5), "page_p95": _pct(times or [0.0], 0.95)}  # fmt: skip


async def load(
    base: str, ps: list[Page], clients: int, requests: int, token: str, server: int
) -> None:
    """Sign the clients in (one session each, per role) and put every page under load."""
    signed: dict[str, list[httpx.AsyncClient]] = {}
    for role, name in (("officer", OFFICER), ("investigator", INVESTIGATOR)):
        signed[role] = [await sign_in(base, name) for _ in range(clients)]
    try:
        for page in ps:
            page.result.update(await time_page(page, signed[page.role], requests, token, server))
            print(f"  {page.name}: {_fmt(page.result)}", flush=True)
    finally:
        for group in signed.values():
            for client in group:
                await client.aclose()


def _fmt(r: dict[str, Any]) -> str:
    return ", ".join(f"{k}={v:.1f}" if isinstance(v, float) else f"{k}={v}" for k, v in r.items())


# -- the table ------------------------------------------------------------------------------------


def verdict(page: Page) -> str:
    """pass when there was no error and the page's p95 is within 2× of the layer's."""
    r = page.result
    return "pass" if r["errors"] == 0 and r["page_p95"] <= RATIO_TARGET * r["layer_p95"] else "FAIL"


def table(ps: list[Page], clients: int) -> str:
    """The printed results table."""
    head = ("page", "clients", "requests", "errors page/layer", "page p50/p95 ms", "layer p50/p95 ms",
            "layer alone p50/p95 ms", "CPU ms/req console/layer", "ratio", "target",
            "result")  # fmt: skip
    lines = []
    for p in ps:
        r = p.result
        lines.append((
            p.name, str(clients), f"{r['requests']:,}", f"{r['errors']} / {r['layer_errors']}",
            f"{r['page_p50']:.0f} / {r['page_p95']:.0f}",
            f"{r['layer_p50']:.0f} / {r['layer_p95']:.0f}",
            f"{r['seq_p50']:.0f} / {r['seq_p95']:.0f}",
            f"{r['console_cpu_ms']:.0f} / {r['layer_cpu_ms']:.0f}",
            f"{r['page_p95'] / r['layer_p95']:.2f}×",
            f"p95 ≤ {RATIO_TARGET:g}× layer, no error", verdict(p),
        ))  # fmt: skip
    widths = [max(len(str(row[i])) for row in [head, *lines]) for i in range(len(head))]
    out = [
        "  ".join(str(c).ljust(w) for c, w in zip(row, widths, strict=True)).rstrip()
        for row in [head, *lines]
    ]
    out.insert(1, "  ".join("-" * w for w in widths))
    out.append(f"layer: the same library calls from {clients} threads at once; layer alone: one"
               " after the other; CPU: the console process's per request, the layer's per call;"
               " ratio: page p95 ÷ layer p95")  # fmt: skip
    return "\n".join(out)


# -- the run --------------------------------------------------------------------------------------


def measure(url: str, env: dict[str, str], data_dir: Path, args: argparse.Namespace) -> list[Page]:
    """The layer alone, then the console under load, in the same run."""
    from reporting.db.engine import Database

    settings = _settings(url, data_dir)
    token = make_accounts(url, data_dir)
    people = pick_people(url)
    print(f"  people searched: {', '.join(people)}", flush=True)
    ps, rows = pages(settings, people)
    with Database.from_settings(settings) as db:
        count_rows(db, ps[1], people, rows)
        print(f"  rows per person: {list(rows.values())}", flush=True)
        for page in ps:
            page.result.update(time_layer(db, page, args.clients, args.requests))
            print(f"  layer {page.name}: {_fmt(page.result)}", flush=True)
    proc, base = start_console(env)
    try:
        asyncio.run(load(base, ps, args.clients, args.requests, token, proc.pid))
    finally:
        proc.terminate()
        proc.wait(timeout=30)
    return ps


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__.splitlines()[0],
        epilog="The issue's size is --participants 10000000 (about an hour to generate on "
        "2 cores); the default makes a run of a few minutes.",
    )
    parser.add_argument("--database-url", default=os.environ.get(
        "MEETAUDIT_BENCH_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/postgres"))  # fmt: skip
    parser.add_argument("--participants", type=int, default=200_000,
                        help="participant rows generated (issue 13: 10000000)")  # fmt: skip
    parser.add_argument("--clients", type=int, default=20, help="signed-in clients at once")
    parser.add_argument("--requests", type=int, default=10, help="requests per client and page")
    parser.add_argument("--keep", action="store_true", help="keep the benchmark database")
    parser.add_argument("--reuse", action="store_true", help="measure a kept database again")
    parser.add_argument("--json", type=Path)
    parser.add_argument("--serve", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        serve(args.serve)
        return
    name = f"meetaudit_cbench{_label(args.participants)}"
    url = make_url(args.database_url).set(drivername="postgresql+psycopg", database=name)
    url_s = url.render_as_string(hide_password=False)
    results: dict[str, Any] = {"cpus": os.cpu_count(), "database": name, "clients": args.clients}
    with tempfile.TemporaryDirectory(prefix="meetaudit-cbench-") as tmp:
        env = _env(url_s, Path(tmp))
        try:
            results.update(prepare(args.database_url, url_s, name, args.participants, env,
                                   args.reuse))  # fmt: skip
            ps = measure(url_s, env, Path(tmp), args)
        finally:
            if not args.keep:
                _admin(args.database_url, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    results["pages"] = {p.name: p.result for p in ps}
    print()
    print(table(ps, args.clients))
    if args.json:
        args.json.write_text(json.dumps(results, indent=2, default=str) + "\n")


if __name__ == "__main__":
    main()
