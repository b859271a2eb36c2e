"""The console's ASGI application: routes, the permission gate, CSRF, security headers.

Every route declares the action it performs (``openapi_extra={"x-action": …}``, or ``public``);
one application-wide dependency, :func:`_gate`, reads that declaration from the matched route and
asks :func:`reporting.web.permissions.allowed`. A route without a declaration is refused to
everyone, so a new route cannot escape the check (``tests/web/test_permissions.py`` walks every
route with every role). Every form carries its session's CSRF token; the sign-in form, before
there is a session, a double-submit cookie. Pages are server-rendered with autoescaping Jinja2;
no inline script runs (the Content-Security-Policy forbids it).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
import io
import json
import os
import secrets
import socket
import tempfile
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager, contextmanager
from pathlib import Path
from typing import Any
from urllib.parse import quote

import jinja2
from fastapi import Depends, FastAPI, Query, Request
from fastapi.responses import FileResponse, HTMLResponse, JSONResponse, RedirectResponse, Response
from sqlalchemy import text
from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException as StarletteHTTPException

from reporting import __version__
from reporting.config import Settings
from reporting.db.engine import Database
from reporting.errors import MeetauditError, PeriodError
from reporting.resources import templates_dir
from reporting.web import accounts
from reporting.web.permissions import Actor, allowed

COOKIE = "meetaudit_session"
LOGIN_CSRF_COOKIE = "meetaudit_login_csrf"
MAX_UPLOAD = 64 * 1024 * 1024  # a year of reports is far below this
CSP = (
    "default-src 'none'; style-src 'self'; img-src 'self' data:; font-src 'self'; "
    "form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
)
PUBLIC = "public"


class NotSignedIn(Exception):
    """The request needs a signed-in account."""


class Forbidden(Exception):
    """The signed-in account's role may not do this."""


class BadForm(Exception):
    """A form arrived without its CSRF token, or with a wrong one."""


def _templates() -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(templates_dir() / "web"),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
    )
    env.globals["version"] = __version__
    return env


def _action_of(request: Request) -> str | None:
    route = request.scope.get("route")
    extra = getattr(route, "openapi_extra", None) or {}
    action = extra.get("x-action")
    return action if isinstance(action, str) else None


async def _gate(request: Request) -> None:
    """The one check every request passes: sign-in, permission, CSRF (see the module doc).

    Under ``/api/`` a personal API token (``Authorization: Bearer mat_…``) signs a script in;
    a request changing anything there must carry one (a browser's cookie is not enough, so no
    other site can make a signed-in browser send it).
    """
    action = _action_of(request)
    state = request.state
    api = request.url.path.startswith("/api/")
    # The lookup blocks on the database: in a worker thread, so the event loop keeps serving
    # the other requests meanwhile (issue 13).
    state.actor, state.csrf, state.via_token = await run_in_threadpool(
        _signed_in, request.app.state.db, api, request.headers.get("authorization", ""),
        request.cookies.get(COOKIE),
    )  # fmt: skip
    if action == PUBLIC:
        return
    if state.actor is None:
        raise NotSignedIn
    if action is None or not allowed(state.actor, action):
        raise Forbidden
    if request.method not in ("GET", "HEAD"):
        if api:
            if not state.via_token:
                raise BadForm
            return
        form = await request.form(max_part_size=MAX_UPLOAD)
        sent = form.get("csrf_token")
        if not isinstance(sent, str) or not secrets.compare_digest(sent, state.csrf or ""):
            raise BadForm


def _signed_in(
    db: Database, api: bool, bearer: str, cookie: str | None
) -> tuple[Actor | None, str | None, bool | None]:
    """Who signs this request in: (actor, the session's CSRF token, whether by API token)."""
    with db.session() as session:
        if api and bearer.lower().startswith("bearer "):
            user = accounts.api_user(session, bearer[7:].strip())
            if user is not None:
                return Actor(user.name, user.role), None, True
        else:
            found = accounts.session_of(session, cookie)
            if found is not None:
                user, web_session = found
                return Actor(user.name, user.role), web_session.csrf_token, False
    return None, None, None


def create_app(settings: Settings, db: Database | None = None, *, worker: bool = True) -> FastAPI:
    """The console for ``settings``; ``db`` is opened from the settings when not given (and then
    closed with the application). With ``worker``, the instance also runs queued background
    jobs (:mod:`reporting.jobs`) while it serves."""
    own_db = db is None

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        from reporting.jobs import Worker

        runner = None
        if worker:
            runner = Worker(settings, app.state.db, f"{socket.gethostname()}-{os.getpid()}")
            runner.start()
        yield
        if runner is not None:
            runner.stop()
        if own_db:
            app.state.db.close()

    app = FastAPI(
        title="meetaudit console",
        version=__version__,
        dependencies=[Depends(_gate)],
        lifespan=lifespan,
        docs_url=None,
        redoc_url=None,
        openapi_url="/api/v1/openapi.json",
    )
    app.state.settings = settings
    app.state.db = db if db is not None else Database.from_settings(settings)
    env = _templates()
    from reporting.investigate import cell_text  # as a dossier prints an answer's cells

    env.filters["cell"] = lambda value: cell_text(value, settings.zone)
    sso_enabled = bool(settings.oidc_issuer and settings.oidc_client_id
                       and settings.oidc_redirect_url)  # fmt: skip

    def page(request: Request, template: str, status: int = 200, **ctx: Any) -> HTMLResponse:
        html = env.get_template(template).render(
            actor=request.state.actor,
            csrf=request.state.csrf,
            org_name=settings.org_name,
            can=lambda action: allowed(request.state.actor, action),
            **ctx,
        )
        return HTMLResponse(html, status_code=status)

    @contextmanager
    def records() -> Iterator[Session]:
        with app.state.db.session() as session:
            yield session

    def client_of(request: Request) -> str:
        return request.client.host if request.client else "unknown"

    def record(request: Request, session: Session, what: str, params: dict[str, Any],
               rows: int, fmt: str, case: str | None = None) -> None:  # fmt: skip
        """Record a look at the records in the access log, before it is shown."""
        from reporting.cases import record_access

        actor: Actor = request.state.actor
        record_access(
            session,
            operator=actor.name,
            case_ref=case,
            question=f"console {what}",
            parameters={**params, "role": actor.role, "client": client_of(request)},
            rows_returned=rows,
            output_format=fmt,
        )

    # -- errors -----------------------------------------------------------------------------

    @app.exception_handler(NotSignedIn)
    async def _sign_in_first(request: Request, exc: NotSignedIn) -> Response:
        if request.url.path.startswith("/api/"):
            return JSONResponse({"error": "sign in first"}, status_code=401)
        target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        return RedirectResponse(f"/login?next={quote(target)}", status_code=303)

    @app.exception_handler(Forbidden)
    async def _forbidden(request: Request, exc: Forbidden) -> Response:
        if request.url.path.startswith("/api/"):
            return JSONResponse({"error": "your role may not do this"}, status_code=403)
        return page(request, "message.html", 403, title="Not allowed",
                    message="Your role may not open this page. Ask an administrator if you "
                    "need it.")  # fmt: skip

    @app.exception_handler(BadForm)
    async def _bad_form(request: Request, exc: BadForm) -> Response:
        if request.url.path.startswith("/api/"):
            return JSONResponse(
                {"error": "a change through the API needs a personal API token (Bearer)"},
                status_code=403,
            )
        return page(request, "message.html", 403, title="Form refused",
                    message="The form was not sent from this console's page (its security "
                    "token is missing or stale). Reload the page and try again.")  # fmt: skip

    @app.exception_handler(PeriodError)
    async def _bad_period(request: Request, exc: PeriodError) -> Response:
        # The CLI's usage mistake (exit status 2), with the same message.
        if request.url.path.startswith("/api/"):
            return JSONResponse({"error": str(exc)}, status_code=400)
        return page(request, "message.html", 400, title="Not a period", message=str(exc))

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> Response:
        if request.url.path.startswith("/api/"):
            return JSONResponse({"error": str(exc.detail)}, status_code=exc.status_code)
        return page(request, "message.html", exc.status_code, title=f"{exc.status_code}",
                    message=str(exc.detail))  # fmt: skip

    @app.middleware("http")
    async def _headers(request: Request, call_next: Callable[..., Any]) -> Response:
        response: Response = await call_next(request)
        response.headers["Content-Security-Policy"] = CSP
        response.headers["X-Content-Type-Options"] = "nosniff"
        response.headers["Referrer-Policy"] = "no-referrer"
        response.headers["X-Frame-Options"] = "DENY"
        if not request.url.path.startswith("/static/"):
            response.headers["Cache-Control"] = "no-store"
        return response

    # -- public ------------------------------------------------------------------------------

    @app.get("/health", openapi_extra={"x-action": PUBLIC})
    def health() -> dict[str, str]:
        """Liveness and database check, for load balancers (no sign-in)."""
        with records() as session:
            session.execute(text("SELECT 1"))
        return {"status": "ok", "version": __version__}

    @app.get("/static/console.css", openapi_extra={"x-action": PUBLIC}, include_in_schema=False)
    def stylesheet() -> FileResponse:
        return FileResponse(templates_dir() / "web" / "console.css", media_type="text/css")

    @app.get("/login", openapi_extra={"x-action": PUBLIC}, include_in_schema=False)
    def login_form(request: Request, next: str = "/") -> Response:
        token = secrets.token_urlsafe(32)
        response = page(request, "login.html", next=_safe_next(next), login_csrf=token,
                        problem=None, sso=sso_enabled)  # fmt: skip
        _set_cookie(response, LOGIN_CSRF_COOKIE, token, max_age=3600)
        return response

    @app.post("/login", openapi_extra={"x-action": PUBLIC}, include_in_schema=False)
    async def login(request: Request) -> Response:
        form = await request.form()
        sent, expected = form.get("csrf_token"), request.cookies.get(LOGIN_CSRF_COOKIE)
        if not isinstance(sent, str) or not expected or not secrets.compare_digest(sent, expected):
            raise BadForm
        name, password = str(form.get("name", "")), str(form.get("password", ""))
        with records() as session:
            outcome = accounts.sign_in(session, name, password, client=client_of(request))
        if outcome.token is None:
            token = secrets.token_urlsafe(32)
            refused = page(request, "login.html", 401, next=_safe_next(str(form.get("next", "/"))),
                            login_csrf=token, problem=outcome.problem, sso=sso_enabled)  # fmt: skip
            _set_cookie(refused, LOGIN_CSRF_COOKIE, token, max_age=3600)
            return refused
        response = RedirectResponse(_safe_next(str(form.get("next", "/"))), status_code=303)
        _set_cookie(response, COOKIE, outcome.token,
                    max_age=int(accounts.SESSION_LIFETIME.total_seconds()))  # fmt: skip
        response.delete_cookie(LOGIN_CSRF_COOKIE, path="/")
        return response

    @app.get("/auth/sso", openapi_extra={"x-action": PUBLIC}, include_in_schema=False)
    def sso_start(request: Request, next: str = "/") -> Response:
        from reporting.web import oidc

        if not oidc.enabled(settings):
            raise StarletteHTTPException(404, "single sign-on is not configured")
        try:
            with records() as session:
                target = oidc.start(session, settings, _safe_next(next))
        except MeetauditError as exc:
            return page(request, "message.html", 502, title="Single sign-on", message=str(exc))
        return RedirectResponse(target, status_code=303)

    @app.get("/auth/callback", openapi_extra={"x-action": PUBLIC}, include_in_schema=False)
    def sso_callback(request: Request, state: str = "", code: str = "",
                     error: str = "") -> Response:  # fmt: skip
        from reporting.web import oidc

        if not oidc.enabled(settings):
            raise StarletteHTTPException(404, "single sign-on is not configured")
        if error or not state or not code:
            return page(request, "message.html", 401, title="Single sign-on",
                        message=f"The identity provider did not sign you in ({error or 'no code'}).")  # fmt: skip
        try:
            with records() as session:
                who = oidc.finish(session, settings, state=state, code=code)
            with records() as session:
                outcome = accounts.sign_in_external(session, who.name, who.role,
                                                    client=client_of(request))  # fmt: skip
        except MeetauditError as exc:
            return page(request, "message.html", 401, title="Single sign-on", message=str(exc))
        if outcome.token is None:
            return page(request, "message.html", 401, title="Single sign-on",
                        message=outcome.problem or "not signed in")  # fmt: skip
        response = RedirectResponse(who.next_path, status_code=303)
        _set_cookie(response, COOKIE, outcome.token,
                    max_age=int(accounts.SESSION_LIFETIME.total_seconds()))  # fmt: skip
        return response

    @app.post("/logout", openapi_extra={"x-action": "overview.view"}, include_in_schema=False)
    def logout(request: Request) -> Response:
        with records() as session:
            accounts.sign_out(session, request.cookies.get(COOKIE))
        response = RedirectResponse("/login", status_code=303)
        response.delete_cookie(COOKIE, path="/", secure=True, httponly=True, samesite="strict")
        return response

    # -- overview ----------------------------------------------------------------------------

    @app.get("/", openapi_extra={"x-action": "overview.view"}, include_in_schema=False)
    def overview(request: Request) -> Response:
        from reporting.web.views import month_overview

        with records() as session:
            months = month_overview(session, settings)
        return page(request, "overview.html", months=months, timezone=settings.timezone)

    # -- reports and verification ------------------------------------------------------------

    @app.get("/reports", openapi_extra={"x-action": "reports.view"}, include_in_schema=False)
    def reports(request: Request) -> Response:
        from reporting.report import verify_ledger
        from reporting.report.trust import pins_from
        from reporting.report.witness import Witness

        check = verify_ledger(
            app.state.db, witness_=Witness.from_settings(settings), pins=pins_from(settings)
        )
        return page(request, "reports.html", check=check, zone=settings.zone,
                    timezone=settings.timezone)  # fmt: skip

    @app.get("/reports/{report_id}/file", openapi_extra={"x-action": "reports.download"},
             include_in_schema=False)  # fmt: skip
    def download(request: Request, report_id: str) -> Response:
        return recorded_file(request, report_id)

    def recorded_file(request: Request, report_id: str, case: str | None = None) -> Response:
        """A file of the ledger, only while it is unchanged where it was written; the download
        recorded in the access log (under ``case``, for a case's dossier).

        A case dossier holds an investigation's answers about people: it is served only from its
        case (``case`` given, an investigator's route), never as one of the ledger's reports."""
        from reporting.report import ledger
        from reporting.report.dossier import DOSSIER_KIND

        with records() as session:
            entry = ledger.find_by_report_id(session, report_id)
            if entry is None:
                raise StarletteHTTPException(404, f"no report {report_id} in the ledger")
            if entry.kind == DOSSIER_KIND and case is None:
                raise StarletteHTTPException(
                    403,
                    f"{report_id} is a case dossier: it holds answers about people, and is "
                    "downloaded by an investigator from its case's page",
                )
            path = Path(entry.output_path)
            try:
                data = path.read_bytes()
            except OSError:
                raise StarletteHTTPException(
                    404, f"the file of {report_id} is no longer at {path} on the console's host"
                ) from None
            if hashlib.sha256(data).hexdigest() != entry.file_sha256:
                raise StarletteHTTPException(
                    409,
                    f"the file at {path} is no longer the one recorded for {report_id}: "
                    "it is not served. Run `meetaudit verify --ledger`.",
                )
            record(request, session, "download", {"report_id": report_id}, 1, entry.format,
                   case=case)  # fmt: skip
        media = {"pdf": "application/pdf", "json": "application/json"}.get(entry.format, "text/csv")
        return Response(data, media_type=media, headers={
            "Content-Disposition": f'attachment; filename="{path.name}"',
            "X-Content-SHA256": entry.file_sha256,
        })  # fmt: skip

    @app.post("/reports/generate", openapi_extra={"x-action": "reports.generate"},
              include_in_schema=False)  # fmt: skip
    async def generate(request: Request) -> Response:
        from reporting.jobs import enqueue

        form = await request.form()
        formats = [f for f in ("pdf", "csv", "json") if form.get(f"format_{f}")] or ["pdf"]
        try:
            month = _month(settings, str(form.get("month", "")))
        except PeriodError as exc:
            return page(request, "message.html", 400, title="Not a month", message=str(exc))
        with records() as session:
            job = enqueue(session, "report", {"month": month, "formats": formats},
                          by=request.state.actor.name)  # fmt: skip
            job_id = job.id
        return RedirectResponse(f"/jobs/{job_id}", status_code=303)

    @app.get("/jobs/{job_id}", openapi_extra={"x-action": "reports.view"},
             include_in_schema=False)  # fmt: skip
    def job(request: Request, job_id: int) -> Response:
        return page(request, "job.html", job=job_of(job_id, "report"))

    def job_of(job_id: int, kind: str) -> Any:
        """Job ``job_id`` when it is of ``kind`` (a report's page never shows a case's dossier,
        nor the other way round), detached from its session; else 404."""
        from reporting.db.models import Job

        with records() as session:
            found = session.get(Job, job_id)
            if found is None or found.kind != kind:
                raise StarletteHTTPException(404, f"there is no job {job_id}")
            session.expunge(found)
        return found

    @app.get("/verify", openapi_extra={"x-action": "reports.verify"}, include_in_schema=False)
    def verify_form(request: Request) -> Response:
        return page(request, "verify.html", result=None, lines=[], name=None, problem=None)

    @app.post("/verify", openapi_extra={"x-action": "reports.verify"}, include_in_schema=False)
    async def verify_upload(request: Request) -> Response:

        form = await request.form(max_part_size=MAX_UPLOAD)
        upload = form.get("file")
        if upload is None or isinstance(upload, str):
            return page(request, "verify.html", 400, result=None, lines=[], name=None,
                        problem="Choose a file to verify.")  # fmt: skip
        data = await upload.read(MAX_UPLOAD + 1)
        if len(data) > MAX_UPLOAD:
            return page(request, "verify.html", 413, result=None, lines=[], name=upload.filename,
                        problem=f"The file is larger than {MAX_UPLOAD // 2**20} MiB.")  # fmt: skip
        name = Path(upload.filename or "upload").name or "upload"
        try:
            result, lines = _verify_upload(app.state.db, settings, name, data)
            problem = None
        except MeetauditError as exc:
            result, lines, problem = None, [], str(exc)
        with records() as session:
            record(request, session, "verify", {"file": name,
                   "sha256": hashlib.sha256(data).hexdigest()}, 1, "upload")  # fmt: skip
        return page(request, "verify.html", result=result, lines=lines, name=name,
                    problem=problem)  # fmt: skip

    # -- gaps --------------------------------------------------------------------------------

    @app.get("/gaps", openapi_extra={"x-action": "gaps.view"}, include_in_schema=False)
    def gaps(request: Request, month: str | None = None) -> Response:
        from reporting.web.views import month_gaps

        with records() as session:
            view = month_gaps(session, settings, month)
        return page(request, "gaps.html", view=view, timezone=settings.timezone)

    # -- investigate -------------------------------------------------------------------------

    @app.get("/investigate", openapi_extra={"x-action": "investigate.search"},
             include_in_schema=False)  # fmt: skip
    def investigate(request: Request, question: str = "", who: str = "", month: str = "",
                    case: str = "", format: str = "html", sort: str = "",
                    page_number: int = Query(1, alias="page"), start: str = Query("", alias="from"),
                    end: str = Query("", alias="to")) -> Response:  # fmt: skip
        from reporting.web.views import QUESTIONS, answer

        if not question:
            return page(request, "investigate.html", questions=QUESTIONS, form={}, result=None,
                        shown=None, problem=None)  # fmt: skip
        form = {"question": question, "who": who, "month": month, "case": case, "from": start,
                "to": end}  # fmt: skip
        with records() as session:
            try:
                result = answer(session, settings, question, who=who, month=month, case=case,
                                start=start, end=end)  # fmt: skip
            except MeetauditError as exc:
                return page(request, "investigate.html", 400, questions=QUESTIONS, form=form,
                            result=None, shown=None, problem=str(exc))  # fmt: skip
            fmt = "csv" if format == "csv" else "html"
            record(request, session, f"investigate {question}", result.parameters,
                   len(result.rows), fmt, case=result.case)  # fmt: skip
        if fmt == "csv":
            return Response(_csv(result.rows, settings), media_type="text/csv", headers={
                "Content-Disposition": f'attachment; filename="{question}.csv"'})  # fmt: skip
        from reporting.web.views import page_of

        shown = page_of(result.rows, result.columns, sort=sort, page=page_number)
        # The cells as text beforehand: Jinja2's ``attr`` filter costs a static attribute
        # lookup per cell, a third of a page of 100 rows (issue 13).
        cells = [[cell_text(getattr(row, c), settings.zone) for c in result.columns]
                 for row in shown.rows]  # fmt: skip
        return page(request, "investigate.html", questions=QUESTIONS, form=form, result=result,
                    shown=shown, cells=cells, problem=None)  # fmt: skip

    @app.get("/cases", openapi_extra={"x-action": "cases.manage"}, include_in_schema=False)
    def cases(request: Request) -> Response:
        from reporting.cases import list_cases

        with records() as session:
            found = list_cases(session)
        return page(request, "cases.html", cases=found, problem=None, done=None,
                    zone=settings.zone)  # fmt: skip

    @app.post("/cases", openapi_extra={"x-action": "cases.manage"}, include_in_schema=False)
    async def open_case(request: Request) -> Response:
        from reporting.cases import close_case, list_cases
        from reporting.cases import open_case as open_new_case

        form = await request.form()
        ref = str(form.get("ref", ""))
        problem, done = None, None
        try:
            with records() as session:
                if form.get("close"):
                    close_case(session, ref, operator=request.state.actor.name,
                               note=str(form.get("note", "")))  # fmt: skip
                    done = f"Case {ref} closed."
                else:
                    case = open_new_case(session, ref, str(form.get("purpose", "")),
                                         operator=request.state.actor.name)  # fmt: skip
                    done = f"Case {case.ref} opened. Ask questions in it on the Investigate page."
        except MeetauditError as exc:
            problem = str(exc)
        with records() as session:
            found = list_cases(session)
        return page(request, "cases.html", 400 if problem else 200, cases=found,
                    problem=problem, done=done, zone=settings.zone)  # fmt: skip

    # -- case dossiers: `meetaudit case dossier`, as a background job -------------------------

    def queue_dossier(request: Request, ref: str) -> int:
        """Queue the dossier of case ``ref`` for the signed-in investigator (an unknown case is
        refused now, not when the job runs); the job's id."""
        from reporting.cases import find_case
        from reporting.jobs import enqueue

        actor: Actor = request.state.actor
        with records() as session:
            case = find_case(session, ref)
            job = enqueue(session, "dossier", {"case": case.ref, "role": actor.role,
                                               "client": client_of(request)}, by=actor.name)  # fmt: skip
            return job.id

    @app.post("/cases/dossier", openapi_extra={"x-action": "cases.dossier"},
              include_in_schema=False)  # fmt: skip
    async def dossier(request: Request) -> Response:
        from reporting.cases import list_cases

        form = await request.form()
        try:
            job_id = queue_dossier(request, str(form.get("ref", "")))
        except MeetauditError as exc:
            with records() as session:
                found = list_cases(session)
            return page(request, "cases.html", 400, cases=found, problem=str(exc), done=None,
                        zone=settings.zone)  # fmt: skip
        return RedirectResponse(f"/cases/dossiers/{job_id}", status_code=303)

    @app.get("/cases/dossiers/{job_id}", openapi_extra={"x-action": "cases.dossier"},
             include_in_schema=False)  # fmt: skip
    def dossier_job(request: Request, job_id: int) -> Response:
        return page(request, "job.html", job=job_of(job_id, "dossier"))

    @app.get("/cases/dossiers/{job_id}/file", openapi_extra={"x-action": "cases.dossier"},
             include_in_schema=False)  # fmt: skip
    def dossier_file(request: Request, job_id: int) -> Response:
        found = job_of(job_id, "dossier")
        if found.status != "done":
            raise StarletteHTTPException(404, f"the dossier of job {job_id} is not written yet")
        return recorded_file(request, found.result["dossier_id"], case=found.result["case"])

    # -- access log and accounts -------------------------------------------------------------

    @app.get("/access-log", openapi_extra={"x-action": "access_log.view"},
             include_in_schema=False)  # fmt: skip
    def access_log(request: Request, case: str | None = None) -> Response:
        from reporting.cases import check_log, entries

        with records() as session:
            rows = entries(session, case_ref=case or None)
            state = check_log(session)
        return page(request, "access_log.html", rows=rows[-500:], total=len(rows), state=state,
                    zone=settings.zone, timezone=settings.timezone)  # fmt: skip

    @app.get("/users", openapi_extra={"x-action": "users.manage"}, include_in_schema=False)
    def users(request: Request) -> Response:
        with records() as session:
            found = accounts.list_users(session)
        return page(request, "users.html", users=found, problem=None, done=None)

    @app.post("/users", openapi_extra={"x-action": "users.manage"}, include_in_schema=False)
    async def add_user(request: Request) -> Response:
        form = await request.form()
        problem, done = None, None
        try:
            with records() as session:
                user = accounts.add_user(session, str(form.get("name", "")),
                                         str(form.get("role", "")),
                                         str(form.get("password", "")),
                                         by=request.state.actor.name)  # fmt: skip
                done = f"Account {user.name} ({user.role}) created."
        except MeetauditError as exc:
            problem = str(exc)
        with records() as session:
            found = accounts.list_users(session)
        return page(request, "users.html", 400 if problem else 200, users=found,
                    problem=problem, done=done)  # fmt: skip

    # -- JSON API ----------------------------------------------------------------------------

    @app.get("/api/v1/reports", openapi_extra={"x-action": "reports.view"})
    def api_reports(request: Request) -> dict[str, Any]:
        """The report ledger, oldest first: every entry, its file's state, the chain's verdict."""
        from reporting.report import verify_ledger
        from reporting.report.trust import pins_from
        from reporting.report.witness import Witness

        check = verify_ledger(
            app.state.db, witness_=Witness.from_settings(settings), pins=pins_from(settings)
        )
        return {
            "ok": check.ok,
            "entries": check.entries,
            "head_seq": check.head_seq,
            "head_sha256": check.head_sha256,
            "problems": check.problems,
            "warnings": check.warnings,
            "listing": [_plain(dataclasses.asdict(e)) for e in check.listing],
        }

    @app.get("/api/v1/reports/{report_id}/file", openapi_extra={"x-action": "reports.download"})
    def api_download(request: Request, report_id: str) -> Response:
        """A recorded report file, only while it is unchanged where it was written."""
        return download(request, report_id)

    @app.post("/api/v1/verify", openapi_extra={"x-action": "reports.verify"})
    async def api_verify(request: Request) -> dict[str, Any]:
        """Verify an uploaded file (multipart field ``file``): the verdict of `meetaudit verify`."""

        form = await request.form(max_part_size=MAX_UPLOAD)
        upload = form.get("file")
        if upload is None or isinstance(upload, str):
            raise StarletteHTTPException(400, "send the file in the multipart field 'file'")
        data = await upload.read(MAX_UPLOAD + 1)
        if len(data) > MAX_UPLOAD:
            raise StarletteHTTPException(413, f"larger than {MAX_UPLOAD // 2**20} MiB")
        name = Path(upload.filename or "upload").name or "upload"
        result, lines = _verify_upload(app.state.db, settings, name, data)
        sha = hashlib.sha256(data).hexdigest()
        with records() as session:
            record(request, session, "verify", {"file": name, "sha256": sha}, 1, "api")
        return {"file": name, "sha256": sha, "ok": result.ok, "lines": lines}

    @app.get("/api/v1/gaps", openapi_extra={"x-action": "gaps.view"})
    def api_gaps(request: Request, month: str | None = None) -> dict[str, Any]:
        """What is missing from a month (default: last month), every attempt included."""
        from reporting.web.views import month_gaps

        with records() as session:
            view = month_gaps(session, settings, month)
            return {
                "month": view.month,
                "complete": view.complete,
                "unlisted": [[a.isoformat(), b.isoformat()] for a, b in view.unlisted],
                "unstored": [m.meeting_id for m in view.unstored],
                "gaps": [_plain({c: getattr(g, c) for c in _GAP_FIELDS}) for g in view.gaps],
            }

    @app.get("/api/v1/investigate", openapi_extra={"x-action": "investigate.search"})
    def api_investigate(request: Request, question: str, who: str = "", month: str = "",
                        case: str = "", start: str = Query("", alias="from"),
                        end: str = Query("", alias="to")) -> Response:  # fmt: skip
        """Answer an investigate question (any of `meetaudit investigate`'s) in a case: the rows,
        and the notes the CLI prints beside them (``who`` is what the question asks about)."""
        from reporting.web.views import answer

        with records() as session:
            try:
                result = answer(session, settings, question, who=who, month=month, case=case,
                                start=start, end=end)  # fmt: skip
            except MeetauditError as exc:
                raise StarletteHTTPException(400, str(exc)) from None
            record(request, session, f"investigate {question}", result.parameters,
                   len(result.rows), "json", case=result.case)  # fmt: skip
        # The rows are flat: their fields are read directly (``dataclasses.asdict`` deep-copies
        # each value) and encoded by ``json`` itself, times and paths by :func:`_json_default`
        # (no walk in Python over every value, no second pass by FastAPI's encoder): the
        # encoding took as long as the query for an answer of a thousand rows (issue 13).
        rows = [{c: getattr(r, c) for c in result.columns} for r in result.rows]
        said = result.answered
        people = [dataclasses.asdict(p) for p in said.people]
        return _json({"question": question, "period": result.period, "case": result.case,
                      "rows": rows, "people": people,
                      "notes": [*said.before, *said.notes]})  # fmt: skip

    @app.post("/api/v1/reports/generate", openapi_extra={"x-action": "reports.generate"})
    async def api_generate(request: Request) -> dict[str, Any]:
        """Queue the report of a closed month: ``{"month": "2026-10", "formats": ["pdf"]}``."""
        from reporting.jobs import enqueue

        try:
            body = await request.json()
        except ValueError:
            body = None
        if not isinstance(body, dict):
            raise StarletteHTTPException(400, 'send JSON: {"month": "YYYY-MM", "formats": ["pdf"]}')
        formats = [f for f in body.get("formats", ["pdf"]) if f in ("pdf", "csv", "json")]
        month = _month(settings, str(body.get("month") or ""))
        with records() as session:
            job = enqueue(session, "report", {"month": month, "formats": formats or ["pdf"]},
                          by=request.state.actor.name)  # fmt: skip
            return {"job": job.id, "status": job.status, "url": f"/api/v1/jobs/{job.id}"}

    @app.get("/api/v1/jobs/{job_id}", openapi_extra={"x-action": "reports.view"})
    def api_job(request: Request, job_id: int) -> dict[str, Any]:
        """A background job's state, progress and result."""
        found = job_of(job_id, "report")
        job: dict[str, Any] = _plain({c: getattr(found, c) for c in _JOB_FIELDS})
        return job

    @app.post("/api/v1/cases/{ref}/dossier", openapi_extra={"x-action": "cases.dossier"})
    def api_dossier(request: Request, ref: str) -> dict[str, Any]:
        """Queue the dossier of case ``ref``, as `meetaudit case dossier REF` compiles it; follow
        ``url`` for its state and, when done, its file."""
        try:
            job_id = queue_dossier(request, ref)
        except MeetauditError as exc:
            raise StarletteHTTPException(400, str(exc)) from None
        return {"job": job_id, "status": "queued", "url": f"/api/v1/dossiers/{job_id}"}

    @app.get("/api/v1/dossiers/{job_id}", openapi_extra={"x-action": "cases.dossier"})
    def api_dossier_job(request: Request, job_id: int) -> dict[str, Any]:
        """A dossier job's state and result; ``file`` is where its PDF downloads when done."""
        found = job_of(job_id, "dossier")
        job: dict[str, Any] = _plain({c: getattr(found, c) for c in _JOB_FIELDS})
        job["file"] = f"/api/v1/dossiers/{job_id}/file" if found.status == "done" else None
        return job

    @app.get("/api/v1/dossiers/{job_id}/file", openapi_extra={"x-action": "cases.dossier"})
    def api_dossier_file(request: Request, job_id: int) -> Response:
        """The dossier's PDF, only while it is unchanged where it was written."""
        return dossier_file(request, job_id)

    @app.get("/api/v1/access-log", openapi_extra={"x-action": "access_log.view"})
    def api_access_log(request: Request, case: str | None = None) -> dict[str, Any]:
        """The access log (of one case, or all) and whether it is intact."""
        from reporting.cases import check_log, entries

        with records() as session:
            rows = entries(session, case_ref=case or None)
            state = check_log(session)
            return {
                "intact": state.intact,
                "problems": state.problems,
                "head_seq": state.head_seq,
                "head_sha256": state.head_sha256,
                "entries": [_plain({c: getattr(r, c) for c in _LOG_FIELDS}) for r in rows],
            }

    return app


def _set_cookie(response: Response, name: str, value: str, *, max_age: int) -> None:
    response.set_cookie(name, value, max_age=max_age, path="/", secure=True, httponly=True,
                        samesite="strict")  # fmt: skip


def _safe_next(target: str) -> str:
    """Only a path on this console: never an address elsewhere (an open redirect)."""
    if not target.startswith("/") or target.startswith("//") or "\\" in target:
        return "/"
    return target


def _month(settings: Settings, month: str) -> str:
    """The month a form or request names, ``YYYY-MM``; left empty, last month (as the CLI
    without --month). A mistake is the CLI's :class:`PeriodError`, with its message."""
    from reporting.periods import month_of, period_from_options

    window = period_from_options(settings.zone, month.strip() or None, None, None)
    return month_of(window, settings.zone)


def _csv(rows: list[Any], settings: Settings) -> bytes:
    from reporting.investigate import write_csv

    out = io.StringIO()
    write_csv(rows, out, settings.zone)
    return out.getvalue().encode("utf-8")


_GAP_FIELDS = ("id", "harvest_run_id", "scope", "meeting_id", "window_from", "window_to",
               "http_status", "tracking_id", "reason", "occurred_at", "resolved_at",
               "superseded_at")  # fmt: skip
_JOB_FIELDS = ("id", "kind", "parameters", "status", "requested_by", "requested_at",
               "claimed_by", "stage", "done", "total", "finished_at", "result", "error")  # fmt: skip
_LOG_FIELDS = ("seq", "at", "operator", "case_ref", "question", "parameters", "rows_returned",
               "output_format", "entry_sha256")  # fmt: skip


def _json_default(value: Any) -> Any:
    """What :func:`json.dumps` cannot encode by itself, as :func:`_plain` gives it."""
    if isinstance(value, dt.datetime):
        return value.isoformat()
    if isinstance(value, Path):
        return str(value)
    if isinstance(value, set):
        return list(value)
    raise TypeError(f"{type(value).__name__} is not JSON")


def _json(content: Any) -> Response:
    """A JSON response as :class:`JSONResponse` renders it, times in ISO 8601."""
    body = json.dumps(content, default=_json_default, ensure_ascii=False, allow_nan=False,
                      separators=(",", ":"))  # fmt: skip
    return Response(body.encode("utf-8"), media_type="application/json")


def _plain(value: Any) -> Any:
    """A value as JSON can carry it: times ISO 8601, paths as text."""
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set):
        return [_plain(v) for v in value]
    if isinstance(value, dt.datetime):
        return value.isoformat()
    if isinstance(value, Path):
        return str(value)
    return value


def _verify_upload(
    db: Database, settings: Settings, name: str, data: bytes
) -> tuple[Any, list[str]]:
    """`meetaudit verify` on uploaded bytes, written only to a private temporary folder (never
    where a download could serve it) and named by the uploaded name in the verdict: against the
    certificates this server's settings pin, and the ledger checked against its witness."""
    from reporting.report import verify_file
    from reporting.report.trust import pins_from
    from reporting.report.witness import Witness

    with tempfile.TemporaryDirectory(prefix="meetaudit-verify-") as folder:
        target = Path(folder) / name
        target.write_bytes(data)
        try:
            result = verify_file(
                db, target, pins=pins_from(settings), witness_=Witness.from_settings(settings)
            )
        except MeetauditError as exc:
            raise type(exc)(str(exc).replace(str(target), name)) from None
        return result, [line.replace(str(target), name) for line in result.lines()]
