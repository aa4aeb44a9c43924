"""Webhooks (CallCov's, HMAC-SHA256 signed): endpoint and delivery deciders, the signature and the
retry schedule. Pure: the caller passes the clock and does the HTTP.

Signature: the receiver gets

    Callgauge-Timestamp: 1764120000            (unix seconds)
    Callgauge-Signature: v1=<hex HMAC-SHA256(secret, "<timestamp>.<raw body>")>
    Callgauge-Event: probe.state_changed | run.finished
    Callgauge-Delivery: <delivery id>          (the same on every retry: dedupe on it)

and checks it with `verify` (constant-time compare, timestamps older than 5 minutes refused).

Retries: attempt n+1 is due `base * 2**(n-1)` after attempt n (capped at `cap`), until 24 h
after the delivery was created; then it is FAILED. The schedule is in the delivery's stream
(`WebhookAttempted.next_attempt_at`), so it survives a restart.
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import json
import secrets as _secrets
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from urllib.parse import urlsplit

from callgauge_proto.callgauge.events.v1 import monitor_pb2 as pb
from callgauge_proto.callgauge.media.v1 import measurements_pb2 as m_pb2
from google.protobuf.message import Message

from callgauge_platform.timestamps import datetime_of, iso_of, timestamp_of

from callgauge_runs.domain.errors import Conflict, NotFound, ValidationCollector
from callgauge_runs.domain.probe import Probe
from callgauge_runs.domain.run import Run

EVENTS = ("run.finished", "probe.state_changed")
TIMESTAMP_HEADER = "Callgauge-Timestamp"
SIGNATURE_HEADER = "Callgauge-Signature"
EVENT_HEADER = "Callgauge-Event"
DELIVERY_HEADER = "Callgauge-Delivery"
SECRET_PREFIX = "whsec_"

PENDING, DELIVERED, RETRYING, FAILED = "PENDING", "DELIVERED", "RETRYING", "FAILED"


# ---------------------------------------------------------------- signing


def new_secret() -> str:
    return SECRET_PREFIX + _secrets.token_urlsafe(32)


def sign(secret: str, timestamp: int, body: bytes) -> str:
    mac = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()
    return f"v1={mac}"


def signed_headers(secret: str, timestamp: int, body: bytes, event: str, delivery_id: str) -> dict[str, str]:
    return {"Content-Type": "application/json", TIMESTAMP_HEADER: str(timestamp),
            SIGNATURE_HEADER: sign(secret, timestamp, body), EVENT_HEADER: event, DELIVERY_HEADER: delivery_id,
            "User-Agent": "Callgauge-Webhooks/1"}


def verify(secret: str, timestamp: str, body: bytes, signature: str, now: int, tolerance_s: int = 300) -> bool:
    """A receiver's check: the signature matches and the timestamp is recent."""
    try:
        t = int(timestamp)
    except (TypeError, ValueError):
        return False
    if abs(now - t) > tolerance_s:
        return False
    return hmac.compare_digest(sign(secret, t, body), signature or "")


# ---------------------------------------------------------------- retry schedule


@dataclass(frozen=True)
class RetryPolicy:
    base: timedelta = timedelta(seconds=30)
    cap: timedelta = timedelta(hours=4)
    give_up_after: timedelta = timedelta(hours=24)
    lease: timedelta = timedelta(seconds=60)  # how long a dispatcher owns an attempt it started

    def delay(self, attempt: int) -> timedelta:
        """The wait after failed attempt `attempt` (1-based): base, 2 base, 4 base, … capped."""
        return min(self.base * (2 ** max(attempt - 1, 0)), self.cap)

    def next_attempt_at(self, created_at: datetime, attempt: int, attempted_at: datetime) -> datetime | None:
        """When to try again after failed attempt `attempt`, or None when the 24 h are over."""
        at = attempted_at + self.delay(attempt)
        return at if at <= created_at + self.give_up_after else None


def schedule(policy: RetryPolicy, created_at: datetime, attempts: int) -> list[timedelta]:
    """Offsets from creation of attempts 1..n when every attempt fails at once (for docs/tests)."""
    out, at = [timedelta(0)], created_at
    for n in range(1, attempts):
        nxt = policy.next_attempt_at(created_at, n, at)
        if nxt is None:
            break
        out.append(nxt - created_at)
        at = nxt
    return out


# ---------------------------------------------------------------- receivers


_BLOCKED_NAMES = ("localhost", "localhost.localdomain", "ip6-localhost", "ip6-loopback")


_NOT_GLOBAL = tuple(ipaddress.ip_network(n) for n in (
    "100.64.0.0/10",  # shared address space (carrier-grade NAT; Alibaba's metadata 100.100.100.200)
    "192.0.0.0/24",  # IETF protocol assignments (192.0.0.192 and others count as global in Python 3.11)
    "198.18.0.0/15", "0.0.0.0/8", "240.0.0.0/4",
))
_NAT64 = (ipaddress.ip_network("64:ff9b::/96"), ipaddress.ip_network("64:ff9b:1::/48"))


def _embedded_ipv4(addr: ipaddress.IPv6Address) -> ipaddress.IPv4Address | None:
    """The IPv4 address an IPv6 address stands for: IPv4-mapped, 6to4 (2002::/16), Teredo's client,
    NAT64 (64:ff9b::/96)."""
    if addr.ipv4_mapped is not None:
        return addr.ipv4_mapped
    if addr.sixtofour is not None:
        return addr.sixtofour
    if addr.teredo is not None:
        return addr.teredo[1]
    if any(addr in n for n in _NAT64):
        return ipaddress.IPv4Address(int(addr) & 0xFFFFFFFF)
    return None


def address_refused(ip: str) -> str:
    """Why a receiver address is refused without the allow-private setting ('' when fine): it must
    be a global address (`ipaddress`'s is_global plus the ranges Python counts as global that are
    not), and so must any IPv4 address an IPv6 one embeds."""
    try:
        addr = ipaddress.ip_address(ip.split("%")[0])
    except ValueError:
        return ""
    if isinstance(addr, ipaddress.IPv6Address) and (inner := _embedded_ipv4(addr)) is not None:
        why = address_refused(str(inner))
        return f"{why} (embedded in {addr})" if why else ""
    if addr.is_loopback:
        return "a loopback address"
    if addr.is_link_local:
        return "a link-local address"
    if not addr.is_global or addr.is_multicast or any(addr in n for n in _NOT_GLOBAL if n.version == addr.version):
        return "a private, shared or reserved (not global) address"
    return ""


def validate_url(url: str, allow_private: bool, v: ValidationCollector, loc: list[str | int]) -> None:
    parts = urlsplit(url or "")
    if parts.scheme not in ("http", "https") or not parts.hostname or len(url) > 2000:
        v.add(loc, "an http(s) URL like https://example.com/hooks/callgauge")
        return
    if parts.username or parts.password:
        v.add(loc, "no user:password in the URL; the signature authenticates us")
    if allow_private:
        return
    host = parts.hostname.lower()
    why = "a loopback name" if host in _BLOCKED_NAMES or host.endswith(".localhost") else address_refused(host)
    if why:
        v.add(loc, f"receivers on {why} are refused (set CALLGAUGE_WEBHOOK_ALLOW_PRIVATE=true to allow them)")


# ---------------------------------------------------------------- endpoint aggregate


@dataclass(frozen=True)
class Endpoint:
    id: str
    account_id: str
    mode: str
    url: str
    events: tuple[str, ...]
    probe_id: str
    description: str
    created_at: datetime | None
    deleted: bool = False

    def wants(self, event: str, account_id: str, mode: str, probe_id: str = "") -> bool:
        return (not self.deleted and self.account_id == account_id and self.mode == mode and event in self.events
                and (not self.probe_id or self.probe_id == probe_id))


@dataclass(frozen=True)
class CreateEndpoint:
    endpoint_id: str
    account_id: str
    mode: str
    url: str
    events: tuple[str, ...] = EVENTS
    probe_id: str = ""
    description: str = ""


def evolve_endpoint(state: Endpoint | None, event: Message, at: datetime | None = None) -> Endpoint | None:
    if isinstance(event, pb.WebhookEndpointCreated):
        return Endpoint(event.endpoint_id, event.account_id, event.mode, event.url, tuple(event.events),
                        event.probe_id, event.description, at)
    if state is not None and isinstance(event, pb.WebhookEndpointDeleted):
        return replace(state, deleted=True)
    return state


def decide_create_endpoint(state: Endpoint | None, cmd: CreateEndpoint, allow_private: bool,
                           loc: str = "url") -> list[Message]:
    if state is not None:
        raise Conflict(f"webhook {cmd.endpoint_id} exists")
    v = ValidationCollector()
    validate_url(cmd.url, allow_private, v, [loc])
    if not cmd.events:
        v.add(["events"], f"at least one of {', '.join(EVENTS)}", "missing")
    for i, e in enumerate(cmd.events):
        if e not in EVENTS:
            v.add(["events", i], f"unknown event {e!r}; one of {', '.join(EVENTS)}")
    if len(cmd.description) > 500:
        v.add(["description"], "at most 500 characters")
    v.raise_if_any()
    return [pb.WebhookEndpointCreated(endpoint_id=cmd.endpoint_id, account_id=cmd.account_id, mode=cmd.mode,
                                      url=cmd.url, events=list(dict.fromkeys(cmd.events)), probe_id=cmd.probe_id,
                                      description=cmd.description)]


def decide_delete_endpoint(state: Endpoint | None, account_id: str, mode: str, endpoint_id: str) -> list[Message]:
    if state is None or state.deleted or state.account_id != account_id or state.mode != mode:
        raise NotFound("webhook", endpoint_id)
    return [pb.WebhookEndpointDeleted(endpoint_id=endpoint_id)]


# ---------------------------------------------------------------- delivery aggregate


@dataclass(frozen=True)
class Attempt:
    attempt: int
    status_code: int
    error: str
    outcome: str
    attempted_at: datetime
    duration_ms: int


@dataclass(frozen=True)
class Delivery:
    id: str
    endpoint_id: str
    event: str
    body: str
    created_at: datetime
    status: str = PENDING
    next_attempt_at: datetime | None = None
    attempts: tuple[Attempt, ...] = ()
    started: int = 0  # the last attempt a dispatcher took
    lease_until: datetime | None = None

    @property
    def finished(self) -> bool:
        return self.status in (DELIVERED, FAILED)


def evolve_delivery(state: Delivery | None, event: Message, at: datetime | None = None) -> Delivery | None:
    if isinstance(event, pb.WebhookDeliveryScheduled):
        created = datetime_of(event.created_at)
        return Delivery(event.delivery_id, event.endpoint_id, event.event, event.body, created,
                        next_attempt_at=created)
    if state is None:
        return None
    if isinstance(event, pb.WebhookAttemptStarted):
        return replace(state, started=event.attempt, lease_until=datetime_of(event.lease_until))
    if isinstance(event, pb.WebhookAttempted):
        a = Attempt(event.attempt, event.status_code, event.error, event.outcome, datetime_of(event.attempted_at),
                    event.duration_ms)
        nxt = datetime_of(event.next_attempt_at) if event.HasField("next_attempt_at") else None
        return replace(state, attempts=(*state.attempts, a), status=event.outcome, next_attempt_at=nxt,
                       lease_until=None)
    return state


def decide_schedule_delivery(state: Delivery | None, delivery_id: str, endpoint: Endpoint, event: str,
                             body: str, now: datetime, source_event_id: str) -> list[Message]:
    if state is not None:
        return []  # already scheduled (a redelivered source event)
    return [pb.WebhookDeliveryScheduled(delivery_id=delivery_id, endpoint_id=endpoint.id, event=event, body=body,
                                        created_at=timestamp_of(now), source_event_id=source_event_id)]


def due(state: Delivery | None, now: datetime) -> bool:
    """Whether a dispatcher may take the next attempt now."""
    if state is None or state.finished or state.next_attempt_at is None or now < state.next_attempt_at:
        return False
    if state.started > len(state.attempts):  # an attempt is in flight: only when its lease ran out
        return state.lease_until is not None and now >= state.lease_until
    return True


def decide_start_attempt(state: Delivery | None, now: datetime, worker_id: str,
                         policy: RetryPolicy = RetryPolicy()) -> list[Message]:
    if not due(state, now):
        return []
    assert state is not None
    attempt = len(state.attempts) + 1
    return [pb.WebhookAttemptStarted(delivery_id=state.id, attempt=attempt, worker_id=worker_id,
                                     lease_until=timestamp_of(now + policy.lease))]


def decide_attempt_result(state: Delivery | None, attempt: int, status_code: int, error: str, now: datetime,
                          duration_ms: int = 0, policy: RetryPolicy = RetryPolicy(),
                          give_up: bool = False) -> list[Message]:
    """A 2xx delivers; anything else (other status, no answer, refused address) retries on the
    schedule until the 24 h are over (`give_up`: FAILED at once, e.g. the endpoint was deleted).
    An attempt already recorded decides nothing."""
    if state is None or state.finished or attempt != len(state.attempts) + 1:
        return []
    if 200 <= status_code < 300:
        return [pb.WebhookAttempted(delivery_id=state.id, attempt=attempt, status_code=status_code,
                                    outcome=DELIVERED, attempted_at=timestamp_of(now), duration_ms=duration_ms)]
    nxt = None if give_up else policy.next_attempt_at(state.created_at, attempt, now)
    ev = pb.WebhookAttempted(delivery_id=state.id, attempt=attempt, status_code=status_code, error=error[:500],
                             outcome=RETRYING if nxt else FAILED, attempted_at=timestamp_of(now), duration_ms=duration_ms)
    if nxt is not None:
        ev.next_attempt_at.CopyFrom(timestamp_of(nxt))
    return [ev]


# ---------------------------------------------------------------- bodies


def body(event: str, event_id: str, created: datetime, data: dict) -> str:
    """The JSON sent: {id, type, created (ISO-8601 UTC), data}."""
    return json.dumps({"id": event_id, "type": event, "created": iso_of(created),
                       "data": data}, sort_keys=True, separators=(",", ":"))


def run_finished_data(run: Run) -> dict:
    """The `data` of a `run.finished` delivery."""
    s = run.summary or m_pb2.RunSummary()
    return {"testRunId": run.id, "projectId": run.project_id, "testId": run.test_id, "testName": run.test_name,
            "status": run.status, "passed": run.passed, "resultDescription": run.result_description,
            "startedAt": iso_of(run.started_at), "stoppedAt": iso_of(run.stopped_at), "metadata": run.metadata,
            "tags": list(run.tags),
            "summary": {"callsAttempted": s.calls_attempted, "callsAnswered": s.calls_answered, "asr": s.asr,
                        "mosMean": round(s.mos_mean, 3), "mosMin": round(s.mos_min, 3),
                        "setupP95Ms": round(s.setup_p95_ms, 1), "jitterMsMax": round(s.jitter_ms_max, 2),
                        "lossPctMax": round(s.loss_pct_max, 2)}}


def state_changed_data(probe: Probe, e: pb.ProbeStateChanged) -> dict:
    """The `data` of a `probe.state_changed` delivery."""
    return {"probeId": probe.id, "projectId": probe.project_id, "name": probe.name, "seq": e.seq,
            "fromState": e.from_state, "toState": e.to_state, "runId": e.run_id, "reasons": list(e.reasons),
            "changedAt": iso_of(datetime_of(e.changed_at))}
