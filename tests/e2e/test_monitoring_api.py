"""Monitoring through the REST API on the whole stack: a probe calling the built-in responder
through the UDP impairment relay goes HEALTHY -> DEGRADED -> UNHEALTHY as the relay's SIP delay is
raised and back to HEALTHY when it is removed (setup-time thresholds), its changes are listed and
acknowledged, and its webhook receiver (a real HTTP server on 127.0.0.1) gets signed
probe.state_changed notifications, retried after a 500; account webhooks get run.finished; two
runs are compared."""

from __future__ import annotations

import asyncio
import json
import threading

from callgauge_media.adapters.impair.relay import UdpImpairmentRelay
from callgauge_media.domain.impairment import ImpairmentConfig
from waiting import wait_for
from webhook_receiver import WebhookReceiver


class RelayThread:
    """The impairment relay on its own event loop in a thread, between the engine and the responder."""

    def __init__(self, target: tuple[str, int]) -> None:
        self.loop = asyncio.new_event_loop()
        self.relay = UdpImpairmentRelay(listen=("127.0.0.1", 0), target=target, seed=7)
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()
        self.address = asyncio.run_coroutine_threadsafe(self.relay.start(), self.loop).result(10)

    def delay(self, ms: float) -> None:
        def apply():
            self.relay.upstream = ImpairmentConfig(delay_ms=ms)
            self.relay.downstream = ImpairmentConfig(delay_ms=ms)
        self.loop.call_soon_threadsafe(apply)

    def close(self) -> None:
        asyncio.run_coroutine_threadsafe(self.relay.stop(), self.loop).result(10)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(5)


def _project_and_test(api, destination: str, name: str) -> tuple[str, str]:
    r = api.post("/projects", json={"name": name})
    assert r.status_code == 201, r.text
    pid = r.json()["data"]["id"]
    r = api.post(f"/projects/{pid}/tests", json={"name": "probe call", "steps": [{"actions": [
        {"type": "call", "dial_destination": destination, "duration_ms": 1000, "tone_hz": 440}]}]})
    assert r.status_code == 201, r.text
    return pid, r.json()["data"]["id"]


def test_probe_follows_an_impairment_and_notifies_signed_webhooks(stack, api):
    relay = RelayThread((stack.settings.responder_host, stack.settings.responder_port))
    rx = WebhookReceiver(fail=1, status=200).start()
    probe_url = None
    try:
        host, port = relay.address
        pid, tid = _project_and_test(api, f"sip:echo@{host}:{port}", "probe through relay")
        r = api.post(f"/projects/{pid}/probes", json={
            "test_id": tid, "name": "echo setup time", "interval_seconds": 3, "webhook_url": rx.url,
            "thresholds": {"setup_ms": {"warning": 250, "critical": 900}}})
        assert r.status_code == 201, r.text
        probe = r.json()["data"]
        secret = probe["webhookSecret"]
        assert secret.startswith("whsec_") and probe["state"] == "UNKNOWN"
        probe_url = f"/projects/{pid}/probes/{probe['id']}"
        assert "webhookSecret" not in api.get(probe_url).json()["data"]  # shown once

        def state_is(want):
            return lambda: (d := api.get(probe_url).json()["data"])["state"] == want and d

        wait_for(state_is("HEALTHY"), "HEALTHY without impairment")
        relay.delay(200)  # ~400 ms more setup: above the 250 ms warning
        degraded = wait_for(state_is("DEGRADED"), "DEGRADED with 200 ms each way")
        assert degraded["stateReasons"][0].startswith("setup_ms")
        relay.delay(600)  # ~1.2 s more setup: above the 900 ms critical level
        wait_for(state_is("UNHEALTHY"), "UNHEALTHY with 600 ms each way")
        relay.delay(0)
        healthy = wait_for(state_is("HEALTHY"), "HEALTHY again without impairment")
        assert healthy["uptime"] and healthy["uptime"][-1]["runs"] >= 4
        usage = api.get("/billing/usage", params={"groupBy": "test"}).json()["data"]
        [group] = [g for g in usage["groups"] if g["key"] == tid]
        assert group["probeRuns"] >= 4, group  # billing charges the per-probe-run price from RunRequested
        api.patch(probe_url, json={"enabled": False}).raise_for_status()

        changes = api.get(f"{probe_url}/changes").json()["data"]
        to_states = [c["toState"] for c in changes]
        it = iter(to_states)
        assert all(s in it for s in ("HEALTHY", "DEGRADED", "UNHEALTHY", "HEALTHY")), to_states
        r = api.post(f"{probe_url}/changes/ack", json={})
        assert r.status_code == 200 and r.json()["data"] == []
        assert api.get(f"{probe_url}/changes").json()["data"] == []
        history = api.get(f"{probe_url}/history").json()["data"]
        assert len(history["changes"]) == len(changes) and all(c["acknowledged"] for c in history["changes"])

        # One signed notification per state change; the first was answered 500 and retried.
        sent = wait_for(lambda: len(rx.requests) >= len(changes) + 1 and rx.verified(secret),
                        "a notification per state change", timeout=60)
        assert {n["type"] for n in sent} == {"probe.state_changed"}
        seqs = [n["data"]["seq"] for n in sent]
        assert seqs[0] == 1 and seqs.count(1) == 2 and sorted(set(seqs)) == [c["seq"] for c in changes]
        deliveries = api.get(f"/webhooks/{probe['webhookEndpointId']}/deliveries").json()["data"]
        first = next(d for d in deliveries if json.loads(d["body"])["data"]["seq"] == 1)
        assert [(a["statusCode"], a["outcome"]) for a in first["attempts"]] == [(500, "RETRYING"), (200, "DELIVERED")]
    finally:
        if probe_url:
            api.delete(probe_url)
        rx.close()
        relay.close()


def test_account_webhook_gets_run_finished_and_two_runs_compare(stack, api):
    rx = WebhookReceiver(status=200).start()
    try:
        r = api.post("/webhooks", json={"url": rx.url, "events": ["run.finished"], "description": "ci"})
        assert r.status_code == 201, r.text
        hook = r.json()["data"]
        assert hook["secret"].startswith("whsec_")
        assert all("secret" not in h for h in api.get("/webhooks").json()["data"])
        pid, tid = _project_and_test(api, stack.responder_uri(), "compare")
        run_ids = []
        for _ in range(2):
            r = api.post(f"/projects/{pid}/tests/{tid}/run")
            assert r.status_code == 201, r.text
            run_ids.append(r.json()["data"]["testRunId"])
        for rid in run_ids:
            wait_for(lambda rid=rid: api.get(f"/projects/{pid}/test-runs/{rid}").json()["data"]["status"]
                     in ("COMPLETED", "FAILED"), f"run {rid} to finish")
        sent = wait_for(lambda: len(rx.requests) >= 2 and rx.verified(hook["secret"]), "two run.finished",
                        timeout=60)
        assert {n["data"]["testRunId"] for n in sent} >= set(run_ids)
        assert all(n["type"] == "run.finished" and n["data"]["status"] == "COMPLETED" for n in sent)
        log = api.get(f"/webhooks/{hook['id']}/deliveries").json()["data"]
        assert all(d["status"] == "DELIVERED" for d in log) and len(log) >= 2

        r = api.post(f"/projects/{pid}/test-runs/compare", json={"baseRunId": run_ids[0], "runId": run_ids[1],
                                                                 "tolerances": {"mos_mean": 0.5}})
        assert r.status_code == 200, r.text
        cmp = r.json()["data"]
        rows = {m["metric"]: m for m in cmp["metrics"]}
        assert rows["mos_mean"]["tolerance"] == 0.5 and rows["asr"]["base"] == rows["asr"]["value"] == 1.0
        assert cmp["regression"] is False, cmp
        assert api.post(f"/projects/{pid}/test-runs/compare",
                        json={"baseRunId": "nope", "runId": run_ids[1]}).status_code == 404
        r = api.post(f"/projects/{pid}/test-runs/compare", json={"baseRunId": run_ids[0], "runId": run_ids[1],
                                                                 "tolerances": {"nope": 1}})
        assert r.status_code == 422 and r.json()["error"]["details"][0]["loc"][-1] == "nope"
        assert api.delete(f"/webhooks/{hook['id']}").status_code == 204
        assert api.get(f"/webhooks/{hook['id']}/deliveries").status_code == 404
    finally:
        rx.close()


def test_probe_input_errors_are_422_and_other_ids_404(api):
    pid = api.post("/projects", json={"name": "probe errors"}).json()["data"]["id"]
    r = api.post(f"/projects/{pid}/probes", json={"test_id": "nope", "name": "x", "interval_seconds": 0,
                                                  "thresholds": {"mos": {"warning": 3, "critical": 4}}})
    assert r.status_code == 422
    r = api.post(f"/projects/{pid}/probes", json={"test_id": "nope", "name": "x", "interval_seconds": 5,
                                                  "thresholds": {"mos": {"warning": 3, "critical": 4}}})
    assert r.status_code == 422, r.text
    locs = [e["loc"] for e in r.json()["error"]["details"]]
    assert ["test_id"] in locs and ["thresholds", "mos", "critical"] in locs
    assert api.get(f"/projects/{pid}/probes/nope").status_code == 404
    assert api.post(f"/projects/{pid}/probes/nope/changes/ack").status_code == 404
    assert api.post("/webhooks", json={"url": "ftp://x"}).status_code == 422
    assert api.get(f"/projects/{pid}/probes").json()["meta"]["pagination"]["total"] == 0


def test_project_counts_its_probes(api):
    pid = api.post("/projects", json={"name": "probe count"}).json()["data"]["id"]
    tid = api.post(f"/projects/{pid}/tests", json={"name": "t", "steps": [{"actions": [
        {"type": "call", "dial_destination": "sip:echo@127.0.0.1:9"}]}]}).json()["data"]["id"]
    r = api.post(f"/projects/{pid}/probes", json={"testId": tid, "name": "off", "intervalSeconds": 60,
                                                  "enabled": False})
    assert r.status_code == 201, r.text
    assert api.get(f"/projects/{pid}").json()["data"]["probeCount"] == 1
    assert api.delete(f"/projects/{pid}/probes/{r.json()['data']['id']}").status_code == 204
    assert api.get(f"/projects/{pid}").json()["data"]["probeCount"] == 0
