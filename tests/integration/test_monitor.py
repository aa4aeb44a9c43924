"""Probes, the scheduler and webhooks with the real store (SQLite; PostgreSQL when it answers):
two schedulers on one store fire each slot exactly once; a restart catches up at most one missed
slot; a slot whose run never started is repaired; a probe's health follows its runs; a real HTTP
receiver on 127.0.0.1 verifies signatures and sees retries after a 500.

The runs are moved along by media events fed to RunsApp.on_media_event (the path the Kafka
consumer takes), since no media-engine runs here; tests/e2e covers real calls."""

from __future__ import annotations

import asyncio
import json
import time
from datetime import UTC, datetime, timedelta

import httpx
import pytest
from callgauge_platform.timestamps import datetime_of
from callgauge_bus.codec import Delivered, decode_payload, envelope_for
from callgauge_eventstore.aggregate import load
from callgauge_eventstore.factory import open_event_store
from callgauge_proto.callgauge.common.v1 import test_spec_pb2 as spec_pb2
from callgauge_proto.callgauge.events.v1 import media_pb2, monitor_pb2, runs_pb2
from callgauge_proto.callgauge.media.v1 import measurements_pb2 as m_pb2
from callgauge_runs.domain import project as project_model, run as run_model, test as test_model
from callgauge_runs.domain import probe as probe_model
from callgauge_runs.domain import webhooks
from callgauge_runs.domain.errors import Invalid, NotFound
from callgauge_runs.handlers.app import RunsApp, new_id
from callgauge_runs.adapters.webhook_http import HttpWebhookSender
from callgauge_runs.handlers.monitor import MonitorApp, MonitorConfig
from callgauge_runs.handlers.monitor_view import probe_stream
from callgauge_runs.handlers.webhook_dispatcher import SECRETS
from callgauge_runs.handlers.secrets import Secrets
from cryptography.fernet import Fernet
from webhook_receiver import WebhookReceiver

KEY = Secrets([Fernet.generate_key()])


@pytest.fixture
def store_url(store_backend):
    """(url, namespace) of one store that several processes' adapters open."""
    return store_backend.url, store_backend.namespace("runs")


def config(**kw) -> MonitorConfig:
    base = dict(rules=probe_model.ProbeRules(min_interval_seconds=1), tick_seconds=0.05, allow_private=True,
                retry=webhooks.RetryPolicy(base=timedelta(milliseconds=200)))
    base.update(kw)
    return MonitorConfig(**base)


class Node:
    """One runs-service 'process': its own store adapter, RunsApp and MonitorApp."""

    def __init__(self, url: str, ns: str, cfg: MonitorConfig) -> None:
        self.store = open_event_store(url, ns)
        self.runs = RunsApp(self.store, secrets=KEY)  # one key for every 'process', as in production
        self.http = httpx.AsyncClient(timeout=cfg.http_timeout, follow_redirects=False)
        self.monitor = MonitorApp(self.store, self.runs, cfg,
                                  HttpWebhookSender(self.http, allow_private=cfg.allow_private))

    async def start(self) -> Node:
        await self.runs.start()
        await self.monitor.start()
        return self

    async def stop(self) -> None:
        await self.monitor.stop()
        await self.http.aclose()
        await self.runs.stop()
        await self.store.close()


async def project_and_test(runs: RunsApp, account: str = "acct", mode: str = "live") -> tuple[str, str]:
    pid, tid = new_id(), new_id()
    await runs.create_project(project_model.CreateProject(pid, account, "PBX", mode=mode))
    spec = spec_pb2.TestSpec()
    spec.steps.add().actions.add().call.CopyFrom(spec_pb2.CallAction(dial_destination="sip:echo@127.0.0.1:5070"))
    await runs.create_test(test_model.CreateTest(tid, pid, account, "echo", spec, mode=mode))
    return pid, tid


async def until(predicate, what: str, timeout: float = 30.0, step: float = 0.05):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = await predicate() if asyncio.iscoroutinefunction(predicate) else predicate()
        if value:
            return value
        await asyncio.sleep(step)
    pytest.fail(f"timed out after {timeout:.0f} s waiting for {what}")


async def events_of(store, types) -> list:
    out, after = [], 0
    while batch := await store.read_all(after, 1000):
        for ev in batch:
            payload = decode_payload(ev.type, ev.data)
            if isinstance(payload, types):
                out.append((ev, payload))
        after = batch[-1].position
    return out


async def runs_per_slot(store, probe_id: str) -> dict[int, int]:
    counts: dict[int, int] = {}
    for _ev, e in await events_of(store, runs_pb2.RunRequested):
        if e.metadata.get("probe_id") == probe_id:
            slot = int(e.metadata["probe_slot"])
            counts[slot] = counts.get(slot, 0) + 1
    return counts


async def finish(runs: RunsApp, run_id: str, **summary) -> None:
    """Feed the media events an engine emits for a one-call run."""
    s = dict(calls_attempted=1, calls_answered=1, asr=1.0, mos_mean=4.4, mos_min=4.4, jitter_ms_max=1.0,
             loss_pct_max=0.0, setup_p95_ms=4.0)
    s.update(summary)
    call = m_pb2.CallMeasurement(call_id=f"{run_id}-0", outcome=m_pb2.SUCCESS if s["calls_answered"] else
                                 m_pb2.CALL_FAILED)
    for msg in (media_pb2.RunAccepted(run_id=run_id, engine_id="e", planned_calls=1),
                media_pb2.RunMediaStarted(run_id=run_id, engine_id="e"),
                media_pb2.CallMeasured(run_id=run_id, engine_id="e", call=call),
                media_pb2.RunMediaFinished(run_id=run_id, engine_id="e", summary=m_pb2.RunSummary(**s))):
        env = envelope_for(msg, f"media-run-{run_id}", 0, run_id, "", "media-engine")
        await runs.on_media_event(Delivered(env, msg))


# ---------------------------------------------------------------- scheduler


async def test_two_schedulers_on_one_store_fire_each_slot_once_and_a_restart_catches_up_one(store_url):
    url, ns = store_url
    a = await Node(url, ns, config(worker_id="a")).start()
    b = await Node(url, ns, config(worker_id="b")).start()
    try:
        pid, tid = await project_and_test(a.runs)
        answer = await a.monitor.probes.create_probe(probe_model.CreateProbe(new_id(), pid, "acct", "live", tid, "every second", 1,
                                                            datetime.now(UTC)))
        probe_id = answer.probe.id
        await until(lambda: b.monitor.view.probes.get(probe_id, None) and
                    b.monitor.view.probes[probe_id].last_slot >= 6, "6 slots fired", timeout=60)
    finally:
        await a.stop()
        await b.stop()

    c = Node(url, ns, config(worker_id="c"))
    try:
        counts = await runs_per_slot(c.store, probe_id)
        fired = [e for _ev, e in await events_of(c.store, monitor_pb2.ProbeSlotFired) if e.probe_id == probe_id]
        slots = [e.slot for e in fired]
        assert slots == list(range(1, len(slots) + 1)), f"slots not fired once each, in order: {slots}"
        assert set(counts) == set(slots) and set(counts.values()) == {1}, f"runs per slot: {counts}"
        last = fired[-1]

        # Down for more than three intervals, then one scheduler comes back: one slot, the latest.
        await asyncio.sleep(max(0.0, (datetime_of(last.next_due_at) - datetime.now(UTC)).total_seconds()) + 3.5)
        await c.start()
        await until(lambda: c.monitor.view.probes[probe_id].last_slot > last.slot, "the catch-up slot")
        first = next(e for _ev, e in await events_of(c.store, monitor_pb2.ProbeSlotFired)
                     if e.probe_id == probe_id and e.slot > last.slot)
        # Another tick before the next due time fires nothing more: a tick at the catch-up's own time,
        # then the view caught up with everything in the store.
        await c.monitor.probes.schedule_once(datetime_of(first.fired_at))
        await c.monitor.view.wait_for(await c.store.last_position())
        caught = [e for _ev, e in await events_of(c.store, monitor_pb2.ProbeSlotFired)
                  if e.probe_id == probe_id and e.slot > last.slot]
        assert [e for e in caught if datetime_of(e.fired_at) < datetime_of(first.next_due_at)] == [first], caught
        assert caught[0].skipped_slots >= 2, caught[0]
        assert caught[0].slot == last.slot + 1 + caught[0].skipped_slots
        assert datetime_of(caught[0].next_due_at) > datetime_of(caught[0].fired_at)
        counts = await runs_per_slot(c.store, probe_id)
        assert set(counts.values()) == {1}, f"runs per slot after restart: {counts}"
    finally:
        await c.stop()


async def test_a_slot_whose_run_never_started_is_started_by_the_next_scheduler(tmp_path):
    node = await Node(f"sqlite:///{tmp_path}/", "runs", config(scheduler=False)).start()
    try:
        pid, tid = await project_and_test(node.runs)
        probe = (await node.monitor.probes.create_probe(probe_model.CreateProbe(
            new_id(), pid, "acct", "live", tid, "p", 60, datetime.now(UTC) - timedelta(seconds=30)))).probe
        # A scheduler recorded slot 1 and died before starting its run; slot 2 is not due yet.
        state, version = await load(node.store, probe_stream(probe.id), probe_model.evolve_probe, decode_payload)
        [fired] = probe_model.decide_fire_slot(state, datetime.now(UTC), new_id())
        from callgauge_bus.codec import new_event
        await node.store.append_to_stream(probe_stream(probe.id), version, [new_event(fired, fired.run_id)])
    finally:
        await node.stop()
    node = await Node(f"sqlite:///{tmp_path}/", "runs", config()).start()
    try:
        async def started():
            return await node.store.stream_version(f"run-{fired.run_id}") is not None

        await until(started, "the lost slot's run to start")
        run = await node.runs.get_run("acct", "live", pid, fired.run_id)
        assert run.metadata == {"probe_id": probe.id, "probe_slot": "1"} and run.tags == ("probe",)
    finally:
        await node.stop()


# ---------------------------------------------------------------- health


async def test_probe_health_follows_its_runs_and_changes_can_be_acknowledged(tmp_path):
    node = await Node(f"sqlite:///{tmp_path}/", "runs", config(scheduler=False)).start()
    try:
        pid, tid = await project_and_test(node.runs)
        t0 = datetime.now(UTC) - timedelta(hours=1)
        probe = (await node.monitor.probes.create_probe(probe_model.CreateProbe(new_id(), pid, "acct", "live", tid, "p", 60, t0))).probe
        assert probe.state == probe_model.UNKNOWN
        states = []
        for i, jitter in enumerate((2.0, 45.0, 120.0, 3.0)):
            await node.monitor.probes.schedule_once(t0 + timedelta(minutes=1 + i, seconds=30))
            run_id, _ = node.monitor.view.last_fired[probe.id]
            await finish(node.runs, run_id, jitter_ms_max=jitter)
            await until(lambda r=run_id: node.monitor.view.probes[probe.id].last_run_id == r, f"run {i} judged")
            states.append(node.monitor.view.probes[probe.id].state)
        assert states == ["HEALTHY", "DEGRADED", "UNHEALTHY", "HEALTHY"]
        p = await node.monitor.probes.get_probe("acct", "live", pid, probe.id)
        assert [(c.from_state, c.to_state) for c in p.unacknowledged] == [
            ("UNKNOWN", "HEALTHY"), ("HEALTHY", "DEGRADED"), ("DEGRADED", "UNHEALTHY"), ("UNHEALTHY", "HEALTHY")]
        p = await node.monitor.probes.acknowledge("acct", "live", pid, probe.id, 0)
        assert p.unacknowledged == () and len(p.changes) == 4
        [day] = probe_model.uptime_by_day(p.results)
        assert (day.runs, day.up_runs) == (4, 3)

        # A slot whose run never reports (no media-engine here): after max(3 intervals, 300 s) UNKNOWN.
        late = t0 + timedelta(minutes=5, seconds=30)
        await node.monitor.probes.schedule_once(late)
        lost, _ = node.monitor.view.last_fired[probe.id]
        await node.monitor.probes.schedule_once(late + timedelta(seconds=301))
        await until(lambda: node.monitor.view.probes[probe.id].state == probe_model.UNKNOWN, "UNKNOWN without a result")
        p = await node.monitor.probes.get_probe("acct", "live", pid, probe.id)
        assert p.unacknowledged[-1].run_id == lost and p.unacknowledged[-1].to_state == probe_model.UNKNOWN
    finally:
        await node.stop()


# ---------------------------------------------------------------- webhooks


async def test_webhook_is_signed_and_retried_after_500s_and_the_log_shows_each_attempt(tmp_path):
    node = await Node(f"sqlite:///{tmp_path}/", "runs", config()).start()
    try:
        with WebhookReceiver(fail=2) as rx:
            endpoint, secret = await node.monitor.webhooks.create_webhook("acct", "live", rx.url, ("run.finished",), "ci")
            test_ep, _ = await node.monitor.webhooks.create_webhook("acct", "test", rx.url, webhooks.EVENTS, "test mode")
            pid, tid = await project_and_test(node.runs)
            run = await node.runs.start_run(run_model.StartRun(new_id(), pid, tid, "acct"))
            test_pid, test_tid = await project_and_test(node.runs, mode="test")
            test_run = await node.runs.start_run(run_model.StartRun(new_id(), test_pid, test_tid, "acct", mode="test"))
            await finish(node.runs, test_run.id)
            await finish(node.runs, run.id)
            await until(lambda: any(d.status == webhooks.DELIVERED for d in node.monitor.webhooks.deliveries("acct", "live",
                                                                                            endpoint.id)),
                        "the delivery to succeed on its third attempt")
            # Everything stored is seen and every due attempt dispatched: the test-mode run sent nothing.
            await node.monitor.view.wait_for(await node.store.last_position())
            await node.monitor.webhooks.dispatch_once(datetime.now(UTC) + timedelta(days=1))
            assert len(rx.requests) == 3, "test-mode runs and endpoints must not send anything"
            ids = set()
            for headers, body in rx.requests:
                assert webhooks.verify(secret, headers[webhooks.TIMESTAMP_HEADER], body, headers[webhooks.SIGNATURE_HEADER],
                                now=int(time.time())), headers
                ids.add(headers[webhooks.DELIVERY_HEADER])
                assert headers[webhooks.EVENT_HEADER] == "run.finished"
            assert len(ids) == 1
            sent = json.loads(rx.requests[0][1])
            assert sent["type"] == "run.finished" and sent["data"]["testRunId"] == run.id
            assert sent["data"]["status"] == "COMPLETED"
            [d] = node.monitor.webhooks.deliveries("acct", "live", endpoint.id)
            # The persisted schedule doubles: attempt n+1 due 200 ms * 2**(n-1) after attempt n.
            waits = [datetime_of(e.next_attempt_at) - datetime_of(e.attempted_at)
                     for _ev, e in await events_of(node.store, monitor_pb2.WebhookAttempted)
                     if e.delivery_id == d.id and e.HasField("next_attempt_at")]
            assert waits == [timedelta(milliseconds=200), timedelta(milliseconds=400)], waits
            assert [(a.attempt, a.status_code, a.outcome) for a in d.attempts] == [
                (1, 500, webhooks.RETRYING), (2, 500, webhooks.RETRYING), (3, 204, webhooks.DELIVERED)]
            assert node.monitor.webhooks.deliveries("acct", "test", test_ep.id) == []
            rows, _ = await node.store.read_projection(SECRETS)
            assert secret.encode() not in rows[endpoint.id] and KEY.decrypt(rows[endpoint.id].decode()) == secret
    finally:
        await node.stop()


async def test_retry_schedule_survives_a_restart(tmp_path):
    url = f"sqlite:///{tmp_path}/"
    node = await Node(url, "runs", config(retry=webhooks.RetryPolicy(base=timedelta(seconds=2)))).start()
    with WebhookReceiver(fail=1) as rx:
        try:
            endpoint, secret = await node.monitor.webhooks.create_webhook("acct", "live", rx.url, ("run.finished",), "")
            pid, tid = await project_and_test(node.runs)
            run = await node.runs.start_run(run_model.StartRun(new_id(), pid, tid, "acct"))
            await finish(node.runs, run.id)
            await until(lambda: len(rx.requests) == 1, "the first attempt")
            await until(lambda: node.monitor.webhooks.deliveries("acct", "live", endpoint.id)[0].attempts,
                        "the first attempt recorded")
        finally:
            await node.stop()
        node = await Node(url, "runs", config()).start()
        try:
            await until(lambda: node.monitor.webhooks.deliveries("acct", "live", endpoint.id)[0].status == webhooks.DELIVERED,
                        "the retry after the restart")
            assert len(rx.requests) == 2
            assert webhooks.verify(secret, rx.requests[1][0][webhooks.TIMESTAMP_HEADER], rx.requests[1][1],
                            rx.requests[1][0][webhooks.SIGNATURE_HEADER], int(time.time()))
        finally:
            await node.stop()


async def test_private_receivers_are_refused_without_the_setting(tmp_path):
    node = await Node(f"sqlite:///{tmp_path}/", "runs", config(allow_private=False, scheduler=False)).start()
    try:
        with pytest.raises(Invalid) as err:
            await node.monitor.webhooks.create_webhook("acct", "live", "http://127.0.0.1:9/x", webhooks.EVENTS, "")
        assert err.value.errors[0].loc == ["url"]
        pid, tid = await project_and_test(node.runs)
        with pytest.raises(Invalid) as err:
            await node.monitor.probes.create_probe(probe_model.CreateProbe(new_id(), pid, "acct", "live", tid, "p", 60,
                                                          datetime.now(UTC), webhook_url="http://10.0.0.1/x"))
        assert err.value.errors[0].loc == ["webhook_url"]
        assert node.monitor.probes.list_probes("acct", "live", pid) == []  # nothing half-written
        assert node.monitor.webhooks.list_webhooks("acct", "live") == []
    finally:
        await node.stop()



async def test_test_mode_probe_changes_state_but_never_notifies(tmp_path):
    node = await Node(f"sqlite:///{tmp_path}/", "runs", config(scheduler=False)).start()
    try:
        with WebhookReceiver(fail=0) as rx:
            pid, tid = await project_and_test(node.runs, mode="test")
            t0 = datetime.now(UTC) - timedelta(hours=1)
            answer = await node.monitor.probes.create_probe(probe_model.CreateProbe(new_id(), pid, "acct", "test", tid, "p", 60, t0,
                                                                   webhook_url=rx.url))
            assert answer.webhook_secret and answer.probe.mode == "test"
            with pytest.raises(NotFound):
                await node.monitor.probes.get_probe("acct", "live", pid, answer.probe.id)  # invisible to live keys
            await node.monitor.probes.schedule_once(t0 + timedelta(minutes=1, seconds=30))
            run_id, _ = node.monitor.view.last_fired[answer.probe.id]
            assert (await node.runs.get_run("acct", "test", pid, run_id)).mode == "test"
            await finish(node.runs, run_id, calls_answered=0, asr=0.0)
            await until(lambda: node.monitor.view.probes[answer.probe.id].state == probe_model.UNHEALTHY, "UNHEALTHY")
            await node.monitor.view.wait_for(await node.store.last_position())
            await node.monitor.webhooks.dispatch_once(datetime.now(UTC) + timedelta(days=1))
            assert node.monitor.view.deliveries == {} and rx.requests == []
    finally:
        await node.stop()


async def test_changing_a_probes_webhook_url_replaces_its_endpoint_and_secret(tmp_path):
    node = await Node(f"sqlite:///{tmp_path}/", "runs", config(scheduler=False)).start()
    try:
        pid, tid = await project_and_test(node.runs)
        first = await node.monitor.probes.create_probe(probe_model.CreateProbe(new_id(), pid, "acct", "live", tid, "p", 60,
                                                              datetime.now(UTC), webhook_url="http://127.0.0.1:9/a"))
        old_ep = first.probe.webhook_endpoint_id
        same = await node.monitor.probes.update_probe(probe_model.UpdateProbe(first.probe.id, pid, "acct", "live", datetime.now(UTC),
                                                             name="renamed"))
        assert same.webhook_secret == "" and same.probe.webhook_endpoint_id == old_ep
        moved = await node.monitor.probes.update_probe(probe_model.UpdateProbe(first.probe.id, pid, "acct", "live",
                                                              datetime.now(UTC), webhook_url="http://127.0.0.1:9/b"))
        assert moved.webhook_secret not in ("", first.webhook_secret)
        assert moved.probe.webhook_endpoint_id != old_ep and node.monitor.view.endpoints[old_ep].deleted
        ep = node.monitor.view.endpoints[moved.probe.webhook_endpoint_id]
        assert (ep.url, ep.probe_id, ep.events) == ("http://127.0.0.1:9/b", first.probe.id, ("probe.state_changed",))
        gone = await node.monitor.probes.update_probe(probe_model.UpdateProbe(first.probe.id, pid, "acct", "live", datetime.now(UTC),
                                                             webhook_url=""))
        assert gone.probe.webhook_url == "" and gone.probe.webhook_endpoint_id == ""
        assert node.monitor.view.endpoints[moved.probe.webhook_endpoint_id].deleted
        await node.monitor.probes.delete_probe("acct", "live", pid, first.probe.id)
        assert node.monitor.probes.list_probes("acct", "live", pid) == []
    finally:
        await node.stop()
