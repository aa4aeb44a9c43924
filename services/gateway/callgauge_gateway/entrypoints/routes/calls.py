"""A run's calls, at any run size: pages with a keyset cursor, filters and sort
(`GET …/test-runs/{runId}/calls`), and exports streamed page by page (`…/calls.csv`,
`…/calls.parquet`). The run itself (`GET …/test-runs/{runId}`) never carries its calls: every
answer here is bounded by the page size, whatever the number of calls.

The cursor is the runs service's opaque keyset token (`ListRunCalls.page_token`): it names the last
call of the page in the page's sort order, so a page boundary stays where it is while the run is
still recording (new calls land after it, or on a later page), and reading page N+1 costs the same
as reading page 1."""

from __future__ import annotations

import asyncio
import csv
import io
import time
from collections.abc import AsyncIterator
from typing import Annotated, Any, Literal
from urllib.parse import urlencode

import grpc
from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import FileResponse, StreamingResponse
from google.protobuf.descriptor import FieldDescriptor

from callgauge_gateway.domain.call_filter import OUTCOMES, SORTS, CallFilter
from callgauge_gateway.domain.proto_json import to_json
from callgauge_gateway.entrypoints.envelope import cursor_page
from callgauge_gateway.entrypoints.deps import Runs, gateway_of
from callgauge_gateway.entrypoints.errors import ApiError
from callgauge_gateway.entrypoints.routes._common import Auth
from callgauge_platform.logs import get_logger
from callgauge_platform.timestamps import datetime_of
from callgauge_platform.recordings import find_recording, safe_name
from callgauge_proto.callgauge.media.v1 import measurements_pb2 as media_pb
from callgauge_proto.callgauge.runs.v1 import runs_service_pb2 as pb

log = get_logger(__name__)
router = APIRouter(prefix="/api/v1", tags=["runs"])

DEFAULT_PAGE, MAX_PAGE = 100, 1000
EXPORT_PAGE = 1000          # calls per ListRunCalls while exporting (one gRPC answer stays small)
ROW_GROUP = 10_000          # Parquet rows per row group: what the gateway holds at once while exporting
_SORT_DOC = "index (default), -index, setupMs, -setupMs, mos, -mos (a leading - sorts descending)"


def _bad(loc: str, msg: str, type_: str = "value_error") -> ApiError:
    return ApiError(422, "The request is not valid: see details", [{"loc": ["query", loc], "msg": msg, "type": type_}])


def _split(values: list[str] | None) -> list[str]:
    """Repeated parameters and comma-separated lists, both: ?outcome=A&outcome=B or ?outcome=A,B."""
    return [v.strip() for raw in values or () for v in raw.split(",") if v.strip()]


def call_filter(
    outcome: Annotated[list[str] | None, Query(description="only calls with this outcome: " + ", ".join(OUTCOMES)
                                               + " (repeat it, or separate with commas)")] = None,
    sip_code: Annotated[list[str] | None, Query(alias="sipCode", description="only calls with this final SIP code "
                                                "(repeat it, or separate with commas)")] = None,
    mos_min: Annotated[float | None, Query(alias="mosMin", ge=0, le=5, description="MOS at least this "
                                           "(calls without a measured MOS are left out)")] = None,
    mos_max: Annotated[float | None, Query(alias="mosMax", ge=0, le=5, description="MOS at most this")] = None,
    sort: Annotated[str, Query(description=_SORT_DOC, max_length=20)] = "index",
) -> CallFilter:
    outcomes = [o.upper() for o in _split(outcome)]
    for o in outcomes:
        if o not in OUTCOMES:
            raise _bad("outcome", f"{o!r} is not an outcome: one of {', '.join(OUTCOMES)}", "enum")
    codes: list[int] = []
    for c in _split(sip_code):
        if not c.isdigit() or not 100 <= int(c) <= 699:
            raise _bad("sipCode", f"{c!r} is not a SIP status code (100-699)")
        codes.append(int(c))
    if len(outcomes) > 20 or len(codes) > 100:
        raise _bad("outcome" if len(outcomes) > 20 else "sipCode", "too many values")
    if mos_min is not None and mos_max is not None and mos_min > mos_max:
        raise _bad("mosMin", f"mosMin ({mos_min}) is above mosMax ({mos_max})")
    if sort not in SORTS:
        raise _bad("sort", f"{sort!r}: sort by {_SORT_DOC}", "enum")
    return CallFilter(sorted(set(outcomes)), sorted(set(codes)), mos_min, mos_max, SORTS[sort])


Filter = Annotated[CallFilter, Depends(call_filter)]


def call_json(c: media_pb.CallMeasurement) -> dict[str, Any]:
    """A call as the API shows it: unmeasured values are null."""
    return to_json(c)


@router.get(
    "/projects/{project_id}/test-runs/{run_id}/calls",
    summary="A run's calls, a page at a time (keyset cursor), filtered and sorted",
    description="Pages of the run's call measurements. `meta.pagination`: `perPage`, `total` (calls matching the "
                "filters), `cursor` (the one you sent, or null for the first page) and `nextCursor` (opaque; pass "
                "it as `cursor` for the next page; null on the last page); `meta.links.next` is that URL. A cursor "
                "belongs to its filters and sort: send them again with it. While a run is still being recorded, "
                "pages already read keep their calls (new calls only ever appear after the cursor in index order). "
                "Unmeasured values (e.g. MOS of a SIPp-driven call) are null. The whole list: `…/calls.csv` or "
                "`…/calls.parquet`.")
async def list_calls(project_id: str, run_id: str, request: Request, who: Auth, runs: Runs, filters: Filter,
                     cursor: Annotated[str | None, Query(max_length=2000, description="`nextCursor` of the "
                                                         "previous page; leave out for the first page")] = None,
                     per_page: Annotated[int | None, Query(alias="perPage", ge=1, le=MAX_PAGE)] = None,
                     limit: Annotated[int | None, Query(ge=1, le=MAX_PAGE, description="alias of perPage")] = None):
    size = per_page or limit or DEFAULT_PAGE
    resp = await runs.ListRunCalls(filters.request(who.account_id, who.mode, project_id, run_id, size,
                                                                       cursor or ""))
    next_url = None
    if resp.next_page_token:
        query = {**filters.params(), "perPage": size, "cursor": resp.next_page_token}
        next_url = f"{request.url.path}?{urlencode(query)}"
    return cursor_page([call_json(c) for c in resp.calls], size, resp.total, cursor or None,
                       resp.next_page_token or None, next_url)


# ------------------------------------------------------------------ exports

def _columns() -> list[FieldDescriptor]:
    """The exported columns: every scalar, enum and timestamp field of a call (not the SIP ladder)."""
    return [fd for fd in media_pb.CallMeasurement.DESCRIPTOR.fields
            if not fd.is_repeated and (fd.type != FieldDescriptor.TYPE_MESSAGE
                                       or fd.message_type.full_name == "google.protobuf.Timestamp")]


COLUMNS = _columns()


def _value(c: media_pb.CallMeasurement, fd: FieldDescriptor) -> Any:
    """A cell: None when the value was not measured (an optional field that is absent, an absent
    timestamp), enums by name, timestamps as datetimes."""
    if fd.has_presence and not c.HasField(fd.name):
        return None
    v = getattr(c, fd.name)
    if fd.type == FieldDescriptor.TYPE_ENUM:
        return fd.enum_type.values_by_number[v].name if v in fd.enum_type.values_by_number else str(v)
    if fd.type == FieldDescriptor.TYPE_MESSAGE:
        return datetime_of(v)
    return v


_BLANK = media_pb.CallMeasurement()
_COLUMN_OF = {fd.number: (i, fd) for i, fd in enumerate(COLUMNS)}
_DEFAULTS = [_value(_BLANK, fd) for fd in COLUMNS]  # each cell of a call with nothing set


def _row(c: media_pb.CallMeasurement, blank: list[Any], cell) -> list[Any]:
    """A row of COLUMNS: `blank` (the row of a call with nothing set) with `cell(c, fd, value)` in
    the columns of the fields the call has set (ListFields: a dozen of the 46, in C), several times
    faster on a 300,000-call export than reading every column off the call."""
    row = list(blank)
    for fd, v in c.ListFields():
        hit = _COLUMN_OF.get(fd.number)
        if hit is not None:
            row[hit[0]] = cell(c, hit[1], v)
    return row


def _cells(c: media_pb.CallMeasurement) -> list[Any]:
    """[_value(c, fd) for fd in COLUMNS]."""
    return _row(c, _DEFAULTS, lambda c, fd, v: _value(c, fd))


async def _all_pages(stub, first: pb.ListRunCallsResponse, req: pb.ListRunCallsRequest
                     ) -> AsyncIterator[list[media_pb.CallMeasurement]]:
    """The pages after a first one already fetched (so that a bad request answers in the envelope
    before the export starts), each bounded. The next page is asked for while the current one is
    written out (the runs service reads while the gateway formats): two pages at most at a time."""
    resp, pending = first, None
    try:
        while True:
            if resp.next_page_token:
                nxt = pb.ListRunCallsRequest()
                nxt.CopyFrom(req)
                nxt.page_token = resp.next_page_token
                pending = asyncio.ensure_future(stub.ListRunCalls(nxt))
            yield list(resp.calls)
            if pending is None:
                return
            try:
                resp = await pending
            except grpc.aio.AioRpcError as exc:  # the response has started: all we can do is cut it short
                log.error("calls_export_aborted", run_id=req.run_id, code=str(exc.code()),
                          details=exc.details())
                raise
            pending = None
    finally:
        if pending is not None and not pending.done():  # the client went away mid-export
            pending.cancel()


def _csv_cell(v: Any) -> Any:
    if v is None:
        return ""
    if isinstance(v, bool):
        return "true" if v else "false"
    if hasattr(v, "isoformat"):
        return v.isoformat().replace("+00:00", "Z")
    return v


_CSV_DEFAULTS = [_csv_cell(v) for v in _DEFAULTS]


def _csv_time(ts) -> str:
    """_csv_cell(datetime_of(ts)) without the datetime: "2026-12-07T01:30:00.123456Z" (no fraction
    when it is 0), as isoformat writes it."""
    us = ts.nanos // 1000
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(ts.seconds)) + (f".{us:06d}Z" if us else "Z")


def _csv_value(c: media_pb.CallMeasurement, fd: FieldDescriptor, v: Any) -> Any:
    return _csv_time(v) if fd.type == FieldDescriptor.TYPE_MESSAGE else _csv_cell(_value(c, fd))


def _csv_row(c: media_pb.CallMeasurement) -> list[Any]:
    """[_csv_cell(_value(c, fd)) for fd in COLUMNS]."""
    return _row(c, _CSV_DEFAULTS, _csv_value)


async def _csv(pages: AsyncIterator[list[media_pb.CallMeasurement]]) -> AsyncIterator[bytes]:
    buf = io.StringIO()
    out = csv.writer(buf, lineterminator="\n")
    out.writerow([fd.json_name for fd in COLUMNS])
    async for calls in pages:
        out.writerows(_csv_row(c) for c in calls)
        yield buf.getvalue().encode()
        buf.seek(0)
        buf.truncate()
    if buf.tell():
        yield buf.getvalue().encode()


def _arrow_schema():
    import pyarrow as pa

    types = {FieldDescriptor.TYPE_STRING: pa.string(), FieldDescriptor.TYPE_ENUM: pa.string(),
             FieldDescriptor.TYPE_BOOL: pa.bool_(), FieldDescriptor.TYPE_DOUBLE: pa.float64(),
             FieldDescriptor.TYPE_FLOAT: pa.float32(), FieldDescriptor.TYPE_UINT32: pa.uint32(),
             FieldDescriptor.TYPE_UINT64: pa.uint64(), FieldDescriptor.TYPE_INT32: pa.int32(),
             FieldDescriptor.TYPE_INT64: pa.int64(), FieldDescriptor.TYPE_MESSAGE: pa.timestamp("us", tz="UTC")}
    return pa.schema([pa.field(fd.json_name, types[fd.type]) for fd in COLUMNS])


class _Chunks:
    """A write-only file for pyarrow that hands out what was written since the last take()."""

    def __init__(self) -> None:
        self.parts: list[bytes] = []
        self.closed = False

    def write(self, data) -> int:
        self.parts.append(bytes(data))
        return len(data)

    def flush(self) -> None:
        pass

    def close(self) -> None:
        self.closed = True

    def take(self) -> bytes:
        out, self.parts = b"".join(self.parts), []
        return out


async def _parquet(pages: AsyncIterator[list[media_pb.CallMeasurement]]) -> AsyncIterator[bytes]:
    """Parquet written one row group (ROW_GROUP calls) at a time, each sent as soon as it is written."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    schema = _arrow_schema()
    sink = _Chunks()
    writer = pq.ParquetWriter(sink, schema, compression="zstd")
    rows: dict[str, list] = {fd.json_name: [] for fd in COLUMNS}
    columns = list(rows.values())  # in COLUMNS' order
    held = 0

    def flush() -> bytes:
        nonlocal held
        writer.write_table(pa.Table.from_pydict(rows, schema=schema), row_group_size=max(held, 1))
        for v in rows.values():
            v.clear()
        held = 0
        return sink.take()

    async for calls in pages:
        for c in calls:
            for column, v in zip(columns, _cells(c), strict=True):
                column.append(v)
        held += len(calls)
        if held >= ROW_GROUP:
            yield flush()
    if held:
        yield flush()
    writer.close()
    yield sink.take()


_EXPORTS = {"csv": ("text/csv; charset=utf-8", _csv), "parquet": ("application/vnd.apache.parquet", _parquet)}


async def _export(fmt: str, project_id: str, run_id: str, request: Request, who, filters: CallFilter):
    stub = gateway_of(request).services.runs
    req = filters.request(who.account_id, who.mode, project_id, run_id, EXPORT_PAGE, "")
    first = await stub.ListRunCalls(req)  # 404/422 here still answer in the envelope
    media_type, writer = _EXPORTS[fmt]
    return StreamingResponse(writer(_all_pages(stub, first, req)), media_type=media_type, headers={
        "Content-Disposition": f'attachment; filename="run-{run_id}-calls.{fmt}"',
        "X-Total-Count": str(first.total), "Cache-Control": "no-store"})


_EXPORT_DOC = ("Every call of the run (with the same filters and sort as `…/calls`), streamed: the gateway reads "
               f"the calls {EXPORT_PAGE} at a time and never holds the whole run. Columns are the call's fields as "
               "named in `…/calls` (not the SIP ladder); an unmeasured value is {null}. `X-Total-Count`: calls "
               "matching when the export started (a run still recording may add more).")


@router.get("/projects/{project_id}/test-runs/{run_id}/calls.csv", summary="Export a run's calls as CSV (streamed)",
            description=_EXPORT_DOC.format(null="an empty cell"),
            responses={200: {"content": {"text/csv": {"schema": {"type": "string"}}}}})
async def export_csv(project_id: str, run_id: str, request: Request, who: Auth, filters: Filter):
    return await _export("csv", project_id, run_id, request, who, filters)


@router.get("/projects/{project_id}/test-runs/{run_id}/calls.parquet",
            summary="Export a run's calls as Parquet (streamed, row groups of 10,000 calls)",
            description=_EXPORT_DOC.format(null="a Parquet null") + " Compressed with zstd; timestamps in UTC.",
            responses={200: {"content": {"application/vnd.apache.parquet": {
                "schema": {"type": "string", "format": "binary"}}}}})
async def export_parquet(project_id: str, run_id: str, request: Request, who: Auth, filters: Filter):
    return await _export("parquet", project_id, run_id, request, who, filters)


# ------------------------------------------------------------------ recordings

Leg = Annotated[Literal["caller", "callee"], Query(description="caller: what the calling side received; callee: "
                                                             "what our wait_for_calls user received")]


def recording_response(request: Request, run_id: str, call_id: str, leg: str) -> FileResponse:
    """The WAV of one leg of one call of ``run_id`` (whose access was checked), or a 404."""
    path = find_recording(gateway_of(request).settings.data_dir, run_id, call_id, leg)
    if path is None:
        raise ApiError(404, f"No {leg} recording of call {call_id!r} in this run: record it with `record: true` "
                            "(call / wait_for_calls), `expect_audio`, or a load's `record_sample`; recordings are "
                            "deleted after the media engine's retention", code="NOT_FOUND")
    return FileResponse(path, media_type="audio/wav", filename=f"{safe_name(call_id)}.{leg}.wav",
                        content_disposition_type="inline", headers={"Cache-Control": "private, no-store",
                                                                    "X-Content-Type-Options": "nosniff"})


@router.get(
    "/projects/{project_id}/test-runs/{run_id}/calls/{call_id}/audio",
    summary="A call's recording (WAV), the caller's or the callee's leg",
    response_class=FileResponse,
    responses={200: {"content": {"audio/wav": {}}, "description": "16-bit PCM mono WAV at 8 kHz"},
               404: {"description": "no such run in this account, or no recording of that leg of that call"}},
    description="What one side of the call received, as recorded by the media engine (`recordedLegs` of the call "
                "lists the legs there are): `leg=caller` (default), or `leg=callee` for a call answered by a "
                "`wait_for_calls` with `record`. A run of another account, a call without a recording, and a "
                "recording past the retention are all 404 in the error envelope.")
async def call_audio(project_id: str, run_id: str, call_id: str, request: Request, who: Auth, runs: Runs,
                     leg: Leg = "caller") -> FileResponse:
    run = await runs.GetRun(pb.GetRunRequest(account_id=who.account_id, mode=who.mode,
                                                           project_id=project_id, run_id=run_id))
    return recording_response(request, run.id, call_id, leg)
