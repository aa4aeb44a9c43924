"""Probes (CallMeter's probes, Meter's schedules), webhooks (CallCov's, HMAC-SHA256 signed) and run
comparison (Meter's jobs compare). Field names are accepted in snake_case (the seeds') or camelCase;
answers are camelCase like the rest of the API."""

from __future__ import annotations

from typing import Annotated, Literal

from callgauge_proto.callgauge.events.v1 import monitor_pb2 as ev_pb
from callgauge_proto.callgauge.runs.v1 import monitor_service_pb2 as pb
from fastapi import APIRouter, Body, Response
from pydantic import BaseModel, ConfigDict, Field
from pydantic.alias_generators import to_camel

from callgauge_gateway.domain.proto_json import to_json
from callgauge_gateway.entrypoints.envelope import ok, page
from callgauge_gateway.entrypoints.deps import Monitor
from callgauge_gateway.entrypoints.routes._common import Auth, BodyLocRoute, Page

router = APIRouter(prefix="/api/v1", tags=["monitoring"], route_class=BodyLocRoute)

METRICS = ("mos", "jitter_ms", "loss_pct", "setup_ms", "asr")
Event = Literal["run.finished", "probe.state_changed"]


class _In(BaseModel):
    model_config = ConfigDict(extra="forbid", alias_generator=to_camel, populate_by_name=True)


class LevelsIn(_In):
    warning: float = Field(ge=0, le=300_000)
    critical: float = Field(ge=0, le=300_000)


class ThresholdsIn(_In):
    """The whole set: a metric left out is not judged. mos and asr (0..1) get worse as they fall,
    jitter_ms, loss_pct and setup_ms as they rise."""
    mos: LevelsIn | None = Field(None, examples=[{"warning": 4.0, "critical": 3.0}])
    jitter_ms: LevelsIn | None = Field(None, examples=[{"warning": 30, "critical": 80}])
    loss_pct: LevelsIn | None = None
    setup_ms: LevelsIn | None = None
    asr: LevelsIn | None = None

    def proto(self) -> ev_pb.ProbeThresholds:
        out = ev_pb.ProbeThresholds()
        for name in METRICS:
            levels = getattr(self, name)
            if levels is not None:
                getattr(out, name).CopyFrom(ev_pb.MetricThreshold(warning=levels.warning, critical=levels.critical))
        return out


class ProbeIn(_In):
    test_id: str = Field(min_length=1, max_length=100, description="the test each slot runs")
    name: str = Field(min_length=1, max_length=200, examples=["PBX echo every minute"])
    interval_seconds: int = Field(ge=1, le=7 * 24 * 3600, examples=[60],
                                  description="seconds between runs (at least CALLGAUGE_PROBE_MIN_INTERVAL_SECONDS)")
    thresholds: ThresholdsIn | None = Field(None, description="omitted: the defaults (MOS 4.0/3.0, jitter 30/80 ms, "
                                            "loss 1/5 %, setup 2000/5000 ms, ASR 0.95/0.5)")
    webhook_url: str | None = Field(None, max_length=2000, description="receives probe.state_changed, signed; "
                                    "the signing secret is in the answer, once")
    enabled: bool = True


class ProbePatch(_In):
    test_id: str | None = Field(None, min_length=1, max_length=100)
    name: str | None = Field(None, min_length=1, max_length=200)
    interval_seconds: int | None = Field(None, ge=1, le=7 * 24 * 3600)
    thresholds: ThresholdsIn | None = None
    webhook_url: str | None = Field(None, max_length=2000, description="\"\" removes it")
    enabled: bool | None = None


class AckIn(_In):
    up_to_seq: int = Field(0, ge=0, description="acknowledge changes up to this seq; 0: all")


class WebhookIn(_In):
    url: str = Field(min_length=1, max_length=2000, examples=["https://example.com/hooks/callgauge"])
    events: list[Event] = Field(default_factory=lambda: ["run.finished", "probe.state_changed"], min_length=1,
                                max_length=2)
    description: str = Field("", max_length=500)


class CompareIn(_In):
    base_run_id: str = Field(min_length=1, max_length=100)
    run_id: str = Field(min_length=1, max_length=100)
    tolerances: dict[str, float] = Field(default_factory=dict, description="metric -> allowed worsening, in the "
                                         "metric's unit; e.g. {\"mos_mean\": 0.2, \"setup_p95_ms\": 50}")



def _scope(who) -> pb.Scope:
    return pb.Scope(account_id=who.account_id, mode=who.mode)


def _thresholds_json(t: ev_pb.ProbeThresholds) -> dict:
    return {name: ({"warning": round(getattr(t, name).warning, 4), "critical": round(getattr(t, name).critical, 4)}
                   if t.HasField(name) else None) for name in METRICS}


def probe_json(p: pb.Probe) -> dict:
    d = to_json(p)
    d["thresholds"] = _thresholds_json(p.thresholds)
    if not p.webhook_secret:
        d.pop("webhookSecret")
    return d


def _changes_json(changes) -> list[dict]:
    return [to_json(c) for c in changes]


@router.post("/projects/{project_id}/probes", status_code=201, summary="Create a probe (a test on a schedule)")
async def create_probe(project_id: str, body: ProbeIn, who: Auth, monitor: Monitor):
    req = pb.CreateProbeRequest(scope=_scope(who), project_id=project_id, test_id=body.test_id, name=body.name,
                                interval_seconds=body.interval_seconds, webhook_url=body.webhook_url or "",
                                enabled=body.enabled, has_thresholds=body.thresholds is not None)
    if body.thresholds is not None:
        req.thresholds.CopyFrom(body.thresholds.proto())
    p = await monitor.CreateProbe(req)
    return ok(probe_json(p), 201, secret=bool(p.webhook_secret))


@router.get("/projects/{project_id}/probes", summary="List a project's probes with their health state")
async def list_probes(project_id: str, who: Auth, monitor: Monitor, paging: Page):
    resp = await monitor.ListProbes(pb.ListProbesRequest(
        scope=_scope(who), project_id=project_id, page=paging.page, per_page=paging.per_page))
    return page([probe_json(p) for p in resp.probes], paging.page, paging.per_page, resp.total)


@router.get("/projects/{project_id}/probes/{probe_id}", summary="A probe: health state, uptime per day")
async def get_probe(project_id: str, probe_id: str, who: Auth, monitor: Monitor):
    return ok(probe_json(await monitor.GetProbe(pb.GetProbeRequest(
        scope=_scope(who), project_id=project_id, probe_id=probe_id))))


@router.patch("/projects/{project_id}/probes/{probe_id}", summary="Change a probe")
async def update_probe(project_id: str, probe_id: str, body: ProbePatch, who: Auth, monitor: Monitor):
    req = pb.UpdateProbeRequest(scope=_scope(who), project_id=project_id, probe_id=probe_id,
                                has_thresholds=body.thresholds is not None)
    for name in ("test_id", "name", "interval_seconds", "webhook_url", "enabled"):
        value = getattr(body, name)
        if value is not None:
            setattr(req, name, value)
    if body.thresholds is not None:
        req.thresholds.CopyFrom(body.thresholds.proto())
    p = await monitor.UpdateProbe(req)
    return ok(probe_json(p), secret=bool(p.webhook_secret))


@router.delete("/projects/{project_id}/probes/{probe_id}", status_code=204, summary="Delete a probe")
async def delete_probe(project_id: str, probe_id: str, who: Auth, monitor: Monitor):
    await monitor.DeleteProbe(pb.GetProbeRequest(scope=_scope(who), project_id=project_id,
                                                           probe_id=probe_id))
    return Response(status_code=204)


@router.get("/projects/{project_id}/probes/{probe_id}/history",
            summary="State changes, newest first, and uptime per day (90 days)")
async def probe_history(project_id: str, probe_id: str, who: Auth, monitor: Monitor):
    h = await monitor.GetProbeHistory(pb.GetProbeRequest(scope=_scope(who), project_id=project_id,
                                                                   probe_id=probe_id))
    return ok({"changes": _changes_json(h.changes), "uptime": [to_json(u) for u in h.uptime]})


@router.get("/projects/{project_id}/probes/{probe_id}/changes", summary="State changes not yet acknowledged")
async def probe_changes(project_id: str, probe_id: str, who: Auth, monitor: Monitor):
    c = await monitor.GetProbeChanges(pb.GetProbeRequest(scope=_scope(who), project_id=project_id,
                                                                   probe_id=probe_id))
    return ok(_changes_json(c.changes))


@router.post("/projects/{project_id}/probes/{probe_id}/changes/ack",
             summary="Acknowledge state changes (all, or up to upToSeq); answers those still unacknowledged")
async def ack_changes(project_id: str, probe_id: str, who: Auth, monitor: Monitor,
                      body: Annotated[AckIn | None, Body()] = None):
    c = await monitor.AckProbeChanges(pb.AckProbeChangesRequest(
        scope=_scope(who), project_id=project_id, probe_id=probe_id, up_to_seq=(body or AckIn()).up_to_seq))
    return ok(_changes_json(c.changes))


@router.post("/webhooks", status_code=201, summary="Register a webhook receiver; its signing secret is shown once")
async def create_webhook(body: WebhookIn, who: Auth, monitor: Monitor):
    w = await monitor.CreateWebhook(pb.CreateWebhookRequest(
        scope=_scope(who), url=body.url, events=list(body.events), description=body.description))
    return ok(to_json(w), 201, secret=True)


@router.get("/webhooks", summary="List webhook receivers (secrets are never shown again)")
async def list_webhooks(who: Auth, monitor: Monitor):
    resp = await monitor.ListWebhooks(pb.ListWebhooksRequest(scope=_scope(who)))
    items = [{k: v for k, v in to_json(w).items() if k != "secret"} for w in resp.webhooks]
    return page(items, 1, max(len(items), 1), len(items))


@router.delete("/webhooks/{webhook_id}", status_code=204, summary="Delete a webhook receiver")
async def delete_webhook(webhook_id: str, who: Auth, monitor: Monitor):
    await monitor.DeleteWebhook(pb.WebhookRequest(scope=_scope(who), webhook_id=webhook_id))
    return Response(status_code=204)


@router.get("/webhooks/{webhook_id}/deliveries", summary="The delivery log: each notification and its attempts")
async def webhook_deliveries(webhook_id: str, who: Auth, monitor: Monitor):
    resp = await monitor.ListWebhookDeliveries(pb.WebhookRequest(scope=_scope(who), webhook_id=webhook_id))
    return ok([to_json(d) for d in resp.deliveries])


@router.post("/projects/{project_id}/test-runs/compare",
             summary="Compare two finished runs: per metric both values, the delta and a regression flag")
async def compare_runs(project_id: str, body: CompareIn, who: Auth, monitor: Monitor):
    c = await monitor.CompareRuns(pb.CompareRunsRequest(
        scope=_scope(who), project_id=project_id, base_run_id=body.base_run_id, run_id=body.run_id,
        tolerances=body.tolerances))
    return ok(to_json(c))
