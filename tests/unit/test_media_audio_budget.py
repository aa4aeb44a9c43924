"""Bounds of call audio: alignment finds a known offset within 1 ms; a load's sampled share is what
it asks for and the same calls each time; a run's recordings stop at its count and disk caps (and an
action's record_max); retention deletes old runs' recordings, then the oldest beyond the disk cap."""
from __future__ import annotations

import os
import time

import numpy as np
import pytest

from callgauge_proto.callgauge.common.v1 import test_spec_pb2 as spec_pb2

from callgauge_media.adapters.audio import analysis, budget, wavfile
from callgauge_media.adapters.audio.service import AudioService
from callgauge_media.domain.jobs import CallJob
from callgauge_media.handlers.runner import functional_media, load_call_action

RATE = 16000


def _speechlike(seconds: float, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    n = int(seconds * RATE)
    x = np.convolve(rng.standard_normal(n), np.ones(6) / 6, mode="same")
    return 0.3 * x * (np.sin(np.arange(n) / RATE * 2 * np.pi * 1.5) > -0.2)


@pytest.mark.parametrize("offset_ms", [0.0, 37.5, 120.0, 433.25, 1999.9375])
def test_alignment_finds_a_known_offset_within_1_ms(offset_ms: float) -> None:
    ref = _speechlike(2.0, 3)
    lead = int(round(offset_ms / 1000 * RATE))
    rng = np.random.default_rng(9)
    rec = np.concatenate([np.zeros(lead), ref, np.zeros(RATE // 2)]) + 0.003 * rng.standard_normal(lead + ref.size + RATE // 2)
    al = analysis.align(analysis.telephone_band(ref), analysis.telephone_band(rec), RATE, max_lag_s=5.0)
    assert abs(al.offset_s * 1000 - lead / RATE * 1000) <= 1.0, (al, offset_ms)
    assert abs(al.offset_s * 1000 - offset_ms) <= 1.0
    assert al.correlation > 0.9


def test_a_sampled_share_is_what_was_asked_and_the_same_calls_each_time() -> None:
    picks = [budget.sampled("run-1", 0, 0, i, 0.1) for i in range(20_000)]
    assert 1_800 <= sum(picks) <= 2_200  # 10 % ± 1 point
    assert picks == [budget.sampled("run-1", 0, 0, i, 0.1) for i in range(20_000)]
    assert picks[:2000].count(True) > 100  # spread over the load, not its first calls only
    assert picks[-2000:].count(True) > 100
    assert not any(budget.sampled("run-1", 0, 0, i, 0.0) for i in range(1000))
    assert all(budget.sampled("run-1", 0, 0, i, 1.0) for i in range(1000))
    assert picks != [budget.sampled("run-2", 0, 0, i, 0.1) for i in range(20_000)]


def test_a_runs_recordings_stop_at_its_count_and_disk_caps() -> None:
    per_call = budget.recording_bytes(10_000)
    assert per_call == 44 + 12 * 16_000
    b = budget.RunBudget(max_count=5, max_bytes=10 * per_call)
    assert [b.reserve(per_call) for _ in range(5)] == [None] * 5
    assert "cap of 5 recordings" in b.reserve(per_call)
    assert (b.count, b.bytes, b.refused) == (5, 5 * per_call, 1)
    d = budget.RunBudget(max_count=100, max_bytes=3 * per_call)
    granted = [d.reserve(per_call) is None for _ in range(10)]
    assert granted == [True] * 3 + [False] * 7 and d.bytes <= 3 * per_call
    a = budget.RunBudget(max_count=100, max_bytes=10**12)
    got = [a.reserve(1, action=(0, 1), action_max=2) for _ in range(4)]
    assert got[:2] == [None, None] and "record_max (2)" in got[2]
    assert a.reserve(1, action=(0, 2), action_max=2) is None  # another action has its own


def test_the_service_refuses_recordings_beyond_the_cap_and_fails_an_unverifiable_expect(tmp_path) -> None:
    import asyncio

    svc = AudioService(tmp_path / "audio", max_recordings_per_run=2)
    call = spec_pb2.CallAction(record=True, play_file="silence")

    async def prepare(i: int, c=call):
        return await svc.prepare(CallJob(call_id=f"r:0.0.{i}", destination="sip:x@127.0.0.1", duration_ms=1000),
                                 c, "r")

    results = [asyncio.run(prepare(i)) for i in range(3)]
    assert [bool(job.record_path) for job, _ in results] == [True, True, False]
    assert results[2][1].startswith("not recorded: the run's cap of 2 recordings")
    assert results[0][0].record_path.endswith("/r/r_0.0.0.caller.wav")
    with pytest.raises(LookupError, match="expect_audio cannot be checked"):
        asyncio.run(prepare(3, spec_pb2.CallAction(expect_audio="prompt:reference")))
    svc.forget("r")
    assert asyncio.run(prepare(4))[0].record_path  # a new budget once the run is forgotten


def test_retention_deletes_old_runs_then_the_oldest_beyond_the_disk_cap(tmp_path) -> None:
    now = time.time()
    dirs = [budget.RunDir("old", now - 10 * 86400, 100), budget.RunDir("a", now - 3000, 400),
            budget.RunDir("b", now - 2000, 400), budget.RunDir("c", now - 1000, 400)]
    assert budget.expired_runs(dirs, now, 7 * 86400, 0) == ["old"]
    assert budget.expired_runs(dirs, now, 7 * 86400, 900) == ["old", "a"]
    assert budget.expired_runs(dirs, now, 0, 0) == []
    assert budget.expired_runs(dirs, now, 0, 400) == ["old", "a", "b"]  # the newest run stays
    # on disk
    root = tmp_path / "recordings"
    for name, age in (("old-run", 10 * 86400), ("new-run", 60)):
        d = root / name
        d.mkdir(parents=True)
        f = d / "x.caller.wav"
        wavfile.write_pcm16(f, np.zeros(800), 8000)
        os.utime(f, (now - age, now - age))
    assert budget.sweep(root, 7 * 86400, 0, now=now) == ["old-run"]
    assert sorted(p.name for p in root.iterdir()) == ["new-run"]


def test_functional_calls_play_the_reference_prompt_by_default_and_the_tone_when_asked() -> None:
    assert functional_media(spec_pb2.CallAction(dial_destination="sip:a@b")).play_file == "prompt:reference"
    assert functional_media(spec_pb2.CallAction(tone_hz=440)).play_file == ""
    assert functional_media(spec_pb2.CallAction(play_file="silence")).play_file == "silence"
    load = spec_pb2.LoadAction(dial_destination="sip:a@b", cps=1)
    assert load_call_action(load, 1000).play_file == "silence" and not load_call_action(load, 1000).record
    load.record_sample = 0.5
    assert load_call_action(load, 1000, True).play_file == "prompt:reference"
    assert load_call_action(load, 1000, True).record
    load.play_file = "prompt:greeting"
    assert load_call_action(load, 1000).play_file == "prompt:greeting"
