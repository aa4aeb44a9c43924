"""Carries out one run: places its calls step by step (the actions of a step together, each at its
own concurrency; a load action on the schedule of :mod:`load_shape`), reports every measurement as
it comes, a RunSecondStats every second, and a summary at the end."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Mapping

from opentelemetry import trace

from callgauge_proto.callgauge.common.v1 import test_spec_pb2 as spec_pb2
from callgauge_proto.callgauge.events.v1 import media_pb2, runs_pb2
from callgauge_proto.callgauge.media.v1 import measurements_pb2 as m_pb2

from callgauge_platform.aio import cancel_and_wait
from callgauge_platform.logs import get_logger

from callgauge_media.adapters.audio.budget import sampled
from callgauge_media.adapters.audio.prompts import DEFAULT_PROMPT, SILENCE
from callgauge_media.adapters.audio.service import default_service
from callgauge_media.domain.jobs import CallJob
from callgauge_media.domain.load_shape import LoadShape, PlannedCall, iter_plan, seed_for
from callgauge_media.domain.second_stats import SecondStats
from callgauge_media.domain.measurement import failed_measurement
from callgauge_media.adapters.metrics import ACTIVE_CALLS, observe_call
from callgauge_media.domain.ports import CallPlacer, LoadDriver
from callgauge_media.domain.reasons import UserError, run_error
from callgauge_media.domain.run_start import RunStart
from callgauge_media.domain.run_state import HALTED, Emit, RunState, not_attempted
from callgauge_media.handlers.sip_run import CredentialSource, SipRun
from callgauge_media.domain.summary import add_registrations, merge_counts

_tracer = trace.get_tracer("callgauge.media")
log = get_logger("media-engine")

def planned_calls(spec: spec_pb2.TestSpec) -> int:
    n = 0
    for s in spec.steps:
        for a in s.actions:
            kind = a.WhichOneof("kind")
            if kind == "call":
                n += a.call.max_total_calls or 1
            elif kind == "load":
                n += LoadShape.from_action(a.load).attempt_count()
    return n


def load_call_action(load: spec_pb2.LoadAction, duration_ms: int, record: bool = False) -> spec_pb2.CallAction:
    """What one call of a load action is, as a call action (placed by the same CallPlacer). A load
    plays its ``play_file``, else its tone, else silence; one that samples recordings and names
    neither plays the reference prompt (its recordings are scored against it)."""
    play = load.play_file
    if not play and not load.tone_hz and load.record_sample > 0:
        play = DEFAULT_PROMPT
    call = spec_pb2.CallAction(
        dial_destination=load.dial_destination, duration_ms=duration_ms, tone_hz=load.tone_hz, codec=load.codec,
        setup_timeout_ms=load.setup_timeout_ms, max_total_calls=1, concurrency=1, transport=load.transport,
        target_pool=load.target_pool, credential_pool=load.credential_pool, play_file=play or SILENCE,
        record=record, srtp=load.srtp, srtp_keying=load.srtp_keying,
        audio_bandwidth=load.audio_bandwidth)
    if load.HasField("impairment"):
        call.impairment.CopyFrom(load.impairment)
    return call


async def _tick(state: RunState, t0_ns: int) -> None:
    """Emit the run's RunSecondStats every second, on second boundaries counted from ``t0_ns``."""
    loop = asyncio.get_running_loop()
    start = loop.time()
    n = 0
    while True:
        n += 1
        await asyncio.sleep(max(0.0, start + n - loop.time()))
        await _emit_second(state, t0_ns + (n - 1) * 1_000_000_000)


async def _emit_second(state: RunState, at_ns: int) -> None:
    try:
        await state.emit(state.stats.cut(at_ns))
    except Exception as exc:  # noqa: BLE001 - statistics must not end the run
        log.warning("second_stats_not_emitted", run_id=state.run_id, error=repr(exc))


async def execute_run(req: runs_pb2.RunRequested, placer: CallPlacer, emit: Emit, engine_id: str,
                      credentials: CredentialSource | None = None, *, start: RunStart | None = None,
                      drivers: Mapping[str, LoadDriver] | None = None) -> m_pb2.RunSummary:
    """Carry out a whole run. ``RunAccepted`` goes out at once (QUEUED); ``RunMediaStarted``
    (RUNNING) when the run begins: ``start`` is signalled by the placer the caller wrapped with it
    under its fair share (:mod:`run_start`), or, without one, by the first call placed here.
    ``drivers``: the load drivers by name (bootstrap's ``load_drivers``); without it, only pjsua."""
    await emit(media_pb2.RunAccepted(run_id=req.run_id, engine_id=engine_id, planned_calls=planned_calls(req.spec)))
    if start is None:
        start = RunStart()
        placer = start.placer(placer)
    start.bind(lambda: emit(media_pb2.RunMediaStarted(run_id=req.run_id, engine_id=engine_id)))

    async def done(summary: m_pb2.RunSummary, error: str) -> None:
        await emit(media_pb2.RunMediaFinished(run_id=req.run_id, engine_id=engine_id, summary=summary, error=error))

    return await _carry_out(req, placer, emit, engine_id, done, credentials=credentials, start=start,
                            drivers=drivers)


async def execute_shard(assign: media_pb2.LoadShardAssigned, placer: CallPlacer, emit: Emit, engine_id: str,
                        credentials: CredentialSource | None = None, *, max_wait_s: float = 10.0,
                        drivers: Mapping[str, LoadDriver] | None = None) -> m_pb2.RunSummary:
    """Place one shard of a sharded load run (see :mod:`shards`): from ``start_at`` (waited for at
    most ``max_wait_s``), the calls of every load action whose index % shards == shard; the
    measurements and seconds go out as usual, then a LoadShardFinished."""
    delay = assign.start_at.ToNanoseconds() / 1e9 - time.time() if assign.HasField("start_at") else 0.0
    if delay > 0:
        await asyncio.sleep(min(delay, max_wait_s))

    async def done(summary: m_pb2.RunSummary, error: str) -> None:
        await emit(media_pb2.LoadShardFinished(run_id=assign.run_id, engine_id=engine_id, shard=assign.shard,
                                               shards=assign.shards, summary=summary, error=error))

    return await _carry_out(assign.request, placer, emit, engine_id, done, shard=assign.shard,
                            shards=max(1, assign.shards), credentials=credentials, drivers=drivers)


async def _carry_out(req: runs_pb2.RunRequested, placer: CallPlacer, emit: Emit, engine_id: str,
                     done: Callable[[m_pb2.RunSummary, str], Awaitable[None]], *, shard: int = 0,
                     shards: int = 1, credentials: CredentialSource | None = None,
                     start: RunStart | None = None,
                     drivers: Mapping[str, LoadDriver] | None = None) -> m_pb2.RunSummary:
    drivers = drivers if drivers is not None else {"pjsua": PjsuaLoad()}
    used = {driver_name(a.load) for s in req.spec.steps for a in s.actions if a.WhichOneof("kind") == "load"}
    state = RunState(req.run_id, engine_id, emit, SecondStats(req.run_id, engine_id), shard=shard, shards=shards,
                     start=start)
    state.sip = SipRun(req, placer, credentials, on_registration=lambda r: _record_registration(state, r))
    prefix = f"{req.run_id}:"

    def on_call(call_id: str, kind: str, data: tuple) -> None:
        if not call_id.startswith(prefix):
            return
        if kind == "answered":
            state.stats.answered(call_id)
        elif kind == "progress":
            state.stats.progress(call_id, *data)

    add, remove = getattr(placer, "add_listener", None), getattr(placer, "remove_listener", None)
    if add is not None:
        add(on_call)
    t0_ns = time.time_ns()
    # a driver with figures of its own (SIPp) reports its own seconds; the engine's ticker covers the
    # calls it places itself
    own_calls = any(a.WhichOneof("kind") == "call" or (a.WhichOneof("kind") == "load" and
                                                          not _own_figures(drivers, driver_name(a.load)))
                    for s in req.spec.steps for a in s.actions)
    ticker = asyncio.create_task(_tick(state, t0_ns), name=f"stats:{req.run_id}") if own_calls else None

    def summary() -> m_pb2.RunSummary:
        engine_drivers = "+".join(sorted(d for d in used if not _own_figures(drivers, d)))
        s = state.figures.summary(calls_planned=state.planned, peak_concurrency=state.stats.peak_active,
                                  driver=engine_drivers)
        for extra in state.driver_summaries:
            s.calls_planned -= extra.calls_planned  # counted in state.planned already
            s = merge_counts(s, extra)
        for why, n in state.not_attempted.items():
            s.not_attempted[why] += n
        if state.sip is not None:
            add_registrations(s, state.sip.registrations)
        return s

    async def finish(error: str = "") -> m_pb2.RunSummary:
        if remove is not None:
            remove(on_call)
        if ticker is not None:
            await cancel_and_wait(ticker)
            elapsed = time.time_ns() - t0_ns
            await _emit_second(state, t0_ns + (elapsed // 1_000_000_000) * 1_000_000_000)  # the last, partial second
        s = summary()
        if default_service.cache_info().currsize:  # this engine recorded or played audio
            audio = default_service()
            audio.forget(req.run_id)
            try:
                await asyncio.to_thread(audio.sweep)  # retention and the disk cap of all recordings
            except Exception as exc:  # noqa: BLE001 - housekeeping must not fail the run
                log.warning("audio_sweep_failed", error=repr(exc))
        await done(s, error)
        return s

    try:
        try:
            for si, step in enumerate(req.spec.steps):
                await asyncio.gather(*(
                    _run_action(state, si, ai, action, placer, drivers)
                    for ai, action in enumerate(step.actions)
                ))
            await state.sip.finish(lambda m: _record(state, m))  # waiting callees, unregister
        except BaseException:
            await asyncio.shield(state.sip.abort())
            raise
    except asyncio.CancelledError:
        await asyncio.shield(finish("the media engine was stopped"))
        raise
    except Exception as exc:  # the engine itself failed; the run must still end
        log.exception("run_failed", run_id=req.run_id)
        return await finish(run_error(exc))  # the traceback is in the log (above), not in the run
    return await finish()


async def _place_one(state: RunState, placer: CallPlacer, call_id: str, si: int, ai: int, index: int,
                     call: spec_pb2.CallAction, *, record_max: int = 0) -> None:
    with _tracer.start_as_current_span("call", kind=trace.SpanKind.CLIENT) as span:
        span.set_attribute("callgauge.call_id", call_id)
        span.set_attribute("sip.destination", call.dial_destination)
        state.stats.attempt(call_id)
        try:
            with ACTIVE_CALLS.track_inprogress():
                m = await _place(placer, state.sip, call_id, si, ai, index, call, record_max=record_max)
        except asyncio.CancelledError:
            state.stats.ended(call_id, m_pb2.CallMeasurement(outcome=m_pb2.CALL_FAILED))
            raise
        observe_call(m)
        m.call_id, m.step, m.action, m.index = call_id, si, ai, index
        m.destination = m.destination or call.dial_destination
        span.set_attribute("callgauge.outcome", m_pb2.CallOutcome.Name(m.outcome))
        span.set_attribute("sip.status_code", m.sip_code)
        if m.HasField("mos"):
            span.set_attribute("callgauge.mos", m.mos)
        state.stats.ended(call_id, m)
        state.figures.add(m)
        await state.emit(media_pb2.CallMeasured(run_id=state.run_id, engine_id=state.engine_id, call=m))


def functional_media(call: spec_pb2.CallAction) -> spec_pb2.CallAction:
    """A call action's media: its play_file, else its tone, else the reference speech prompt (the
    default media of functional tests; ``play_file: silence`` sends silence)."""
    if call.play_file or call.tone_hz:
        return call
    out = spec_pb2.CallAction()
    out.CopyFrom(call)
    out.play_file = DEFAULT_PROMPT
    return out


async def _place(placer: CallPlacer, sip: SipRun | None, call_id: str, si: int, ai: int, index: int,
                 call: spec_pb2.CallAction, *, record_max: int = 0) -> m_pb2.CallMeasurement:
    """Through a registrar / with DTMF / with audio files: a resolved job on the pool; a plain call
    (a placer that only places): ``placer.place``."""
    audio = bool((call.play_file and call.play_file != SILENCE) or call.record or call.expect_audio)
    if sip is None or not (call.target_pool or call.credential_pool or call.dtmf or audio) \
            or not hasattr(placer, "run_call"):
        return await placer.place(call_id, call)
    note = ""
    try:
        job = await sip.call_job(call_id, si, ai, index, call)
        if audio:
            service = default_service()
            try:
                job, note = await service.prepare(job, call, sip.run_id, action_max=record_max)
            except (LookupError, OSError) as exc:  # no espeak-ng, a data dir it cannot write
                if call.play_file != DEFAULT_PROMPT:
                    raise
                # the default prompt could not be made (no espeak-ng): the call still goes, silent
                job, note = await service.prepare(job, _without_play(call), sip.run_id, action_max=record_max)
                note = "; ".join(x for x in (f"default prompt not played: {exc}", note) if x)
    except (ValueError, LookupError, OSError) as exc:  # SipRunError, MediaNotFound, a media file not made
        return failed_measurement(CallJob(call_id=call_id, destination=call.dial_destination, step=si,
                                          action=ai, index=index), f"not placed: {exc}")
    m = await sip.joined(await placer.run_call(job))
    if note:
        m.detail = "; ".join(x for x in (m.detail, note) if x)
    if audio:
        m = await default_service().assess(m, job, call)
        m = await sip.assess_callee_leg(m, job)
    return m


def _without_play(call: spec_pb2.CallAction) -> spec_pb2.CallAction:
    out = spec_pb2.CallAction()
    out.CopyFrom(call)
    out.play_file = ""
    return out


async def _record(state: RunState, m: m_pb2.CallMeasurement) -> None:
    """A measurement that is not a placed call's: a failed registration, a call our callee answered."""
    observe_call(m)
    state.figures.add(m)
    await state.emit(media_pb2.CallMeasured(run_id=state.run_id, engine_id=state.engine_id, call=m))


async def _record_registration(state: RunState, r: m_pb2.RegistrationMeasurement) -> None:
    """A user agent of a register / wait_for_calls action ended: how its registration went (the
    SipRun keeps the list the summary is made from)."""
    await state.emit(media_pb2.RegistrationMeasured(run_id=state.run_id, engine_id=state.engine_id,
                                                    registration=r))


async def _run_action(state: RunState, si: int, ai: int, action: spec_pb2.Action, placer: CallPlacer,
                      drivers: Mapping[str, LoadDriver]) -> None:
    kind = action.WhichOneof("kind")
    if kind in ("register", "wait_for_calls") and state.sip is not None:
        await state.begin()
        for m in await state.sip.start_ua_action(si, ai, action):  # users that could not register
            await _record(state, m)
        return
    if kind == "load":
        name = driver_name(action.load)
        driver = drivers.get(name)
        if driver is None:
            raise UserError(f"the load driver {name!r} is not available in this media engine")
        await driver.run_load(state, si, ai, action.load, placer, shard=state.shard, shards=state.shards)
        return
    if kind != "call":
        return
    call = functional_media(action.call)
    total = max(1, call.max_total_calls or 1)
    state.planned += total
    # `concurrency` workers take the next index in turn: tasks never outnumber the concurrency,
    # whatever max_total_calls is (a task per call would hold the whole plan in memory)
    indices = iter(range(total))

    async def worker() -> None:
        for index in indices:
            await _place_one(state, placer, f"{state.run_id}:{si}.{ai}.{index}", si, ai, index, call)

    await asyncio.gather(*(worker() for _ in range(min(total, max(1, call.concurrency or 1)))))


def driver_name(load: spec_pb2.LoadAction) -> str:
    return (load.driver or "pjsua").lower()


def _own_figures(drivers: Mapping[str, LoadDriver], name: str) -> bool:
    driver = drivers.get(name)
    return driver is not None and driver.own_figures


class PjsuaLoad:
    """The ``pjsua`` load driver: each call of the load placed by the engine's CallPlacer (the
    pjsua2 worker pool), measured call by call like the calls of a call action."""

    own_figures = False

    def prepare(self) -> list[str]:
        return []

    async def run_load(self, state: RunState, si: int, ai: int, load: spec_pb2.LoadAction,
                       placer: CallPlacer | None, *, shard: int = 0, shards: int = 1) -> None:
        await _run_load(state, si, ai, load, placer, shard=shard, shards=shards)


async def _run_load(state: RunState, si: int, ai: int, load: spec_pb2.LoadAction, placer: CallPlacer,
                    *, shard: int = 0, shards: int = 1) -> None:
    """Start the planned attempts on time; hold an attempt back while ``max_concurrency`` calls (or
    as many as the placer can carry, its ``capacity``) are up; drop the attempts that could not
    start before the window closed. With ``shards`` > 1 this
    engine places only the attempts ``index % shards == shard`` (the others are another replica's)."""
    # calls are generated as their time comes: a plan of any size holds only the calls that are up
    shape, total, calls = iter_plan(load, seed_for(state.run_id, si, ai))
    mine = (c for c in calls if c.index % shards == shard)
    mine_n = len(range(shard, total, shards))
    state.planned += mine_n
    cap = max(0, shape.max_concurrency)
    if cap and shards > 1:
        cap = max(1, cap // shards + (1 if shard < cap % shards else 0))
    # never more than the engine can place at once: an attempt beyond it would only wait in the
    # pool's queue (an INVITE sent late); held back here, it is dropped when the window closes
    capacity = getattr(placer, "capacity", 0)
    if isinstance(capacity, int) and capacity > 0:
        by_engine = not cap or capacity < cap
        cap = min(cap, capacity) if cap else capacity
    else:
        by_engine = False
    gate = asyncio.Semaphore(cap) if cap else None
    loop = asyncio.get_running_loop()
    t0 = loop.time()
    end = t0 + shape.window_s
    tasks: set[asyncio.Task] = set()  # the calls still up, not every call started
    failures: list[BaseException] = []
    skipped = 0

    def ended(t: asyncio.Task) -> None:
        tasks.discard(t)
        if not t.cancelled() and t.exception() is not None:
            failures.append(t.exception())

    async def one(c: PlannedCall) -> None:
        try:
            record = sampled(state.run_id, si, ai, c.index, load.record_sample)
            await _place_one(state, placer, f"{state.run_id}:{si}.{ai}.{c.index}", si, ai, c.index,
                             load_call_action(load, c.duration_ms, record), record_max=load.record_max)
        finally:
            if gate is not None:
                gate.release()

    try:
        halted = getattr(placer, "halted", None)
        for pos, c in enumerate(mine):
            delay = t0 + c.at_s - loop.time()
            if delay > 0:
                await asyncio.sleep(delay)
            if halted is not None and halted(state.run_id):
                log.info("load_halted", run_id=state.run_id, step=si, action=ai, not_attempted=mine_n - pos)
                not_attempted(state, HALTED, mine_n - pos)
                break
            if gate is not None:
                try:
                    async with asyncio.timeout(max(0.0, end - loop.time())):
                        await gate.acquire()
                except TimeoutError:
                    skipped = mine_n - pos
                    held_by = (f"the engine's capacity ({cap})" if by_engine
                               else f"max_concurrency ({shape.max_concurrency})")
                    not_attempted(state, f"{held_by} calls were up until the load window closed", skipped)
                    break
            task = asyncio.create_task(one(c), name=f"call:{state.run_id}:{si}.{ai}.{c.index}")
            tasks.add(task)
            task.add_done_callback(ended)
            await asyncio.sleep(0)  # let the call start now, even when the schedule is behind
        if skipped:
            log.info("load_attempts_dropped", run_id=state.run_id, step=si, action=ai, dropped=skipped,
                     reason="max_concurrency calls were up until the load window closed")
        await asyncio.gather(*tasks)
        if failures:
            raise failures[0]
    except BaseException:
        for t in list(tasks):
            t.cancel()
        await asyncio.gather(*list(tasks), return_exceptions=True)
        raise
