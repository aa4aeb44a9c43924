"""A pool of media worker processes (pjsua2, 4 calls each) behind an asyncio API.

The event loop never touches pjsua2: each worker is a "spawn" process that owns one Endpoint
(see :mod:`callgauge_media.adapters.worker`). Jobs go down a pipe per worker; a reader thread per
worker turns the worker's messages into future results on the loop (``call_soon_threadsafe``).
A worker that dies is noticed by EOF on its pipe: only its in-flight calls get a CALL_FAILED
measurement ("media worker crashed") and it is restarted (with back-off).

Dispatch: a job goes to the ready worker with the fewest calls in flight (at most 4 each); when
all are full, jobs wait in FIFO order.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import multiprocessing as mp
import socket
import sys
import threading
from collections import deque
from dataclasses import dataclass, field
from collections.abc import Callable
from typing import Any

from callgauge_proto.callgauge.common.v1 import test_spec_pb2 as spec_pb2
from callgauge_proto.callgauge.media.v1 import measurements_pb2 as m_pb2

from callgauge_media.domain.jobs import CallJob, TlsFiles, UaJob
from callgauge_media.domain.measurement import CRASHED_DETAIL, failed_measurement
from callgauge_media.settings import RECORDED_JITTER_BUFFER_MS
from callgauge_media.adapters.worker import (
    DEFAULT_CALLS_PER_WORKER,
    MAX_CALLS_PER_WORKER,
    RTP_PORTS_PER_CALL,
    WorkerConfig,
    worker_main,
)

__all__ = ["CallJob", "UaJob", "UaSession", "WorkerPool"]

log = logging.getLogger(__name__)

CallListener = Callable[[str, str, tuple], None]

_MIN_PORTS_PER_CALL = 2  # RTP + RTCP
# user agents (register / wait_for_calls users) per worker: pjsua allows 64 accounts per process
# (PJSUA_MAX_ACC of our build), one is the worker's own, 15 are kept for the identities of calls
# placed through a registrar
MAX_UAS_PER_WORKER = 48
START_ATTEMPTS = 3  # a worker that dies before its first "ready" is started again this often
# A SIP keep-alive (RFC 5626 double CRLF) sent to a worker's UDP SIP port after each message on its
# pipe: pjsip ignores it, but it wakes libHandleEvents at once, so a worker can wait long (cheap
# when idle) and still pick a job up within a millisecond.
_DOORBELL = b"\r\n\r\n"


@dataclass(eq=False)
class _Pending:
    token: int
    job: CallJob
    future: asyncio.Future
    worker: _Worker | None = None
    hangup_sent: bool = False


class UaSession:
    """A user agent living in one worker (register / wait_for_calls), seen from the event loop.

    ``registered`` resolves once with the registration outcome: ``{"event": "registered" |
    "ready" | "failed", "code", "reason", ...}``; ``calls`` collects the measurements of the calls
    it answered (``changed`` is set after each); :meth:`close` ends it and returns its report."""

    def __init__(self, pool: WorkerPool, token: int, job: UaJob, loop: asyncio.AbstractEventLoop) -> None:
        self._pool = pool
        self.token = token
        self.job = job
        self.worker: _Worker | None = None
        self.registered: asyncio.Future = loop.create_future()
        self.done: asyncio.Future = loop.create_future()
        self.calls: list[m_pb2.CallMeasurement] = []
        self.events: list[dict] = []
        self.changed = asyncio.Event()
        self.close_sent = False

    def _event(self, payload: dict) -> None:
        self.events.append(payload)
        if not self.registered.done() and payload.get("event") in ("registered", "ready", "failed"):
            self.registered.set_result(payload)
        self.changed.set()

    def _call(self, m: m_pb2.CallMeasurement) -> None:
        self.calls.append(m)
        self.changed.set()

    def _gone(self, reason: str, report: dict | None = None) -> None:
        if not self.registered.done():
            self.registered.set_result({"event": "failed", "code": 0, "reason": reason})
        if not self.done.done():
            self.done.set_result(report if report is not None else {"error": reason})
        self.changed.set()
        self._pool._forget_ua(self)

    async def wait_registered(self, timeout: float) -> dict:
        try:
            return await asyncio.wait_for(asyncio.shield(self.registered), timeout)
        except asyncio.TimeoutError:
            return {"event": "failed", "code": 408, "reason": f"no registration outcome within {timeout:.0f} s"}

    async def close(self, timeout: float = 20.0) -> dict:
        """Hang up its calls, unregister, wait (bounded) for its final report."""
        self._pool._close_ua(self)
        try:
            return await asyncio.wait_for(asyncio.shield(self.done), timeout)
        except asyncio.TimeoutError:
            return {"error": f"the media worker did not close the user agent within {timeout:.0f} s"}


@dataclass(eq=False)
class _Worker:
    index: int
    config: WorkerConfig
    generation: int = 0
    process: Any = None  # multiprocessing.Process (spawn context)
    jobs: Any = None  # Connection, parent -> worker
    results: Any = None  # Connection, worker -> parent
    reader: threading.Thread | None = None
    ready: bool = False
    alive: bool = False
    info: dict = field(default_factory=dict)
    sip_addr: tuple[str, int] | None = None
    inflight: dict[int, _Pending] = field(default_factory=dict)
    uas: dict[int, UaSession] = field(default_factory=dict)
    ready_waiter: asyncio.Future | None = None
    failures: int = 0  # consecutive starts that never became ready
    restart_task: asyncio.Task | None = None
    last_error: str = ""


_MAIN_LOCK = threading.Lock()
_ABSENT = object()


def start_without_parent_main(proc: mp.process.BaseProcess) -> None:
    """Start a spawned worker without running the parent's main module in it again.

    spawn re-imports the parent's ``__main__`` in every child, unless it is a package's
    ``__main__.py`` (as ``python -m callgauge_media`` is). Started from a test runner, a benchmark,
    the CLI or any program that embeds the pool, that is the whole program's imports (gRPC, numpy,
    scipy, pydantic …): 187 MiB resident per idle worker instead of 60, ~2 MiB per call at 64 calls
    per worker. A worker needs none of it: its target is imported by name. While the process is
    started, ``__main__`` shows neither a spec nor a file, so spawn names no main module."""
    main = sys.modules.get("__main__")
    if main is None:
        proc.start()
        return
    with _MAIN_LOCK:
        saved = {k: main.__dict__.get(k, _ABSENT) for k in ("__spec__", "__file__")}
        main.__spec__ = None
        main.__dict__.pop("__file__", None)
        try:
            proc.start()
        finally:
            for k, v in saved.items():
                if v is _ABSENT:
                    main.__dict__.pop(k, None)
                else:
                    main.__dict__[k] = v


class WorkerPool:
    """``workers`` pjsua2 processes holding ``calls_per_worker`` calls each, each with its own RTP
    port range ``[rtp_port_base + i * rtp_ports_per_worker, + rtp_ports_per_worker)`` (by default
    ``RTP_PORTS_PER_CALL`` ports per call) and SIP on ``bind_host`` (ephemeral port).
    :meth:`for_calls` sizes the pool by the calls it must hold.

    Use ``async with WorkerPool(...) as pool`` or :meth:`start` / :meth:`stop`.
    """

    def __init__(
        self,
        workers: int,
        rtp_port_base: int,
        rtp_ports_per_worker: int | None = None,
        bind_host: str = "127.0.0.1",
        *,
        calls_per_worker: int = DEFAULT_CALLS_PER_WORKER,
        log_level: int = 1,
        drain_rx: bool = True,
        sip_message_log: bool = True,
        tls: TlsFiles | None = None,
        recorded_jitter_buffer_ms: int = RECORDED_JITTER_BUFFER_MS,
        start_timeout_s: float = 30.0,
        stop_timeout_s: float = 10.0,
    ) -> None:
        if workers < 1:
            raise ValueError("workers must be >= 1")
        if not 1 <= calls_per_worker <= MAX_CALLS_PER_WORKER:
            raise ValueError(f"calls_per_worker must be 1..{MAX_CALLS_PER_WORKER} (PJSUA_MAX_CALLS)")
        if rtp_ports_per_worker is None:
            rtp_ports_per_worker = RTP_PORTS_PER_CALL * calls_per_worker
        if rtp_ports_per_worker < _MIN_PORTS_PER_CALL * calls_per_worker:
            raise ValueError(f"rtp_ports_per_worker must be >= {_MIN_PORTS_PER_CALL * calls_per_worker}")
        if not (1024 <= rtp_port_base and rtp_port_base + workers * rtp_ports_per_worker <= 65536):
            raise ValueError("RTP port ranges must fit in 1024..65535")
        self.workers = workers
        self.rtp_port_base = rtp_port_base
        self.rtp_ports_per_worker = rtp_ports_per_worker
        self.bind_host = bind_host
        self.calls_per_worker = calls_per_worker
        self.start_timeout_s = start_timeout_s
        self.stop_timeout_s = stop_timeout_s
        self._ctx = mp.get_context("spawn")
        self._workers = [
            _Worker(
                index=i,
                config=WorkerConfig(
                    index=i,
                    bind_host=bind_host,
                    rtp_port=rtp_port_base + i * rtp_ports_per_worker,
                    rtp_port_range=rtp_ports_per_worker,
                    max_calls=calls_per_worker,
                    log_level=log_level,
                    drain_rx=drain_rx,
                    sip_message_log=sip_message_log,
                    tls=tls or TlsFiles(),
                    recorded_jitter_buffer_ms=recorded_jitter_buffer_ms,
                ),
            )
            for i in range(workers)
        ]
        self._pending: deque[_Pending] = deque()
        self._pending_uas: deque[UaSession] = deque()
        self._tokens = itertools.count(1)
        self._loop: asyncio.AbstractEventLoop | None = None
        self._running = False
        self._stopping = False
        self._doorbell: socket.socket | None = None
        self._listeners: list[CallListener] = []
        self.restarts = 0

    @classmethod
    def for_calls(cls, calls: int, calls_per_worker: int = DEFAULT_CALLS_PER_WORKER, **kwargs) -> WorkerPool:
        """A pool of enough workers for ``calls`` concurrent calls, ``calls_per_worker`` each."""
        if calls < 1:
            raise ValueError("calls must be >= 1")
        calls_per_worker = min(calls_per_worker, calls)
        return cls(-(-calls // calls_per_worker), calls_per_worker=calls_per_worker, **kwargs)

    # ------------------------------------------------------------------ public API
    @property
    def capacity(self) -> int:
        return self.workers * self.calls_per_worker

    @property
    def in_flight(self) -> int:
        return sum(len(w.inflight) for w in self._workers)

    @property
    def queued(self) -> int:
        return sum(1 for p in self._pending if not p.future.done())

    def add_listener(self, listener: CallListener) -> None:
        """``listener(call_id, kind, data)`` is called on the event loop for what happens to calls
        in flight: ``("answered", ())`` once per answered call, and ``("progress", (rx_packets,
        rx_lost, jitter_ms))`` about once a second while it is up. Exceptions are logged."""
        self._listeners.append(listener)

    def remove_listener(self, listener: CallListener) -> None:
        if listener in self._listeners:
            self._listeners.remove(listener)

    def _tell(self, call_id: str, kind: str, data: tuple) -> None:
        for listener in list(self._listeners):
            try:
                listener(call_id, kind, data)
            except Exception:  # noqa: BLE001
                log.exception("call listener")

    def worker_pids(self) -> list[int | None]:
        return [w.process.pid if w.process is not None and w.alive else None for w in self._workers]

    def worker_info(self) -> list[dict]:
        """Per worker: index, pid, SIP address, calls in flight, ready."""
        return [
            {"index": w.index, "ready": w.ready, "in_flight": len(w.inflight), **w.info} for w in self._workers
        ]

    async def start(self) -> None:
        """Start every worker and wait until all are ready (RuntimeError if one is not)."""
        if self._running:
            return
        self._loop = asyncio.get_running_loop()
        self._running = True
        self._stopping = False
        self._doorbell = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self._doorbell.setblocking(False)
        try:
            waiters = [await self._spawn(w) for w in self._workers]
            await asyncio.wait_for(asyncio.gather(*(self._until_ready(w, f) for w, f in zip(self._workers, waiters))),
                                   self.start_timeout_s)
        except BaseException as exc:
            await self.stop()
            if isinstance(exc, asyncio.TimeoutError):
                raise RuntimeError(f"media workers not ready within {self.start_timeout_s} s") from exc
            raise

    async def _until_ready(self, w: _Worker, waiter: asyncio.Future) -> None:
        """Wait for ``w``'s first start; a worker that dies before it is ready (a port taken at
        that instant, a machine too busy) is started again, up to START_ATTEMPTS times, so one
        unlucky process does not fail a pool of hundreds."""
        for attempt in range(1, START_ATTEMPTS + 1):
            try:
                await waiter
                return
            except RuntimeError as exc:
                if attempt == START_ATTEMPTS or not self._running or self._stopping:
                    raise
                log.warning("media worker %s did not start (%s): attempt %s of %s", w.index, exc, attempt + 1,
                            START_ATTEMPTS)
            if w.restart_task is not None:
                w.restart_task.cancel()  # this loop starts it again, not the crash-restart path
            if w.process is not None:
                await asyncio.get_running_loop().run_in_executor(None, w.process.join, 5.0)
            self.restarts += 1
            waiter = await self._spawn(w)

    async def stop(self, timeout: float | None = None) -> None:
        """Graceful: queued calls are reported not placed; workers hang up live calls, report them,
        destroy pjsua and exit; a worker still alive after ``timeout`` is SIGKILLed."""
        if not self._running or self._stopping:
            return
        self._stopping = True
        loop = asyncio.get_running_loop()
        timeout = self.stop_timeout_s if timeout is None else timeout
        while self._pending:
            p = self._pending.popleft()
            if not p.future.done():
                p.future.set_result(failed_measurement(p.job, "not placed: media engine stopping"))
        for w in self._workers:
            if w.restart_task is not None:
                w.restart_task.cancel()
            if w.alive and w.jobs is not None:
                try:
                    w.jobs.send(("stop",))
                    self._ring(w)
                except (OSError, ValueError):
                    pass
        procs = [w.process for w in self._workers if w.process is not None]
        await asyncio.gather(*(loop.run_in_executor(None, p.join, timeout) for p in procs))
        for p in procs:
            if p.is_alive():
                log.warning("media worker pid %s did not stop in %.1f s: SIGKILL", p.pid, timeout)
                p.kill()
        await asyncio.gather(*(loop.run_in_executor(None, p.join, 5.0) for p in procs))
        readers = [w.reader for w in self._workers if w.reader is not None]
        await asyncio.gather(*(loop.run_in_executor(None, t.join, 5.0) for t in readers))
        await asyncio.sleep(0)  # let the readers' last call_soon_threadsafe callbacks run
        await asyncio.sleep(0)
        while self._pending_uas:
            self._pending_uas.popleft()._gone("media engine stopping")
        for w in self._workers:
            for u in list(w.uas.values()):
                u._gone("media worker stopped")
            self._fail_inflight(w, "media worker stopped before the call ended")
            self._close(w)
            w.process = None
            w.alive = w.ready = False
        if self._doorbell is not None:
            self._doorbell.close()
            self._doorbell = None
        self._running = False

    async def run_call(self, job: CallJob) -> m_pb2.CallMeasurement:
        """Place one call and wait for its measurement. Failures of the call (and of its worker)
        are a measurement with an outcome, not an exception. Cancelling the awaiting task hangs
        the call up."""
        if not self._running or self._stopping:
            raise RuntimeError("WorkerPool is not running")
        loop = asyncio.get_running_loop()
        p = _Pending(token=next(self._tokens), job=job, future=loop.create_future())
        self._pending.append(p)
        self._dispatch()
        try:
            return await asyncio.shield(p.future)
        except asyncio.CancelledError:
            if not p.future.done():
                if p.worker is not None:
                    self._send_hangup(p, "the caller stopped waiting")
                    # the result still comes and frees the slot; nobody reads it
                else:
                    p.future.cancel()
            raise

    async def place(self, call_id: str, action: spec_pb2.CallAction) -> m_pb2.CallMeasurement:
        """The runner's ``CallPlacer`` protocol."""
        try:
            job = CallJob.from_action(call_id, action)
        except ValueError as exc:  # a field this engine cannot use (DTMF digits, impairment values)
            return failed_measurement(CallJob(call_id=call_id, destination=action.dial_destination),
                                      f"not placed: {exc}")
        return await self.run_call(job)

    def hangup(self, call_id: str, reason: str = "hung up on request") -> bool:
        """End a queued or live call early (e.g. balance exhausted). Its measurement is still
        delivered to ``run_call``. False when no such call is known."""
        found = False
        for p in list(self._pending):
            if p.job.call_id == call_id and not p.future.done():
                p.future.set_result(failed_measurement(p.job, f"not placed: {reason}"))
                found = True
        for w in self._workers:
            for p in w.inflight.values():
                if p.job.call_id == call_id:
                    self._send_hangup(p, reason)
                    found = True
        return found

    def open_ua(self, job: UaJob) -> UaSession:
        """Start a user agent in the worker with the fewest UAs (it reserves one call slot there when
        it answers calls). Await ``session.wait_registered()``, then ``session.close()``."""
        if not self._running or self._stopping:
            raise RuntimeError("WorkerPool is not running")
        session = UaSession(self, next(self._tokens), job, asyncio.get_running_loop())
        self._pending_uas.append(session)
        self._dispatch()
        return session

    def _close_ua(self, session: UaSession) -> None:
        if session.done.done() or session.close_sent:
            return
        if session.worker is None:
            try:
                self._pending_uas.remove(session)
            except ValueError:
                pass
            session._gone("closed before it started")
            return
        w = session.worker
        session.close_sent = True
        if w.alive and w.jobs is not None:
            try:
                w.jobs.send(("ua_close", session.token))
                self._ring(w)
                return
            except (OSError, ValueError):
                pass
        session._gone("media worker unreachable")

    def _forget_ua(self, session: UaSession) -> None:
        if session.worker is not None:
            session.worker.uas.pop(session.token, None)
            self._dispatch()

    def _reserved(self, w: _Worker) -> int:
        """Call slots held back for the calls a worker's answering UAs may receive."""
        return sum(1 for u in w.uas.values() if u.job.answer)

    async def __aenter__(self) -> WorkerPool:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    # ------------------------------------------------------------------ workers
    async def _spawn(self, w: _Worker) -> asyncio.Future:
        """Start ``w``'s process; returns a future that resolves when it reports ready."""
        loop = asyncio.get_running_loop()
        w.generation += 1
        gen = w.generation
        jobs_r, jobs_w = self._ctx.Pipe(duplex=False)
        res_r, res_w = self._ctx.Pipe(duplex=False)
        proc = self._ctx.Process(
            target=worker_main,
            args=(w.config, jobs_r, res_w),
            name=f"callgauge-media-worker-{w.index}",
            daemon=True,
        )
        w.ready = False
        w.info = {}
        w.sip_addr = None
        try:
            await loop.run_in_executor(None, start_without_parent_main, proc)
        except BaseException:
            for conn in (jobs_r, jobs_w, res_r, res_w):
                conn.close()
            raise
        finally:
            jobs_r.close()  # the child has its copies; EOF on res_r now means the child is gone
            res_w.close()
        w.ready_waiter = loop.create_future()
        w.process, w.jobs, w.results = proc, jobs_w, res_r
        w.alive = True
        w.reader = threading.Thread(
            target=self._read_loop, args=(w, gen, res_r, loop), name=f"media-worker-{w.index}-reader", daemon=True
        )
        w.reader.start()
        return w.ready_waiter

    def _read_loop(self, w: _Worker, gen: int, conn: Any, loop: asyncio.AbstractEventLoop) -> None:
        while True:
            try:
                msg = conn.recv()
            except (EOFError, OSError):
                break
            except Exception as exc:  # noqa: BLE001 - undecodable message: treat the worker as broken
                log.error("media worker %s sent an unreadable message: %r", w.index, exc)
                break
            try:
                loop.call_soon_threadsafe(self._on_message, w, gen, msg)
            except RuntimeError:  # loop closed
                return
        try:
            loop.call_soon_threadsafe(self._on_worker_gone, w, gen)
        except RuntimeError:
            pass

    def _on_message(self, w: _Worker, gen: int, msg: tuple) -> None:
        if gen != w.generation:
            return
        kind = msg[0]
        if kind == "result":
            p = w.inflight.pop(msg[1], None)
            if p is not None and not p.future.done():
                m = m_pb2.CallMeasurement()
                try:
                    m.ParseFromString(msg[2])
                except Exception as exc:  # noqa: BLE001
                    log.warning("unreadable measurement from media worker %s: %r", w.index, exc)
                    m = failed_measurement(p.job, "unreadable measurement from the media worker "
                                                  "(details in the media engine's log)")
                p.future.set_result(m)
            self._dispatch()
        elif kind == "answered":
            p = w.inflight.get(msg[1])
            if p is not None:
                self._tell(p.job.call_id, "answered", ())
        elif kind == "progress":
            for token, rx, lost, jitter_ms in msg[1]:
                p = w.inflight.get(token)
                if p is not None:
                    self._tell(p.job.call_id, "progress", (rx, lost, jitter_ms))
        elif kind in ("ua_event", "ua_call", "ua_done"):
            session = w.uas.get(msg[1])
            if session is None:
                return
            if kind == "ua_event":
                session._event(dict(msg[2]))
            elif kind == "ua_call":
                m = m_pb2.CallMeasurement()
                try:
                    m.ParseFromString(msg[2])
                except Exception:  # noqa: BLE001
                    return
                session._call(m)
            else:
                session._gone("closed", dict(msg[2]))
        elif kind == "ready":
            w.ready = True
            w.failures = 0
            w.info = dict(msg[1])
            host, _, port = str(w.info.get("sip", "")).rpartition(":")
            w.sip_addr = (host, int(port)) if host and port.isdigit() else None
            if w.ready_waiter is not None and not w.ready_waiter.done():
                w.ready_waiter.set_result(None)
            self._dispatch()
        elif kind == "fatal":
            w.last_error = str(msg[1])
            log.error("media worker %s failed to start:\n%s", w.index, msg[1])
        elif kind == "stopped":
            w.ready = False

    def _on_worker_gone(self, w: _Worker, gen: int) -> None:
        if gen != w.generation or not w.alive:
            return
        w.alive = False
        w.ready = False
        exitcode = w.process.exitcode if w.process is not None else None
        if self._stopping:
            return  # stop() reports what is left
        log.error("media worker %s (pid %s) exited (code %s)", w.index, w.info.get("pid"), exitcode)
        self._fail_inflight(w, CRASHED_DETAIL)
        for u in list(w.uas.values()):
            u._gone(CRASHED_DETAIL)
        if w.ready_waiter is not None and not w.ready_waiter.done():
            w.ready_waiter.set_exception(RuntimeError(f"media worker {w.index} exited before ready: {w.last_error}"))
            w.failures += 1
        self._close(w)
        if w.process is not None and w.process.is_alive():
            w.process.kill()  # its pipe broke but it still runs: do not leave it behind
        if self._running:
            w.restart_task = asyncio.get_running_loop().create_task(self._restart(w))
        self._dispatch()

    async def _restart(self, w: _Worker) -> None:
        delay = min(10.0, 0.2 * (2 ** min(w.failures, 6)))
        await asyncio.sleep(delay)
        if self._stopping or not self._running:
            return
        loop = asyncio.get_running_loop()
        if w.process is not None:
            await loop.run_in_executor(None, w.process.join, 5.0)
        self.restarts += 1
        log.warning("restarting media worker %s", w.index)
        try:
            waiter = await self._spawn(w)
            await asyncio.wait_for(asyncio.shield(waiter), self.start_timeout_s)
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # noqa: BLE001
            log.error("media worker %s restart failed: %s", w.index, exc)
            w.failures += 1
            if w.alive and w.process is not None and w.process.is_alive():
                w.process.kill()  # the reader's EOF schedules the next attempt

    def _fail_inflight(self, w: _Worker, detail: str) -> None:
        inflight, w.inflight = w.inflight, {}
        for p in inflight.values():
            if not p.future.done():
                p.future.set_result(failed_measurement(p.job, detail))

    def _close(self, w: _Worker) -> None:
        for conn in (w.jobs, w.results):
            if conn is not None:
                try:
                    conn.close()
                except OSError:
                    pass
        w.jobs = None
        # w.results is closed; the reader thread has already left its recv loop (EOF)

    def _send_hangup(self, p: _Pending, reason: str) -> None:
        w = p.worker
        if w is None or p.hangup_sent or not w.alive or w.jobs is None:
            return
        try:
            w.jobs.send(("hangup", p.token, reason))
            p.hangup_sent = True
            self._ring(w)
        except (OSError, ValueError):
            pass

    def _dispatch(self) -> None:
        if self._stopping:
            return
        while self._pending_uas:
            up = [w for w in self._workers if w.ready and w.alive]
            ready = [w for w in up if len(w.uas) < MAX_UAS_PER_WORKER]
            if not ready:
                if len(up) == len(self._workers):  # every worker is up and full: no waiting helps
                    self._pending_uas.popleft()._gone(
                        f"no room for another SIP user: {len(self._workers)} media workers x "
                        f"{MAX_UAS_PER_WORKER} users (raise CALLGAUGE_MEDIA_MAX_CALLS or CALLGAUGE_MEDIA_WORKERS)")
                    continue
                break
            w = min(ready, key=lambda x: (len(x.uas), len(x.inflight), x.index))
            session = self._pending_uas.popleft()
            try:
                w.jobs.send(("ua", session.token, session.job))
            except (OSError, ValueError) as exc:
                log.error("media worker %s unreachable: %s", w.index, exc)
                self._pending_uas.appendleft(session)
                w.ready = False
                break
            session.worker = w
            w.uas[session.token] = session
            self._ring(w)
        while self._pending:
            if self._pending[0].future.done():
                self._pending.popleft()
                continue
            ready = [w for w in self._workers if w.ready and w.alive
                     and len(w.inflight) < max(1, self.calls_per_worker - self._reserved(w))]
            if not ready:
                return
            w = min(ready, key=lambda x: (len(x.inflight) + self._reserved(x), x.index))
            p = self._pending.popleft()
            try:
                w.jobs.send(("call", p.token, p.job))
            except (OSError, ValueError) as exc:
                log.error("media worker %s unreachable: %s", w.index, exc)
                self._pending.appendleft(p)
                w.ready = False  # the reader's EOF will restart it
                continue
            p.worker = w
            w.inflight[p.token] = p
            self._ring(w)

    def _ring(self, w: _Worker) -> None:
        if self._doorbell is not None and w.sip_addr is not None:
            try:
                self._doorbell.sendto(_DOORBELL, w.sip_addr)
            except OSError:
                pass  # only a wake-up: the worker still reads its pipe within poll_ms
