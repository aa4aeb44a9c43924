"""The `callgauge` command: one typer application. The API and operator commands are
callgauge_cli's; this package adds the commands that start or compose services:

  callgauge up                   start the whole platform on this machine (embedded broker and stores)
  callgauge demo                 start it, run one real call against the built-in responder, print it, stop
  callgauge service NAME         one service in the foreground (accounts, runs, billing, media-engine, gateway)
  callgauge responder …          the built-in SIP target on its own
  callgauge replay --service runs [--check]   rebuild the runs read model from its event store
"""

from __future__ import annotations

import os
import shutil
import signal
import sys
import tempfile
import threading
from pathlib import Path
from typing import Annotated, Literal

import typer

from callgauge_cli.main import app, run_app

SERVICES = {"accounts": "callgauge_accounts", "runs": "callgauge_runs", "billing": "callgauge_billing",
            "media-engine": "callgauge_media", "gateway": "callgauge_gateway"}
ServiceName = Literal["accounts", "runs", "billing", "media-engine", "gateway"]  # SERVICES' keys
DEFAULT_DATA_DIR = ".callgauge"
DATA_DIR_HELP = "where the embedded stores, keys and logs live [env CALLGAUGE_DATA_DIR]"

DataDir = Annotated[Path, typer.Option("--data-dir", envvar="CALLGAUGE_DATA_DIR", show_envvar=False,
                                       help=DATA_DIR_HELP)]


def _say(msg: str) -> None:
    print(f"callgauge: {msg}", file=sys.stderr, flush=True)


@app.command()
def up(data_dir: DataDir = Path(DEFAULT_DATA_DIR)) -> None:
    """Start the platform on this machine (Ctrl-C stops it)."""
    from pydantic import ValidationError

    from callgauge_app.settings import SERVICE_SETTINGS
    from callgauge_platform.destinations import LOOPBACK_CIDRS
    from callgauge_platform.settings import StackSettings
    from callgauge_platform.stack import Stack, StackError, invalid_settings, setting_errors

    # the embedded one-machine stack calls its own responder on loopback (denied by default)
    loopback = {} if "CALLGAUGE_DIAL_ALLOW_CIDRS" in os.environ else {"dial_allow_cidrs": LOOPBACK_CIDRS}
    try:
        settings = StackSettings(data_dir=data_dir, **loopback)
    except ValidationError as exc:
        _say(invalid_settings(setting_errors("callgauge up", exc)))
        raise typer.Exit(2) from None
    # every service's settings are built (and checked) from these and the environment before anything
    # starts; each service is handed its own
    stack = Stack(settings, service_settings=SERVICE_SETTINGS)
    try:
        stack.check_settings()
    except StackError as exc:
        _say(str(exc))
        raise typer.Exit(1) from None
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    try:
        stack.start(progress=_say)
    except StackError as exc:
        _say(str(exc))
        raise typer.Exit(1) from None
    s = stack.settings
    print(f"Callgauge is up.\n  API:        {s.gateway_url()}/api/v1   (docs {s.gateway_url()}/api/docs)\n"
          f"  API key:    {s.api_key}\n  SIP target: {stack.responder_uri()}\n  logs:       {s.data_dir / 'logs'}\n"
          f"  browser:    {s.gateway_url()}/   billing: {stack.settings_of('billing').billing_mode} "
          "(CALLGAUGE_BILLING_MODE)\n"
          "Ctrl-C stops everything.", flush=True)
    try:
        while not stop.wait(0.5):
            if (gave_up := stack.supervise(_say)) is not None:  # restarts a crashed child with backoff
                _say(gave_up)
                raise typer.Exit(1)
    finally:
        _say("stopping")
        stack.stop()
    if bad := stack.unclean_exits():
        _say("not every part stopped cleanly: " + ", ".join(f"{n} exited {c}" for n, c in bad.items()))
        raise typer.Exit(1)


@app.command()
def demo(
    data_dir: DataDir = Path(DEFAULT_DATA_DIR),
    url: Annotated[str | None, typer.Option("--url", help="use a running gateway instead of starting one")] = None,
    api_key: Annotated[str | None, typer.Option("--api-key", help="its API key [env CALLGAUGE_API_KEY]")] = None,
    destination: Annotated[str | None, typer.Option("--destination", help="SIP URI to call (default: the "
                                                    "built-in responder)")] = None,
) -> None:
    """Start the platform, run one real call, print the result, stop."""
    from callgauge_client import CallgaugeError, Client

    from callgauge_app.demo import format_run, run_demo
    from callgauge_app.settings import SERVICE_SETTINGS
    from callgauge_platform.stack import DataDirInUse, Stack, StackError

    def call(base_url: str, key: str, to: str) -> bool:
        with Client(base_url, key) as c:
            run, calls = run_demo(c, to)
        print(format_run(run, calls), flush=True)
        return run.status == "COMPLETED"

    if url:
        key = api_key or os.environ.get("CALLGAUGE_API_KEY", "")
        if not key:
            _say("--url needs --api-key (or CALLGAUGE_API_KEY)")
            raise typer.Exit(2)
        try:
            ok = call(url.rstrip("/"), key, destination or "sip:echo@127.0.0.1:5070")
        except (CallgaugeError, TimeoutError) as exc:
            _say(f"demo failed: {exc}")
            raise typer.Exit(1) from None
        raise typer.Exit(0 if ok else 1)
    # Free loopback ports: the demo never collides with a running `callgauge up` or anything else;
    # nor does it share that stack's data dir (its stores): next to one, it runs in a temporary one.
    stack = Stack.on_free_ports(data_dir)
    stack.service_settings = SERVICE_SETTINGS
    scratch = None
    try:
        try:
            stack.lock()
        except DataDirInUse as exc:
            scratch = Path(tempfile.mkdtemp(prefix="callgauge-demo-"))
            _say(f"{str(exc).removeprefix('cannot start: ').split(';')[0]}; the demo uses {scratch} instead")
            stack = Stack.on_free_ports(scratch)
            stack.service_settings = SERVICE_SETTINGS
        stack.start(progress=_say)
        to = destination or stack.responder_uri()
        _say(f"stack ready; calling {to} through the REST API")
        ok = call(stack.settings.gateway_url(), stack.settings.api_key, to)
    except (StackError, CallgaugeError, TimeoutError) as exc:
        _say(f"demo failed: {exc}")
        raise typer.Exit(1) from None
    finally:
        stack.stop()
        if scratch is not None:
            shutil.rmtree(scratch, ignore_errors=True)
    raise typer.Exit(0 if ok else 1)


@app.command()
def service(name: Annotated[ServiceName, typer.Argument(help="the service")]) -> None:
    """Run one service in the foreground."""
    import runpy

    runpy.run_module(SERVICES[name], run_name="__main__")


@app.command(context_settings={"allow_extra_args": True, "ignore_unknown_options": True},
             add_help_option=False)
def responder(ctx: typer.Context) -> None:
    """The built-in SIP target: answers and echoes media (`callgauge responder --help`)."""
    from callgauge_media.responder import main as responder_main

    raise typer.Exit(responder_main(list(ctx.args)))


NO_READ_MODEL = {
    "billing": "billing keeps no read model to rebuild: a wallet is folded from its event stream on every "
               "read, and the index of runs to wallets is rebuilt from the store each time the service starts",
    "accounts": "accounts keeps no stored read model: its views are folded from the store when the service "
                "starts",
}


@app.command()
def replay(
    service_name: Annotated[str, typer.Option("--service", help="the service whose read model is rebuilt: runs")],
    data_dir: Annotated[Path | None, typer.Option("--data-dir", help="as for `up` (default: CALLGAUGE_DATA_DIR "
                                                  "or .callgauge)")] = None,
    check: Annotated[bool, typer.Option("--check", help="compare only; exit 1 when the stored model differs")]
    = False,
) -> None:
    """Rebuild a service's read model from its event store (run it with that service stopped)."""
    import asyncio

    if service_name != "runs":
        why = NO_READ_MODEL.get(service_name, f"no service {service_name!r} keeps a read model to rebuild")
        _say(f"replay --service {service_name}: {why}; only `--service runs` is rebuilt")
        raise typer.Exit(2)
    from callgauge_eventstore.factory import open_event_store
    from callgauge_runs.handlers.replay import replay as replay_runs
    from callgauge_runs.settings import RunsSettings

    settings = RunsSettings(data_dir=data_dir) if data_dir else RunsSettings()

    async def go():
        store = open_event_store(settings.eventstore_url_for(), "runs")
        try:
            return await replay_runs(store, write=not check)
        finally:
            await store.close()

    report = asyncio.run(go())
    print(f"runs read model rebuilt from the event store: {report.rows} rows at position {report.position}")
    if report.identical:
        print("identical to the stored read model")
    else:
        print(f"the stored read model was at position {report.stored_position}; "
              f"{len(report.differing)} row(s) differed: {', '.join(report.differing[:10])}"
              + (" (not written: --check)" if check else " (replaced)"))
    raise typer.Exit(0 if report.identical or not check else 1)


def main(argv: list[str] | None = None) -> int:
    """The console script `callgauge`."""
    return run_app(argv)


if __name__ == "__main__":
    sys.exit(main())
