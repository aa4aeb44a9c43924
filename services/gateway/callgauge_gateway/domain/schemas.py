"""Request bodies. Unknown fields are rejected (a typo must not be silently ignored)."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, WithJsonSchema

from callgauge_proto.callgauge.common.v1 import test_spec_pb2 as spec_pb2

# The runs service holds metadata to these bounds (callgauge_runs.domain.common.validate_metadata: a 422
# per bad key); the document says them so a client can know them before it sends.
METADATA_MAX_KEYS, METADATA_KEY_MAX, METADATA_VALUE_MAX = 50, 40, 500
Metadata = Annotated[dict[str, str], WithJsonSchema({
    "type": "object", "maxProperties": METADATA_MAX_KEYS,
    "propertyNames": {"minLength": 1, "maxLength": METADATA_KEY_MAX},
    "additionalProperties": {"type": "string", "maxLength": METADATA_VALUE_MAX},
    "description": f"Your own string pairs: at most {METADATA_MAX_KEYS} keys, each key 1 to {METADATA_KEY_MAX} "
                   f"characters, each value at most {METADATA_VALUE_MAX} characters (422 naming the key above)."})]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ProjectIn(_Strict):
    name: str = Field(min_length=1, max_length=200, examples=["Production PBX"])
    slug: str | None = Field(None, pattern=r"^[a-z0-9][a-z0-9-]{0,63}$")
    metadata: Metadata = Field(default_factory=dict)


U32 = Annotated[int, Field(ge=0, le=4_294_967_295)]
MAX_SEED = 4_294_967_295  # Impairment.seed is a uint32
PoolId = Annotated[str, Field(max_length=100, description="id of a registrar (target_pool) or credential pool")]


Transport = Literal["udp", "tcp", "tls"]
Srtp = Literal["off", "optional", "mandatory"]
SrtpKeying = Literal["sdes", "dtls"]
AudioBandwidth = Literal["narrowband", "mediumband", "wideband", "superwideband", "fullband"]
BANDWIDTH_DOC = ("opus only: the audio bandwidth asked for, as opus's sample rate (8, 12, 16, 24, 48 kHz), offered "
                 "as maxplaybackrate (RFC 7587); default fullband. The call's measurement says what it got")
SRTP_DOC = ("SRTP for the call's media: off (default, plain RTP); optional (offer SRTP, accept plain RTP); "
            "mandatory (SRTP or the call fails). How the keys are agreed: srtp_keying")
SRTP_KEYING_DOC = (
    "how the SRTP keys are agreed, with srtp optional or mandatory: sdes (default; RFC 4568: the keys travel "
    "in the SDP, so in clear unless the SIP hop is TLS) or dtls (DTLS-SRTP, RFC 5763/5764: a DTLS handshake "
    "on the media path makes the keys; the SDP carries only the certificate's fingerprint). A dtls offer "
    "uses the UDP/TLS/RTP/SAVP profile, which a far end without DTLS-SRTP refuses (488) even with srtp "
    "optional. The call's measurement says which keying was used (srtpKeying)")
TLS_VERIFY_DOC = ("transport tls: check the registrar's certificate (chain to a trusted CA, name or IP matching "
                  "the host); default true. false: encrypt without checking who answers (a lab with a "
                  "self-signed certificate)")


class ExpectIn(_Strict):
    """An outcome the action's calls may end with. Without `expect` every call must be answered."""
    outcome: Literal["SUCCESS", "CALL_FAILED", "TIMEOUT", "NEGOTIATION_FAILED", "REGISTRATION_FAILED"] = Field(
        examples=["CALL_FAILED"])
    sip_code: int = Field(0, ge=0, le=699, examples=[486], description="the final SIP code too (0: any code)")


Expectations = Field(None, max_length=20, description=(
    "how the calls may end, e.g. [{\"outcome\": \"CALL_FAILED\", \"sip_code\": 486}] for a busy line; "
    "default: every call answered (SUCCESS). A run passes only if every call ended as expected."))


class ImpairmentIn(_Strict):
    """Network impairment on a call's RTP, made by a UDP relay in the media engine
    (docs/media.md, impairment). Every value 0 sends the media through the relay unimpaired (a baseline)."""
    loss_pct: float = Field(0, ge=0, le=50, examples=[5], description="mean RTP packet loss, percent")
    burst_packets: float = Field(0, ge=0, le=100, examples=[3], description=(
        "mean length of a loss burst in packets: 0 = independent (random) loss; >= 1 = Gilbert-Elliott "
        "bursts of that mean length at the same mean loss"))
    jitter_ms: float = Field(0, ge=0, le=500, description="each packet waits delay_ms ± U(jitter_ms) (may reorder)")
    delay_ms: float = Field(0, ge=0, le=2000, description="added one-way delay")
    direction: Literal["receive", "send", "both"] = Field("receive", description=(
        "receive: far end -> engine (what the engine's loss, jitter and MOS measure); send: engine -> far "
        "end (the far end's jitter buffer copes; its RTCP reports show it); both"))
    seed: int | None = Field(None, ge=0, le=MAX_SEED, strict=True, examples=[7], description=(
        "an integer that fixes the loss and delay draws: every call carrying the same seed gets the same "
        "loss pattern per packet number (across runs and codecs), and a higher loss_pct at the same seed and "
        "burst_packets drops a superset of the packets (docs/media.md, impairment). Absent: a seed derived "
        "from the call id; each call's measurement records the seed it used (impairment.seed)"))


class CallActionIn(_Strict):
    """Dial a destination, talk, hang up, measure."""
    type: Literal["call"]
    dial_destination: str = Field(min_length=1, max_length=500, examples=["sip:echo@127.0.0.1:5070"],
                                  description="a SIP URI, or a user/number dialled through target_pool")
    duration_ms: int = Field(5000, ge=0, le=3_600_000, description="talk time after answer")
    tone_hz: int | None = Field(None, ge=0, le=4000, description="a tone (Hz) sent during the call instead of the "
                                                                 "reference speech prompt; unset or 0: no tone")
    codec: Literal["PCMU", "PCMA", "G722", "GSM", "speex", "iLBC", "opus"] = "PCMU"
    setup_timeout_ms: int = Field(10000, ge=100, le=300_000)
    max_total_calls: int = Field(1, ge=1, le=100_000)
    concurrency: int = Field(1, ge=1, le=10_000)
    from_user: str = Field("callgauge", min_length=1, max_length=64, pattern=r"^[A-Za-z0-9._+\-]+$")
    transport: Transport | None = Field(None, description=(
        "udp, tcp or tls; default: tls for a sips: destination, the registrar's transport through target_pool, "
        "else udp"))
    target_pool: PoolId | None = None
    credential_pool: PoolId | None = None
    dtmf: str | None = Field(None, max_length=64, description="RFC 2833 digits sent after answer")
    dtmf_delay_ms: U32 | None = None
    play_file: str | None = Field(None, max_length=130, examples=["prompt:reference"],
                                  description="speech played instead of the tone: prompt:NAME (built-in: reference, "
                                              "greeting, goodbye), silence, or the name of a .wav in the media "
                                              "directory. Default: prompt:reference unless tone_hz is set")
    play_once: bool | None = Field(None, description="play the file once, then silence (default: looped)")
    record: bool | None = Field(None, description="record what the caller receives and score it (mos_lqo)")
    expect_audio: str | None = Field(None, max_length=130, description="prompt:NAME or a .wav the received audio "
                                                                       "must match, else the call fails")
    expect_audio_min: float | None = Field(None, gt=0, le=1, description="correlation to reach (default 0.6)")
    expect: list[ExpectIn] | None = Expectations
    impairment: ImpairmentIn | None = Field(None, description="loss, bursts, jitter, delay on the call's media path")
    srtp: Srtp | None = Field(None, description=SRTP_DOC)
    srtp_keying: SrtpKeying | None = Field(None, description=SRTP_KEYING_DOC)
    audio_bandwidth: AudioBandwidth | None = Field(None, description=BANDWIDTH_DOC)


class RegisterActionIn(_Strict):
    """Register the users of a credential pool at a registrar (digest auth) for the run."""
    type: Literal["register"]
    target_pool: PoolId = Field(description="registrar id")
    credential_pool: PoolId = Field(description="credential pool id")
    regexpire: U32 | None = Field(None, description="requested expiry in seconds (default 3600)")
    count: U32 | None = Field(None, description="users of the pool to register (0 = all)")
    transport: Transport | None = None
    keep_registered: bool | None = None


class WaitForCallsActionIn(_Strict):
    """Answer calls as the registered users of a credential pool."""
    type: Literal["wait_for_calls"]
    credential_pool: PoolId
    target_pool: PoolId | None = None
    answer_delay_ms: U32 | None = None
    tone_hz: int | None = Field(None, ge=0, le=4000)
    codec: Literal["PCMU", "PCMA", "G722", "GSM", "speex", "iLBC", "opus"] | None = None
    max_total_calls: U32 | None = None
    timeout_ms: U32 | None = None
    expect_dtmf: str | None = Field(None, max_length=64)
    hangup_by: Literal["caller", "callee"] | None = None
    duration_ms: U32 | None = None
    play_file: str | None = Field(None, max_length=130, description="prompt:NAME or a .wav played to each caller "
                                                                    "instead of the tone/echo")
    record: bool | None = Field(None, description="record what the callee receives (the call's callee leg), "
                                                   "scored against what the caller played")
    expect_audio: str | None = Field(None, max_length=130, description="prompt:NAME or a .wav each answered call "
                                                                       "must receive, else the call fails")
    expect_audio_min: float | None = Field(None, gt=0, le=1, description="correlation to reach (default 0.6)")
    srtp: Srtp | None = Field(None, description="off (default): answer plain RTP only; optional: answer SRTP offers "
                                                "with SRTP, plain ones with RTP; mandatory: refuse calls without SRTP")
    srtp_keying: SrtpKeying | None = Field(None, description=(
        "with srtp optional or mandatory, the SRTP keying the callee accepts: sdes (default; keys in the "
        "SDP, RFC 4568) or dtls (DTLS-SRTP, RFC 5763/5764: keys from a DTLS handshake on the media path). "
        "An SRTP offer with the other keying is refused (488); a plain RTP offer is answered with plain "
        "RTP (srtp optional) or refused (srtp mandatory)"))


class LoadActionIn(_Strict):
    """Shaped load: calls per second with a concurrency cap, ramp up / hold / ramp down."""
    type: Literal["load"]
    dial_destination: str = Field(min_length=1, max_length=500)
    cps: float = Field(gt=0, le=1000)
    target_pool: PoolId | None = None
    credential_pool: PoolId | None = None
    max_concurrency: U32 | None = None
    ramp_up_s: U32 | None = None
    hold_s: U32 | None = None
    ramp_down_s: U32 | None = None
    max_total_calls: U32 | None = None
    duration_ms: U32 | None = None
    duration_distribution: Literal["fixed", "uniform", "exponential"] | None = None
    duration_spread_ms: U32 | None = None
    codec: Literal["PCMU", "PCMA", "G722", "GSM", "speex", "iLBC", "opus"] | None = None
    tone_hz: int | None = Field(None, ge=0, le=4000)
    setup_timeout_ms: U32 | None = None
    transport: Transport | None = None
    driver: Literal["pjsua", "sipp"] | None = None
    expect: list[ExpectIn] | None = Expectations
    play_file: str | None = Field(None, max_length=130, examples=["prompt:reference"],
                                  description="speech played by every call instead of the tone: prompt:NAME, "
                                              "silence, or the name of a .wav in the media directory")
    record_sample: float | None = Field(None, ge=0, le=1, description="share of the calls recorded and scored "
                                        "(0..1), picked evenly over the load, within the engine's per-run caps")
    record_max: U32 | None = Field(None, description="at most this many recorded calls of this action")
    impairment: ImpairmentIn | None = Field(None, description="loss, bursts, jitter, delay on each call's media "
                                                              "path (pjsua driver only)")
    srtp: Srtp | None = Field(None, description=SRTP_DOC + " (pjsua driver only)")
    srtp_keying: SrtpKeying | None = Field(None, description=SRTP_KEYING_DOC + " (pjsua driver only)")
    audio_bandwidth: AudioBandwidth | None = Field(None, description=BANDWIDTH_DOC + " (pjsua driver only)")


ActionIn = Annotated[CallActionIn | RegisterActionIn | WaitForCallsActionIn | LoadActionIn,
                     Field(discriminator="type")]
_ACTION_FIELD = {"call": "call", "register": "register", "wait_for_calls": "wait_for_calls", "load": "load"}
_ACTION_MSG = {"call": spec_pb2.CallAction, "register": spec_pb2.RegisterAction,
               "wait_for_calls": spec_pb2.WaitForCallsAction, "load": spec_pb2.LoadAction}


class StepIn(_Strict):
    actions: list[ActionIn] = Field(min_length=1, max_length=50)


class AssertionIn(_Strict):
    metric: Literal["asr", "mos_min", "mos_mean", "setup_p95_ms", "setup_p50_ms", "loss_pct_max", "jitter_ms_max",
                    "acd_s", "mos_p5", "setup_p99_ms", "post_dial_delay_p95_ms", "mos_lqo_min", "mos_lqo_mean"]
    op: Literal[">=", "<=", ">", "<", "=="]
    value: float


def _steps_pb(steps: list[StepIn], spec: spec_pb2.TestSpec) -> None:
    for step in steps:
        s = spec.steps.add()
        for action in step.actions:
            msg = _ACTION_MSG[action.type](**action.model_dump(exclude={"type"}, exclude_none=True))
            getattr(s.actions.add(), _ACTION_FIELD[action.type]).CopyFrom(msg)


ALLOW_UNATTEMPTED = ("By default a run whose planned calls were not all attempted (a load that could not keep "
                     "its rate, a run cut short) fails, naming how many. true: the run is judged on the calls "
                     "it attempted; the shortfall shows in its figures (callsPlanned, callsAttempted).")


class TestIn(_Strict):
    name: str = Field(min_length=1, max_length=200)
    steps: list[StepIn] = Field(min_length=1, max_length=20)
    assertions: list[AssertionIn] = Field(default_factory=list, max_length=50)
    allowUnattemptedCalls: bool = Field(False, description=ALLOW_UNATTEMPTED)
    metadata: Metadata = Field(default_factory=dict)

    def spec(self) -> spec_pb2.TestSpec:
        spec = spec_pb2.TestSpec(allow_unattempted_calls=self.allowUnattemptedCalls)
        _steps_pb(self.steps, spec)
        for a in self.assertions:
            spec.assertions.add(metric=a.metric, op=a.op, value=a.value)
        return spec


class TestPatch(_Strict):
    """Only the fields sent change; `steps` and `assertions` each replace the whole list."""
    name: str | None = Field(None, min_length=1, max_length=200)
    steps: list[StepIn] | None = Field(None, min_length=1, max_length=20)
    assertions: list[AssertionIn] | None = Field(None, max_length=50)
    allowUnattemptedCalls: bool | None = Field(None, description=ALLOW_UNATTEMPTED)
    metadata: Metadata | None = None

    def spec(self) -> spec_pb2.TestSpec:
        spec = spec_pb2.TestSpec()
        _steps_pb(self.steps or [], spec)
        for a in self.assertions or []:
            spec.assertions.add(metric=a.metric, op=a.op, value=a.value)
        return spec


class ProjectPatch(_Strict):
    name: str | None = Field(None, min_length=1, max_length=200)
    slug: str | None = Field(None, pattern=r"^[a-z0-9][a-z0-9-]{0,63}$")
    metadata: Metadata | None = None


class RegistrarIn(_Strict):
    name: str = Field(min_length=1, max_length=200, examples=["Kamailio lab"])
    host: str = Field(min_length=1, max_length=253, examples=["127.0.0.1"])
    port: int | None = Field(None, ge=1, le=65535, description="default 5060, 5061 for tls")
    transport: Transport = "udp"
    domain: str | None = Field(None, max_length=253, description="SIP domain of the users (default: host)")
    tls_verify: bool | None = Field(None, description=TLS_VERIFY_DOC)


class RegistrarPatch(_Strict):
    name: str | None = Field(None, min_length=1, max_length=200)
    host: str | None = Field(None, min_length=1, max_length=253)
    port: int | None = Field(None, ge=1, le=65535)
    transport: Transport | None = None
    domain: str | None = Field(None, max_length=253)
    tls_verify: bool | None = Field(None, description=TLS_VERIFY_DOC)


class CredentialIn(_Strict):
    username: str = Field(min_length=1, max_length=128)
    password: str | None = Field(None, min_length=1, max_length=256,
                                 description="write-only; on update, leave it out to keep the stored one")
    authUsername: str | None = Field(None, max_length=128, description="digest auth user (default: username)")
    domain: str | None = Field(None, max_length=253)


class CredentialPoolIn(_Strict):
    name: str = Field(min_length=1, max_length=200)
    credentials: list[CredentialIn] = Field(min_length=1, max_length=10_000)


class CredentialPoolPatch(_Strict):
    name: str | None = Field(None, min_length=1, max_length=200)
    credentials: list[CredentialIn] | None = Field(None, min_length=1, max_length=10_000)


def _field_json(body, fd):
    value = getattr(body, fd.name)
    if fd.message_type is not None and not fd.is_repeated:  # impairment: an object, or null when absent
        if not body.HasField(fd.name):
            return None
        return {f.name: None if f.has_presence and not value.HasField(f.name) else getattr(value, f.name)
                for f in fd.message_type.fields}
    if fd.message_type is not None:  # expect: a list of {outcome, sip_code}
        return [{f.name: getattr(v, f.name) for f in fd.message_type.fields} for v in value]
    return value


def spec_json(spec: spec_pb2.TestSpec) -> dict:
    steps = []
    for step in spec.steps:
        actions = []
        for action in step.actions:
            kind = action.WhichOneof("kind")
            body = getattr(action, kind)
            actions.append({"type": kind, **{fd.name: _field_json(body, fd) for fd in body.DESCRIPTOR.fields}})
        steps.append({"actions": actions})
    return {"steps": steps,
            "assertions": [{"metric": a.metric, "op": a.op, "value": a.value} for a in spec.assertions],
            "allowUnattemptedCalls": spec.allow_unattempted_calls}
