"""What the chaos cases share: a stack on free ports, a run to start and watch through the REST API
(tolerating the seconds a killed service is away), and the checks every case ends with — the run
terminal, every call recorded once (read from /calls), billing exact, no hold left, no process of
the stack left behind."""

from __future__ import annotations

import math
import os
import signal
import time
from collections import Counter
from pathlib import Path

import httpx

from callgauge_platform.stack import Child, Stack, _ready, _tcp_open
from callgauge_platform.run_states import TERMINAL
from api_envelope import data

# The long variant (tests/bench/bench_chaos.py sets it): longer runs, longer faults, more kills.
LONG = os.environ.get("CALLGAUGE_CHAOS_LONG", "") == "1"


def sized(default: float, long: float) -> float:
    return long if LONG else default


def client(stack: Stack) -> httpx.Client:
    return httpx.Client(base_url=f"{stack.settings.gateway_url()}/api/v1",
                        headers={"Authorization": f"Bearer {stack.settings.api_key}"}, timeout=30)


def client_for(gateway_url: str, api_key: str) -> httpx.Client:
    return httpx.Client(base_url=f"{gateway_url}/api/v1", headers={"Authorization": f"Bearer {api_key}"}, timeout=30)


class RunUnderTest:
    """A test with `actions` in one step, started once; its run read through the API."""

    def __init__(self, api: httpx.Client, name: str, actions: list[dict], **test_fields) -> None:
        self.api = api
        self.project = data(api.post("/projects", json={"name": f"chaos {name}"}), 201)
        self.test = data(api.post(f"/projects/{self.project['id']}/tests", json={
            "name": name, "steps": [{"actions": actions}], **test_fields}), 201)
        self.wallet_before = data(api.get("/billing/wallet"))
        started = data(api.post(f"/projects/{self.project['id']}/tests/{self.test['id']}/run"), 201)
        self.id = started["testRunId"]
        self.url = f"/projects/{self.project['id']}/test-runs/{self.id}"

    def get(self) -> dict | None:
        """The run, or None while the part that answers is away (killed, restarting)."""
        try:
            resp = self.api.get(self.url)
        except httpx.HTTPError:
            return None
        return resp.json()["data"] if resp.status_code == 200 else None

    def wait(self, until, bound_s: float, every_s: float = 0.2) -> dict | None:
        deadline = time.monotonic() + bound_s  # bounds the poll
        run = None
        while time.monotonic() < deadline:
            got = self.get()
            run = got or run
            if got is not None and until(got):
                return got
            time.sleep(every_s)
        return run

    def wait_running(self, calls: int = 1, bound_s: float = 90) -> dict:
        run = self.wait(lambda r: r["status"] == "RUNNING" and (r.get("callsRecorded") or 0) >= calls, bound_s)
        assert run is not None and run["status"] == "RUNNING", run
        self.reserved_while_running = data(self.api.get("/billing/wallet"))["reservedMinor"]
        return run

    def wait_terminal(self, bound_s: float) -> tuple[dict, float]:
        t0 = time.monotonic()
        run = self.wait(lambda r: r["status"] in TERMINAL, bound_s, 0.5)
        assert run is not None and run["status"] in TERMINAL, f"not terminal within {bound_s:.0f} s: {run}"
        return run, time.monotonic() - t0

    def calls(self) -> list[dict]:
        """Every call of the run, page by page through /calls."""
        out, cursor = [], None
        for _ in range(1000):  # bounded: 1000 pages of 1000
            params = {"perPage": 1000, **({"cursor": cursor} if cursor else {})}
            resp = self.api.get(f"{self.url}/calls", params=params)
            out += data(resp)
            cursor = resp.json()["meta"]["pagination"].get("nextCursor")
            if not cursor:
                return out
        raise AssertionError("more than 1,000,000 calls")

    def charges(self) -> list[dict]:
        """The run's charges in the wallet's ledger (every page of it: one test, one wallet)."""
        out: dict[str, dict] = {}  # by event id: a page shifted by a new entry repeats one
        for page in range(1, 1001):  # bounded: 100,000 ledger entries
            resp = self.api.get("/billing/history", params={"perPage": 100, "page": page})
            for e in data(resp):
                if e["type"] == "charge" and e.get("runId") == self.id:
                    out[e["id"]] = e
            if page >= resp.json()["meta"]["pagination"]["totalPages"]:
                return list(out.values())
        raise AssertionError("more than 100,000 ledger entries")


def billed_seconds(calls: list[dict]) -> int:
    """What billing charges for these calls: every started second of a call that lasted."""
    return sum(math.ceil((c.get("durationMs") or 0) / 1000 - 1e-9) for c in calls if (c.get("durationMs") or 0) > 0)


def assert_recorded_once(run: dict, calls: list[dict]) -> None:
    twice = [cid for cid, n in Counter(c["callId"] for c in calls).items() if n > 1]
    assert not twice, f"calls recorded more than once: {twice[:5]}"
    assert len(calls) == run["callsRecorded"], (len(calls), run["callsRecorded"])


def wait_billing_settled(r: RunUnderTest, billed: int, *, exact: bool = True, bound_s: float = 60) -> dict:
    """The run's charges reach `billed` call-seconds (exactly, or at least when calls in flight on a
    dead engine were metered by their ticks) and the wallet's reservation is back where it was.
    Returns {"charged": seconds, "reserved": minor units}."""
    deadline = time.monotonic() + bound_s  # bounds the poll: metering and release trail the run's end
    while True:
        charged = sum(e["quantity"] for e in r.charges())
        wallet = data(r.api.get("/billing/wallet"))
        done = charged >= billed and wallet["reservedMinor"] == r.wallet_before["reservedMinor"]
        if done or time.monotonic() > deadline:
            break
        time.sleep(0.3)
    time.sleep(1.0)  # a late duplicate would show now
    charges = r.charges()
    charged = sum(e["quantity"] for e in charges)
    wallet = data(r.api.get("/billing/wallet"))
    # prepaid stacks: the run held part of the wallet while it ran, and holds nothing now
    assert getattr(r, "reserved_while_running", 0) > r.wallet_before["reservedMinor"], "the run held nothing"
    assert wallet["reservedMinor"] == r.wallet_before["reservedMinor"], ("hold left", r.wallet_before, wallet)
    # the balance moved by the run's charges and nothing else (no double charge outside the ledger's view)
    assert r.wallet_before["balanceMinor"] - wallet["balanceMinor"] == -sum(e["amountMinor"] for e in charges), \
        (r.wallet_before, wallet, sum(e["amountMinor"] for e in charges))
    if exact:
        assert charged == billed, f"charged {charged} call-second(s), the recorded calls lasted {billed}"
    else:
        assert charged >= billed, f"charged {charged} call-second(s), the recorded calls lasted {billed}"
    return {"charged": charged, "reserved": wallet["reservedMinor"]}


def child(stack: Stack, name: str) -> Child:
    return next(c for c in stack.children if c.name == name)


def sigkill(stack: Stack, name: str) -> None:
    c = child(stack, name)
    c.proc.send_signal(signal.SIGKILL)
    c.proc.wait(10)


_HTTP_PORT = {"runs": "runs_http_port", "billing": "billing_http_port", "accounts": "accounts_http_port",
              "media-engine": "media_http_port", "gateway": "gateway_port"}


def restart(stack: Stack, *names: str, bound_s: float = 90) -> None:
    """Start killed children again with the same command and environment (what a supervisor does),
    all at once, and wait until each is ready (a service's /readyz; the Tansu broker's Kafka port —
    it comes back empty: its storage is memory only)."""
    for name in names:
        c = child(stack, name)
        c.proc = stack._popen(c.argv, c.log_path)
    deadline = time.monotonic() + bound_s
    for name in names:
        c = child(stack, name)
        if name == "tansu":  # the broker has no /readyz: its Kafka port answering is its readiness
            host, port = stack.settings.kafka_bootstrap.rsplit(":", 1)
            ready = lambda host=host, port=int(port): _tcp_open(host, port)  # noqa: E731
        else:
            url = f"http://127.0.0.1:{getattr(stack.settings, _HTTP_PORT[name])}/readyz"
            ready = lambda url=url: _ready(url)  # noqa: E731
        while not ready():
            assert c.proc.poll() is None, f"{name} exited with {c.proc.returncode} on restart; see {c.log_path}"
            assert time.monotonic() < deadline, f"{name} not ready {bound_s:.0f} s after its restart"
            time.sleep(0.2)


def processes_of(data_dir: Path) -> dict[int, str]:
    """Live processes (pid -> comm) that inherited this stack's CALLGAUGE_DATA_DIR: its children and
    whatever they started (pjsua2 workers, SIPp), not other tests' ones."""
    marker = f"CALLGAUGE_DATA_DIR={data_dir.resolve()}".encode()
    found = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if (entry / "stat").read_text().split(")")[-1].split()[0] != "Z" and \
                        marker in (entry / "environ").read_bytes().split(b"\0"):
                    found[int(entry.name)] = (entry / "comm").read_text().strip()
            except OSError:
                continue
    return found


def leftovers(stack: Stack, bound_s: float = 15) -> dict[int, str]:
    """Processes of the stack that are not one of its (live) children: SIPp or pjsua2 workers left by
    a dead engine. Waits up to `bound_s` for them to go (PR_SET_PDEATHSIG, a closed worker pipe)."""
    deadline = time.monotonic() + bound_s
    while True:
        mine = {c.proc.pid for c in stack.children if c.proc.poll() is None}
        left = {pid: comm for pid, comm in processes_of(stack.settings.data_dir).items() if pid not in mine}
        if not left or time.monotonic() > deadline:
            return left
        time.sleep(0.3)


def sipp_processes(data_dir: Path) -> list[int]:
    return [pid for pid, comm in processes_of(data_dir).items() if comm == "sipp"]
