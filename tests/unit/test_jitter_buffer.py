"""The fixed jitter buffer of the built-in responder's calls (docs/quality.md, "the echo path's own
noise"): the option and its default, and what the helper writes into a stream's pjsua2 StreamInfo."""
from __future__ import annotations

import subprocess
import sys

import pytest

from callgauge_media.entrypoints import responder


def test_the_responder_fixes_its_jitter_buffer_at_60_ms_by_default_and_0_means_adaptive() -> None:
    assert responder._parser().parse_args([]).jitter_buffer_ms == responder.JITTER_BUFFER_MS == 60
    assert responder._parser().parse_args(["--jitter-buffer-ms", "0"]).jitter_buffer_ms == 0
    assert responder.main(["--jitter-buffer-ms", "-1"]) == 2
    assert responder.main(["--jitter-buffer-ms", "401"]) == 2


def test_fixed_jitter_buffer_sets_the_prefetch_and_turns_discarding_off() -> None:
    """In a child process (pjsua2 modules live in processes of their own): a StreamInfo whose
    discard algorithm is pjmedia's default (PROGRESSIVE, 2) comes out with jbInit = jbMinPre =
    jbMaxPre = 60 and NONE (0); a second stream gets NONE from the same single copy."""
    pytest.importorskip("pjsua2", reason="pjsua2-python (extra 'media') is not installed")
    code = """
import ctypes, pjsua2 as pj
from callgauge_media.adapters.pjsua import endpoint as e

def algo(si):
    return ctypes.c_int.from_address(int(si.jbDiscardAlgo)).value

def progressive():
    si = pj.StreamInfo()
    o = si.jbDiscardAlgo
    ctypes.c_int.from_address(int(o)).value = 2  # PJMEDIA_JB_DISCARD_PROGRESSIVE, pjmedia's default
    si.jbDiscardAlgo = o
    assert algo(si) == 2
    return si

for _ in range(2):
    si = progressive()
    assert e.fixed_jitter_buffer(si, 60) is True
    print(si.jbInit, si.jbMinPre, si.jbMaxPre, si.jbMax, algo(si))
"""
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    # (SWIG reports its own copies of the enum, made by the test's getter calls, as leaks on stdout)
    got = [ln.split() for ln in out.stdout.splitlines() if not ln.startswith("swig/")]
    assert [(g[:3], g[4]) for g in got] == [(["60", "60", "60"], "0")] * 2, out.stdout


def test_recorded_calls_get_a_fixed_60_ms_jitter_buffer_by_default_down_to_the_worker() -> None:
    """CALLGAUGE_MEDIA_RECORDED_JITTER_BUFFER_MS (default 60; 0: pjmedia's adaptive buffer) reaches
    each worker's config, from which its EndpointOptions are made."""
    from callgauge_media.adapters.pool import WorkerPool
    from callgauge_media.adapters.worker import WorkerConfig
    from callgauge_media.settings import MediaSettings

    assert MediaSettings().media_recorded_jitter_buffer_ms == 60
    assert MediaSettings(media_recorded_jitter_buffer_ms=0).media_recorded_jitter_buffer_ms == 0
    with pytest.raises(ValueError):
        MediaSettings(media_recorded_jitter_buffer_ms=401)
    config = WorkerConfig(index=0, bind_host="127.0.0.1", rtp_port=40000, rtp_port_range=40)
    assert config.recorded_jitter_buffer_ms == 60
    pool = WorkerPool(2, 40000, recorded_jitter_buffer_ms=0)
    assert [w.config.recorded_jitter_buffer_ms for w in pool._workers] == [0, 0]
    assert [w.config.recorded_jitter_buffer_ms for w in WorkerPool(1, 40000)._workers] == [60]
