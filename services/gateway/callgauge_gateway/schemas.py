"""Request bodies. Unknown fields are rejected (a typo must not be silently ignored)."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from callgauge_proto.callgauge.common.v1 import test_spec_pb2 as spec_pb2

Metadata = dict[str, str]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ProjectIn(_Strict):
    name: str = Field(min_length=1, max_length=200, examples=["Production PBX"])
    slug: str | None = Field(None, pattern=r"^[a-z0-9][a-z0-9-]{0,63}$")
    metadata: Metadata = Field(default_factory=dict)


class CallActionIn(_Strict):
    type: Literal["call"]
    dial_destination: str = Field(min_length=5, max_length=500, examples=["sip:echo@127.0.0.1:5070"])
    duration_ms: int = Field(5000, ge=0, le=3_600_000, description="talk time after answer")
    tone_hz: int = Field(440, ge=0, le=4000, description="tone sent during the call; 0 = silence")
    codec: Literal["PCMU", "PCMA", "G722", "GSM", "speex", "iLBC"] = "PCMU"
    setup_timeout_ms: int = Field(10000, ge=100, le=300_000)
    max_total_calls: int = Field(1, ge=1, le=100_000)
    concurrency: int = Field(1, ge=1, le=10_000)
    from_user: str = Field("callgauge", min_length=1, max_length=64, pattern=r"^[A-Za-z0-9._+\-]+$")
    transport: Literal["udp", "tcp"] = "udp"


class StepIn(_Strict):
    actions: list[CallActionIn] = Field(min_length=1, max_length=50)


class AssertionIn(_Strict):
    metric: Literal["asr", "mos_min", "mos_mean", "setup_p95_ms", "setup_p50_ms", "loss_pct_max", "jitter_ms_max",
                    "acd_s", "mos_p5", "setup_p99_ms", "post_dial_delay_p95_ms"]
    op: Literal[">=", "<=", ">", "<", "=="]
    value: float


class TestIn(_Strict):
    name: str = Field(min_length=1, max_length=200)
    steps: list[StepIn] = Field(min_length=1, max_length=20)
    assertions: list[AssertionIn] = Field(default_factory=list, max_length=50)
    metadata: Metadata = Field(default_factory=dict)

    def spec(self) -> spec_pb2.TestSpec:
        spec = spec_pb2.TestSpec()
        for step in self.steps:
            s = spec.steps.add()
            for action in step.actions:
                s.actions.add().call.CopyFrom(spec_pb2.CallAction(**action.model_dump(exclude={"type"})))
        for a in self.assertions:
            spec.assertions.add(metric=a.metric, op=a.op, value=a.value)
        return spec


class RunIn(_Strict):
    metadata: Metadata = Field(default_factory=dict)
    tags: list[str] = Field(default_factory=list, max_length=20)


def spec_json(spec: spec_pb2.TestSpec) -> dict:
    steps = []
    for step in spec.steps:
        actions = []
        for action in step.actions:
            kind = action.WhichOneof("kind")
            body = getattr(action, kind)
            actions.append({"type": kind, **{fd.name: getattr(body, fd.name) for fd in body.DESCRIPTOR.fields}})
        steps.append({"actions": actions})
    return {"steps": steps,
            "assertions": [{"metric": a.metric, "op": a.op, "value": a.value} for a in spec.assertions]}
