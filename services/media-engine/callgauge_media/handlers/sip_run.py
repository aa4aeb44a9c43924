"""The SIP side of one run: `register` and `wait_for_calls` actions (user agents that live from
their step until the run ends), and `call` actions through a registrar (``target_pool``) as a user
of a credential pool (digest auth).

Pools come resolved in RunRequested (``targets``: host/port/transport/domain; ``pools``: usernames,
no passwords); passwords come from a :class:`CredentialSource` (the runs service's
``GetRunCredentials`` over gRPC in production), keyed ``"<pool_id>/<username>"``.

A caller's measurement is joined with what our own callee saw on the same SIP call (same Call-ID):
the digits the callee received (``dtmf_received``, ``dtmf_ok``). A call whose DTMF did not arrive
as sent is CALL_FAILED. Calls our callees answered that no caller of this run placed (e.g. from an
external system) are reported on their own (``role`` = ``callee``) when the run ends.

Every user agent of a register / wait_for_calls action reports one RegistrationMeasurement when it
ends (``on_registration``): a user that could not register right after its failure, a wait_for_calls
that ended on its own then, every other one when the run ends. A user that could not register (or
lost its registration at a refresh) is, in addition, a REGISTRATION_FAILED CallMeasurement with
``role`` = ``register`` (what the run's outcome counts and assertions judge).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import replace
from typing import Protocol

from opentelemetry import trace
from prometheus_client import Counter, Histogram

from callgauge_proto.callgauge.common.v1 import test_spec_pb2 as spec_pb2
from callgauge_proto.callgauge.events.v1 import runs_pb2
from callgauge_proto.callgauge.media.v1 import measurements_pb2 as m_pb2

from callgauge_media.domain.jobs import (
    DEFAULT_REGEXPIRE,
    HANGUP_BY,
    TRANSPORTS,
    CallJob,
    SipAccount,
    UaJob,
    clean_dtmf,
    dial_uri,
)
from callgauge_media.domain.reasons import internal_error
from callgauge_media.domain.measurement import (
    LADDER_TAIL,
    failed_measurement,
    fill_ladder,
    registration_measurement,
)

log = logging.getLogger(__name__)
_tracer = trace.get_tracer("callgauge.media")
REGISTRATIONS = Counter("callgauge_media_registrations_total",
                        "user agents started by register / wait_for_calls, by outcome", ["outcome"])
REGISTER_TIME = Histogram("callgauge_media_register_seconds",
                          "first REGISTER sent -> first 2xx (digest challenge included), users that registered",
                          buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30))
OnRegistration = Callable[[m_pb2.RegistrationMeasurement], Awaitable[None]]

REGISTER_TIMEOUT_S = 40.0  # > SIP timer F (32 s): a registrar that never answers gives 408 first
JOIN_WAIT_S = 5.0  # how long a caller's measurement waits for our callee's view of the same call
WAIT_FOR_CALLS_DEFAULT_S = 60.0  # run end: how long to wait for calls a wait_for_calls still expects


class CredentialSource(Protocol):
    async def run_passwords(self, run_id: str) -> Mapping[str, str]:
        """Passwords of the run's credential pools, keyed ``"<pool_id>/<username>"``."""


class StaticCredentials:
    """Passwords given up front (tests, the demo, single-tenant setups)."""

    def __init__(self, passwords: Mapping[str, str] | None = None) -> None:
        self._passwords = dict(passwords or {})

    async def run_passwords(self, run_id: str) -> Mapping[str, str]:
        return self._passwords


def _registrar_addr(t: spec_pb2.ResolvedTarget, transport: str) -> str:
    return f"{t.host}:{t.port or (5061 if transport == 'tls' else 5060)}"


def _tls_verify(t: spec_pb2.ResolvedTarget) -> bool:
    """The registrar's tls_verify; absent (older runs) means verify."""
    return t.tls_verify if t.HasField("tls_verify") else True


class SipRunError(ValueError):
    """The run names a pool it did not resolve, or an action field is unusable."""


def _ms(action, name: str) -> int:
    return int(getattr(action, name, 0) or 0)


def _fill_reg_ladder(m: m_pb2.CallMeasurement, event: dict) -> None:
    """A registration's SIP ladder (from the worker's "failed" or "lost" event) into ``m``."""
    fill_ladder(m, list(event.get("ladder") or []))
    m.sip_call_id = str(event.get("call_id") or "")
    left_out = int(event.get("ladder_left_out") or 0)
    if left_out:
        note = f"SIP ladder: {left_out} messages before the last {LADDER_TAIL} not kept"
        m.detail = "; ".join(x for x in (m.detail, note) if x)


class SipRun:
    def __init__(self, req: runs_pb2.RunRequested, pool: object, credentials: CredentialSource | None = None,
                 *, register_timeout_s: float = REGISTER_TIMEOUT_S, join_wait_s: float = JOIN_WAIT_S,
                 on_registration: OnRegistration | None = None) -> None:
        self.run_id = req.run_id
        self.on_registration = on_registration
        self.registrations: list[m_pb2.RegistrationMeasurement] = []  # every one emitted (the run summary)
        self._kinds: dict[int, str] = {}  # session token -> register | wait_for_calls
        self._callee_legs: dict[str, tuple] = {}  # caller's call id -> (session, callee measurement) recorded
        self._reg_reported: set[int] = set()  # session tokens whose RegistrationMeasurement went out
        self.pool = pool
        self.credentials = credentials or StaticCredentials()
        self.targets = {t.id: t for t in req.targets}
        # a wait_for_calls / register without target_pool uses the registrar another action of the
        # run names for the same credential pool, or the run's only one
        self._pool_targets: dict[str, str] = {}
        for step in req.spec.steps:
            for action in step.actions:
                kind = action.WhichOneof("kind")
                a = getattr(action, kind) if kind else None
                if a is not None and getattr(a, "credential_pool", "") and getattr(a, "target_pool", ""):
                    self._pool_targets.setdefault(a.credential_pool, a.target_pool)
        self.pools = {p.id: p for p in req.pools}
        # our own callees may answer calls another driver (SIPp) places: those are not "calls
        # from elsewhere" (see caller_call)
        self.expects_callees = any(a.WhichOneof("kind") == "wait_for_calls" for s in req.spec.steps for a in s.actions)
        self.register_timeout_s = register_timeout_s
        self.join_wait_s = join_wait_s
        self._passwords: dict[str, str] | None = None
        self._password_error = ""
        self._missing: set[str] = set()
        self.sessions: list = []  # UaSession, in start order
        self._matched: set[str] = set()
        self._caller_call_ids: set[str] = set()
        self._closers: list[tuple[asyncio.Task, float | None]] = []  # (task, monotonic deadline or None)

    # ---------------------------------------------------------------- resolution
    async def _password(self, pool_id: str, username: str) -> str:
        if self._passwords is None:
            try:
                self._passwords = dict(await self.credentials.run_passwords(self.run_id))
            except Exception as exc:  # noqa: BLE001 - the calls then fail with the registrar's 401/407
                log.warning("no credentials for run %s: %s", self.run_id, exc)
                code = getattr(exc, "code", None)
                name = code().name if callable(code) and hasattr(code(), "name") else type(exc).__name__
                self._password_error = f"credentials not available from the runs service ({name})"
                self._passwords = {}
        key = f"{pool_id}/{username}"
        if key not in self._passwords:
            self._missing.add(key)
        return self._passwords.get(key, "")

    def password_note(self) -> str:
        if self._password_error:
            return self._password_error
        if self._missing:
            return f"no password for {', '.join(sorted(self._missing)[:3])} from the runs service"
        return ""

    def target(self, target_id: str) -> spec_pb2.ResolvedTarget:
        t = self.targets.get(target_id)
        if t is None:
            raise SipRunError(f"target_pool {target_id!r} was not resolved for this run")
        if not t.host:
            raise SipRunError(f"target_pool {target_id!r} has no host")
        return t

    def target_for(self, target_id: str, pool_id: str) -> str:
        if target_id:
            return target_id
        if pool_id in self._pool_targets:
            return self._pool_targets[pool_id]
        if len(self.targets) == 1:
            return next(iter(self.targets))
        raise SipRunError("no target_pool: name the registrar the users of this credential pool belong to")

    async def accounts(self, target_id: str, pool_id: str, *, count: int = 0, transport: str = "") -> list[SipAccount]:
        t = self.target(self.target_for(target_id, pool_id))
        p = self.pools.get(pool_id)
        if p is None:
            raise SipRunError(f"credential_pool {pool_id!r} was not resolved for this run")
        creds = list(p.credentials)[: count or None]
        if not creds:
            raise SipRunError(f"credential_pool {pool_id!r} has no users")
        transport = (transport or t.transport or "udp").lower()
        if transport not in TRANSPORTS:
            raise SipRunError(f"transport {transport!r} is not supported (udp, tcp, tls)")
        out = []
        for c in creds:
            out.append(SipAccount(
                username=c.username, domain=c.domain or t.domain or t.host, registrar=_registrar_addr(t, transport),
                transport=transport, auth_username=c.auth_username or c.username, tls_verify=_tls_verify(t),
                password=await self._password(pool_id, c.username),
            ))
        return out

    # ---------------------------------------------------------------- register / wait_for_calls
    async def start_ua_action(self, si: int, ai: int, action: spec_pb2.Action) -> list[m_pb2.CallMeasurement]:
        """Start the action's user agents and wait until each is registered (or failed). Returns a
        REGISTRATION_FAILED measurement per user that could not register."""
        kind = action.WhichOneof("kind")
        a = getattr(action, kind)
        base = f"{self.run_id}:{si}.{ai}"
        try:
            if not hasattr(self.pool, "open_ua"):
                raise SipRunError(f"this media engine cannot run {kind} actions")
            count = a.count if kind == "register" else 0
            transport = a.transport if kind == "register" else ""
            accounts = await self.accounts(a.target_pool, a.credential_pool, count=count, transport=transport)
            jobs = []
            play, record_dir, expect = "", "", ""
            if kind == "wait_for_calls" and (a.play_file or a.record or a.expect_audio):
                from callgauge_media.adapters.audio.prompts import SILENCE
                from callgauge_media.adapters.audio.service import default_service  # numpy/scipy: only when used

                audio = default_service()
                if a.play_file and a.play_file != SILENCE:
                    play = str(await asyncio.to_thread(audio.media, a.play_file))
                if a.expect_audio:
                    await asyncio.to_thread(audio.media, a.expect_audio)  # a name that resolves, before any call
                    expect = a.expect_audio
                if a.record or a.expect_audio:
                    rec = audio.recording_path(self.run_id, base, "callee").parent
                    rec.mkdir(parents=True, exist_ok=True)
                    record_dir = str(rec)
            for i, acc in enumerate(accounts):
                if kind == "register":
                    jobs.append(UaJob(ua_id=f"{base}.{i}", account=acc, regexpire=a.regexpire or DEFAULT_REGEXPIRE,
                                      unregister=not a.keep_registered, step=si, action=ai, index=i))
                else:
                    hangup_by = (a.hangup_by or "caller").lower()
                    if hangup_by not in HANGUP_BY:
                        raise SipRunError(f"hangup_by must be caller or callee, not {a.hangup_by!r}")
                    jobs.append(UaJob(
                        ua_id=f"{base}.{i}", account=acc, answer=True, answer_delay_ms=a.answer_delay_ms,
                        tone_hz=a.tone_hz, codec=a.codec, expect_dtmf=clean_dtmf(a.expect_dtmf),
                        hangup_by=hangup_by, duration_ms=a.duration_ms, max_calls=a.max_total_calls,
                        step=si, action=ai, index=i, play_file=play, record_dir=record_dir,
                        expect_audio=expect, expect_audio_min=a.expect_audio_min,
                        silent=kind == "wait_for_calls" and a.play_file == "silence",
                        srtp=(a.srtp or "off").lower(),
                        srtp_keying=(a.srtp_keying or "sdes").lower(),
                    ))
        except (SipRunError, ValueError, LookupError) as exc:  # LookupError: MediaNotFound
            job = CallJob(call_id=f"{base}.0", destination=a.target_pool or "", step=si, action=ai)
            m = failed_measurement(job, f"{kind}: {exc}", outcome=m_pb2.REGISTRATION_FAILED)
            m.role = "register"
            await self._emit_registration(m_pb2.RegistrationMeasurement(
                registration_id=job.call_id, step=si, action=ai, kind=kind, outcome=m_pb2.REGISTRATION_FAILED,
                detail=m.detail, started_at=m.started_at, ended_at=m.ended_at))
            return [m]
        started = time.time()
        with _tracer.start_as_current_span(kind, kind=trace.SpanKind.CLIENT) as span:
            span.set_attribute("callgauge.run_id", self.run_id)
            span.set_attribute("sip.users", len(jobs))
            span.set_attribute("sip.registrar", jobs[0].account.registrar if jobs else "")
            sessions = [self.pool.open_ua(j) for j in jobs]
            self.sessions.extend(sessions)
            for s in sessions:
                self._kinds[s.token] = kind
            outcomes = await asyncio.gather(*(s.wait_registered(self.register_timeout_s) for s in sessions))
            ok = sum(1 for o in outcomes if o.get("event") in ("registered", "ready"))
            span.set_attribute("sip.registered", ok)
        for o in outcomes:
            REGISTRATIONS.labels(o.get("event", "failed")).inc()
        failures = []
        failed = []
        for s, o in zip(sessions, outcomes):
            if o.get("event") in ("registered", "ready"):
                if kind == "wait_for_calls" and (a.max_total_calls or a.timeout_ms):
                    deadline = time.monotonic() + a.timeout_ms / 1000.0 if a.timeout_ms else None
                    self._closers.append((asyncio.create_task(self._close_when_done(s, a, deadline)), deadline))
                continue
            code = int(o.get("code") or 0)
            job = CallJob(call_id=s.job.ua_id, destination=s.job.account.aor, step=si, action=ai, index=s.job.index)
            m = failed_measurement(job, f"{kind} of {s.job.account.aor} at {s.job.account.registrar} failed: "
                                   f"{code or ''} {o.get('reason', '')}".replace("  ", " ").strip()
                                   + (f"; {self.password_note()}" if self.password_note() else ""),
                                   outcome=m_pb2.REGISTRATION_FAILED, sip_code=code,
                                   sip_reason=str(o.get("reason", "")), started_wall=started)
            m.role = "register"
            _fill_reg_ladder(m, o)
            failures.append(m)
            failed.append(s)
        # nothing to unregister: closing frees the worker's account at once
        await asyncio.gather(*(self._end(s) for s in failed))
        return failures

    async def _end(self, session, timeout: float = 20.0) -> dict:
        """Close the user agent (hang up, unregister or keep the binding) and report its registration."""
        report = await session.close(timeout=timeout)
        await asyncio.shield(self._report_registration(session, report))  # a cancelled waiter still reports
        return report

    async def _report_registration(self, session, report: dict) -> None:
        """The session's RegistrationMeasurement, once (user agents that register only)."""
        if session.token in self._reg_reported or not session.job.register:
            return
        self._reg_reported.add(session.token)
        if session.registered.done():
            outcome = session.registered.result()
        else:
            outcome = {"event": "failed", "code": 0, "reason": "no registration outcome"}
        lost = [e for e in session.events if e.get("event") == "lost"]
        try:
            r = registration_measurement(session.job, registration_id=session.job.ua_id,
                                         kind=self._kinds.get(session.token, "register"), outcome=outcome,
                                         report=report or {}, lost=lost)
        except Exception as exc:  # noqa: BLE001 - a report of an odd shape must not end the run
            log.exception("registration measurement of %s", session.job.ua_id)
            r = m_pb2.RegistrationMeasurement(registration_id=session.job.ua_id, step=session.job.step,
                                              action=session.job.action, index=session.job.index,
                                              outcome=m_pb2.REGISTRATION_FAILED,
                                              detail=internal_error(exc, "the registration report"))
        if r.outcome == m_pb2.SUCCESS:
            REGISTER_TIME.observe(r.register_time_ms / 1000.0)
        await self._emit_registration(r)

    async def _emit_registration(self, r: m_pb2.RegistrationMeasurement) -> None:
        self.registrations.append(r)
        if self.on_registration is not None:
            await self.on_registration(r)

    async def _close_when_done(self, session, a: spec_pb2.WaitForCallsAction, deadline: float | None) -> None:
        """A wait_for_calls ends on its own once it answered ``max_total_calls`` calls (they have
        ended: a call is reported when it ends) or at ``timeout_ms``; without a timeout it lives
        until the run ends (then :meth:`finish` gives it a bounded extra wait)."""
        deadline = deadline if deadline is not None else time.monotonic() + 24 * 3600.0
        while not session.done.done():
            if a.max_total_calls and len(session.calls) >= a.max_total_calls:
                break
            left = deadline - time.monotonic()
            if left <= 0:
                break
            session.changed.clear()
            try:
                async with asyncio.timeout(min(left, 5.0)):
                    await session.changed.wait()
            except TimeoutError:
                pass
        await self._end(session)

    # ---------------------------------------------------------------- call
    async def call_job(self, call_id: str, si: int, ai: int, index: int, call: spec_pb2.CallAction) -> CallJob:
        """The job for one call of a call action; raises SipRunError/ValueError for unusable fields."""
        job = CallJob.from_action(call_id, call, step=si, action_index=ai, index=index)
        if not call.target_pool:
            if call.credential_pool:
                raise SipRunError("credential_pool needs a target_pool (the registrar that checks the credentials)")
            return job
        t = self.target(call.target_pool)
        if call.credential_pool:
            accounts = await self.accounts(call.target_pool, call.credential_pool, transport=call.transport)
            acc = accounts[index % len(accounts)]
        else:
            transport = (call.transport or t.transport or "udp").lower()
            acc = SipAccount(username=job.from_user, domain=t.domain or t.host, registrar=_registrar_addr(t, transport),
                             transport=transport, tls_verify=_tls_verify(t))
        return replace(job, destination=dial_uri(call.dial_destination, acc.domain), account=acc,
                       transport=acc.transport)

    def caller_call(self, sip_call_id: str) -> None:
        """A call of this run placed by another driver (SIPp): our callees' view of it is not
        reported as a call of its own when the run ends."""
        if sip_call_id:
            self._caller_call_ids.add(sip_call_id)

    async def joined(self, m: m_pb2.CallMeasurement) -> m_pb2.CallMeasurement:
        """The caller's measurement with our callee's view of the same call (DTMF check); the SIP
        ladder is kept only when the call did not succeed."""
        answering = [s for s in self.sessions if s.job.answer]
        if m.sip_call_id:
            self._caller_call_ids.add(m.sip_call_id)
        if m.sip_call_id and answering and m.outcome == m_pb2.SUCCESS:
            found = await self._find_callee(m.sip_call_id, answering)
            if found is not None:
                session, callee = found
                self._matched.add(m.sip_call_id)
                if session.job.record_dir:
                    self._callee_legs[m.call_id or m.sip_call_id] = (session, callee)
                m.dtmf_received = callee.dtmf_received
                expect = session.job.expect_dtmf
                problems = []
                if m.dtmf_sent and callee.dtmf_received != m.dtmf_sent:
                    problems.append(f"DTMF: sent {m.dtmf_sent!r}, the far side received {callee.dtmf_received!r}")
                if expect and callee.dtmf_received != expect:
                    problems.append(f"DTMF: the callee expected {expect!r}, received {callee.dtmf_received!r}")
                if m.dtmf_sent or expect:
                    m.dtmf_ok = not problems
                if problems:
                    m.outcome = m_pb2.CALL_FAILED
                    m.detail = "; ".join([*problems, *([m.detail] if m.detail else [])])
            elif m.dtmf_sent:
                note = "DTMF not verified: none of this run's callees saw the call"
                m.detail = "; ".join(x for x in (m.detail, note) if x)
        if m.outcome == m_pb2.SUCCESS:
            del m.sip_ladder[:]
        return m

    async def assess_callee_leg(self, m: m_pb2.CallMeasurement, job: CallJob) -> m_pb2.CallMeasurement:
        """The caller's measurement ``m`` with what our recorded callee received on the same call:
        its recording kept as the call's ``callee`` leg and scored against what the caller played
        (or the wait_for_calls' expect_audio, whose mismatch fails the call)."""
        found = self._callee_legs.pop(job.call_id, None) or self._callee_legs.pop(m.sip_call_id, None)
        if found is None:
            return m
        session, callee = found
        from callgauge_media.adapters.audio.service import default_service

        audio = default_service()
        path = await self._keep_callee(audio, callee.call_id, job.call_id, m)
        if not path:
            return m
        return await audio.assess_callee(m, path, played=job.play_file or None, expect=session.job.expect_audio,
                                         expect_min=session.job.expect_audio_min, joined=True)

    async def _keep_callee(self, audio, recorded_id: str, call_id: str, m: m_pb2.CallMeasurement) -> str:
        """Keep our callee's recording of call `recorded_id` as the callee leg of `call_id` (the
        run's caps allowing); why it was not kept is noted in `m.detail`. The kept path, or ""."""
        source = audio.recording_path(self.run_id, recorded_id, "callee")
        path, note = await asyncio.to_thread(audio.keep_callee, self.run_id, str(source), call_id)
        if note:
            m.detail = "; ".join(x for x in (m.detail, note) if x)
        return path

    async def _assess_own_callee(self, session, c: m_pb2.CallMeasurement) -> m_pb2.CallMeasurement:
        """A call our recorded callee answered that no caller of this run placed: its recording
        kept under its own id, scored against the expect_audio (else only flagged)."""
        from callgauge_media.adapters.audio.service import default_service

        audio = default_service()
        path = await self._keep_callee(audio, c.call_id, c.call_id, c)
        if not path:
            return c
        return await audio.assess_callee(c, path, played=None, expect=session.job.expect_audio,
                                         expect_min=session.job.expect_audio_min, joined=False,
                                         callee_sent=bool(session.job.play_file or session.job.tone_hz))

    async def _find_callee(self, sip_call_id: str, sessions: list) -> tuple | None:
        deadline = time.monotonic() + self.join_wait_s
        while True:
            for s in sessions:
                for c in s.calls:
                    if c.sip_call_id == sip_call_id:
                        return s, c
            left = deadline - time.monotonic()
            if left <= 0 or all(s.done.done() for s in sessions):
                return None
            waits = []
            for s in sessions:
                s.changed.clear()
                waits.append(asyncio.ensure_future(s.changed.wait()))
            try:
                await asyncio.wait(waits, timeout=min(left, 0.5), return_when=asyncio.FIRST_COMPLETED)
            finally:
                for w in waits:
                    w.cancel()

    # ---------------------------------------------------------------- end of the run
    async def finish(self, emit_call: Callable[[m_pb2.CallMeasurement], Awaitable[None]]) -> None:
        """Let wait_for_calls actions with a call count or timeout finish (bounded), close every
        user agent (unregister), report the calls our callees answered that no caller of this run
        placed."""
        if self._closers:
            now = time.monotonic()
            bound = max([d - now for _, d in self._closers if d is not None]
                        + [WAIT_FOR_CALLS_DEFAULT_S if any(d is None for _, d in self._closers) else 0.0])
            await asyncio.wait([t for t, _ in self._closers], timeout=max(0.0, bound) + 5.0)
            for t, _ in self._closers:
                t.cancel()
        reports = await asyncio.gather(*(s.close() for s in self.sessions), return_exceptions=True)
        for s, report in zip(self.sessions, reports):
            if isinstance(report, BaseException):
                report = {"error": f"closing the user agent failed: {report!r}"}
            lost = [e for e in s.events if e.get("event") == "lost"]
            if lost and s.registered.done() and s.registered.result().get("event") == "registered":
                # registered once, then a refresh failed: the user was unreachable for a while
                e = lost[0]
                job = CallJob(call_id=f"{s.job.ua_id}.refresh", destination=s.job.account.aor, step=s.job.step,
                              action=s.job.action, index=s.job.index)
                m = failed_measurement(job, f"registration of {s.job.account.aor} lost: a refresh got "
                                       f"{e.get('code') or ''} {e.get('reason', '')}".rstrip()
                                       + f" ({len(lost)} failed refreshes)",
                                       outcome=m_pb2.REGISTRATION_FAILED, sip_code=int(e.get("code") or 0),
                                       sip_reason=str(e.get("reason", "")))
                m.role = "register"
                _fill_reg_ladder(m, e)
                await emit_call(m)
            await self._report_registration(s, report)
        for s in self.sessions:
            for c in s.calls:
                if c.sip_call_id not in self._caller_call_ids:
                    if c.outcome == m_pb2.SUCCESS and not (s.job.expect_dtmf and not c.dtmf_ok):
                        del c.sip_ladder[:]
                    if s.job.record_dir:
                        c = await self._assess_own_callee(s, c)
                    await emit_call(c)

    async def abort(self) -> None:
        for t, _ in self._closers:
            t.cancel()
        reports = await asyncio.gather(*(s.close(timeout=10.0) for s in self.sessions), return_exceptions=True)
        for s, report in zip(self.sessions, reports):
            try:  # best effort: the run is going down
                await self._report_registration(s, report if isinstance(report, dict) else {"error": repr(report)})
            except Exception:  # noqa: BLE001
                log.exception("registration of %s not reported", s.job.ua_id)
