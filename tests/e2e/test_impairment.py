"""Impairment as a feature, through the REST API of the whole stack: a call action puts 5 % random
loss on its media path (the media worker's relay, between the engine and the built-in responder),
and the loss the engine measures from RTP matches the loss the relay injected; the action's seed
reaches the relay and the call's measurement; bad values (a seed that is not a uint32 included) are
a 422 naming the field."""

from __future__ import annotations

import math
import time
import uuid

import pytest

from tests.e2e.test_walking_skeleton import calls_of
from api_envelope import data
from callgauge_platform.run_states import TERMINAL

pytestmark = pytest.mark.e2e

TALK_MS = 30_000  # 1500 PCMU packets each way: enough for the injected loss to be near its mean


def _project(api) -> dict:
    return data(api.post("/projects", json={"name": f"impair-{uuid.uuid4().hex[:8]}"}), 201)


def test_bad_impairment_values_are_refused_with_the_field_named(api, stack) -> None:
    p = _project(api)
    dest = f"sip:echo@{stack.settings.responder_host}:{stack.settings.responder_port}"
    for imp, field, words in (
        ({"loss_pct": 70}, "loss_pct", "less than or equal to 50"),
        ({"loss_pct": 5, "burst_packets": 0.5}, "burst_packets", "Gilbert-Elliott"),
        ({"loss_pct": 5, "direction": "up"}, "direction", "receive"),
        ({"jitter_ms": -1}, "jitter_ms", "greater than or equal to 0"),
        ({"loss_pct": 5, "seed": -1}, "seed", "greater than or equal to 0"),
        ({"loss_pct": 5, "seed": 2**32}, "seed", "less than or equal to 4294967295"),
        ({"loss_pct": 5, "seed": "7"}, "seed", "valid integer"),
        ({"loss_pct": 5, "seed": 1.5}, "seed", "valid integer"),
        ({"loss_pct": 5, "seed": True}, "seed", "valid integer"),
    ):
        r = api.post(f"/projects/{p['id']}/tests", json={"name": "bad", "steps": [{"actions": [
            {"type": "call", "dial_destination": dest, "impairment": imp}]}]})
        assert r.status_code == 422, r.text
        body = r.json()["error"]
        assert body["code"] == "VALIDATION_ERROR", body
        hits = [d for d in body["details"] if d["loc"][-1] == field and "impairment" in d["loc"]]
        assert hits, body
        assert words in hits[0]["msg"], hits
    r = api.post(f"/projects/{p['id']}/tests", json={"name": "bad", "steps": [{"actions": [
        {"type": "load", "dial_destination": dest, "cps": 1, "hold_s": 1, "driver": "sipp",
         "impairment": {"loss_pct": 1}}]}]})
    assert r.status_code == 422, r.text
    assert "pjsua driver" in r.text


def test_a_seed_is_kept_with_the_test_and_absent_means_none(api, stack) -> None:
    p = _project(api)
    dest = f"sip:echo@{stack.settings.responder_host}:{stack.settings.responder_port}"
    actions = [{"type": "call", "dial_destination": dest, "impairment": imp}
               for imp in ({"loss_pct": 5, "seed": 0},
                           {"loss_pct": 5, "burst_packets": 4, "seed": 4294967295},
                           {"loss_pct": 5})]
    t = data(api.post(f"/projects/{p['id']}/tests",
                      json={"name": "seeded", "steps": [{"actions": actions}]}), 201)
    got = data(api.get(f"/projects/{p['id']}/tests/{t['id']}"))["steps"][0]["actions"]
    assert [a["impairment"]["seed"] for a in got] == [0, 4294967295, None]


def test_a_call_through_5_percent_loss_measures_what_was_injected(api, stack) -> None:
    p = _project(api)
    dest = f"sip:echo@{stack.settings.responder_host}:{stack.settings.responder_port}"
    t = data(api.post(f"/projects/{p['id']}/tests", json={"name": "lossy", "steps": [{"actions": [
        {"type": "call", "dial_destination": dest, "duration_ms": TALK_MS, "tone_hz": 440, "codec": "PCMU",
         "impairment": {"loss_pct": 5, "seed": 17}}]}]}), 201)
    assert data(api.get(f"/projects/{p['id']}/tests/{t['id']}"))["steps"][0]["actions"][0]["impairment"] == {
        "loss_pct": 5.0, "burst_packets": 0.0, "jitter_ms": 0.0, "delay_ms": 0.0, "direction": "receive",
        "seed": 17}
    started = data(api.post(f"/projects/{p['id']}/tests/{t['id']}/run"), 201)
    deadline = time.monotonic() + TALK_MS / 1000 + 60  # bounds the poll loop, not a timing assertion
    while True:
        run = data(api.get(f"/projects/{p['id']}/test-runs/{started['testRunId']}"))
        if run["status"] in TERMINAL or time.monotonic() > deadline:
            break
        time.sleep(0.5)
    [call] = calls_of(api, p["id"], run["id"])
    assert run["status"] == "COMPLETED", (run["resultDescription"], call)
    imp = call["impairment"]
    assert imp["asked"] == {"lossPct": 5.0, "burstPackets": 0.0, "jitterMs": 0.0, "delayMs": 0.0,
                            "direction": "receive", "seed": 17}
    assert imp["seed"] == 17  # the seed the relay drew with: the action's
    # every packet of the far end came through the relay, which dropped about 5 % of them
    assert imp["rxBypassed"] == 0, call["detail"]
    assert imp["rxPackets"] >= 0.9 * TALK_MS / 20, imp
    n = imp["rxPackets"]
    assert abs(imp["rxLossPct"] - 5.0) <= 4 * 100 * math.sqrt(0.05 * 0.95 / n), imp  # binomial, 4 sigma
    # the engine's own measurement (RTP sequence gaps) sees the loss that was injected
    assert abs(call["lossPct"] - imp["rxLossPct"]) <= 0.3, (call["lossPct"], imp)
    assert call["rxLostPackets"] > 0
    assert imp["txPackets"] > 0 and imp["txDropped"] == 0  # receive direction only
    assert call["mos"] is not None and call["mos"] < 4.2  # 4.37 on a clean loopback call
