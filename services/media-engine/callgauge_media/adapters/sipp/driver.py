"""The SIPp load driver: a load action with ``driver: sipp`` runs Debian's SIPp (``sipp``) with a
generated UAC scenario (:mod:`scenario`), at the shape's rate, and turns its statistics files
into the same RunSecondStats events and a RunSummary.

How the shape is followed: SIPp knows one constant rate (``-r``), counted from its last change;
the driver steers it over SIPp's UDP control port (``cset rate N``) through the pieces of
:meth:`LoadShape.rate_steps` (each piece places the plan's number of calls), ``-m`` caps the total
at the plan's attempts, ``-l`` is ``max_concurrency`` (or the plan's size: never SIPp's default). At
the end of the window SIPp goes on at the target rate until ``-m`` stops it (it then exits by
itself once its calls ended), for :func:`late_allowance_s` at most; then it gets ``q`` (no new
calls, the running ones end) and the attempts it did not place are counted in
``RunSummary.not_attempted`` with why. The process is bounded by the window, the allowance, the
longest call and a grace period, then terminated.

Per call: SIPp logs every message it sends or receives (``-trace_shortmsg``, one flushed line
each); the driver follows that file while SIPp runs (every ``FOLLOW_S``, the part already read is
given back to the file system) and :class:`SippCalls` turns it into each call's answer and end.
An answered call is reported to the run's placer (``tell``: the billing guard's CallAnswered and a
CallProgress tick while it is up, as for pjsua2 calls) and every call ends with a CallMeasured:
setup time, post-dial delay, final SIP code and reason, outcome, talk time (answer -> BYE),
Call-ID; no RTP is measured (MOS, loss, jitter stay 0). The run's per-second statistics and
summary come from SIPp's own statistics files (setup percentiles and ACD from the per-call log
when it saw every answered call). The per-call work runs in its own task, so a slow outbox never
delays the rate steps; the CallMeasured of a load's calls are not kept in the run's memory.

Digest auth: with a ``credential_pool`` the users and their passwords (the run's credential
source, as for the pjsua driver) go into an injection file (``-inf``, mode 0600 in the private
work directory, never on the command line) and the scenario answers a 401/407 with SIPp's
``[authentication]`` (see :func:`scenario.uac_scenario` for how refusals are counted).
"""

from __future__ import annotations

import asyncio
import ctypes
import errno
import os
import shutil
import socket
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from callgauge_platform.logs import get_logger
from callgauge_proto.callgauge.common.v1 import test_spec_pb2 as spec_pb2
from callgauge_proto.callgauge.events.v1 import media_pb2
from callgauge_proto.callgauge.media.v1 import measurements_pb2 as m_pb2

from callgauge_media.domain.load_shape import MAX_DURATION_MS, LoadShape
from callgauge_media.adapters.metrics import CALLS, SETUP_TIME
from callgauge_media.domain.ports import CallPlacer
from callgauge_media.domain.reasons import UserError, sipp_reason
from callgauge_media.domain.run_state import HALTED, RunState
from callgauge_media.adapters.sipp.scenario import (
    CALLS_LOG,
    Target,
    injection_file,
    parse_destination,
    sipp_command,
    uac_scenario,
)
from callgauge_media.adapters.sipp.stats import (
    SippCalls,
    SippSeconds,
    parse_counts,
    parse_error_codes,
    parse_rtt_ms,
    parse_stat_rows,
    sipp_summary,
)

log = get_logger("media-engine")
GRACE_S = 10.0
READY_WAIT_S = 5.0
# SIPp may be behind the plan when the load window closes (a busy CPU, calls held back by -l while
# others wait for an answer): it goes on at the target rate until -m stops it at the planned
# attempts, for this allowance at most; what it has not placed by then is counted in
# RunSummary.not_attempted with why
LATE_MIN_S = 5.0
LATE_SHARE = 0.1  # of the window
# SIPp's exit codes (sipp(1)): 1 is not an error, it only says that at least one call failed
EXIT_CODES = {0: "all calls successful", 1: "at least one call failed", 97: "exit on internal command",
              99: "normal exit without calls processed", 255: "fatal error", 254: "fatal error binding a socket"}
STOP_WAIT_S = 5.0
FOLLOW_S = 0.2  # how often the per-call log is read
PROGRESS_S = 1.0  # how often the calls that are up are reported to the billing guard
READ_MAX = 4 << 20  # bytes of the per-call log read at once
EMIT_CHUNK = 1000  # CallMeasured emitted together (one group-committed append each, see MediaEngine.emit)
PUNCH_EVERY = 16 << 20  # give the read part of the per-call log back to the file system this often


class SippError(UserError):
    """SIPp could not carry out a load action; the message is for the user (the run's error)."""


@dataclass(frozen=True)
class ProcessTools:
    """What the driver needs from the host it runs on, passed in by the composition root (the
    driver does not import the platform's process supervisor): a free local port of a kind
    (``free_port(host, socket.SOCK_DGRAM)``), whether a loopback UDP port is bound (SIPp's control
    port: SIPp is up), and the argv that starts a child process which dies with the engine."""

    free_port: Callable[[str, int], int]
    udp_port_taken: Callable[[int], bool]
    child_argv: Callable[[list[str]], list[str]]


@dataclass(frozen=True)
class SippLoad:
    """The ``sipp`` load driver (a LoadDriver): SIPp places the load's calls and counts them itself
    (its own RunSecondStats, a RunSummary merged into the run's)."""

    tools: ProcessTools
    sipp: str = "sipp"  # the SIPp executable
    own_figures = True

    def prepare(self) -> list[str]:
        return remove_orphaned_workdirs()

    async def run_load(self, state: RunState, si: int, ai: int, load: spec_pb2.LoadAction,
                       placer: CallPlacer | None, *, shard: int = 0, shards: int = 1) -> None:
        await state.begin()  # SIPp's calls take no slot of the engine's pool
        await run_sipp_load(state, si, ai, load, tools=self.tools, sipp=self.sipp, placer=placer)


def _local_ip_for(host: str) -> str:
    """The address SIPp should bind to reach ``host`` (loopback for loopback)."""
    if host.startswith("127.") or host in ("localhost", "::1"):
        return "127.0.0.1"
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        s.connect((host.strip("[]"), 9))
        return s.getsockname()[0]
    except OSError:
        return "0.0.0.0"
    finally:
        s.close()


def late_allowance_s(shape: LoadShape) -> float:
    """How long after the load window SIPp may go on placing the plan's attempts it is behind on."""
    return max(LATE_MIN_S, LATE_SHARE * shape.window_s)


def exit_meaning(code: int | None) -> str:
    if code is None:
        return "still running"
    return EXIT_CODES.get(code % 256, "killed by a signal" if code < 0 else "unknown exit code")


def _longest_call_s(load: spec_pb2.LoadAction) -> float:
    mean = load.duration_ms or 5000
    dist = (load.duration_distribution or "fixed").lower()
    longest = mean + load.duration_spread_ms if dist == "uniform" else (mean * 10 if dist == "exponential" else mean)
    return (min(longest, MAX_DURATION_MS) + (load.setup_timeout_ms or 32_000)) / 1000.0


def _target(state: RunState, load: spec_pb2.LoadAction) -> Target:
    """Where SIPp sends the INVITEs: the destination URI, or with a ``target_pool`` the registrar's
    host and port (the destination is then a user or number there)."""
    if not load.target_pool:
        return parse_destination(load.dial_destination)
    sip = getattr(state, "sip", None)
    t = sip.targets.get(load.target_pool) if sip is not None else None
    if t is None:
        raise ValueError(f"target_pool {load.target_pool!r} was not resolved for this run")
    dest = load.dial_destination.strip()
    user = dest if "@" not in dest and ":" not in dest else parse_destination(dest).user
    return Target(user=user or "service", host=t.host, port=t.port or 5060)


async def _users(state: RunState, load: spec_pb2.LoadAction) -> list[tuple[str, str, str, str]]:
    """The calling users of a ``credential_pool``, with their passwords (the run's credential
    source): (user, auth user, password, domain)."""
    if not load.target_pool:
        raise ValueError("credential_pool needs a target_pool (the registrar that checks the credentials)")
    sip = getattr(state, "sip", None)
    if sip is None:
        raise ValueError(f"credential_pool {load.credential_pool!r} was not resolved for this run")
    accounts = await sip.accounts(load.target_pool, load.credential_pool, transport=load.transport)
    return [(a.username, a.auth_username or a.username, a.password, a.domain) for a in accounts]


class _Follower:
    """Reads the lines SIPp appends to a file, from where it stopped; bounded reads; the part
    already read is punched out of the file (``fallocate``), so a long run does not fill the disk."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.fd: int | None = None
        self.offset = 0
        self.punched = 0
        self.tail = b""
        self._punch = _punch_hole()

    def read(self, limit: int = READ_MAX) -> tuple[list[str], bool]:
        """(complete new lines, more to read)."""
        if self.fd is None:
            try:  # read-write: punching holes needs a writable descriptor
                self.fd = os.open(self.path, os.O_RDWR)
            except PermissionError:
                self.fd, self._punch = os.open(self.path, os.O_RDONLY), None
            except OSError:
                return [], False
        chunk = os.pread(self.fd, limit, self.offset)
        if not chunk:
            return [], False
        self.offset += len(chunk)
        data = self.tail + chunk
        cut = data.rfind(b"\n") + 1
        self.tail = data[cut:]
        if self._punch is not None and self.offset - self.punched >= PUNCH_EVERY:
            upto = (self.offset - len(self.tail)) & ~0xFFFF
            if upto > self.punched and not self._punch(self.fd, self.punched, upto - self.punched):
                self._punch = None  # not supported by this file system: the file keeps growing
            self.punched = max(self.punched, upto)
        return data[:cut].decode("utf-8", "replace").splitlines(), len(chunk) >= limit

    def close(self) -> None:
        if self.fd is not None:
            os.close(self.fd)
            self.fd = None


def _punch_hole() -> Callable[[int, int, int], bool] | None:
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        fallocate = libc.fallocate
    except (OSError, AttributeError):
        return None
    fallocate.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_longlong, ctypes.c_longlong]

    def punch(fd: int, offset: int, length: int) -> bool:
        # FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE: SIPp keeps writing at its own offset
        if fallocate(fd, 0x02 | 0x01, offset, length) == 0:
            return True
        log.info("sipp_log_not_trimmed", error=errno.errorcode.get(ctypes.get_errno(), "?"))
        return False

    return punch


WORKDIR_PREFIX = "callgauge-sipp-"  # + the engine's pid + "-": private dirs (scenario, credentials, logs)


def remove_orphaned_workdirs(tmp: str | None = None) -> list[str]:
    """Delete the SIPp work dirs left by engines that are gone (SIGKILLed mid-run): they may hold a
    credential pool's users. A dir whose engine pid is alive (another engine on this host) is kept.
    Returns the dirs removed."""
    removed = []
    for d in Path(tmp or tempfile.gettempdir()).glob(f"{WORKDIR_PREFIX}*"):
        pid = d.name[len(WORKDIR_PREFIX):].split("-", 1)[0]
        if not d.is_dir() or (pid.isdigit() and _alive(int(pid))):
            continue
        shutil.rmtree(d, ignore_errors=True)
        removed.append(str(d))
    return removed


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


async def run_sipp_load(state: RunState, si: int, ai: int, load: spec_pb2.LoadAction, *, tools: ProcessTools,
                        pcap: bool | None = None, sipp: str = "sipp", placer: object = None) -> None:
    target = _target(state, load)
    users = await _users(state, load) if load.credential_pool else []
    if shutil.which(sipp) is None:
        raise SippError("the sipp driver needs SIPp (Debian package sip-tester)")
    limit = getattr(placer, "account_call_limit", 0)  # the account's concurrent-calls quota (fairness.py)
    if isinstance(limit, int) and limit > 0 and (not load.max_concurrency or load.max_concurrency > limit):
        capped = spec_pb2.LoadAction()
        capped.CopyFrom(load)
        capped.max_concurrency = limit  # SIPp's -l: never more calls up than the account may hold
        load = capped
    shape = LoadShape.from_action(load)
    planned = shape.attempt_count()
    state.planned += planned
    if planned == 0:
        return
    steps = shape.rate_steps()
    with_pcap = bool(load.tone_hz) if pcap is None else pcap
    workdir = Path(tempfile.mkdtemp(prefix=f"{WORKDIR_PREFIX}{os.getpid()}-"))
    try:
        (workdir / "scenario.xml").write_text(uac_scenario(load, target, with_pcap=with_pcap, auth=bool(users)))
        if users:
            fd = os.open(workdir / "users.csv", os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "w") as f:
                f.write(injection_file(users))
        local_ip = _local_ip_for(target.host)
        control_port = tools.free_port("127.0.0.1", socket.SOCK_DGRAM)  # SIPp binds it to loopback (-ci)
        bound = shape.window_s + late_allowance_s(shape) + _longest_call_s(load) + GRACE_S
        cmd = sipp_command(load, target, scenario="scenario.xml", local_ip=local_ip,
                           sip_port=tools.free_port(local_ip, socket.SOCK_DGRAM) if local_ip != "0.0.0.0" else 0,
                           media_port=tools.free_port(local_ip, socket.SOCK_DGRAM) if local_ip != "0.0.0.0" else 0,
                           control_port=control_port, initial_rate=steps[0][1], max_calls=planned,
                           timeout_s=int(bound) + 1, users_file="users.csv" if users else "")
        cmd[0] = sipp
        with open(workdir / "sipp.out", "wb") as out, open(workdir / "sipp.err", "wb") as err:
            # SIGKILLed with its engine (PR_SET_PDEATHSIG): an orphaned SIPp would go on calling
            proc = await asyncio.create_subprocess_exec(*tools.child_argv(cmd), cwd=workdir, stdin=asyncio.subprocess.DEVNULL,
                                                        stdout=out, stderr=err)
        log.info("sipp_started", run_id=state.run_id, pid=proc.pid, planned=planned, target=target.remote)
        try:
            domain = users[0][3] if users else target.remote
            calls = SippCalls(f"{state.run_id}:{si}.{ai}.", step=si, action=ai,
                              destination=f"sip:{target.user}@{domain}", auth=bool(users),
                              setup_timeout_s=max(1000, load.setup_timeout_ms or 32_000) / 1000.0 + 1.0,
                              timeout_ms=max(1000, load.setup_timeout_ms or 32_000))
            note = state.sip.password_note() if users and getattr(state, "sip", None) is not None else ""
            await _drive(state, proc, workdir, steps, shape, bound, control_port, local_ip, calls,
                         placer=placer, note=note, port_taken=tools.udp_port_taken)
        finally:
            await _stop(proc)
        # SIPp's exit codes: 0/1 calls done (1: some failed), 97 stopped by us, 99 no call made; a
        # fatal error (-1 = 255: an unknown host, a port it could not bind) before any call ends the run
        if proc.returncode not in (0, 1, 97, 99) and (not (workdir / "stat.csv").exists() or not calls.ended):
            err = (workdir / "sipp.err").read_text(errors="replace")[-2000:].strip()
            log.warning("sipp_failed", run_id=state.run_id, returncode=proc.returncode, stderr=err)
            raise SippError(sipp_reason(err, proc.returncode))  # SIPp's own words stay in the log
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


async def _drive(state: RunState, proc: asyncio.subprocess.Process, workdir: Path,
                 steps: list[tuple[float, float]], shape: LoadShape, bound: float, control_port: int,
                 local_ip: str, calls: SippCalls, *, placer: object = None, note: str = "",
                 port_taken: Callable[[int], bool]) -> None:
    loop = asyncio.get_running_loop()
    # the shape's clock starts when SIPp is up (its control port bound), not when it was spawned
    ready_by = loop.time() + READY_WAIT_S
    while proc.returncode is None and not port_taken(control_port) and loop.time() < ready_by:
        try:
            await asyncio.wait_for(proc.wait(), 0.01)
        except asyncio.TimeoutError:
            pass
    t0 = loop.time()
    t0_ns = time.time_ns()
    ctl = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    ctl_addr = ("127.0.0.1", control_port)
    seconds = SippSeconds(state.run_id, state.engine_id)
    pending = list(steps[1:])
    quit_sent = False
    rows_seen = 1  # the first stat row is SIPp's start (all zero)
    planned = shape.attempt_count()
    late_s = late_allowance_s(shape)
    created = 0  # calls SIPp has placed (TotalCallCreated of its latest statistics row)
    ended_by = ""  # why SIPp was told to stop placing calls: "halted", "late", "over_time"

    def send(cmd: bytes) -> None:
        try:
            ctl.sendto(cmd, ctl_addr)
        except OSError as exc:
            log.warning("sipp_control_failed", run_id=state.run_id, error=repr(exc))

    async def emit_rows(final: bool) -> None:
        nonlocal rows_seen, created
        rows = parse_stat_rows(workdir / "stat.csv")
        if rows:
            created = max(created, rows[-1].total_created)
        counts = parse_counts(next(iter(workdir.glob("scenario_*_counts.csv")), workdir / "none"))
        answers_total = counts[-1].answers if counts else None
        refusals_total = sum(counts[-1].refusals.values()) if counts else 0
        new = rows[rows_seen:]
        if not new:
            return
        if final and len(new) > 1:  # the last dumps of a finished SIPp: one partial second
            merged = new[-1]
            merged.outgoing_p = sum(r.outgoing_p for r in new)
            merged.successful_p = sum(r.successful_p for r in new)
            merged.failed_p = sum(r.failed_p for r in new)
            new = [merged]
        for r in new:
            await state.emit(seconds.next(r, answers_total, t0_ns + seconds.second * 1_000_000_000,
                                          refusals_total))
        rows_seen = len(rows)

    follower = _Follower(workdir / CALLS_LOG)
    tell = getattr(placer, "tell", None)  # the billing guard (CallAnswered, CallProgress)
    halted = getattr(placer, "halted", None)
    sip = getattr(state, "sip", None)
    known_callers = sip.caller_call if sip is not None and getattr(sip, "expects_callees", False) else None

    async def per_call(final: bool = False) -> bool:
        """Read the per-call log; report answers and ends. True when more is waiting."""
        lines, more = follower.read()
        facts = calls.feed(lines)
        if final:
            while more:
                lines, more = follower.read()
                facts += calls.feed(lines)
            facts += calls.flush(time.time())
        elif not more:  # caught up with SIPp: a call without a message for so long has none coming
            facts += calls.expire(time.time())
        measured: list[media_pb2.CallMeasured] = []
        for kind, call_id, m in facts:
            if kind == "answered":
                if tell is not None:
                    tell(call_id, "answered", ())
                continue
            if tell is not None:
                tell(call_id, "ended", ())
            if known_callers is not None:
                known_callers(m.sip_call_id)
            if note and m.outcome != m_pb2.SUCCESS and m.sip_code in (401, 403, 407):
                m.detail = f"{m.detail}; {note}"
            CALLS.labels(m_pb2.CallOutcome.Name(m.outcome)).inc()
            if m.outcome == m_pb2.SUCCESS:
                SETUP_TIME.observe(m.setup_time_ms / 1000)
            measured.append(media_pb2.CallMeasured(run_id=state.run_id, engine_id=state.engine_id, call=m))
        # emitted together: the engine writes concurrent emits of a stream in one append (group
        # commit), in this order; one append per call held the driver to ~500 calls/s on SQLite
        for i in range(0, len(measured), EMIT_CHUNK):
            await asyncio.gather(*(state.emit(msg) for msg in measured[i:i + EMIT_CHUNK]))
        return more

    sipp_done = asyncio.Event()
    follow_failed = asyncio.Event()

    async def follow() -> None:
        """Its own task: a slow emit (the outbox) never holds back the rate steps. If reading or
        reporting fails, it logs and stops (the run keeps SIPp's own statistics); the main loop then
        stops the progress ticks, so calls whose end it can no longer see are not billed on."""
        while not sipp_done.is_set():
            try:
                more = await per_call()
            except Exception:  # noqa: BLE001 - the per-call log is extra data: never the run's end
                log.exception("sipp_call_log_failed", run_id=state.run_id)
                follow_failed.set()
                return
            if more:
                await asyncio.sleep(0)
                continue
            try:
                async with asyncio.timeout(FOLLOW_S):
                    await sipp_done.wait()
            except TimeoutError:
                pass

    follower_task = asyncio.create_task(follow(), name=f"sipp-calls:{state.run_id}")
    try:
        next_read = t0 + 1.0
        next_progress = t0 + PROGRESS_S
        while proc.returncode is None:
            now = loop.time() - t0
            if not quit_sent and halted is not None and halted(state.run_id):
                send(b"q")  # stopped, or the balance ran out: no new calls (running ones end as planned)
                quit_sent, ended_by = True, "halted"
                pending.clear()
                log.info("sipp_halted", run_id=state.run_id)
            while pending and now >= pending[0][0]:
                at, rate = pending.pop(0)
                if rate > 0:
                    send(f"cset rate {rate:g}".encode())
                elif rate == 0:
                    # the window's end: SIPp may be behind the plan (it loses up to one call per rate
                    # change; a busy CPU or -l hold it back), so it goes on at the target rate until
                    # -m stops it at the planned attempts and it exits by itself, for late_s at most
                    send(f"cset rate {shape.cps:g}".encode())
                    pending.insert(0, (shape.window_s + late_s, -1.0))
                elif not quit_sent:
                    await emit_rows(final=False)
                    if created < planned:  # the allowance is over: no new calls, the running ones end
                        send(b"q")
                        quit_sent, ended_by = True, "late"
                        log.warning("sipp_behind_plan", run_id=state.run_id, placed=created, planned=planned,
                                    allowance_s=late_s)
            if now > bound:
                log.warning("sipp_over_time", run_id=state.run_id, bound_s=bound)
                ended_by = ended_by or "over_time"
                break
            if loop.time() >= next_read:
                next_read += 1.0
                await emit_rows(final=False)
            if tell is not None and loop.time() >= next_progress and not follow_failed.is_set():
                next_progress = loop.time() + PROGRESS_S
                for call_id in [calls.call_id(c) for c in calls.up.values()]:
                    tell(call_id, "progress", ())
            waits = [next_read - loop.time()] + ([t0 + pending[0][0] - loop.time()] if pending else []) + (
                [next_progress - loop.time()] if tell is not None else [])
            try:
                await asyncio.wait_for(proc.wait(), max(0.01, min(waits)))
            except asyncio.TimeoutError:
                pass
        await _stop(proc)
        await emit_rows(final=True)
        sipp_done.set()
        await follower_task
        if not follow_failed.is_set():
            try:
                await per_call(final=True)
            except Exception:  # noqa: BLE001
                log.exception("sipp_call_log_failed", run_id=state.run_id)
    finally:
        sipp_done.set()
        if not follower_task.done():
            follower_task.cancel()
            await asyncio.gather(follower_task, return_exceptions=True)
        ctl.close()
        follower.close()
    rows = parse_stat_rows(workdir / "stat.csv")
    counts = parse_counts(next(iter(workdir.glob("scenario_*_counts.csv")), workdir / "none"))
    rtt = parse_rtt_ms(next(iter(workdir.glob("scenario_*_rtt.csv")), workdir / "none"))
    codes = parse_error_codes(next(iter(workdir.glob("scenario_*_error_codes.csv")), workdir / "none"))
    answered = counts[-1].answers if counts else None
    every_call = bool(calls.talked) and calls.talked == answered  # the per-call log saw every answered call
    summary = sipp_summary(rows, answered, calls.setups_ms if every_call else rtt, codes,
                           calls_planned=shape.attempt_count(), peak=seconds.peak,
                           refusals=counts[-1].refusals if counts else None,
                           acd_ms=calls.talk_ms / calls.talked if every_call else None)
    short = summary.calls_planned - summary.calls_attempted
    if short > 0:
        if ended_by == "halted":
            why = HALTED
        elif ended_by == "over_time":
            why = f"SIPp did not end within the action's time bound ({bound:.0f} s) and was stopped"
        elif ended_by == "late" and shape.max_concurrency and seconds.peak >= shape.max_concurrency:
            why = (f"max_concurrency ({shape.max_concurrency}) calls were up until the load window closed "
                   f"(+{late_s:g} s allowance)")
        elif ended_by == "late":
            top = max((r.outgoing_p for r in rows), default=0)
            why = (f"SIPp fell behind the planned rate ({shape.cps:g} calls/s asked, at most {top} placed in one "
                   f"second): not placed by the end of the load window + {late_s:g} s allowance")
        else:
            err = (workdir / "sipp.err").read_text(errors="replace").strip()
            log.warning("sipp_stderr", run_id=state.run_id, returncode=proc.returncode, stderr=err[-2000:])
            known = sipp_reason(err, proc.returncode, fallback=False)  # SIPp's own words stay in the log
            why = (f"SIPp exited with code {proc.returncode} ({exit_meaning(proc.returncode)}) after "
                   f"{summary.calls_attempted} call(s)" + (f": {known}" if known else ""))
        summary.not_attempted[why] = short  # merged into the run's summary with the counts
    state.driver_summaries.append(summary)
    log.info("sipp_finished", run_id=state.run_id, returncode=proc.returncode, exit=exit_meaning(proc.returncode),
             attempted=summary.calls_attempted, planned=summary.calls_planned, answered=summary.calls_answered,
             calls_measured=calls.ended, not_attempted=dict(summary.not_attempted), pid=os.getpid())


async def _stop(proc: asyncio.subprocess.Process) -> None:
    """SIPp stopped if it still runs: SIGTERM, then SIGKILL after STOP_WAIT_S."""
    if proc.returncode is None:
        proc.terminate()
        try:
            await asyncio.wait_for(proc.wait(), STOP_WAIT_S)
        except asyncio.TimeoutError:
            proc.kill()
            await proc.wait()
