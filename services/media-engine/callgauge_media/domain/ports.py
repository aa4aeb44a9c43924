"""The engine's ports: what the runner asks of the parts that place calls. The concrete ones (the
pjsua2 worker pool, the SIPp driver) are chosen and wired in :mod:`callgauge_media.bootstrap`."""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol

from callgauge_proto.callgauge.common.v1 import test_spec_pb2 as spec_pb2
from callgauge_proto.callgauge.media.v1 import measurements_pb2 as m_pb2

if TYPE_CHECKING:
    from callgauge_media.domain.run_state import RunState


class CallPlacer(Protocol):
    async def place(self, call_id: str, action: spec_pb2.CallAction) -> m_pb2.CallMeasurement:
        """Place one call as the action says and measure it. Failures of the call are a
        measurement with an outcome, not an exception."""


class LoadDriver(Protocol):
    """Carries out the load actions whose ``driver`` is its name (``pjsua``, ``sipp``)."""

    # True: the driver reports the load's RunSecondStats itself and adds its own RunSummary to
    # state.driver_summaries (SIPp); False: its calls are the engine's own, counted call by call
    own_figures: bool

    def prepare(self) -> list[str]:
        """Housekeeping when the engine starts (e.g. removing what an engine killed mid-run left
        behind); returns what was cleaned up, for the log."""

    async def run_load(self, state: RunState, si: int, ai: int, load: spec_pb2.LoadAction,
                       placer: CallPlacer | None, *, shard: int = 0, shards: int = 1) -> None:
        """Place the load action's calls (only ``index % shards == shard`` of a sharded run),
        reporting them on ``state``; failures of calls are measurements, a failure of the driver
        (a UserError: the run's error) is raised."""
