"""Places calls on the pjsua2 worker pool (the CallPlacer the runner uses)."""

from __future__ import annotations

from callgauge_proto.callgauge.common.v1 import test_spec_pb2 as spec_pb2
from callgauge_proto.callgauge.media.v1 import measurements_pb2 as m_pb2


class PoolPlacer:
    def __init__(self, pool) -> None:
        self.pool = pool

    async def place(self, call_id: str, action: spec_pb2.CallAction) -> m_pb2.CallMeasurement:
        from callgauge_media.engine.pool import CallJob

        job = CallJob(
            call_id=call_id, destination=action.destination, duration_ms=action.duration_ms,
            tone_hz=action.tone_hz, codec=action.codec or "PCMU", setup_timeout_ms=action.setup_timeout_ms or 10000,
            from_user=action.from_user or "callgauge", transport=action.transport or "udp",
        )
        return await self.pool.run_call(job)
