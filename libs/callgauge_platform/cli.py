"""The `callgauge` command.

  callgauge up          start the whole platform on this machine (embedded broker and stores)
  callgauge demo        start it, run one real call against the built-in responder, print it, stop
  callgauge responder   the built-in SIP target on its own
  callgauge service NAME   one service in the foreground (accounts, runs, billing, media-engine, gateway)
  callgauge events tail|export   read the Kafka event streams (see callgauge_bus/events_cli.py)
  callgauge service-keys DIR     make the internal services' key pairs (compose, k8s)
  callgauge credit --account ID --amount N   credit a wallet as the operator (no payment)
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import sys
import tempfile
import threading
import time
from pathlib import Path

import httpx

from callgauge_platform.settings import Settings
from callgauge_platform.destinations import LOOPBACK_CIDRS
from callgauge_platform.stack import DataDirInUse, Stack, StackError
from callgauge_platform.run_states import TERMINAL



def _say(msg: str) -> None:
    print(f"callgauge: {msg}", file=sys.stderr, flush=True)


def cmd_up(args: argparse.Namespace) -> int:
    settings = Settings(data_dir=Path(args.data_dir))
    if "CALLGAUGE_DIAL_ALLOW_CIDRS" not in os.environ:
        # the embedded one-machine stack calls its own responder on loopback (denied by default)
        settings.dial_allow_cidrs = LOOPBACK_CIDRS
    stack = Stack(settings)
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    try:
        stack.start(progress=_say)
    except StackError as exc:
        _say(str(exc))
        return 1
    s = stack.settings
    print(f"Callgauge is up.\n  API:        {s.gateway_url()}/api/v1   (docs {s.gateway_url()}/api/docs)\n"
          f"  API key:    {s.api_key}\n  SIP target: {stack.responder_uri()}\n  logs:       {s.data_dir / 'logs'}\n"
          f"  browser:    {s.gateway_url()}/   billing: {s.billing_mode} (CALLGAUGE_BILLING_MODE)\n"
          "Ctrl-C stops everything.", flush=True)
    try:
        while not stop.wait(0.5):
            if (gave_up := stack.supervise(_say)) is not None:  # restarts a crashed child with backoff
                _say(gave_up)
                return 1
    finally:
        _say("stopping")
        stack.stop()
    if bad := stack.unclean_exits():
        _say("not every part stopped cleanly: " + ", ".join(f"{n} exited {c}" for n, c in bad.items()))
        return 1
    return 0


DEMO_TEST = {
    "name": "Echo call with a tone",
    "steps": [{"actions": [{"type": "call", "dial_destination": "", "duration_ms": 5000, "tone_hz": 440,
                            "codec": "PCMU", "setup_timeout_ms": 10000}]}],
    "assertions": [{"metric": "asr", "op": ">=", "value": 1.0}, {"metric": "mos_min", "op": ">=", "value": 4.0}],
}


def run_demo(base_url: str, api_key: str, destination: str, timeout: float = 120.0, out=sys.stdout) -> dict:
    """The demo as a user does it, through the REST API: project, test, run, poll. Returns the run,
    with the first page of its calls (GET …/calls) under "calls"."""
    headers = {"Authorization": f"Bearer {api_key}"}
    with httpx.Client(base_url=f"{base_url}/api/v1", headers=headers, timeout=30) as api:
        project = _data(api.post("/projects", json={"name": f"Demo {time.strftime('%Y-%m-%d %H:%M:%S')}"}))
        test_body = {**DEMO_TEST, "steps": [{"actions": [{**DEMO_TEST["steps"][0]["actions"][0],
                                                          "dial_destination": destination}]}]}
        test = _data(api.post(f"/projects/{project['id']}/tests", json=test_body))
        started = _data(api.post(f"/projects/{project['id']}/tests/{test['id']}/run"))
        run_id = started["testRunId"]
        print(f"run {run_id}: {started['status']}", file=out, flush=True)
        last, deadline = started["status"], time.monotonic() + timeout
        while True:
            run = _data(api.get(f"/projects/{project['id']}/test-runs/{run_id}"))
            if run["status"] != last:
                print(f"run {run_id}: {run['status']}", file=out, flush=True)
                last = run["status"]
            if run["status"] in TERMINAL:
                calls = api.get(f"/projects/{project['id']}/test-runs/{run_id}/calls", params={"perPage": 100})
                return {**run, "calls": _data(calls)}
            if time.monotonic() > deadline:
                raise TimeoutError(f"run {run_id} still {run['status']} after {timeout:.0f} s")
            time.sleep(0.25)


def _data(resp: httpx.Response) -> dict:
    body = resp.json()
    if resp.status_code >= 400:
        err = body.get("error", {})
        raise RuntimeError(f"{resp.request.method} {resp.request.url.path}: {resp.status_code} "
                           f"{err.get('code')}: {err.get('message')} {err.get('details') or ''}")
    return body["data"]


def _f(v, width: int, digits: int, scale: float = 1.0, unit: str = "") -> str:
    """A figure right-aligned in ``width``; "—" when it was not measured (null)."""
    text = "—" if v is None else f"{float(v) / scale:.{digits}f}{unit}"
    return f"{text:>{width}}"


def format_run(run: dict) -> str:
    s = run.get("summary") or {}
    asr = s.get("asr")
    lines = [
        f"Run {run['id']} — {run['status']} ({'passed' if run.get('passed') else 'not passed'})",
        f"  {run.get('resultDescription', '')}",
        f"  calls {s.get('callsAnswered', 0)}/{s.get('callsAttempted', 0)} answered, "
        f"ASR {'—' if asr is None else f'{asr:.0%}'}, "
        f"MOS mean {_f(s.get('mosMean'), 0, 2)}, setup p95 {_f(s.get('setupP95Ms'), 0, 1, unit=' ms')}",
        "",
        f"  {'#':>3} {'outcome':<18} {'SIP':>4} {'setup ms':>9} {'PDD ms':>7} {'codec':<6} {'talk s':>6} "
        f"{'tx pkts':>8} {'rx pkts':>8} {'loss %':>6} {'jitter ms':>9} {'RTT ms':>7} {'MOS':>5}",
    ]
    for c in run.get("calls", []):
        talk = c.get("durationMs") if c.get("outcome") == "SUCCESS" else None
        lines.append(
            f"  {c['index']:>3} {c['outcome']:<18} {c['sipCode']:>4} {_f(c.get('setupTimeMs'), 9, 1)} "
            f"{_f(c.get('postDialDelayMs'), 7, 1)} {c['codec']:<6} {_f(talk, 6, 1, 1000)} "
            f"{_f(c.get('txPackets'), 8, 0)} {_f(c.get('rxPackets'), 8, 0)} {_f(c.get('lossPct'), 6, 2)} "
            f"{_f(c.get('jitterMs'), 9, 2)} {_f(c.get('rttMs'), 7, 2)} {_f(c.get('mos'), 5, 2)}"
            + (f"  {c['detail']}" if c.get("detail") else "")
        )
    return "\n".join(lines)


def cmd_demo(args: argparse.Namespace) -> int:
    if args.url:
        key = args.api_key or os.environ.get("CALLGAUGE_API_KEY", "")
        if not key:
            _say("--url needs --api-key (or CALLGAUGE_API_KEY)")
            return 2
        run = run_demo(args.url.rstrip("/"), key, args.destination or "sip:echo@127.0.0.1:5070")
        print(format_run(run))
        return 0 if run["status"] == "COMPLETED" else 1
    # Free loopback ports: the demo never collides with a running `callgauge up` or anything else;
    # nor does it share that stack's data dir (its stores): next to one, it runs in a temporary one.
    stack = Stack.on_free_ports(Path(args.data_dir))
    scratch = None
    try:
        try:
            stack.lock()
        except DataDirInUse as exc:
            scratch = Path(tempfile.mkdtemp(prefix="callgauge-demo-"))
            _say(f"{str(exc).removeprefix('cannot start: ').split(';')[0]}; the demo uses {scratch} instead")
            stack = Stack.on_free_ports(scratch)
        stack.start(progress=_say)
        _say(f"stack ready; calling {args.destination or stack.responder_uri()} through the REST API")
        run = run_demo(stack.settings.gateway_url(), stack.settings.api_key, args.destination or stack.responder_uri())
        print(format_run(run), flush=True)
        return 0 if run["status"] == "COMPLETED" else 1
    except (StackError, RuntimeError, TimeoutError, httpx.HTTPError) as exc:
        _say(f"demo failed: {exc}")
        return 1
    finally:
        stack.stop()
        if scratch is not None:
            shutil.rmtree(scratch, ignore_errors=True)


def cmd_service(args: argparse.Namespace) -> int:
    import runpy

    module = {"accounts": "callgauge_accounts", "runs": "callgauge_runs", "billing": "callgauge_billing", "media-engine": "callgauge_media",
              "gateway": "callgauge_gateway"}[args.name]
    runpy.run_module(module, run_name="__main__")
    return 0


def cmd_replay(args: argparse.Namespace) -> int:
    import asyncio

    if args.service == "billing":
        print("billing keeps no read models yet: a wallet's state is folded from its stream on every read")
        return 0
    from callgauge_eventstore.factory import open_event_store
    from callgauge_runs.handlers.replay import replay

    settings = Settings(data_dir=Path(args.data_dir)) if args.data_dir else Settings()

    async def go():
        store = open_event_store(settings.eventstore_url_for(), "runs")
        try:
            return await replay(store, write=not args.check)
        finally:
            await store.close()

    report = asyncio.run(go())
    print(f"runs read model rebuilt from the event store: {report.rows} rows at position {report.position}")
    if report.identical:
        print("identical to the stored read model")
    else:
        print(f"the stored read model was at position {report.stored_position}; "
              f"{len(report.differing)} row(s) differed: {', '.join(report.differing[:10])}"
              + (" (not written: --check)" if args.check else " (replaced)"))
    return 0 if report.identical or not args.check else 1


def cmd_credit(args: argparse.Namespace) -> int:
    """Credit a wallet as the operator (no payment): signed with the operator's service key."""
    import asyncio
    import uuid

    import grpc

    from callgauge_platform.grpcutil import service_channel
    from callgauge_proto.callgauge.billing.v1 import billing_service_pb2 as bpb
    from callgauge_proto.callgauge.billing.v1 import billing_service_pb2_grpc as bpb_grpc

    settings = Settings(data_dir=Path(args.data_dir)) if args.data_dir else Settings()

    async def go():
        async with service_channel(settings, "billing", "operator") as ch:
            return await bpb_grpc.BillingServiceStub(ch).Credit(bpb.CreditRequest(
                account_id=args.account, mode=args.mode, amount_minor=args.amount, currency=args.currency or "",
                credit_id=args.credit_id or str(uuid.uuid4()), reason=args.reason or ""), timeout=15)

    try:
        w = asyncio.run(go())
    except grpc.aio.AioRpcError as exc:
        _say(f"credit refused: {exc.code().name}: {exc.details()}")
        return 1
    print(f"credited {args.amount} to {args.account} ({args.mode}): balance {w.balance_minor} {w.currency}")
    return 0


def cmd_service_keys(args: argparse.Namespace) -> int:
    from callgauge_platform.service_auth import main as keys_main

    return keys_main([args.directory])


def cmd_responder(args: argparse.Namespace) -> int:
    from callgauge_media.responder import main as responder_main

    return responder_main(args.rest)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="callgauge", description="Callgauge: SIP/VoIP testing with real calls.")
    sub = parser.add_subparsers(dest="command", required=True)
    up = sub.add_parser("up", help="start the platform on this machine")
    up.add_argument("--data-dir", default=os.environ.get("CALLGAUGE_DATA_DIR", ".callgauge"))
    up.set_defaults(func=cmd_up)
    demo = sub.add_parser("demo", help="start the platform, run one real call, print the result, stop")
    demo.add_argument("--data-dir", default=os.environ.get("CALLGAUGE_DATA_DIR", ".callgauge"))
    demo.add_argument("--url", help="use a running gateway instead of starting one")
    demo.add_argument("--api-key")
    demo.add_argument("--destination", help="SIP URI to call (default: the built-in responder)")
    demo.set_defaults(func=cmd_demo)
    svc = sub.add_parser("service", help="run one service in the foreground")
    svc.add_argument("name", choices=["accounts", "runs", "billing", "media-engine", "gateway"])
    svc.set_defaults(func=cmd_service)
    rep = sub.add_parser("replay", help="rebuild a service's read models from its event store")
    rep.add_argument("--service", choices=["runs", "billing"], required=True)
    rep.add_argument("--data-dir", default=None, help="as for `up` (default: CALLGAUGE_DATA_DIR or .callgauge)")
    rep.add_argument("--check", action="store_true", help="compare only; exit 1 when the stored model differs")
    rep.set_defaults(func=cmd_replay)
    resp = sub.add_parser("responder", help="the built-in SIP target (answers and echoes media)")
    resp.add_argument("rest", nargs=argparse.REMAINDER)
    resp.set_defaults(func=cmd_responder)
    credit = sub.add_parser("credit", help="credit a wallet as the operator (no payment)")
    credit.add_argument("--account", required=True, help="the account id")
    credit.add_argument("--amount", type=int, required=True, help="minor units, e.g. cents")
    credit.add_argument("--mode", choices=["live", "test"], default="live")
    credit.add_argument("--currency", default="")
    credit.add_argument("--credit-id", default="", help="idempotency: the same id credits once")
    credit.add_argument("--reason", default="")
    credit.add_argument("--data-dir", default=None, help="as for `up` (its service keys hold the operator's)")
    credit.set_defaults(func=cmd_credit)
    keys = sub.add_parser("service-keys", help="make the internal services' key pairs in a directory")
    keys.add_argument("directory")
    keys.set_defaults(func=cmd_service_keys)
    from callgauge_bus.events_cli import add_parser as add_events_parser

    add_events_parser(sub)  # callgauge events tail|export
    args = parser.parse_args(argv)
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
