"""`callgauge`: one typer application for everything.

API commands (typer + rich, on callgauge_client) talk to any gateway:

  callgauge login --url URL --api-key KEY          (or --email/--password: creates a key)
  callgauge keys list|create|revoke
  callgauge projects list|create|show
  callgauge tests apply -f test.yaml [--project P] (create or update by name) | tests list
  callgauge run TEST [--project P] [--set step.1.0.dial_destination=…] [--wait] [--junit FILE] [--json]

The operator's commands (events, credit, service-keys) are in callgauge_cli.operator; the
application package (callgauge_app, at the top of the import graph) adds the commands that start or
compose services (up, demo, service, responder, replay) to this same `app` and is the console script.

Exit codes: 0 ok / the run passed, 1 the run failed, 2 usage, connection or API errors.
"""

from __future__ import annotations

import functools
import json
import re
import socket
import sys
from pathlib import Path
from typing import Annotated, Any

import typer
import yaml
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn
from rich import box as rich_box
from rich.table import Table

from callgauge_cli import junit
from callgauge_cli.config import Config, ConfigError, config_path, resolve
from callgauge_cli.operator import credit, events_app, service_keys
from callgauge_client import (
    ApiError,
    CallgaugeError,
    Client,
    NotFound,
    Project,
    Run,
    Test,
    evaluate_assertions,
)

_UUID = re.compile(r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$")
EXIT_PASSED, EXIT_FAILED, EXIT_USAGE = 0, 1, 2

out = Console()
err = Console(stderr=True)

app = typer.Typer(name="callgauge", no_args_is_help=True, add_completion=False, rich_markup_mode=None,
                  help="Callgauge: SIP/VoIP testing with real calls. API commands take --url/--api-key "
                       "(or CALLGAUGE_URL/CALLGAUGE_API_KEY, or the file `callgauge login` writes).")
keys_app = typer.Typer(no_args_is_help=True, help="API keys: list, create, revoke")
projects_app = typer.Typer(no_args_is_help=True, help="projects: list, create, show")
tests_app = typer.Typer(no_args_is_help=True, help="tests as files: apply, list")
runs_app = typer.Typer(no_args_is_help=True, help="runs: list, status, stop, calls, export, audio")
app.add_typer(keys_app, name="keys")
app.add_typer(projects_app, name="projects")
app.add_typer(tests_app, name="tests")
app.add_typer(runs_app, name="runs")


class State:
    url: str | None = None
    api_key: str | None = None


STATE = State()


def fail(message: str, code: int = EXIT_USAGE) -> typer.Exit:
    err.print(f"[bold red]callgauge:[/] {message}", highlight=False, markup=True)
    return typer.Exit(code)


def cli_errors(fn):
    """API and connection errors become a one-line message and exit code 2."""

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except ApiError as exc:
            hint = ""
            if exc.status == 401:
                hint = " — log in with `callgauge login` or pass --api-key / CALLGAUGE_API_KEY"
            raise fail(f"{exc}{hint}") from None
        except CallgaugeError as exc:
            raise fail(str(exc)) from None
        except ConfigError as exc:
            raise fail(str(exc)) from None

    return wrapper


def client(require_key: bool = True) -> Client:
    url, key, _ = resolve(STATE.url, STATE.api_key)
    if require_key and not key:
        raise fail("no API key: run `callgauge login`, or pass --api-key, or set CALLGAUGE_API_KEY")
    return Client(url, key)


@app.callback()
def root(url: Annotated[str | None, typer.Option("--url", help="gateway base URL [env CALLGAUGE_URL]")] = None,
         api_key: Annotated[str | None, typer.Option("--api-key", help="API key or JWT [env CALLGAUGE_API_KEY]")]
         = None) -> None:
    STATE.url, STATE.api_key = url, api_key


# ------------------------------------------------------------------------ login

@app.command()
@cli_errors
def login(
    url: Annotated[str | None, typer.Option("--url", help="gateway base URL")] = None,
    api_key: Annotated[str | None, typer.Option("--api-key", help="an existing API key to save")] = None,
    email: Annotated[str | None, typer.Option("--email", help="log in as a user and create a key for this CLI")]
    = None,
    password: Annotated[str | None, typer.Option("--password", help="prompted when omitted")] = None,
    mode: Annotated[str, typer.Option("--mode", help="mode of the key created with --email: live or test")]
    = "live",
    project: Annotated[str | None, typer.Option("--project", help="default project for tests/run")] = None,
) -> None:
    """Check the gateway and a credential, and save them for later commands."""
    base, key, cfg = resolve(url or STATE.url, api_key or STATE.api_key)
    refresh_token = ""
    if email:
        if password is None:
            password = typer.prompt("password", hide_input=True)
        with Client(base, "") as anon:
            tokens = anon.login(email, password)
        with Client(base, tokens.access_token) as jwt:
            created = jwt.create_api_key(f"callgauge-cli@{socket.gethostname()}", mode)
        key, refresh_token = created.key or "", tokens.refresh_token
        if not key:
            raise fail("the gateway created a key but did not return it")
    if not key:
        raise fail("give --api-key KEY or --email EMAIL (or set CALLGAUGE_API_KEY)")
    with Client(base, key) as c:
        projects = c.list_projects(per_page=1)
    cfg = Config(url=base, api_key=key, project=project or cfg.project,
                 refresh_token=refresh_token or (cfg.refresh_token if cfg.url == base else ""))
    path = cfg.save()
    out.print(f"logged in to {base} ({projects.pagination.total} project(s) visible); saved to {path}")


@app.command()
def logout() -> None:
    """Forget the saved URL and key."""
    path = config_path()
    path.unlink(missing_ok=True)
    out.print(f"removed {path}")


# ------------------------------------------------------------------------ keys

def _login_client() -> Client:
    """A client signed in as the user (key management needs a login token, not an API key): the
    saved refresh token of `callgauge login --email` is traded for a fresh access token."""
    base, _, cfg = resolve(STATE.url, STATE.api_key)
    if not cfg.refresh_token or cfg.url != base:
        raise fail("managing API keys needs a user login: run `callgauge login --email EMAIL` first")
    with Client(base, "") as anon:
        tokens = anon.refresh(cfg.refresh_token)
    cfg.refresh_token = tokens.refresh_token  # refresh tokens rotate: keep the new one
    cfg.save()
    return Client(base, tokens.access_token)


@keys_app.command("list")
@cli_errors
def keys_list(as_json: Annotated[bool, typer.Option("--json")] = False) -> None:
    """List the keys (needs the user login of `callgauge login --email`)."""
    with _login_client() as c:
        keys = c.list_api_keys()
    if as_json:
        return _print_json([k.model_dump(mode="json") for k in keys])
    table = Table("id", "name", "mode", "key", "created", "last used")
    for k in keys:
        table.add_row(k.id, k.name, k.mode, f"{k.prefix}…{k.last_four}", _ts(k.created_at), _ts(k.last_used_at))
    out.print(table)


@keys_app.command("create")
@cli_errors
def keys_create(name: str, mode: Annotated[str, typer.Option("--mode", help="live or test")] = "live",
                as_json: Annotated[bool, typer.Option("--json")] = False) -> None:
    """Create a key (needs the user login of `callgauge login --email`); it is shown once."""
    with _login_client() as c:
        k = c.create_api_key(name, mode)
    if as_json:
        return _print_json(k.model_dump(mode="json"))
    out.print(f"created key {k.id} ({k.mode}): {k.key}\nstore it now: it is not shown again")


@keys_app.command("revoke")
@cli_errors
def keys_revoke(key_id: str) -> None:
    """Revoke a key at once (needs the user login of `callgauge login --email`)."""
    with _login_client() as c:
        c.revoke_api_key(key_id)
    out.print(f"revoked {key_id}")


# ------------------------------------------------------------------------ projects

@projects_app.command("list")
@cli_errors
def projects_list(as_json: Annotated[bool, typer.Option("--json")] = False) -> None:
    with client() as c:
        projects = _all_projects(c)
    if as_json:
        return _print_json([p.model_dump(mode="json") for p in projects])
    table = Table("id", "slug", "name", "tests", "probes", "registrars")
    for p in projects:
        table.add_row(p.id, p.slug, p.name, str(p.test_count), str(p.probe_count), str(p.registrar_count))
    out.print(table)


@projects_app.command("create")
@cli_errors
def projects_create(name: str, slug: Annotated[str | None, typer.Option("--slug")] = None,
                    as_json: Annotated[bool, typer.Option("--json")] = False) -> None:
    with client() as c:
        p = c.create_project(name, slug)
    if as_json:
        return _print_json(p.model_dump(mode="json"))
    out.print(f"created project {p.id} ({p.slug})")


@projects_app.command("show")
@cli_errors
def projects_show(project: str) -> None:
    with client() as c:
        p = _find_project(c, project)
    _print_json(p.model_dump(mode="json"))


# ------------------------------------------------------------------------ tests

@tests_app.command("apply")
@cli_errors
def tests_apply(
    file: Annotated[Path, typer.Option("-f", "--file", help="YAML file: one test per document (or a list)")],
    project: Annotated[str | None, typer.Option("--project", help="project id, slug or name")] = None,
) -> None:
    """Create each test in the file, or update the one with the same name in the project."""
    docs = _load_tests(file)
    with client() as c:
        for doc in docs:
            proj = _find_project(c, project or doc.pop("project", None) or _default_project())
            doc.pop("project", None)
            existing = _find_test(c, proj.id, doc["name"], by_id=False)
            if existing is None:
                t = c.create_test(proj.id, doc)
                out.print(f"created test {t.id} {t.name!r} in {proj.slug or proj.id}")
            else:
                t = c.update_test(proj.id, existing.id, doc)
                # the runs service appends nothing when the test is the same (defaults filled in)
                same = _test_content(t) == _test_content(existing)
                out.print(f"{'unchanged' if same else 'updated'} test {t.id} {t.name!r} in {proj.slug or proj.id}")


def _test_content(t: Test) -> dict:
    d = t.model_dump(mode="json")
    return {k: d.get(k) for k in ("name", "steps", "assertions", "metadata")}


@tests_app.command("list")
@cli_errors
def tests_list(project: Annotated[str | None, typer.Option("--project")] = None,
               as_json: Annotated[bool, typer.Option("--json")] = False) -> None:
    with client() as c:
        proj = _find_project(c, project or _default_project())
        tests = c.list_tests(proj.id).items
    if as_json:
        return _print_json([t.model_dump(mode="json") for t in tests])
    table = Table("id", "name", "steps", "assertions")
    for t in tests:
        table.add_row(t.id, t.name, str(len(t.steps)), str(len(t.assertions)))
    out.print(table)


# ------------------------------------------------------------------------ runs

@runs_app.command("list")
@cli_errors
def runs_list(project: Annotated[str | None, typer.Option("--project")] = None,
              status: Annotated[str | None, typer.Option("--status", help="e.g. FAILED")] = None,
              limit: Annotated[int, typer.Option("--limit", min=1, max=100)] = 20,
              wide: Annotated[bool, typer.Option("--wide", help="no width limit: whole results too")] = False,
              as_json: Annotated[bool, typer.Option("--json")] = False) -> None:
    """A project's latest runs, newest first. Run ids are always shown whole."""
    with client() as c:
        proj = _find_project(c, project or _default_project())
        runs = c.list_runs(proj.id, status=status.upper() if status else None, per_page=limit).items
    if as_json:
        return _print_json([{k: v for k, v in r.model_dump(mode="json").items() if k != "calls"} for r in runs])
    if wide:  # every column whole, however long the lines get
        table = Table("id", "test", "status", "verdict", "created", "started", "stopped", "result", box=None)
        for r in runs:
            table.add_row(r.id, r.test_name, r.status, _verdict_word(r.status, r.passed), _ts(r.created_at),
                          _ts(r.started_at), _ts(r.stopped_at), r.result_description)
        return Console(width=100_000, highlight=False, soft_wrap=True).print(table)
    # 80 columns hold the whole id, the verdict (said once), the test and the start; the result gives way
    id_w = max((len(r.id) for r in runs), default=2)
    verdicts = [_verdict_word(r.status, r.passed) for r in runs]
    verdict_w = max([len("verdict"), *map(len, verdicts)])
    left = out.width - (id_w + verdict_w + 11 + 2 * 4)  # what the test and the result share
    test_w = max(4, min(max((len(r.test_name) for r in runs), default=4), max(8, left // 3)))
    result_w = left - test_w
    table = Table(box=None, pad_edge=False)
    table.add_column("id", no_wrap=True, min_width=id_w)
    table.add_column("verdict", no_wrap=True, min_width=verdict_w)
    table.add_column("test", no_wrap=True, overflow="ellipsis", max_width=test_w)
    table.add_column("started", no_wrap=True, min_width=11)
    if result_w >= 8:
        table.add_column("result", no_wrap=True, overflow="ellipsis", max_width=result_w)
    for r, verdict in zip(runs, verdicts):
        row = [r.id, verdict, r.test_name, r.started_at.strftime("%m-%d %H:%M") if r.started_at else "–"]
        table.add_row(*row, *([r.result_description] if result_w >= 8 else []))
    out.print(table)


def _verdict_word(status: str, passed: bool) -> str:
    """The run's state and verdict, said once: passed, failed, cancelled, or the state while it runs."""
    if status == "COMPLETED":
        return "passed" if passed else "completed, not passed"
    return status.lower()


@runs_app.command("status")
@cli_errors
def runs_status(run_id: str, as_json: Annotated[bool, typer.Option("--json")] = False) -> None:
    """A run's status; exit 0 when it passed, 1 when it failed, 0 while it runs."""
    with client() as c:
        st = c.run_status(run_id)
    if as_json:
        _print_json(st.model_dump(mode="json"))
    else:
        state = st.state or st.status.upper()
        said = {"COMPLETED": "PASSED" if st.has_passed else "COMPLETED, not passed", "FAILED": "FAILED",
                "CANCELLED": "CANCELLED (failed)"}.get(state, state)
        out.print(f"run {run_id} ({st.test_name}): {said}"
                  + (f"\n  {st.result_description}" if st.result_description else "")
                  + (f"\nreport: {st.report_url}" if st.report_url else ""), highlight=False)
    raise typer.Exit(EXIT_FAILED if st.is_failed else EXIT_PASSED)


@runs_app.command("stop")
@cli_errors
def runs_stop(run_id: str) -> None:
    """Stop a run: its calls are hung up and it ends CANCELLED."""
    with client() as c:
        c.stop_run(run_id)
    out.print(f"stopping run {run_id}")


_CALL_SORTS = ("index", "-index", "setupMs", "-setupMs", "mos", "-mos")


def _num(v: float | None, digits: int = 1) -> str:
    return "–" if v is None else f"{v:.{digits}f}"


@runs_app.command("calls")
@cli_errors
def runs_calls(run_id: str,
               outcome: Annotated[list[str] | None, typer.Option("--outcome", help="e.g. CALL_FAILED (repeatable)")]
               = None,
               sip_code: Annotated[list[int] | None, typer.Option("--sip-code", help="e.g. 486 (repeatable)")] = None,
               mos_min: Annotated[float | None, typer.Option("--mos-min")] = None,
               mos_max: Annotated[float | None, typer.Option("--mos-max")] = None,
               sort: Annotated[str, typer.Option("--sort", help=" | ".join(_CALL_SORTS))] = "index",
               limit: Annotated[int, typer.Option("--limit", min=1, help="calls to show at most")] = 100,
               show_all: Annotated[bool, typer.Option("--all", help="every matching call (pages through them)")]
               = False,
               as_json: Annotated[bool, typer.Option("--json", help="one JSON object per call (JSON lines)")]
               = False) -> None:
    """A run's calls, filtered and sorted (paged from the server; --all for every one)."""
    if sort not in _CALL_SORTS:
        raise fail(f"--sort: one of {', '.join(_CALL_SORTS)}")
    filters = {"outcome": [o.upper() for o in outcome or []] or None, "sip_code": sip_code or None,
               "mos_min": mos_min, "mos_max": mos_max, "sort": sort}
    with client() as c:
        project_id = c.run_status(run_id).project_id
        first = c.run_calls_page(project_id, run_id, per_page=min(limit, 1000), **filters)
        total = first.pagination.total
        calls = c.run_calls(project_id, run_id, **filters) if show_all else iter(first.items[:limit])
        table = Table("#", "outcome", "SIP", "reason", "setup ms", "PDD ms", "talk s", "loss %", "jitter ms",
                      "MOS", "MOS-LQO", "detail", title=f"run {run_id}: {total} calls match")
        shown = 0
        for call in calls:
            shown += 1
            if as_json:
                sys.stdout.write(json.dumps(call.model_dump(mode="json", by_alias=False), default=str) + "\n")
                continue
            table.add_row(str(call.index), call.outcome, str(call.sip_code or ""), call.sip_reason,
                          _num(call.setup_time_ms), _num(call.post_dial_delay_ms),
                          _num(None if call.duration_ms is None else call.duration_ms / 1000),
                          _num(call.loss_pct, 2), _num(call.jitter_ms, 2), _num(call.mos, 2),
                          _num(call.mos_lqo, 2), call.detail[:60])
    if not as_json:
        out.print(table)
        if shown < total:
            err.print(f"{shown} of {total} shown (--limit N, --all, or `callgauge runs export {run_id}`)",
                      highlight=False)


@runs_app.command("export")
@cli_errors
def runs_export(run_id: str,
                output: Annotated[Path, typer.Option("-o", "--output", help="file to write")],
                fmt: Annotated[str, typer.Option("--format", help="csv | parquet")] = "csv",
                outcome: Annotated[list[str] | None, typer.Option("--outcome", help="repeatable")] = None,
                sip_code: Annotated[list[int] | None, typer.Option("--sip-code", help="repeatable")] = None,
                mos_min: Annotated[float | None, typer.Option("--mos-min")] = None,
                mos_max: Annotated[float | None, typer.Option("--mos-max")] = None) -> None:
    """Download a run's calls as CSV or Parquet (streamed by the gateway, any run size)."""
    fmt = fmt.lower()
    if fmt not in ("csv", "parquet"):
        raise fail("--format: csv or parquet")
    with client() as c:
        project_id = c.run_status(run_id).project_id
        size = c.export_run_calls(project_id, run_id, output, fmt, outcome=[o.upper() for o in outcome or []] or None,
                                  sip_code=sip_code or None, mos_min=mos_min, mos_max=mos_max)
    err.print(f"{output}: {size} bytes ({fmt})", highlight=False)


@runs_app.command("audio")
@cli_errors
def runs_audio(run_id: str, call_id: Annotated[str, typer.Argument(help="the call's id (`runs calls --json`)")],
               output: Annotated[Path, typer.Option("-o", "--output", help="WAV file to write")],
               leg: Annotated[str, typer.Option("--leg", help="caller | callee")] = "caller") -> None:
    """Download one leg of a call's recording (WAV)."""
    if leg not in ("caller", "callee"):
        raise fail("--leg: caller or callee")
    with client() as c:
        project_id = c.run_status(run_id).project_id
        size = c.download_call_audio(project_id, run_id, call_id, output, leg=leg)
    err.print(f"{output}: {size} bytes ({leg} leg of {call_id})", highlight=False)


# ------------------------------------------------------------------------ run

@app.command()
@cli_errors
def run(
    test: Annotated[str, typer.Argument(help="test name or id")],
    project: Annotated[str | None, typer.Option(
        "--project", help="project id, slug or name (default: the saved one; none: find the test by name in "
                          "every project)")] = None,
    overrides: Annotated[list[str] | None, typer.Option(
        "--set", help="step.N.M.attr=value override (repeatable), e.g. step.0.0.dial_destination=sip:a@b")] = None,
    wait: Annotated[bool, typer.Option("--wait/--no-wait", help="follow the run until it ends")] = False,
    junit_path: Annotated[Path | None, typer.Option("--junit", help="write a JUnit XML file (implies --wait)")]
    = None,
    as_json: Annotated[bool, typer.Option("--json", help="print the result as JSON on stdout")] = False,
    kiosk: Annotated[bool, typer.Option("--kiosk", help="also make a public kiosk report link")] = False,
    tags: Annotated[list[str] | None, typer.Option("--tag", help="tag the run (repeatable)")] = None,
    timeout: Annotated[float, typer.Option("--timeout", help="seconds to wait for the end")] = 1800.0,
) -> None:
    """Start a run of TEST; with --wait show live progress and exit 0 when it passed, 1 when not."""
    sets = _parse_sets(overrides or [])
    wait = wait or junit_path is not None
    with client() as c:
        project_ident = project or _saved_project()
        if project_ident:
            proj = _find_project(c, project_ident)
            t = _find_test(c, proj.id, test)
            if t is None:
                raise fail(f"no test {test!r} in project {proj.slug or proj.id} (see `callgauge tests list`)")
            started = c.start_run(proj.id, t.id, sets, tags=tags, kiosk=kiosk)
        else:
            # No project: Sipfront's form finds the test by name (or id) across the account's projects.
            by_id = _UUID.match(test) is not None
            started = c.run_test(test_id=test if by_id else None, test_name=None if by_id else test,
                                 overrides=sets, tags=tags, kiosk=kiosk)
            t = c.get_test(started.project_id, started.test_id)
        project_id = started.project_id or t.project_id
        info = {"testRunId": started.test_run_id, "status": started.status, "reportUrl": started.report_url,
                **({"kioskUrl": started.kiosk_url} if started.kiosk_url else {})}
        if not wait:
            if as_json:
                _print_json(info)
            else:
                out.print(f"run {started.test_run_id} started ({started.status})"
                          + (f"\nreport: {started.report_url}" if started.report_url else "")
                          + (f"\npublic (kiosk) report: {started.kiosk_url}" if started.kiosk_url else ""),
                          highlight=False)
            raise typer.Exit(EXIT_PASSED)
        err.print(f"run {started.test_run_id} of {t.name!r} started"
                  + (f" — report: {started.report_url}" if started.report_url else "")
                  + (f" — public report: {started.kiosk_url}" if started.kiosk_url else ""), highlight=False)
        final = _follow(c, project_id, started.test_run_id, timeout)
        final.report_url = final.report_url or started.report_url
        failed_page = c.run_calls_page(project_id, started.test_run_id, outcome=list(junit.FAILED_OUTCOMES),
                                       per_page=junit.MAX_FAILED_CASES)
    failed, failed_total = failed_page.items, failed_page.pagination.total
    results = _assertion_results(final, t)
    if junit_path is not None:
        junit.write(junit_path, final, results, failed, failed_total)
        err.print(f"JUnit report written to {junit_path}", highlight=False)
    if as_json:
        _print_json({**info, "status": final.status, "passed": final.passed,
                     "resultDescription": final.result_description, "summary": final.summary,
                     "assertions": [{"metric": a.metric, "op": a.op, "value": a.expected, "actual": a.actual,
                                     "passed": a.passed} for a in results],
                     "callsRecorded": final.calls_recorded, "failedCallsTotal": failed_total,
                     "failedCalls": [x.model_dump(mode="json") for x in failed]})
    else:
        _print_result(final, results, failed, failed_total)
    raise typer.Exit(EXIT_PASSED if final.status == "COMPLETED" and final.passed else EXIT_FAILED)


def _follow(c: Client, project_id: str, run_id: str, timeout: float) -> Run:
    columns = (SpinnerColumn(), TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
               TextColumn("calls  ASR {task.fields[asr]}  MOS {task.fields[mos]}"), TimeElapsedColumn())
    with Progress(*columns, console=err, transient=False) as progress:
        task = progress.add_task("PENDING", total=None, asr="—", mos="—")

        def update(r: Run) -> None:
            # the figures of the calls recorded so far (`recorded`, live), else the engine's summary
            s = (r.model_extra or {}).get("recorded") or r.summary or {}
            done, answered = int(s.get("callsAttempted") or 0), int(s.get("callsAnswered") or 0)
            mos = s.get("mosMean")
            progress.update(task, description=f"{r.status:<9}", completed=done,
                            total=max(r.planned_calls, done) or None,
                            asr=f"{answered / done:.0%}" if done else "—",
                            mos=f"{mos:.2f}" if mos else "—")

        try:
            return c.wait_for_run(project_id, run_id, timeout=timeout, poll=1.0, on_update=update)
        except TimeoutError as exc:
            raise fail(str(exc)) from None


def _assertion_results(r: Run, t: Test):
    given = (r.model_extra or {}).get("assertions")
    if isinstance(given, list) and given and all(isinstance(a, dict) and "passed" in a for a in given):
        from callgauge_client import AssertionResult

        return [AssertionResult(str(a.get("metric")), str(a.get("op")), float(a.get("value", 0)),
                                a.get("actual"), bool(a["passed"])) for a in given]
    return evaluate_assertions(t.assertions, r.summary)


def _print_result(r: Run, results, bad: list, bad_total: int) -> None:
    # said once: PASSED, FAILED, or the end state and the verdict when they differ (CANCELLED)
    if r.status == "COMPLETED" and r.passed:
        verdict = "[bold green]PASSED[/]"
    elif r.status == "FAILED":
        verdict = "[bold red]FAILED[/]"
    else:
        verdict = f"[bold red]{r.status} (failed)[/]"
    out.print(f"run {r.id}: {verdict}")
    if r.result_description:
        out.print(f"  {r.result_description}", highlight=False)
    table = Table("assertion", "measured", "verdict")
    for a in results:
        table.add_row(a.name, "— (not measured)" if a.actual is None else f"{a.actual:.4g}",
                      "[green]held[/]" if a.passed else "[red]failed[/]")
    out.print(table)
    if bad:
        title = "failed calls" + (f" (the first 50 of {bad_total}; `callgauge runs calls {r.id} --outcome …`)"
                                  if bad_total > 50 else "")
        calls = Table("#", "outcome", "SIP", "reason", "detail", title=title)
        for x in bad[:50]:
            calls.add_row(str(x.index), x.outcome, str(x.sip_code or ""), x.sip_reason, x.detail)
        out.print(calls)
    if r.report_url:
        out.print(f"report: {r.report_url}", highlight=False)


# ------------------------------------------------------------------------ helpers

def _print_json(value: Any) -> None:
    sys.stdout.write(json.dumps(value, indent=2, default=str) + "\n")


def _ts(v) -> str:
    return v.strftime("%Y-%m-%d %H:%M:%S") if v else "–"


def _parse_sets(items: list[str]) -> dict[str, str]:
    sets: dict[str, str] = {}
    for item in items:
        key, eq, value = item.partition("=")
        key = key.strip()
        if not eq or not key:
            raise fail(f"--set {item!r}: expected step.N.M.attr=value")
        if not key.startswith("step."):
            key = "step." + key
        parts = key.split(".")
        if len(parts) != 4 or not parts[1].isdigit() or not parts[2].isdigit() or not parts[3]:
            raise fail(f"--set {item!r}: expected step.N.M.attr=value (N, M: step and action numbers from 0)")
        sets[key] = value
    return sets


def _saved_project() -> str:
    _, _, cfg = resolve(STATE.url, STATE.api_key)
    return cfg.project


def _default_project() -> str:
    _, _, cfg = resolve(STATE.url, STATE.api_key)
    if not cfg.project:
        raise fail("which project? pass --project (id, slug or name) or save one with `callgauge login --project`")
    return cfg.project


def _all_projects(c: Client) -> list[Project]:
    items: list[Project] = []
    for page_no in range(1, 1001):
        page = c.list_projects(page=page_no, per_page=100)
        items.extend(page.items)
        if page_no >= page.pagination.total_pages or not page.items:
            return items
    return items


def _find_project(c: Client, ident: str) -> Project:
    try:
        return c.get_project(ident)
    except NotFound:
        pass
    for p in _all_projects(c):
        if ident in (p.slug, p.name):
            return p
    raise fail(f"no project {ident!r} (see `callgauge projects list`)")


def _find_test(c: Client, project_id: str, ident: str, by_id: bool = True) -> Test | None:
    if by_id:
        try:
            return c.get_test(project_id, ident)
        except NotFound:
            pass
        except ApiError as exc:
            if exc.status != 422:
                raise
    for page_no in range(1, 1001):
        page = c.list_tests(project_id, page=page_no, per_page=100)
        for t in page.items:
            if t.name == ident:
                return t
        if page_no >= page.pagination.total_pages or not page.items:
            return None
    return None


def _load_tests(file: Path) -> list[dict[str, Any]]:
    try:
        docs = [d for d in yaml.safe_load_all(file.read_text()) if d is not None]
    except OSError as exc:
        raise fail(f"cannot read {file}: {exc.strerror or exc}") from None
    except yaml.YAMLError as exc:
        raise fail(f"{file} is not valid YAML: {exc}") from None
    if len(docs) == 1 and isinstance(docs[0], list):
        docs = docs[0]
    for i, d in enumerate(docs):
        if not isinstance(d, dict) or not isinstance(d.get("name"), str) or not d["name"]:
            raise fail(f"{file}: test #{i + 1} needs a mapping with a `name`")
    return docs


# ------------------------------------------------------------------------ operator commands

app.add_typer(events_app, name="events")
app.command("credit")(credit)
app.command("service-keys")(service_keys)


def run_app(argv: list[str] | None = None) -> int:
    """Run the typer application on argv (default sys.argv[1:]); its exit code. The console script
    is the application's (callgauge_app.main:main), which adds the commands that start services."""
    argv = list(sys.argv[1:] if argv is None else argv)
    try:
        app(args=argv, prog_name="callgauge", standalone_mode=True)
    except SystemExit as exc:
        code = exc.code
        return code if isinstance(code, int) else (0 if code is None else EXIT_USAGE)
    return 0
