"""A run's calls, a page at a time, from the calls projection: the rows the projector writes, the
page request's checks and the opaque keyset cursor (page_token)."""

from __future__ import annotations

import base64
import hashlib
import json
from dataclasses import dataclass, replace

from callgauge_eventstore import CALL_SORTS, CallQuery, CallRow, EventStore
from callgauge_proto.callgauge.events.v1 import runs_pb2
from callgauge_proto.callgauge.media.v1 import measurements_pb2 as m_pb2

from callgauge_runs.domain.errors import FieldError, Invalid

CALL_RECORDED = runs_pb2.CallRecorded.DESCRIPTOR.full_name
DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE = 100, 1000
SORTS = tuple(s for base in CALL_SORTS for s in (base, f"-{base}"))


def row_of(data: bytes) -> CallRow:
    """The projection row of a stored CallRecorded. Setup time and MOS are measurements of answered
    calls only (MOS also needs media): otherwise they are absent, not 0."""
    ev = runs_pb2.CallRecorded()
    ev.ParseFromString(data)
    c = ev.call
    answered = c.outcome == m_pb2.SUCCESS
    return CallRow(run_id=ev.run_id, call_id=c.call_id, index=c.index, outcome=m_pb2.CallOutcome.Name(c.outcome),
                   sip_code=c.sip_code, setup_ms=c.setup_time_ms if answered else None,
                   mos=c.mos if answered and c.mos > 0 else None, data=c.SerializeToString())


@dataclass(frozen=True)
class PageRequest:
    page_size: int = 0
    page_token: str = ""
    outcomes: tuple[str, ...] = ()
    sip_codes: tuple[int, ...] = ()
    mos_min: float | None = None
    mos_max: float | None = None
    sort: str = ""


@dataclass(frozen=True)
class Page:
    calls: list[m_pb2.CallMeasurement]
    next_page_token: str
    total: int


def _fingerprint(run_id: str, r: PageRequest, sort: str) -> str:
    """What a cursor is only valid for: the run, the filter and the sort it was made with."""
    basis = json.dumps([run_id, sorted(r.outcomes), sorted(r.sip_codes), r.mos_min, r.mos_max, sort])
    return hashlib.sha256(basis.encode()).hexdigest()[:16]


def _token(fingerprint: str, key: tuple[float, int, str]) -> str:
    raw = json.dumps({"f": fingerprint, "k": list(key)}, separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _after(token: str, fingerprint: str) -> tuple[float, int, str]:
    bad = Invalid([FieldError(["page_token"], "not a page token of this run's calls: pass the next_page_token "
                                              "of the previous page unchanged, or none for the first page")])
    try:
        value = json.loads(base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)))
        key, idx, call_id = value["k"]
        if not (isinstance(key, int | float) and isinstance(idx, int) and isinstance(call_id, str)):
            raise bad
        stored = value["f"]
    except Invalid:
        raise
    except Exception:  # not base64, not JSON, not our shape
        raise bad from None
    if stored != fingerprint:
        raise Invalid([FieldError(["page_token"], "this page token was made for another filter or sort: keep "
                                                  "them unchanged while paging, or start again without a token")])
    return key, idx, call_id


def check(run_id: str, r: PageRequest) -> CallQuery:
    """The store query of a page request; Invalid naming every bad field."""
    errors = []
    sort = r.sort or "index"
    if sort not in SORTS:
        errors.append(FieldError(["sort"], "one of " + ", ".join(SORTS)))
    if not 0 <= r.page_size <= MAX_PAGE_SIZE:
        errors.append(FieldError(["page_size"], f"1 to {MAX_PAGE_SIZE} (0: {DEFAULT_PAGE_SIZE})"))
    names = m_pb2.CallOutcome.keys()
    for i, o in enumerate(r.outcomes):
        if o not in names:
            errors.append(FieldError(["outcomes", i], f"{o!r} is not an outcome: one of {', '.join(names)}"))
    for i, code in enumerate(r.sip_codes):
        if not 0 <= code <= 699:
            errors.append(FieldError(["sip_codes", i], "a SIP status code (100 to 699, 0: no answer)"))
    for name, v in (("mos_min", r.mos_min), ("mos_max", r.mos_max)):
        if v is not None and not 0 <= v <= 5:
            errors.append(FieldError([name], "a MOS between 0 and 5"))
    if r.mos_min is not None and r.mos_max is not None and r.mos_min > r.mos_max:
        errors.append(FieldError(["mos_min"], "at most mos_max"))
    if errors:
        raise Invalid(errors)
    fingerprint = _fingerprint(run_id, r, sort)
    after = _after(r.page_token, fingerprint) if r.page_token else None
    return CallQuery(run_id=run_id, outcomes=tuple(dict.fromkeys(r.outcomes)), sip_codes=tuple(set(r.sip_codes)),
                     mos_min=r.mos_min, mos_max=r.mos_max, sort=sort, after=after,
                     limit=r.page_size or DEFAULT_PAGE_SIZE)


async def read_page(store: EventStore, run_id: str, r: PageRequest) -> Page:
    query = check(run_id, r)
    fingerprint = _fingerprint(run_id, r, query.sort)
    rows = await store.read_calls(replace(query, limit=query.limit + 1))  # one more: is there a next page?
    more = len(rows) > query.limit
    rows = rows[:query.limit]
    calls = []
    for _, data in rows:
        c = m_pb2.CallMeasurement()
        c.ParseFromString(data)
        calls.append(c)
    total = await store.count_calls(query)
    return Page(calls, _token(fingerprint, rows[-1][0]) if more else "", total)
