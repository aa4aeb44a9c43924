"""Impairment of a call's media path: the spec's checks (runs service and engine), the SDP offer
rewritten to the relay's ports, the relay configurations per direction, and what a measurement
records of it."""
from __future__ import annotations

import struct

import pytest

from callgauge_proto.callgauge.common.v1 import test_spec_pb2 as spec_pb2
from callgauge_proto.callgauge.media.v1 import measurements_pb2 as m_pb2

from callgauge_media.domain.jobs import CallJob
from callgauge_media.domain.measurement import RawCall, StreamSnapshot, build_measurement
from callgauge_media.handlers.runner import load_call_action
from callgauge_media.adapters.impair.media import primer_packet, rewrite_offer, sdp_ssrc
from callgauge_media.domain.impairment import MediaImpairment
from callgauge_runs.domain import spec as specs
from callgauge_runs.domain.errors import ValidationCollector

OFFER = ("v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=pjmedia\r\nt=0 0\r\nm=audio 40000 RTP/AVP 0 120\r\n"
         "c=IN IP4 127.0.0.1\r\na=rtcp:40001 IN IP4 127.0.0.1\r\na=sendrecv\r\na=rtpmap:0 PCMU/8000\r\n"
         "a=ssrc:1394785599 cname:212fa96b44fe5101\r\n")


def _errors(action: spec_pb2.Action) -> dict[tuple, str]:
    v = ValidationCollector()
    specs.validate(spec_pb2.TestSpec(steps=[spec_pb2.Step(actions=[action])]), v, [])
    return {tuple(e.loc): e.msg for e in v.errors}


def _call(**imp) -> spec_pb2.Action:
    return spec_pb2.Action(call=spec_pb2.CallAction(dial_destination="sip:echo@127.0.0.1:5070",
                                                    impairment=spec_pb2.Impairment(**imp)))


def test_valid_impairments_pass_the_runs_checks() -> None:
    assert _errors(_call(loss_pct=5)) == {}
    assert _errors(_call(loss_pct=5, burst_packets=3, jitter_ms=20, delay_ms=80, direction="both")) == {}
    assert _errors(_call()) == {}  # through the relay, unimpaired: the baseline


@pytest.mark.parametrize(("imp", "field", "words"), [
    ({"loss_pct": 60}, "loss_pct", "between 0 and 50"),
    ({"loss_pct": -1}, "loss_pct", "between 0 and 50"),
    ({"loss_pct": float("nan")}, "loss_pct", "between 0 and 50"),
    ({"loss_pct": 5, "burst_packets": 0.5}, "burst_packets", "Gilbert-Elliott"),
    ({"loss_pct": 5, "burst_packets": 1000}, "burst_packets", "1 to 100"),
    ({"burst_packets": 3}, "loss_pct", "set loss_pct"),
    ({"jitter_ms": 900}, "jitter_ms", "between 0 and 500"),
    ({"delay_ms": 5000}, "delay_ms", "between 0 and 2000"),
    ({"direction": "sideways"}, "direction", "receive, send, both"),
])
def test_bad_impairments_are_refused_naming_the_field(imp: dict, field: str, words: str) -> None:
    errors = _errors(_call(**imp))
    loc = ("steps", 0, "actions", 0, "impairment", field)
    assert loc in errors, errors
    assert words in errors[loc]


def test_a_sipp_load_cannot_be_impaired() -> None:
    load = spec_pb2.Action(load=spec_pb2.LoadAction(dial_destination="sip:x@127.0.0.1:5070", cps=1, hold_s=1,
                                                    driver="sipp", impairment=spec_pb2.Impairment(loss_pct=1)))
    errors = _errors(load)
    assert "pjsua driver" in errors[("steps", 0, "actions", 0, "impairment")]


def test_a_load_passes_its_impairment_to_each_call() -> None:
    load = spec_pb2.LoadAction(dial_destination="sip:x@127.0.0.1:5070", cps=1, hold_s=1,
                               impairment=spec_pb2.Impairment(loss_pct=3, burst_packets=2))
    call = load_call_action(load, 1000)
    assert call.HasField("impairment") and call.impairment.loss_pct == 3 and call.impairment.burst_packets == 2
    assert not load_call_action(spec_pb2.LoadAction(dial_destination="sip:x@h", cps=1), 1000).HasField("impairment")


def test_the_engine_checks_the_values_again() -> None:
    with pytest.raises(ValueError, match="loss_pct"):
        MediaImpairment(loss_pct=80)
    with pytest.raises(ValueError, match="direction"):
        MediaImpairment(direction="up")
    job = CallJob.from_action("run:0.0.0", _call(loss_pct=5).call)
    assert job.impairment == MediaImpairment(loss_pct=5, seed=job.impairment.seed)
    assert job.impairment.seed == CallJob.from_action("run:0.0.0", _call(loss_pct=5).call).impairment.seed
    assert CallJob.from_action("run:0.0.0", spec_pb2.CallAction(dial_destination="x")).impairment is None


def test_the_action_seed_is_every_call_s_seed_and_is_recorded() -> None:
    import zlib

    seeded = _call(loss_pct=5, seed=7).call
    a, b = (CallJob.from_action(cid, seeded).impairment for cid in ("run:0.0.0", "other:1.2.3"))
    assert a.seed == b.seed == 7 and a.seed_asked
    assert _call(seed=0).call.impairment.HasField("seed")  # 0 is a seed, not "absent"
    assert CallJob.from_action("r:0.0.0", _call(seed=0).call).impairment.seed == 0
    unseeded = CallJob.from_action("run:0.0.0", _call(loss_pct=5).call).impairment
    assert unseeded.seed == zlib.crc32(b"run:0.0.0") and not unseeded.seed_asked
    # the measurement: asked.seed only when the action named one; the seed used always
    m = build_measurement(_raw(a, {"rx_packets": 10, "rx_dropped": 1, "rx_forwarded": 9, "tx_packets": 10,
                                   "tx_dropped": 0}, 9, 1))
    assert m.impairment.asked.HasField("seed") and m.impairment.asked.seed == 7 and m.impairment.seed == 7
    m = build_measurement(_raw(unseeded, {"rx_packets": 10, "rx_dropped": 1, "rx_forwarded": 9,
                                          "tx_packets": 10, "tx_dropped": 0}, 9, 1))
    assert not m.impairment.asked.HasField("seed") and m.impairment.seed == unseeded.seed
    # a recorded seed replays: an action naming it gets the call's draws
    replay = MediaImpairment.from_proto(spec_pb2.Impairment(loss_pct=5, seed=m.impairment.seed))
    assert replay.seed == unseeded.seed
    for bad in (-1, 2**32, True, 1.5):
        with pytest.raises(ValueError, match="seed"):
            MediaImpairment(loss_pct=5, seed=bad)


def test_relay_configs_per_direction() -> None:
    rx, tx = MediaImpairment(loss_pct=5, jitter_ms=10, delay_ms=40).rtp_configs()
    assert (rx.loss_pct, rx.jitter_ms, rx.delay_ms, rx.burst) == (5, 10, 40, None)
    assert not tx.impairs  # receive only by default
    rx, tx = MediaImpairment(loss_pct=5, burst_packets=4, direction="both").rtp_configs()
    assert rx == tx and rx.loss_pct == 0 and rx.burst is not None
    assert rx.burst.stationary_loss_pct == pytest.approx(5.0) and rx.burst.mean_bad_run == pytest.approx(4.0)
    rx, tx = MediaImpairment(loss_pct=5, direction="send").rtp_configs()
    assert not rx.impairs and tx.loss_pct == 5
    crx, ctx = MediaImpairment(loss_pct=5, delay_ms=30, direction="both").rtcp_configs()
    assert crx.loss_pct == 0 and crx.delay_ms == 30 and ctx.delay_ms == 30  # RTCP is never dropped


def test_the_offer_names_the_relay_ports() -> None:
    out, rtp, rtcp = rewrite_offer(OFFER, 50000, 50011)
    assert (rtp, rtcp) == (40000, 40001)
    assert "m=audio 50000 RTP/AVP 0 120\r\n" in out and "a=rtcp:50011 IN IP4 127.0.0.1\r\n" in out
    assert "40000" not in out and "40001" not in out
    # without an a=rtcp line one is added at the end of the audio section (RTCP is then RTP + 1)
    bare = OFFER.replace("a=rtcp:40001 IN IP4 127.0.0.1\r\n", "")
    out, rtp, rtcp = rewrite_offer(bare, 50000, 50011)
    assert (rtp, rtcp) == (40000, 40001)
    assert out.endswith("a=ssrc:1394785599 cname:212fa96b44fe5101\r\na=rtcp:50011\r\n")
    assert rewrite_offer("v=0\r\nm=video 4000 RTP/AVP 96\r\n", 1, 2) is None
    assert sdp_ssrc(OFFER) == 1394785599 and sdp_ssrc(bare.replace("a=ssrc", "a=x")) is None


def test_the_primer_is_a_bare_rtp_header_with_our_ssrc() -> None:
    b = primer_packet(1394785599)
    assert len(b) == 12
    v, pt, seq, ts, ssrc = struct.unpack("!BBHII", b)
    assert (v >> 6, pt, ssrc) == (2, 127, 1394785599)


def _raw(imp: MediaImpairment | None, relay: dict | None, rx: int, lost: int) -> RawCall:
    job = CallJob(call_id="c", destination="sip:x@h", impairment=imp)
    return RawCall(job=job, started_wall=1.0, ended_wall=2.0, t_invite=0.0, t_first_response=0.01,
                   t_answer=0.02, t_end=30.0, answer_code=200, codec="PCMU", media_active=True,
                   stats=StreamSnapshot(tx_packets=1500, rx_packets=rx, rx_lost=lost), impairment=relay)


def test_a_measurement_records_what_was_asked_and_what_was_dropped() -> None:
    imp = MediaImpairment(loss_pct=5, burst_packets=3, jitter_ms=10, direction="both")
    m = build_measurement(_raw(imp, {"rx_packets": 1500, "rx_dropped": 76, "rx_forwarded": 1424,
                                     "tx_packets": 1499, "tx_dropped": 70}, 1424, 76))
    a = m.impairment
    assert (a.asked.loss_pct, a.asked.burst_packets, a.asked.jitter_ms, a.asked.direction) == (5, 3, 10, "both")
    assert (a.rx_packets, a.rx_dropped, a.tx_packets, a.tx_dropped, a.rx_bypassed) == (1500, 76, 1499, 70, 0)
    assert a.rx_loss_pct == pytest.approx(100 * 76 / 1500) and a.tx_loss_pct == pytest.approx(100 * 70 / 1499)
    assert m.loss_pct == pytest.approx(a.rx_loss_pct)  # measured = injected here
    assert "impairment" not in m.detail


def test_a_far_end_that_goes_around_the_relay_is_told() -> None:
    m = build_measurement(_raw(MediaImpairment(loss_pct=5), {"rx_packets": 0, "rx_dropped": 0, "rx_forwarded": 0,
                                                              "tx_packets": 0, "tx_dropped": 0}, 1500, 0))
    assert m.impairment.rx_bypassed == 1500 and not m.impairment.HasField("rx_loss_pct")
    assert "impairment not applied" in m.detail
    plain = build_measurement(_raw(None, None, 1500, 0))
    assert not plain.HasField("impairment")


async def test_the_relay_greets_the_far_end_and_replays_its_latest_packet() -> None:
    import asyncio
    import socket

    from callgauge_media.adapters.impair.relay import UdpImpairmentRelay

    engine = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)  # the engine's RTP socket (the relay's target)
    far = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)  # the far end
    for s in (engine, far):
        s.bind(("127.0.0.1", 0))
        s.settimeout(5)
    relay = UdpImpairmentRelay(listen=("127.0.0.1", 0), target=engine.getsockname(), seed=1)
    _, port = await relay.start()
    try:
        assert relay.replay_upstream() is False  # nothing from the far end yet
        assert relay.greet_client(far.getsockname(), primer_packet(7))
        data, src = await asyncio.to_thread(far.recvfrom, 100)
        assert data == primer_packet(7) and src == ("127.0.0.1", port)  # from the relay's address
        assert relay.client_address == far.getsockname()
        far.sendto(b"rtp-1", ("127.0.0.1", port))
        assert (await asyncio.to_thread(engine.recvfrom, 100))[0] == b"rtp-1"
        assert relay.replay_upstream() is True
        assert (await asyncio.to_thread(engine.recvfrom, 100))[0] == b"rtp-1"  # once more, at once
        assert relay.stats.upstream.received == 1 and relay.replayed == 1  # the replay is not counted
    finally:
        await relay.stop()
        engine.close()
        far.close()
