"""Opus through the REST API of the whole stack (issue #16 item 3), real pjsua2 calls to the built-in
responder: a call action asking for opus negotiates opus and gets its MOS from the wideband E-model
(G.107.1, R above the narrowband ceiling of 100) with the estimate named in its detail; a load
action asking for opus does the same for each of its calls."""

from __future__ import annotations

import uuid

import pytest

from tests.e2e.test_runs_api import data, poll
from callgauge_platform.run_states import TERMINAL

pytestmark = pytest.mark.e2e


def _run(api, actions: list[dict]) -> tuple[dict, list[dict]]:
    project = data(api.post("/projects", json={"name": f"opus-{uuid.uuid4().hex[:6]}"}), 201)
    test = data(api.post(f"/projects/{project['id']}/tests", json={
        "name": f"t-{uuid.uuid4().hex[:8]}", "steps": [{"actions": actions}]}), 201)
    assert data(api.get(f"/projects/{project['id']}/tests/{test['id']}"))["steps"][0]["actions"][0]["codec"] == "opus"
    started = data(api.post(f"/projects/{project['id']}/tests/{test['id']}/run"), 201)
    url = f"/projects/{project['id']}/test-runs/{started['testRunId']}"
    run = poll(lambda: data(api.get(url)), lambda r: r["status"] in TERMINAL, "run to finish", 180)
    calls = data(api.get(f"{url}/calls", params={"perPage": 100}))
    return run, calls


def _is_scored_opus(call: dict) -> None:
    assert call["outcome"] == "SUCCESS", call
    assert call["codec"].lower() == "opus", call
    assert call["rxPackets"] > 0 and call["txPackets"] > 0, call
    assert call["mos"] is not None and 4.0 < call["mos"] <= 4.5, call
    assert call["rFactor"] is not None and call["rFactor"] > 100.0, call  # the wideband (G.107.1) scale
    assert "ESTIMATED" in call["detail"], call


def test_an_opus_call_ends_with_codec_opus_and_a_wideband_mos(api, stack) -> None:
    # Given the built-in responder, when a call action asks for opus,
    # then the run completes and its call negotiated opus and was scored on the wideband E-model.
    run, calls = _run(api, [{"type": "call", "dial_destination": stack.responder_uri(), "duration_ms": 3000,
                             "tone_hz": 1000, "codec": "opus", "audio_bandwidth": "wideband"}])
    assert run["status"] == "COMPLETED", (run["resultDescription"], calls)
    [call] = calls
    _is_scored_opus(call)
    # the bandwidth asked for is the one the stream's opus was opened at
    assert (call["audioBandwidth"], call["codecClockHz"]) == ("wideband", 16000), call


def test_an_audio_bandwidth_for_another_codec_is_a_422(api, stack) -> None:
    project = data(api.post("/projects", json={"name": f"opus-{uuid.uuid4().hex[:6]}"}), 201)
    for action, words in (({"codec": "PCMU", "audio_bandwidth": "wideband"}, "codec opus only"),
                          ({"codec": "opus", "audio_bandwidth": "hifi"}, "fullband")):
        r = api.post(f"/projects/{project['id']}/tests", json={"name": "bw", "steps": [{"actions": [
            {"type": "call", "dial_destination": stack.responder_uri(), **action}]}]})
        assert r.status_code == 422, r.text
        hits = [d for d in r.json()["error"]["details"] if d["loc"][-1] == "audio_bandwidth"]
        assert hits and words in hits[0]["msg"], r.text


def test_a_load_action_with_opus_gets_opus_on_every_call(api, stack) -> None:
    # Given the built-in responder, when a load action (pjsua driver) asks for opus,
    # then each of its calls negotiated opus and has a wideband MOS.
    run, calls = _run(api, [{"type": "load", "dial_destination": stack.responder_uri(), "cps": 2, "hold_s": 2,
                             "max_total_calls": 4, "duration_ms": 1500, "tone_hz": 440, "codec": "opus"}])
    assert run["status"] == "COMPLETED", (run["resultDescription"], calls)
    assert len(calls) == 4, calls
    for call in calls:
        _is_scored_opus(call)
        assert (call["audioBandwidth"], call["codecClockHz"]) == ("fullband", 48000), call  # pjsua2's default
