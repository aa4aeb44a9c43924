"""The MonitorService gRPC servicer: probes (ProbeScheduler), webhooks (WebhookDispatcher) and run
comparison (handlers/compare.py). Errors are raised; the server's DomainErrorInterceptor
(callgauge_platform.errors) maps them."""

from __future__ import annotations

from datetime import UTC, datetime

from callgauge_platform.timestamps import timestamp_of
from callgauge_proto.callgauge.events.v1 import monitor_pb2 as ev_pb
from callgauge_proto.callgauge.runs.v1 import monitor_service_pb2 as pb
from callgauge_proto.callgauge.runs.v1 import monitor_service_pb2_grpc as pb_grpc

from callgauge_runs.domain import probe as probe_model
from callgauge_runs.domain import webhooks
from callgauge_runs.entrypoints.grpc_api import _page
from callgauge_runs.handlers.app import new_id
from callgauge_runs.handlers.compare import compare_runs
from callgauge_runs.handlers.monitor import MonitorApp
from callgauge_runs.handlers.probe_scheduler import ProbeAnswer


def _scope(s: pb.Scope) -> tuple[str, str]:
    return s.account_id, s.mode or "live"


def _uptime(p: probe_model.Probe, days: int = 30) -> list[pb.UptimeDay]:
    return [pb.UptimeDay(day=d.day, runs=d.runs, up_runs=d.up_runs, uptime_pct=d.uptime_pct)
            for d in probe_model.uptime_by_day(p.results)[-days:]]


def probe_pb(p: probe_model.Probe, secret: str = "") -> pb.Probe:
    return pb.Probe(
        id=p.id, project_id=p.project_id, test_id=p.test_id, name=p.name, interval_seconds=p.interval_seconds,
        thresholds=p.thresholds, webhook_url=p.webhook_url, enabled=p.enabled, state=p.state,
        state_reasons=list(p.state_reasons), state_since=timestamp_of(p.state_since), last_run_id=p.last_run_id,
        next_due_at=timestamp_of(p.next_due_at) if p.enabled else None, created_at=timestamp_of(p.created_at),
        webhook_endpoint_id=p.webhook_endpoint_id, webhook_secret=secret, slots_fired=p.last_slot,
        unacknowledged_changes=len(p.unacknowledged), uptime=_uptime(p), mode=p.mode)


def _change_pb(c: probe_model.StateChange, acked: int) -> pb.ProbeStateChange:
    return pb.ProbeStateChange(seq=c.seq, from_state=c.from_state, to_state=c.to_state, run_id=c.run_id,
                               reasons=list(c.reasons), changed_at=timestamp_of(c.changed_at), acknowledged=c.seq <= acked)


def webhook_pb(e: webhooks.Endpoint, secret: str = "") -> pb.Webhook:
    return pb.Webhook(id=e.id, url=e.url, events=list(e.events), probe_id=e.probe_id, description=e.description,
                      secret=secret, created_at=timestamp_of(e.created_at))


def delivery_pb(d: webhooks.Delivery) -> pb.WebhookDelivery:
    return pb.WebhookDelivery(
        id=d.id, event=d.event, status=d.status, created_at=timestamp_of(d.created_at),
        next_attempt_at=timestamp_of(d.next_attempt_at) if not d.finished else None, body=d.body,
        attempts=[pb.WebhookAttempt(attempt=a.attempt, status_code=a.status_code, error=a.error, outcome=a.outcome,
                                    attempted_at=timestamp_of(a.attempted_at), duration_ms=a.duration_ms)
                  for a in d.attempts])


def _thresholds(request) -> ev_pb.ProbeThresholds | None:
    return request.thresholds if request.has_thresholds else None


class MonitorServicer(pb_grpc.MonitorServiceServicer):
    def __init__(self, monitor: MonitorApp) -> None:
        self.probes = monitor.probes
        self.webhooks = monitor.webhooks
        self.runs = monitor.runs

    def _answer(self, a: ProbeAnswer) -> pb.Probe:
        return probe_pb(a.probe, a.webhook_secret)

    async def CreateProbe(self, request: pb.CreateProbeRequest, context) -> pb.Probe:
        account, mode = _scope(request.scope)
        return self._answer(await self.probes.create_probe(probe_model.CreateProbe(
            probe_id=new_id(), project_id=request.project_id, account_id=account, mode=mode,
            test_id=request.test_id, name=request.name, interval_seconds=request.interval_seconds,
            now=datetime.now(UTC), thresholds=_thresholds(request), webhook_url=request.webhook_url,
            enabled=request.enabled)))

    async def ListProbes(self, request: pb.ListProbesRequest, context) -> pb.ListProbesResponse:
        items = self.probes.list_probes(*_scope(request.scope), request.project_id)
        return pb.ListProbesResponse(probes=[probe_pb(p) for p in _page(items, request.page, request.per_page)],
                                     total=len(items))

    async def GetProbe(self, request: pb.GetProbeRequest, context) -> pb.Probe:
        return probe_pb(await self.probes.get_probe(*_scope(request.scope), request.project_id, request.probe_id))

    async def UpdateProbe(self, request: pb.UpdateProbeRequest, context) -> pb.Probe:
        account, mode = _scope(request.scope)
        opt = lambda name: getattr(request, name) if request.HasField(name) else None
        return self._answer(await self.probes.update_probe(probe_model.UpdateProbe(
            probe_id=request.probe_id, project_id=request.project_id, account_id=account, mode=mode,
            now=datetime.now(UTC), test_id=opt("test_id"), name=opt("name"),
            interval_seconds=opt("interval_seconds"), thresholds=_thresholds(request),
            webhook_url=opt("webhook_url"), enabled=opt("enabled"))))

    async def DeleteProbe(self, request: pb.GetProbeRequest, context) -> pb.DeleteProbeResponse:
        account, mode = _scope(request.scope)
        await self.probes.delete_probe(account, mode, request.project_id, request.probe_id)
        return pb.DeleteProbeResponse()

    async def GetProbeHistory(self, request: pb.GetProbeRequest, context) -> pb.ProbeHistory:
        p = await self.probes.get_probe(*_scope(request.scope), request.project_id, request.probe_id)
        return pb.ProbeHistory(changes=[_change_pb(c, p.acked_seq) for c in reversed(p.changes)],
                               uptime=_uptime(p, 90))

    async def GetProbeChanges(self, request: pb.GetProbeRequest, context) -> pb.ProbeChanges:
        p = await self.probes.get_probe(*_scope(request.scope), request.project_id, request.probe_id)
        return pb.ProbeChanges(changes=[_change_pb(c, p.acked_seq) for c in p.unacknowledged])

    async def AckProbeChanges(self, request: pb.AckProbeChangesRequest, context) -> pb.ProbeChanges:
        account, mode = _scope(request.scope)
        p = await self.probes.acknowledge(account, mode, request.project_id, request.probe_id, request.up_to_seq)
        return pb.ProbeChanges(changes=[_change_pb(c, p.acked_seq) for c in p.unacknowledged])

    async def CreateWebhook(self, request: pb.CreateWebhookRequest, context) -> pb.Webhook:
        account, mode = _scope(request.scope)
        ep, secret = await self.webhooks.create_webhook(account, mode, request.url,
                                                   tuple(request.events) or webhooks.EVENTS, request.description)
        return webhook_pb(ep, secret)

    async def ListWebhooks(self, request: pb.ListWebhooksRequest, context) -> pb.ListWebhooksResponse:
        return pb.ListWebhooksResponse(webhooks=[webhook_pb(e) for e in self.webhooks.list_webhooks(*_scope(request.scope))])

    async def DeleteWebhook(self, request: pb.WebhookRequest, context) -> pb.DeleteProbeResponse:
        await self.webhooks.catch_up_on(request.webhook_id)
        await self.webhooks.delete_webhook(*_scope(request.scope), request.webhook_id)
        return pb.DeleteProbeResponse()

    async def ListWebhookDeliveries(self, request: pb.WebhookRequest, context) -> pb.WebhookDeliveries:
        await self.webhooks.catch_up_on(request.webhook_id)
        items = self.webhooks.deliveries(*_scope(request.scope), request.webhook_id)
        return pb.WebhookDeliveries(deliveries=[delivery_pb(d) for d in items])

    async def CompareRuns(self, request: pb.CompareRunsRequest, context) -> pb.RunComparison:
        account, mode = _scope(request.scope)
        base, run, rows = await compare_runs(self.runs, account, mode, request.project_id, request.base_run_id,
                                             request.run_id, dict(request.tolerances))
        return pb.RunComparison(
            base_run_id=base.id, run_id=run.id, base_status=base.status, status=run.status,
            regression=any(r.regression for r in rows),
            metrics=[pb.MetricComparison(metric=r.metric, base=r.base, value=r.value, delta=r.delta,
                                         tolerance=r.tolerance, better=r.better, regression=r.regression)
                     for r in rows])
