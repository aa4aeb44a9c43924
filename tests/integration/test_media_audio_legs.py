"""The callee's leg of a call (#17), engine level with real SIP through Kamailio: a caller plays a
prompt to our own wait_for_calls user, which records what it receives; the recording is kept as the
call's ``callee`` leg and scored against what the caller played, and the callee's ``expect_audio``
fails the call that brought another prompt (while the E-model MOS stays high); the callee's
``play_file: silence`` sends silence, which the caller's own recording shows."""
from __future__ import annotations

import asyncio

import pytest

from callgauge_platform import recordings
from callgauge_proto.callgauge.media.v1 import measurements_pb2 as m_pb2

from callgauge_media.adapters.pool import WorkerPool

pytest.importorskip("pjsua2", reason="pjsua2-python (extra 'media') is not installed")
pytestmark = pytest.mark.kamailio

from test_media_sip import BOUND_S, HOST, USERS, _explain, kamailio  # noqa: E402,F401 - shared fixtures


@pytest.fixture
async def pool(start_pool) -> WorkerPool:
    return await start_pool(rtp_port_base=46200)


@pytest.fixture
def audio_dir(tmp_path, monkeypatch):
    """The engine's audio service on this test's data dir."""
    from callgauge_media.adapters.audio.service import default_service

    monkeypatch.setenv("CALLGAUGE_DATA_DIR", str(tmp_path / "data"))
    default_service.cache_clear()
    yield tmp_path / "data" / "audio"
    default_service().close()
    default_service.cache_clear()


async def test_the_callee_leg_is_recorded_scored_and_checked_against_expect_audio(pool, kamailio, audio_dir) -> None:
    from callgauge_proto.callgauge.common.v1 import test_spec_pb2 as spec
    from callgauge_proto.callgauge.events.v1 import media_pb2, runs_pb2

    from callgauge_media.handlers.runner import execute_run
    from callgauge_media.handlers.sip_run import StaticCredentials

    s = spec.TestSpec()
    s.steps.add().actions.add().wait_for_calls.CopyFrom(spec.WaitForCallsAction(
        target_pool="reg", credential_pool="callees", record=True, expect_audio="prompt:greeting",
        play_file="silence"))
    calls = s.steps.add()
    for prompt in ("prompt:greeting", "prompt:goodbye"):  # the expected prompt, and another one
        calls.actions.add().call.CopyFrom(spec.CallAction(
            dial_destination="bob", duration_ms=8000, codec="PCMU", target_pool="reg", credential_pool="callers",
            play_file=prompt, play_once=True, record=prompt == "prompt:greeting"))
    req = runs_pb2.RunRequested(
        run_id="run-legs", spec=s,
        targets=[spec.ResolvedTarget(id="reg", host=kamailio.host, port=kamailio.port, transport="udp",
                                     domain=kamailio.domain)],
        pools=[spec.ResolvedPool(id="callers", credentials=[spec.ResolvedCredential(username="alice")]),
               spec.ResolvedPool(id="callees", credentials=[spec.ResolvedCredential(username="bob")])])
    events = []

    async def emit(msg) -> None:
        events.append(msg)

    creds = StaticCredentials({"callers/alice": USERS["alice"], "callees/bob": USERS["bob"]})
    summary = await asyncio.wait_for(execute_run(req, pool, emit, "engine-test", creds), 4 * BOUND_S)
    measured = {e.call.action: e.call for e in events if isinstance(e, media_pb2.CallMeasured)}
    assert sorted(measured) == [0, 1], [_explain(m) for m in measured.values()]
    good, wrong = measured[0], measured[1]
    # what the callee received is kept as the call's callee leg and scored against what the caller played
    assert good.outcome == m_pb2.SUCCESS, _explain(good)
    assert good.recorded_legs == "caller,callee" and good.HasField("callee_mos_lqo"), _explain(good)
    assert good.callee_mos_lqo >= 3.0 and good.callee_audio_match >= 0.6 and not good.callee_audio_silent
    # the callee sent silence (play_file: silence), not an echo: the caller's leg says so
    assert good.audio_silent and good.audio_one_way and good.mos_lqo == 1.0, _explain(good)
    path = recordings.recording_path(audio_dir / "recordings", "run-legs", good.call_id, "callee")
    assert path.is_file() and path.stat().st_size > 5 * 16_000, path
    assert recordings.find_recording(audio_dir.parent, "run-legs", good.call_id, "callee") == path
    # the other prompt: the callee's expect_audio fails the call, with the reason; the packets were fine
    assert wrong.outcome == m_pb2.CALL_FAILED and wrong.sip_code == 200, _explain(wrong)
    assert "callee expect_audio prompt:greeting: the received audio does not match" in wrong.detail, wrong.detail
    assert wrong.HasField("mos") and wrong.mos >= 4.0
    assert wrong.callee_audio_match < 0.6 and wrong.recorded_legs == "callee"
    assert summary.calls_audio_recorded == 2
    # no callee recording is left under its own name (each was kept as its call's leg)
    left = sorted(p.name for p in (audio_dir / "recordings" / "run-legs").iterdir())
    assert left == sorted([f"{recordings.safe_name(m.call_id)}.callee.wav" for m in (good, wrong)]
                          + [f"{recordings.safe_name(good.call_id)}.caller.wav"]), left
