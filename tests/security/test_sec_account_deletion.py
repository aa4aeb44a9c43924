"""Finding 9: deleting an account ends everything of it. The accounts service publishes AccountDeleted
(topic callgauge.accounts.v1, the only event of its store that reaches Kafka); runs, monitoring and
billing react: its probe is disabled and starts no run any more, its kiosk link answers 404, its
runs in flight are stopped, its webhook receivers are deleted, and its wallets close (nothing charged
afterwards)."""

from __future__ import annotations

import asyncio
import time
import uuid

import httpx

from callgauge_eventstore.factory import open_event_store
from callgauge_proto.callgauge.events.v1 import billing_pb2, monitor_pb2, runs_pb2
from waiting import wait_for

PASSWORD = "correct horse battery staple"
PROBE_INTERVAL_S = 2  # the suite's stack accepts probes down to 1 s


def read_all(settings, namespace: str) -> list:
    async def go():
        store = open_event_store(settings.eventstore_url_for(), namespace)
        try:
            out, position = [], 0
            while batch := await store.read_all(position, 5000):
                out.extend(batch)
                position = batch[-1].position
            return out
        finally:
            await store.close()
    return asyncio.run(go())


def account_runs(settings, account_id: str) -> tuple[list[tuple[int, str]], int | None]:
    """(position, run id) of every run the account requested, and the position of its AccountClosed."""
    runs, closed = [], None
    for ev in read_all(settings, "runs"):
        if ev.type == "callgauge.events.v1.RunRequested":
            e = runs_pb2.RunRequested.FromString(ev.data)
            if e.account_id == account_id:
                runs.append((ev.position, e.run_id))
        elif ev.type == "callgauge.events.v1.AccountClosed":
            if runs_pb2.AccountClosed.FromString(ev.data).account_id == account_id:
                closed = ev.position
    return runs, closed


def test_a_deleted_account_stops_probing_its_kiosk_link_dies_and_nothing_is_charged(sec_stack, gateway):
    settings = sec_stack.settings
    with httpx.Client(base_url=f"{gateway}/api/v1", timeout=60) as anon:
        email = f"gone-{uuid.uuid4().hex[:10]}@example.com"
        r = anon.post("/auth/register", json={"email": email, "password": PASSWORD})
        assert r.status_code == 201, r.text
        account_id = r.json()["data"]["id"]
        r = anon.post("/auth/login", json={"email": email, "password": PASSWORD})
        assert r.status_code == 200, r.text
        jwt = {"Authorization": f"Bearer {r.json()['data']['accessToken']}"}
        r = anon.post("/api-keys", json={"name": "k", "mode": "live"}, headers=jwt)
        assert r.status_code == 201, r.text
        key = {"Authorization": f"Bearer {r.json()['data']['key']}"}

        r = anon.post("/projects", json={"name": "soon gone"}, headers=key)
        assert r.status_code == 201, r.text
        pid = r.json()["data"]["id"]
        r = anon.post(f"/projects/{pid}/tests", headers=key, json={"name": "probe call", "steps": [{"actions": [
            {"type": "call", "dial_destination": sec_stack.responder_uri(), "duration_ms": 500}]}]})
        assert r.status_code == 201, r.text
        tid = r.json()["data"]["id"]
        # a run with a public (kiosk) report link, and one held up long enough to be in flight at deletion
        r = anon.post(f"/projects/{pid}/tests/{tid}/run", json={"report.mode": "kiosk"}, headers=key)
        assert r.status_code == 201, r.text
        kiosk_url = r.json()["data"]["kiosk_url"]
        assert httpx.get(kiosk_url, timeout=30).status_code == 200
        r = anon.post(f"/projects/{pid}/tests/{tid}/run", headers=key,
                      json={"step.0.0.duration_ms": "600000"})  # a 10-minute call
        assert r.status_code == 201, r.text
        long_run = r.json()["data"]["testRunId"]
        r = anon.post(f"/projects/{pid}/probes", headers=key, json={
            "test_id": tid, "name": "every 2 s", "interval_seconds": PROBE_INTERVAL_S})
        assert r.status_code == 201, r.text
        probe_url = f"/projects/{pid}/probes/{r.json()['data']['id']}"
        # a webhook receiver (a global address, as the production default wants; it only hears probe
        # state changes, so nothing is sent to it here): deleting the account must delete it
        r = anon.post("/webhooks", headers=key, json={"url": "https://8.8.8.8/callgauge-hook",
                                                      "events": ["probe.state_changed"]})
        assert r.status_code == 201, r.text
        webhook_id = r.json()["data"]["id"]
        wait_for(lambda: anon.get(f"{probe_url}/history", headers=key).json()["data"]["uptime"], "a first probe run")
        wait_for(lambda: anon.get(f"/projects/{pid}/test-runs/{long_run}", headers=key).json()["data"]["status"] == "RUNNING",
                 "the long run in flight")

        r = anon.delete("/users/me", headers=jwt)
        assert r.status_code == 204, r.text
        assert anon.get("/projects", headers=key).status_code == 401  # its keys died with it (as before)
        assert anon.get("/projects", headers=jwt).status_code == 401  # and its login session

    # the kiosk link dies (before the fix it answered 200 for good)
    wait_for(lambda: httpx.get(kiosk_url, timeout=30).status_code == 404, "the kiosk link to answer 404")
    _, closed_at = wait_for(lambda: (got := account_runs(settings, account_id))[1] and got,
                            "AccountClosed in the runs store")

    # the probe is disabled, and no run of the account starts after the close (3 intervals watched)
    def probe_disabled():
        for ev in read_all(settings, "runs"):
            if ev.type == "callgauge.events.v1.ProbeUpdated" and ev.position > closed_at:
                if not monitor_pb2.ProbeUpdated.FromString(ev.data).enabled:
                    return True
        return False

    wait_for(probe_disabled, "the probe disabled")

    # its webhook receiver is deleted (WebhookEndpointDeleted after the close)
    def webhook_deleted():
        return any(ev.type == "callgauge.events.v1.WebhookEndpointDeleted" and ev.position > closed_at
                   and monitor_pb2.WebhookEndpointDeleted.FromString(ev.data).endpoint_id == webhook_id
                   for ev in read_all(settings, "runs"))

    wait_for(webhook_deleted, "the webhook receiver deleted")
    time.sleep(3 * PROBE_INTERVAL_S)  # a bounded look for a run that must not come
    runs, _ = account_runs(settings, account_id)
    started_after = [rid for pos, rid in runs if pos > closed_at]
    assert not started_after, f"runs started after the account was deleted: {started_after}"
    assert len(runs) >= 3  # the kiosk run, the long run, at least one probe run

    # every run of it ended: the one in flight was stopped
    def all_ended():
        ended = set()
        for ev in read_all(settings, "runs"):
            if ev.type.rsplit(".", 1)[-1] in ("RunCompleted", "RunFailed", "RunCancelled"):
                ended.add(runs_pb2.RunCancelled.FromString(ev.data).run_id)  # run_id is field 1 of all three
        return {rid for _, rid in runs} <= ended

    wait_for(all_ended, "every run of the deleted account to end", timeout=90)

    # billing: both wallets closed, and no charge after the close
    def wallets_closed():
        closed = {}
        for ev in read_all(settings, "billing"):
            if ev.type == "callgauge.events.v1.WalletClosed":
                e = billing_pb2.WalletClosed.FromString(ev.data)
                if e.account_id == account_id:
                    closed[e.mode] = ev.position
        return closed if set(closed) == {"live", "test"} else None

    closed = wait_for(wallets_closed, "the account's wallets closed")
    time.sleep(2)  # late media events of the stopped run (their charges must not come)
    late = []
    for ev in read_all(settings, "billing"):
        if ev.type == "callgauge.events.v1.UsageCharged":
            e = billing_pb2.UsageCharged.FromString(ev.data)
            if e.account_id == account_id and ev.position > closed[e.mode or "live"]:
                late.append((e.kind, e.run_id, e.amount_minor))
    assert not late, f"charged after the account was deleted: {late}"
