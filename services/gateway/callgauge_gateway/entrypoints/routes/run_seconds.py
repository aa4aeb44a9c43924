"""A run's per-second statistics (the media engines' RunSecondStats the runs service keeps): the
series behind the report's charts, for dashboards and scripts."""

from __future__ import annotations

from fastapi import APIRouter

from callgauge_gateway.domain.proto_json import to_json
from callgauge_gateway.entrypoints.envelope import ok
from callgauge_gateway.entrypoints.deps import Runs
from callgauge_gateway.entrypoints.routes._common import Auth
from callgauge_proto.callgauge.runs.v1 import runs_service_pb2 as pb

router = APIRouter(prefix="/api/v1", tags=["runs"])


@router.get("/projects/{project_id}/test-runs/{run_id}/seconds",
            summary="A run's statistics second by second (one entry per media engine and second, by time)",
            description="Each entry: `second` (since that engine started the run's media), `at`, `activeCalls`, "
                        "`attempts`, `answers`, `failures`, `callsEnded`, `jitterMsMean`, `jitterMsMax`, `lossPct`, "
                        "`rxPackets`, `lostPackets`, `engineId`, `driver`. Empty for a run with no media yet.")
async def run_seconds(project_id: str, run_id: str, who: Auth, runs: Runs):
    stub = runs
    run = await stub.GetRun(pb.GetRunRequest(account_id=who.account_id, mode=who.mode, project_id=project_id,
                                             run_id=run_id))
    resp = await stub.GetRunSeconds(pb.GetRunSecondsRequest(account_id=who.account_id, mode=who.mode, run_id=run.id))
    return ok([{k: v for k, v in to_json(s).items() if k != "runId"} for s in resp.seconds])
