"""The report pages, as a sub-application mounted at /reports that shares the gateway's state
(its gRPC stubs and settings) and renders errors as HTML pages instead of the JSON envelope.

Browser sign-in: a browser cannot send `Authorization: Bearer`, so /reports/login takes the same
credential (an API key or a JWT) in a form, checks it as the API would, and keeps a server-side
session (sessions.py): the HttpOnly, SameSite=Strict cookie scoped to /reports holds the session id,
never the credential, and is `Secure` whenever the gateway's public URL (or the request) is https.
Every report request with that cookie and no Authorization header is authenticated exactly as the
API authenticates the header (the gateway's `authenticate` dependency), with the session's
credential. Form posts (sign-in, sign-out, stop) are refused from a foreign or `null` Origin (login
CSRF); the pages send `Referrer-Policy: same-origin`, so a browser sends our own origin on our
forms and no Referer to other sites. Kiosk pages need nothing and offer nothing that changes state."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Annotated
from urllib.parse import parse_qs, quote, urlencode, urlsplit

import grpc
from fastapi import Depends, FastAPI, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse
from fastapi.staticfiles import StaticFiles
from jinja2 import Environment, FileSystemLoader, Undefined, select_autoescape
from markupsafe import Markup, escape
from starlette.exceptions import HTTPException as StarletteHTTPException

from callgauge_gateway.entrypoints.auth import Principal, authenticate, resolve
from callgauge_gateway.entrypoints.deps import gateway_of
from callgauge_gateway.domain.proto_json import to_json
from callgauge_gateway.entrypoints.errors import ApiError, api_error_from_grpc
from callgauge_gateway.domain import report_view as view
from callgauge_gateway.domain.call_filter import OUTCOMES, SORTS, CallFilter
from callgauge_gateway.handlers.reports import fields_of, report_data
from callgauge_gateway.entrypoints.routes.calls import (
    Leg,
    call_filter,
    call_json,
    recording_response,
)
from callgauge_platform.logs import get_logger
from callgauge_proto.callgauge.runs.v1 import runs_service_pb2 as pb
from callgauge_platform.run_states import TERMINAL
from callgauge_platform.timestamps import iso_field

log = get_logger(__name__)
HERE = Path(__file__).parent
COOKIE = "callgauge_report_session"
CSP = ("default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; "
       "media-src 'self'; "
       "form-action 'self'; frame-ancestors 'self'; base-uri 'none'")
Auth = Annotated[Principal, Depends(authenticate)]
_env = Environment(loader=FileSystemLoader(HERE / "templates"), autoescape=select_autoescape(["html"]))


def _fmt(v, digits: int = 2, unit: str = "") -> str:
    if v is None or v == "" or isinstance(v, Undefined):
        return "—"  # not measured
    try:
        return f"{float(v):.{digits}f}{unit}"
    except (TypeError, ValueError):
        return str(v)


_env.filters["num"] = _fmt


def _localtime(v) -> Markup:
    """A UTC timestamp (ISO 8601) as <time>: the page's localtime.js shows it in the browser's time zone;
    without scripts it reads as UTC."""
    if not v or isinstance(v, Undefined):
        return Markup("—")
    text = str(v)
    shown = text.replace("T", " ").rstrip("Z").split(".")[0] + " UTC" if text.endswith("Z") else text
    return Markup(f'<time datetime="{escape(text)}">{escape(shown)}</time>')


_env.filters["localtime"] = _localtime
_env.filters["pct"] = lambda v: "—" if v is None or isinstance(v, Undefined) else f"{float(v) * 100:.1f} %"


def _page(template: str, http_status: int = 200, **ctx) -> HTMLResponse:
    html = _env.get_template(template).render(**ctx)
    return HTMLResponse(html, status_code=http_status, headers={
        "Content-Security-Policy": CSP, "X-Content-Type-Options": "nosniff", "Referrer-Policy": "same-origin",
        "Cache-Control": "no-store"})


def _message(status: int, title: str, text: str, login_next: str | None = None) -> HTMLResponse:
    return _page("message.html", status, title=title, text=text, login_next=login_next)


class _CookieAuth:
    """ASGI middleware: the report session cookie's session becomes the Authorization header the
    gateway's `authenticate` reads, unless the request already has one. An unknown or expired
    session adds nothing (the page answers 401 and clears the cookie)."""

    def __init__(self, app, state) -> None:
        self.app = app
        self.state = state

    async def __call__(self, scope, receive, send):
        if scope["type"] == "http":
            headers = list(scope.get("headers") or [])
            names = {k.lower() for k, _ in headers}
            if b"authorization" not in names:
                for k, v in headers:
                    if k.lower() == b"cookie":
                        sid = _cookie_value(v.decode("latin-1"))
                        token = await self.state.gateway.report_sessions.credential(sid) if sid else None
                        if token:
                            headers.append((b"authorization", f"Bearer {token}".encode("latin-1")))
                            scope = {**scope, "headers": headers}
                        break
        await self.app(scope, receive, send)


def _cookie_value(cookie_header: str) -> str:
    for part in cookie_header.split(";"):
        name, _, value = part.strip().partition("=")
        if name == COOKIE and value:
            return value.strip('"')
    return ""


async def _render(request: Request, run: pb.Run, account_id: str, mode: str, kiosk: bool,
                  filters: CallFilter, cursor: str) -> HTMLResponse:
    """The report with one page of the calls table (paged on the server: the page never holds
    a big run's calls), the first failed calls' ladders and, for a small run, every call for the
    charts when there are no per-second statistics."""
    stub = gateway_of(request).services.runs
    got = await report_data(stub, run, account_id, mode, filters, cursor)
    page = got.page
    data = to_json(run)
    for secret in ("accountId", "kioskToken", "calls"):
        data.pop(secret, None)
    base = request.url.path

    def link(**params) -> str:
        query = {**filters.params(), **params}
        return f"{base}?{urlencode({k: v for k, v in query.items() if v})}" if any(query.values()) else base

    table = {
        "calls": [call_json(c) for c in page.calls], "total": page.total,
        "nextUrl": link(cursor=page.next_page_token) if page.next_page_token else None,
        "firstUrl": link() if cursor else None,
        "outcome": filters.outcomes[0] if filters.outcomes else "",
        "sort": next(k for k, v in SORTS.items() if v == filters.sort),
        "outcomeUrls": {o: f"{base}?{urlencode({**filters.params(), 'outcome': o})}" for o in OUTCOMES}
                       | {"": f"{base}?{urlencode({k: v for k, v in filters.params().items() if k != 'outcome'})}"},
        "sortUrls": {k: f"{base}?{urlencode({**filters.params(), 'sort': k})}" for k in view.TABLE_SORTS},
    }
    ctx = view.build(data, got.assertions, got.seconds, table, [call_json(c) for c in got.failed.calls],
                     got.failed.total, [call_json(c) for c in got.sample.calls] if got.sample is not None else None)
    return _page("report.html", kiosk=kiosk, can_stop=not kiosk and not ctx["finished"]
                 and hasattr(stub, "StopRun"), audio_base=base, **ctx)


RUNS_PAGE = 25  # runs per page of the HTML run list
PROJECTS_SHOWN, RECENT_RUNS = 20, 5  # the sign-in landing: each project's latest runs
RUN_STATUSES = tuple(pb.RunStatus.keys()[1:])


def _run_row(r: pb.Run) -> dict:
    status = pb.RunStatus.Name(r.status)
    finished = status in TERMINAL
    passed = finished and status == "COMPLETED" and r.passed
    s = r.summary
    planned = r.planned_calls or s.calls_attempted
    return {"id": r.id, "test_name": r.test_name or r.test_id, "status": status,
            "verdict": ("passed" if passed else "failed") if finished else "—",
            "verdict_class": ("pass" if passed else "fail") if finished else "running",
            "calls": f"{s.calls_answered} / {planned}" if planned else "—",
            "created": iso_field(r, "created_at"),
            "result": r.result_description}


def landing_page(version: str, api_url: str) -> HTMLResponse:
    """GET / : what this server is and where to go (docs, API, runs after sign-in, reports)."""
    return _page("landing.html", version=version, api_url=api_url)


def _table_filter(outcome: str, sort: str) -> CallFilter:
    """The table's outcome and sort from the page's query (checked like the API's; 422 page when bad)."""
    return call_filter(outcome=[outcome] if outcome else None, sip_code=None, mos_min=None, mos_max=None,
                       sort=sort or "index")


def create_reports_app(parent: FastAPI) -> FastAPI:
    sub = FastAPI(openapi_url=None, docs_url=None, redoc_url=None, telemetry={"tracing": False})
    sub.state = parent.state  # the Gateway bootstrap wires (entrypoints.deps.gateway_of)
    sub.add_middleware(_CookieAuth, state=parent.state)
    sub.mount("/static", StaticFiles(directory=HERE / "static"), name="report-static")

    @sub.exception_handler(ApiError)
    async def _api(request: Request, exc: ApiError):
        if exc.status == 401:
            what = "this report" if "/runs/" in request.url.path or "/kiosk/" in request.url.path else "your runs"
            resp = _message(401, f"Sign in to see {what}",
                            f"{what[0].upper()}{what[1:]} need{'s' if what == 'this report' else ''} an API key "
                            "(or a session). Paste one below: you stay signed in on report pages (a session on "
                            "the server; the key is not kept in your browser).",
                            login_next=request.url.path)
            if COOKIE in request.cookies:
                resp.delete_cookie(COOKIE, path="/reports")
            return resp
        return _message(exc.status, "Cannot show this report", exc.message)

    @sub.exception_handler(grpc.aio.AioRpcError)
    async def _grpc(_request: Request, exc: grpc.aio.AioRpcError):
        err = api_error_from_grpc(exc)  # the gateway's one mapping (logs what gRPC said); a page's words
        if err.status == 404:
            return _message(404, "No such report", "This run does not exist, or the link was revoked.")
        if err.status in (503, 504):
            return _message(503, "Try again shortly", "A backend service is not answering right now.")
        return _message(err.status, "Cannot show this report" if err.status < 500 else "Something went wrong",
                        err.message)

    @sub.exception_handler(StarletteHTTPException)
    async def _http(_request: Request, exc: StarletteHTTPException):
        return _message(exc.status_code, "Not found" if exc.status_code == 404 else "Request failed",
                        exc.detail if isinstance(exc.detail, str) else "")

    @sub.exception_handler(Exception)
    async def _any(_request: Request, exc: Exception):
        log.exception("report_error")
        return _message(500, "Something went wrong", "The request id in the response headers identifies it.")

    @sub.get("/runs/{run_id}", response_class=HTMLResponse)
    async def run_report(run_id: str, request: Request, who: Auth, outcome: str = "", sort: str = "index",
                         cursor: Annotated[str, Query(max_length=2000)] = ""):
        filters = _table_filter(outcome, sort)
        mode = getattr(who, "mode", "live")
        run = await gateway_of(request).services.runs.GetRun(pb.GetRunRequest(**fields_of(
            pb.GetRunRequest, account_id=who.account_id, project_id="", run_id=run_id, mode=mode)), timeout=10)
        return await _render(request, run, who.account_id, mode, False, filters, cursor)

    @sub.get("/", response_class=HTMLResponse)
    async def projects_index(request: Request, who: Auth):
        """After sign-in: the projects, each with its latest runs."""
        stub, mode = gateway_of(request).services.runs, getattr(who, "mode", "live")
        resp = await stub.ListProjects(pb.ListProjectsRequest(account_id=who.account_id, mode=mode, page=1,
                                                              per_page=PROJECTS_SHOWN), timeout=10)
        lists = await asyncio.gather(*(stub.ListRuns(pb.ListRunsRequest(
            account_id=who.account_id, mode=mode, project_id=p.id, page=1, per_page=RECENT_RUNS), timeout=10)
            for p in resp.projects))
        projects = [{"id": p.id, "name": p.name, "slug": p.slug, "runs_total": runs.total,
                     "runs": [_run_row(r) for r in runs.runs]} for p, runs in zip(resp.projects, lists)]
        return _page("projects.html", projects=projects, total=resp.total, more=resp.total > len(projects),
                     mode=mode)

    @sub.get("/projects/{project_id}/runs", response_class=HTMLResponse)
    async def project_runs(project_id: str, request: Request, who: Auth, status: str = "",
                           page: Annotated[int, Query(ge=1, le=100_000)] = 1,
                           per_page: Annotated[int, Query(alias="perPage", ge=1, le=100)] = RUNS_PAGE):
        """A project's runs, newest first, RUNS_PAGE a page, filtered by status (plain links)."""
        status = status.upper()
        if status and status not in RUN_STATUSES:
            raise ApiError(422, f"Unknown status {status!r}: one of {', '.join(RUN_STATUSES)}")
        stub, mode = gateway_of(request).services.runs, getattr(who, "mode", "live")
        project = await stub.GetProject(pb.GetProjectRequest(account_id=who.account_id, project_id=project_id,
                                                             mode=mode), timeout=10)
        resp = await stub.ListRuns(pb.ListRunsRequest(account_id=who.account_id, mode=mode, project_id=project_id,
                                                      page=page, per_page=per_page, status=status), timeout=10)
        pages = max(1, -(-resp.total // per_page))
        base = request.url.path

        def link(**q) -> str:
            q = {k: v for k, v in {**q, "perPage": per_page if per_page != RUNS_PAGE else None}.items() if v}
            return f"{base}?{urlencode(q)}" if q else base

        return _page("runs.html", project={"id": project.id, "name": project.name or project.slug},
                     runs=[_run_row(r) for r in resp.runs], total=resp.total, status=status, page=page,
                     pages=pages, status_urls=[(s, link(status=s)) for s in ("", *RUN_STATUSES)],
                     prev_url=link(status=status, page=page - 1 if page > 2 else None) if page > 1 else None,
                     next_url=link(status=status, page=page + 1) if page < pages else None)

    @sub.get("/kiosk/{token}", response_class=HTMLResponse)
    async def kiosk_report(token: str, request: Request, outcome: str = "", sort: str = "index",
                           cursor: Annotated[str, Query(max_length=2000)] = ""):
        filters = _table_filter(outcome, sort)
        stub = gateway_of(request).services.runs
        if not hasattr(stub, "GetRunByKioskToken") or len(token) > 200:
            return _message(404, "No such report", "This link does not exist or was revoked.")
        run = await stub.GetRunByKioskToken(pb.GetRunByKioskTokenRequest(token=token), timeout=10)
        account = getattr(run, "account_id", "")
        return await _render(request, run, account, getattr(run, "mode", "") or "live", True, filters, cursor)

    @sub.get("/runs/{run_id}/calls/{call_id}/audio")
    async def run_call_audio(run_id: str, call_id: str, request: Request, who: Auth, leg: Leg = "caller"):
        """A call's recording for the report's <audio> player (the report cookie signs it in)."""
        run = await gateway_of(request).services.runs.GetRun(pb.GetRunRequest(**fields_of(
            pb.GetRunRequest, account_id=who.account_id, project_id="", run_id=run_id,
            mode=getattr(who, "mode", "live"))), timeout=10)
        return recording_response(request, run.id, call_id, leg)

    @sub.get("/kiosk/{token}/calls/{call_id}/audio")
    async def kiosk_call_audio(token: str, call_id: str, request: Request, leg: Leg = "caller"):
        """The same for a public (kiosk) report: its link is the credential, for its run only."""
        stub = gateway_of(request).services.runs
        if not hasattr(stub, "GetRunByKioskToken") or len(token) > 200:
            return _message(404, "No such report", "This link does not exist or was revoked.")
        run = await stub.GetRunByKioskToken(pb.GetRunByKioskTokenRequest(token=token), timeout=10)
        return recording_response(request, run.id, call_id, leg)

    @sub.post("/runs/{run_id}/stop")
    async def stop_run(run_id: str, request: Request, who: Auth):
        _same_origin(request)
        stub = gateway_of(request).services.runs
        if not hasattr(stub, "StopRun"):
            return _message(404, "Cannot stop runs here", "This gateway cannot stop runs yet.")
        await stub.StopRun(pb.GetRunRequest(**fields_of(pb.GetRunRequest, account_id=who.account_id, project_id="",
                                                      run_id=run_id, mode=getattr(who, "mode", "live"))),
                           timeout=10)
        return RedirectResponse(f"/reports/runs/{quote(run_id)}", status_code=303)

    @sub.get("/login", response_class=HTMLResponse)
    async def login_form(next: str = "/reports/"):  # noqa: A002
        return _message(200, "Sign in to see reports", "Paste an API key (cgk_live_… / cgk_test_…) or a token.",
                        login_next=_safe_next(next))

    @sub.post("/login")
    async def login(request: Request):
        _same_origin(request)
        raw = (await request.body())[:8192].decode("utf-8", "replace")
        form = {k: v[0] for k, v in parse_qs(raw).items()}
        key, nxt = form.get("key", "").strip(), _safe_next(form.get("next", "/reports/"))
        if not key or len(key) > 4096 or any(ch in key for ch in "\r\n;, "):
            return _message(422, "Sign in to see reports", "That is not an API key.", login_next=nxt)
        try:
            await resolve(request, f"Bearer {key}")  # as the API checks it (failed attempts counted)
        except ApiError as exc:
            if exc.status != 401:
                raise
            return _message(401, "Sign in to see reports", "That key or token was not accepted.", login_next=nxt)
        sessions = gateway_of(request).report_sessions
        sid = await sessions.start(key)
        resp = RedirectResponse(nxt, status_code=303)
        resp.set_cookie(COOKIE, sid, httponly=True, samesite="strict", path="/reports",
                        secure=_secure(request), max_age=sessions.ttl)
        return resp

    @sub.post("/logout")
    async def logout(request: Request):
        _same_origin(request)
        sid = _cookie_value(request.headers.get("cookie", ""))
        if sid:
            await gateway_of(request).report_sessions.end(sid)
        resp = RedirectResponse("/reports/login", status_code=303)
        resp.delete_cookie(COOKIE, path="/reports", secure=_secure(request), httponly=True, samesite="strict")
        return resp

    return sub


def _safe_next(value: str) -> str:
    """Only a path under /reports/ (no open redirect)."""
    if value.startswith("/reports/") and not value.startswith("//") and "\\" not in value:
        return value
    return "/reports/login"


def _origin_of(url: str) -> str:
    parts = urlsplit(url.strip())
    return f"{parts.scheme}://{parts.netloc}".lower() if parts.scheme and parts.netloc else ""


def _own_origins(request: Request) -> set[str]:
    own = {f"{request.url.scheme}://{request.url.netloc}".lower()}
    public = gateway_of(request).settings.public_url
    if public:
        own.add(_origin_of(public))
    return own


def _secure(request: Request) -> bool:
    """The cookie is Secure when the gateway is reached over https: directly, or behind a proxy
    that ends TLS (the configured public URL is https)."""
    return request.url.scheme == "https" or gateway_of(request).settings.public_url.lower().startswith("https://")


def _same_origin(request: Request) -> None:
    """State-changing form posts only from our own pages: a foreign Origin, or `null` (a sandboxed
    frame, a data: URL, a redirect across sites), is refused — it is how login CSRF signs a victim
    into the attacker's account. A browser always sends Origin on a POST; a request with neither
    Origin nor Referer is not from a browser page, so it cannot be a cross-site forgery."""
    origin = request.headers.get("origin")
    if origin is None:
        referer = request.headers.get("referer")
        if referer is None:
            return
        origin = _origin_of(referer) or "null"
    if origin.strip().rstrip("/").lower() not in _own_origins(request):
        raise ApiError(403, "Cross-site form post refused: this form works only from this site's own pages")
