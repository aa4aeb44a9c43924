"""Validation and defaults of a test's steps and actions (pure)."""

from __future__ import annotations

import math
import re
from collections.abc import Collection

from callgauge_proto.callgauge.common.v1 import test_spec_pb2 as spec_pb2

from callgauge_platform.destinations import DialPolicy, sip_target, sip_uri_problem

from callgauge_runs.domain.errors import ValidationCollector

CODECS = ("PCMU", "PCMA", "G722", "GSM", "speex", "iLBC", "opus")
METRICS = ("asr", "mos_min", "mos_mean", "setup_p95_ms", "setup_p50_ms", "loss_pct_max", "jitter_ms_max",
           "acd_s", "mos_p5", "setup_p99_ms", "post_dial_delay_p95_ms", "mos_lqo_min", "mos_lqo_mean")
OPS = (">=", "<=", ">", "<", "==")
TRANSPORTS = ("udp", "tcp", "tls")
SRTP_MODES = ("off", "optional", "mandatory")
SRTP_KEYINGS = ("sdes", "dtls")
AUDIO_BANDWIDTHS = ("narrowband", "mediumband", "wideband", "superwideband", "fullband")
DISTRIBUTIONS = ("fixed", "uniform", "exponential")
DRIVERS = ("pjsua", "sipp")
_SIP_URI = re.compile(r"^sips?:([^@\s]+@)?[A-Za-z0-9.\-\[\]:]+(:\d{1,5})?(;[^\s]*)?$")
# A user or number dialled through the action's target_pool (registrar/proxy).
_DIAL_USER = re.compile(r"^[A-Za-z0-9+*#._\-]{1,64}$")
_DTMF = re.compile(r"^[0-9*#A-D]{0,64}$")

MAX_DURATION_MS = 3_600_000
# No default assertion: with or without assertions a run passes only when every call ended as
# expected (domain/verdict.py); an explicit `asr` assertion opts into tolerance of failed calls.
MAX_CALLS = 100_000
MAX_CPS = 1000.0
MAX_PHASE_S = 86_400


def with_defaults(spec: spec_pb2.TestSpec) -> spec_pb2.TestSpec:
    out = spec_pb2.TestSpec()
    out.CopyFrom(spec)
    for step in out.steps:
        for action in step.actions:
            kind = action.WhichOneof("kind")
            if kind == "call":
                c = action.call
                c.duration_ms = c.duration_ms or 5000
                c.codec = c.codec or "PCMU"
                c.setup_timeout_ms = c.setup_timeout_ms or 10000
                c.max_total_calls = c.max_total_calls or 1
                c.concurrency = c.concurrency or 1
                c.from_user = c.from_user or "callgauge"
                # unset: tls for a sips: URI, the registrar's transport through a target_pool, else udp
                if not c.transport and not c.target_pool:
                    c.transport = "tls" if is_sips(c.dial_destination) else "udp"
            elif kind == "register":
                action.register.regexpire = action.register.regexpire or 3600
    return out


def is_sips(dest: str) -> bool:
    return (dest or "").strip().lstrip("<").lower().startswith("sips:")


def validate(spec: spec_pb2.TestSpec, v: ValidationCollector, root: list[str | int],
             registrars: Collection[str] | None = None, pools: Collection[str] | None = None,
             dial: DialPolicy | None = None) -> None:
    """Collect every error with its location. With `registrars`/`pools` (the ids the test's project
    owns), the actions' target_pool/credential_pool must name one of them. With `dial` (the
    operator's destination policy), a dial destination's address literal, name and port must be
    allowed (names are resolved and checked again by the media engine)."""
    if not spec.steps:
        v.add([*root, "steps"], "a test needs at least one step", "missing")
    for si, step in enumerate(spec.steps):
        if not step.actions:
            v.add([*root, "steps", si, "actions"], "a step needs at least one action", "missing")
        for ai, action in enumerate(step.actions):
            loc = [*root, "steps", si, "actions", ai]
            kind = action.WhichOneof("kind")
            if kind is None:
                v.add(loc, "action has no type", "missing")
                continue
            body = getattr(action, kind)
            {"call": _validate_call, "register": _validate_register, "wait_for_calls": _validate_wait,
             "load": _validate_load}[kind](body, v, loc)
            _validate_pools(kind, body, v, loc, registrars, pools)
            if dial is not None and kind in ("call", "load"):
                check_dial(body.dial_destination, dial, v, [*loc, "dial_destination"])
    for i, a in enumerate(spec.assertions):
        loc = [*root, "assertions", i]
        if a.metric not in METRICS:
            v.add([*loc, "metric"], f"unknown metric {a.metric!r}; one of {', '.join(METRICS)}")
        if a.op not in OPS:
            v.add([*loc, "op"], f"unknown operator {a.op!r}; one of {' '.join(OPS)}")


def _validate_pools(kind: str, body, v: ValidationCollector, loc: list, registrars, pools) -> None:
    needs_both = kind == "register"
    if needs_both and not body.target_pool:
        v.add([*loc, "target_pool"], "a register action needs a target_pool (a registrar id)", "missing")
    if kind in ("register", "wait_for_calls") and not body.credential_pool:
        v.add([*loc, "credential_pool"], f"a {kind} action needs a credential_pool (SIP users)", "missing")
    if registrars is not None and body.target_pool and body.target_pool not in registrars:
        v.add([*loc, "target_pool"], f"no registrar {body.target_pool!r} in this project")
    if pools is not None and body.credential_pool and body.credential_pool not in pools:
        v.add([*loc, "credential_pool"], f"no credential pool {body.credential_pool!r} in this project")


def _check_destination(dest: str, via_pool: bool, v: ValidationCollector, loc: list, required: bool = True) -> None:
    if not dest:
        if required:
            v.add([*loc, "dial_destination"], "a call needs a destination SIP URI", "missing")
    elif problem := sip_uri_problem(dest):
        v.add([*loc, "dial_destination"], f"{dest!r}: {problem}")
    elif not _SIP_URI.match(dest) and not (via_pool and _DIAL_USER.match(dest)):
        hint = "a SIP URI like sip:user@host:5060" + (" or a user/number" if via_pool else
                                                       " (a bare user/number needs a target_pool)")
        v.add([*loc, "dial_destination"], f"{dest!r} is not {hint}")


def check_dial(dest: str, dial: DialPolicy, v: ValidationCollector, loc: list) -> None:
    """A SIP URI's host and port against the operator's policy (a bare user goes to the registrar,
    which is checked on its own)."""
    target = sip_target(dest)
    refusal = dial.static_refusal(target.host, target.port) if target is not None else None
    if refusal:
        v.add(loc, f"{dest!r} is not an allowed destination: {refusal}", "destination_denied")


def _common(body, v: ValidationCollector, loc: list) -> None:
    if getattr(body, "codec", "") and body.codec not in CODECS:
        v.add([*loc, "codec"], f"unsupported codec {body.codec!r}; one of {', '.join(CODECS)}")
    if getattr(body, "tone_hz", 0) > 4000:
        v.add([*loc, "tone_hz"], "a tone above 4000 Hz cannot pass a narrowband codec")
    transport = getattr(body, "transport", "")
    if transport and transport not in TRANSPORTS:
        v.add([*loc, "transport"], "udp, tcp or tls")
    elif transport in ("udp", "tcp") and is_sips(getattr(body, "dial_destination", "")):
        v.add([*loc, "transport"], f"a sips: destination is reached over TLS only, not {transport}: "
                                   f"set transport tls (or leave it out)")
    bandwidth = getattr(body, "audio_bandwidth", "")
    if bandwidth and bandwidth not in AUDIO_BANDWIDTHS:
        v.add([*loc, "audio_bandwidth"], f"unknown audio bandwidth {bandwidth!r}; one of {', '.join(AUDIO_BANDWIDTHS)}")
    elif bandwidth and (getattr(body, "codec", "") or "PCMU") != "opus":
        v.add([*loc, "audio_bandwidth"], "an audio bandwidth is chosen for codec opus only (the other codecs have "
                                         "one: PCMU/PCMA/GSM narrowband, G722 wideband): set codec opus")
    elif bandwidth and (getattr(body, "driver", "") or "pjsua").lower() == "sipp":
        v.add([*loc, "audio_bandwidth"], "the SIPp driver sends PCMU/PCMA only: use the pjsua driver for opus")
    if getattr(body, "srtp", "") and body.srtp not in SRTP_MODES:
        v.add([*loc, "srtp"], f"unknown srtp mode {body.srtp!r}; one of {', '.join(SRTP_MODES)}")
    keying = getattr(body, "srtp_keying", "")
    if keying and keying not in SRTP_KEYINGS:
        v.add([*loc, "srtp_keying"], f"unknown srtp_keying {keying!r}; one of {', '.join(SRTP_KEYINGS)} "
                                     f"(sdes: keys in the SDP, RFC 4568; dtls: DTLS-SRTP, RFC 5763/5764)")
    elif keying and (body.srtp or "off") == "off":
        v.add([*loc, "srtp_keying"], f"srtp_keying {keying!r} chooses how SRTP keys are agreed, and srtp is "
                                     f"off: set srtp optional or mandatory (or leave srtp_keying out)")
    if getattr(body, "duration_ms", 0) > MAX_DURATION_MS:
        v.add([*loc, "duration_ms"], f"at most {MAX_DURATION_MS} ms")
    if getattr(body, "setup_timeout_ms", 0) > 300_000:
        v.add([*loc, "setup_timeout_ms"], "at most 300000 ms")
    if getattr(body, "max_total_calls", 0) > MAX_CALLS:
        v.add([*loc, "max_total_calls"], f"at most {MAX_CALLS} calls per action")


# play_file / expect_audio: a built-in prompt or a bare .wav name in the media directory (never a path)
_MEDIA_NAME = re.compile(r"^(silence|prompt:[a-z0-9_-]{1,40}|[A-Za-z0-9][A-Za-z0-9._-]{0,120}\.wav)$")


def _check_media(body, field: str, v: ValidationCollector, loc: list) -> None:
    value = getattr(body, field, "")
    if value and not _MEDIA_NAME.match(value):
        v.add([*loc, field], "prompt:NAME, silence, or the file name (no path) of a .wav in the media directory")


OUTCOMES = ("SUCCESS", "CALL_FAILED", "TIMEOUT", "NEGOTIATION_FAILED", "REGISTRATION_FAILED")
MAX_EXPECT = 20


def _validate_expect(expect, v: ValidationCollector, loc: list[str | int]) -> None:
    if len(expect) > MAX_EXPECT:
        v.add([*loc, "expect"], f"at most {MAX_EXPECT} expected outcomes")
    for i, e in enumerate(expect):
        if e.outcome not in OUTCOMES:
            v.add([*loc, "expect", i, "outcome"], f"unknown outcome {e.outcome!r}; one of {', '.join(OUTCOMES)}")
        if e.sip_code and not 100 <= e.sip_code <= 699:
            v.add([*loc, "expect", i, "sip_code"], "a SIP status code 100-699, or 0 for any")


# Impairment of a call's media path (the media engine's relay; callgauge_media/adapters/impair/media.py checks
# the same rules)
IMPAIR_DIRECTIONS = ("receive", "send", "both")
IMPAIR_LIMITS = {"loss_pct": 50.0, "jitter_ms": 500.0, "delay_ms": 2000.0}
MAX_BURST_PACKETS = 100.0


def _validate_impairment(body, v: ValidationCollector, loc: list[str | int]) -> None:
    if not body.HasField("impairment"):
        return
    if body.srtp in ("optional", "mandatory"):
        # measured: against a pjsua2 far end the SRTP media went around the relay ("impairment not
        # applied"), so the combination is refused rather than silently unimpaired
        v.add([*loc, "srtp"], "impairment works on plain RTP only: leave srtp off for an impaired call")
    imp = body.impairment
    at = [*loc, "impairment"]
    for name, top in IMPAIR_LIMITS.items():
        value = getattr(imp, name)
        if not math.isfinite(value) or not 0 <= value <= top:
            unit = "%" if name == "loss_pct" else " ms"
            v.add([*at, name], f"between 0 and {top:g}{unit}, got {value!r}")
    b = imp.burst_packets
    if not math.isfinite(b) or b < 0 or b > MAX_BURST_PACKETS or 0 < b < 1:
        v.add([*at, "burst_packets"], f"0 (independent, random loss) or a mean loss burst of 1 to "
                                      f"{MAX_BURST_PACKETS:g} packets (Gilbert-Elliott), got {b!r}")
    elif b > 1 and not imp.loss_pct:
        v.add([*at, "loss_pct"], "burst_packets shapes the loss: set loss_pct (the mean loss) too", "missing")
    if imp.direction and imp.direction not in IMPAIR_DIRECTIONS:
        v.add([*at, "direction"], f"one of {', '.join(IMPAIR_DIRECTIONS)} (receive: far end to engine, "
                                  f"the direction whose loss the engine measures)")


def _validate_call(c: spec_pb2.CallAction, v: ValidationCollector, loc: list[str | int]) -> None:
    _check_destination(c.dial_destination, bool(c.target_pool), v, loc)
    _common(c, v, loc)
    _check_media(c, "play_file", v, loc)
    _check_media(c, "expect_audio", v, loc)
    if c.expect_audio == "silence":
        v.add([*loc, "expect_audio"], "a prompt or a .wav to compare with, not silence")
    if not 0 <= c.expect_audio_min <= 1:
        v.add([*loc, "expect_audio_min"], "a correlation between 0 and 1")
    _validate_expect(c.expect, v, loc)
    if c.concurrency and c.max_total_calls and c.concurrency > c.max_total_calls:
        v.add([*loc, "concurrency"], "cannot exceed max_total_calls")
    if not _DTMF.match(c.dtmf):
        v.add([*loc, "dtmf"], "RFC 2833 digits 0-9 * # A-D, at most 64")
    if c.dtmf_delay_ms > 60_000:
        v.add([*loc, "dtmf_delay_ms"], "at most 60000 ms")
    if c.from_user and not _DIAL_USER.match(c.from_user):
        v.add([*loc, "from_user"], "letters, digits and + * # . _ -, at most 64")
    _validate_impairment(c, v, loc)


def _validate_register(r: spec_pb2.RegisterAction, v: ValidationCollector, loc: list[str | int]) -> None:
    _common(r, v, loc)
    if r.regexpire and not 60 <= r.regexpire <= 86_400:
        v.add([*loc, "regexpire"], "between 60 and 86400 seconds")
    if r.count > 10_000:
        v.add([*loc, "count"], "at most 10000 users")


def _validate_wait(w: spec_pb2.WaitForCallsAction, v: ValidationCollector, loc: list[str | int]) -> None:
    _common(w, v, loc)
    _check_media(w, "play_file", v, loc)
    _check_media(w, "expect_audio", v, loc)
    if w.expect_audio == "silence":
        v.add([*loc, "expect_audio"], "a prompt or a .wav to compare with, not silence")
    if not 0 <= w.expect_audio_min <= 1:
        v.add([*loc, "expect_audio_min"], "a correlation between 0 and 1")
    if w.answer_delay_ms > 120_000:
        v.add([*loc, "answer_delay_ms"], "at most 120000 ms")
    if w.timeout_ms > MAX_DURATION_MS:
        v.add([*loc, "timeout_ms"], f"at most {MAX_DURATION_MS} ms")
    if not _DTMF.match(w.expect_dtmf):
        v.add([*loc, "expect_dtmf"], "RFC 2833 digits 0-9 * # A-D, at most 64")
    if w.hangup_by not in ("", "caller", "callee"):
        v.add([*loc, "hangup_by"], "caller or callee")
    if w.hangup_by == "callee" and not w.duration_ms:
        v.add([*loc, "duration_ms"], "the callee hangs up after duration_ms: set it", "missing")


def _validate_load(ld: spec_pb2.LoadAction, v: ValidationCollector, loc: list[str | int]) -> None:
    _check_destination(ld.dial_destination, bool(ld.target_pool), v, loc)
    _common(ld, v, loc)
    _validate_expect(ld.expect, v, loc)
    _check_media(ld, "play_file", v, loc)
    if not math.isfinite(ld.record_sample) or not 0 <= ld.record_sample <= 1:
        v.add([*loc, "record_sample"], "the share of calls recorded, between 0 and 1")
    if ld.record_max and not ld.record_sample:
        v.add([*loc, "record_max"], "record_max caps record_sample: set record_sample too")
    if (ld.record_sample or ld.play_file) and (ld.driver or "pjsua").lower() == "sipp":
        v.add([*loc, "record_sample" if ld.record_sample else "play_file"],
              "the SIPp driver carries no audio files: use the pjsua driver")
    if not math.isfinite(ld.cps) or ld.cps <= 0 or ld.cps > MAX_CPS:
        v.add([*loc, "cps"], f"calls per second above 0, at most {MAX_CPS:g}")
    if ld.max_concurrency > 10_000:
        v.add([*loc, "max_concurrency"], "at most 10000 calls at once")
    for name in ("ramp_up_s", "hold_s", "ramp_down_s"):
        if getattr(ld, name) > MAX_PHASE_S:
            v.add([*loc, name], f"at most {MAX_PHASE_S} s")
    if not (ld.ramp_up_s or ld.hold_s or ld.ramp_down_s) and not ld.max_total_calls:
        v.add([*loc, "hold_s"], "a load needs a duration (ramp_up_s, hold_s, ramp_down_s) or max_total_calls",
              "missing")
    if ld.duration_distribution and ld.duration_distribution not in DISTRIBUTIONS:
        v.add([*loc, "duration_distribution"], f"one of {', '.join(DISTRIBUTIONS)}")
    if ld.duration_spread_ms > MAX_DURATION_MS:
        v.add([*loc, "duration_spread_ms"], f"at most {MAX_DURATION_MS} ms")
    if ld.driver and ld.driver not in DRIVERS:
        v.add([*loc, "driver"], f"one of {', '.join(DRIVERS)}")
    _validate_impairment(ld, v, loc)
    if ld.driver == "sipp" and ld.srtp in ("optional", "mandatory"):
        v.add([*loc, "srtp"], "the SIPp driver sends plain RTP only: use the pjsua driver for SRTP")
    if ld.driver == "sipp" and (ld.transport == "tls" or is_sips(ld.dial_destination)):
        v.add([*loc, "transport"], "the SIPp driver here runs over udp or tcp: use the pjsua driver for TLS")
    if ld.HasField("impairment") and ld.driver == "sipp":
        v.add([*loc, "impairment"], "impairment needs the pjsua driver (SIPp's media does not go through the "
                                    "engine's relay)")


def pool_refs(spec: spec_pb2.TestSpec) -> tuple[list[str], list[str]]:
    """(registrar ids, credential pool ids) the spec names, each once, in order of appearance."""
    targets: list[str] = []
    pools: list[str] = []
    for step in spec.steps:
        for action in step.actions:
            kind = action.WhichOneof("kind")
            if kind is None:
                continue
            body = getattr(action, kind)
            if body.target_pool and body.target_pool not in targets:
                targets.append(body.target_pool)
            if body.credential_pool and body.credential_pool not in pools:
                pools.append(body.credential_pool)
    return targets, pools


def planned_attempts(spec: spec_pb2.TestSpec) -> int:
    """The call attempts a spec plans, loads included (the integral of a load's rate over its window,
    capped by its max_total_calls), computed without listing them: what the planned-calls quota
    judges."""
    n = 0
    for step in spec.steps:
        for a in step.actions:
            kind = a.WhichOneof("kind")
            if kind == "call":
                n += a.call.max_total_calls or 1
            elif kind == "load":
                ld = a.load
                cps = ld.cps if ld.cps > 0 and math.isfinite(ld.cps) else 1.0
                up, hold, down = (min(float(x), MAX_PHASE_S) for x in (ld.ramp_up_s, ld.hold_s, ld.ramp_down_s))
                if up + hold + down == 0:
                    hold = max(1, ld.max_total_calls) / cps
                expected = math.ceil(cps * (up / 2 + hold + down / 2) - 1e-9)
                n += min(expected, ld.max_total_calls) if ld.max_total_calls else expected
    return n


def planned_calls(spec: spec_pb2.TestSpec) -> int:
    return sum(a.call.max_total_calls or 1 for s in spec.steps for a in s.actions if a.WhichOneof("kind") == "call")
