"""Which calls of a run to read, and in which order: the filter a calls page, an export and a
report's table share, as the runs service's ListRunCalls request (pure)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from callgauge_proto.callgauge.media.v1 import measurements_pb2 as media_pb
from callgauge_proto.callgauge.runs.v1 import runs_service_pb2 as pb

OUTCOMES = tuple(n for n in media_pb.CallOutcome.keys() if n != "CALL_OUTCOME_UNSPECIFIED")
FAILED_OUTCOMES = [n for n in OUTCOMES if n != "SUCCESS"]
# REST spelling -> ListRunCalls.sort
SORTS = {"index": "index", "-index": "-index", "setupMs": "setup_ms", "-setupMs": "-setup_ms",
         "setup_ms": "setup_ms", "-setup_ms": "-setup_ms", "mos": "mos", "-mos": "-mos"}


@dataclass(frozen=True)
class CallFilter:
    outcomes: list[str] = field(default_factory=list)
    sip_codes: list[int] = field(default_factory=list)
    mos_min: float | None = None
    mos_max: float | None = None
    sort: str = "index"

    def params(self) -> dict[str, Any]:
        """The filter as query parameters (for the next page's link)."""
        out: dict[str, Any] = {}
        if self.outcomes:
            out["outcome"] = ",".join(self.outcomes)
        if self.sip_codes:
            out["sipCode"] = ",".join(map(str, self.sip_codes))
        if self.mos_min is not None:
            out["mosMin"] = self.mos_min
        if self.mos_max is not None:
            out["mosMax"] = self.mos_max
        if self.sort != "index":
            out["sort"] = next(k for k, v in SORTS.items() if v == self.sort)
        return out

    def request(self, account_id: str, mode: str, project_id: str, run_id: str, page_size: int,
                cursor: str) -> pb.ListRunCallsRequest:
        req = pb.ListRunCallsRequest(account_id=account_id, mode=mode, project_id=project_id, run_id=run_id,
                                     page_size=page_size, page_token=cursor, outcomes=self.outcomes,
                                     sip_codes=self.sip_codes, sort=self.sort)
        if self.mos_min is not None:
            req.mos_min = self.mos_min
        if self.mos_max is not None:
            req.mos_max = self.mos_max
        return req
