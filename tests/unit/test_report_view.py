"""What the run report shows, from a run's JSON and its per-second statistics (pure)."""

from __future__ import annotations

from callgauge_gateway.domain import report_view as view


def _call(i, outcome, start, end, setup_ms=100.0, mos=4.3, jitter=1.0, loss=0.0, code=200):
    return {"index": i, "outcome": outcome, "sipCode": code, "startedAt": start, "endedAt": end,
            "setupTimeMs": setup_ms, "mos": mos if outcome == "SUCCESS" else 0, "jitterMs": jitter, "lossPct": loss}


CALLS = [
    _call(0, "SUCCESS", "2026-01-01T00:00:00.200Z", "2026-01-01T00:00:03.500Z", jitter=2.0),
    _call(1, "SUCCESS", "2026-01-01T00:00:01.100Z", "2026-01-01T00:00:02.200Z", mos=4.1, jitter=4.0, loss=1.0),
    _call(2, "CALL_FAILED", "2026-01-01T00:00:02.000Z", "2026-01-01T00:00:02.100Z", code=486),
]


def test_series_derived_from_calls():
    s = view.series_from_calls(CALLS)
    assert s["t"] == [0, 1, 2, 3]
    assert s["attempts"] == [1, 1, 1, 0]
    assert s["answers"] == [1, 1, 0, 0]
    assert s["failures"] == [0, 0, 1, 0]
    assert s["active"] == [1, 2, 2, 1]
    assert s["jitterMax"] == [2.0, 4.0, 4.0, 2.0]
    assert s["mos"][1] == 4.2 and s["mos"][3] == 4.3
    assert view.series_from_calls([]) is None


def test_series_from_second_stats_merges_engines():
    seconds = [
        {"at": "2026-01-01T00:00:00Z", "activeCalls": 2, "attempts": 2, "answers": 2, "rxPackets": 100,
         "lostPackets": 0, "jitterMsMean": 1.0, "jitterMsMax": 2.0},
        {"at": "2026-01-01T00:00:00Z", "activeCalls": 1, "attempts": 1, "answers": 0, "failures": 1,
         "rxPackets": 50, "lostPackets": 50, "jitterMsMean": 3.0, "jitterMsMax": 5.0},
        {"at": "2026-01-01T00:00:02Z", "activeCalls": 0, "attempts": 0},
    ]
    s = view.series_from_seconds(seconds, CALLS)
    assert s["t"] == [0, 1, 2]
    assert s["active"] == [3, 0, 0] and s["attempts"] == [3, 0, 0] and s["failures"] == [1, 0, 0]
    assert s["jitterMean"][0] == 2.0 and s["jitterMax"][0] == 5.0
    assert s["lossPct"][0] == 25.0 and s["jitterMean"][1] is None  # a second with no report is a gap
    assert s["mos"][2] == 4.1  # call 1 ended in second 2 (wall clock) — MOS of the calls that ended then


def test_build_prefers_second_stats_and_evaluates_assertions():
    run = {"id": "r", "status": "FAILED", "passed": False,
           "summary": {"callsAttempted": 3, "callsAnswered": 2, "asr": 2 / 3, "mosMin": 4.1,
                       "sipCodes": {"200": 2, "486": 1}, "outcomes": {"SUCCESS": 2, "CALL_FAILED": 1}},
           "startedAt": "2026-01-01T00:00:00Z", "stoppedAt": "2026-01-01T00:00:04Z"}
    ctx = view.build(run, [{"metric": "asr", "op": ">=", "value": 1.0}], [], failed=[CALLS[2]], failed_total=1,
                     sample=CALLS)
    assert ctx["series_source"].startswith("derived") and ctx["duration_s"] == 4.0
    assert [a.passed for a in ctx["assertions"]] == [False]
    # the histograms are the run's (its summary), not those of the calls the page happens to hold
    assert ctx["sip_codes"] == {"200": 2, "486": 1} and ctx["outcomes"] == {"CALL_FAILED": 1, "SUCCESS": 2}
    assert [c["index"] for c in ctx["failed_calls"]] == [2] and ctx["failed_total"] == 1
    ctx = view.build(run, None, [{"at": "2026-01-01T00:00:00Z", "activeCalls": 1}])
    assert "per-second" in ctx["series_source"] and ctx["assertions"] == []
    assert view.build(run, None, None)["series"] is None  # a big run (no sample) without statistics: no chart


def test_pages_render_for_a_run_in_any_state():
    from callgauge_gateway.entrypoints.reports.routes import _page

    running = {"id": "r", "status": "RUNNING", "testName": "t", "calls": [], "summary": None}
    for run, seconds in ((running, []), ({**running, "status": "PENDING", "startedAt": None}, None),
                         ({"id": "r", "status": "COMPLETED", "passed": True, "calls": CALLS,
                           "summary": {"callsAttempted": 3}}, [])):
        ctx = view.build(run, [{"metric": "asr", "op": ">=", "value": 1}], seconds)
        resp = _page("report.html", kiosk=False, can_stop=True, **ctx)
        assert resp.status_code == 200 and b'id="verdict"' in resp.body
        assert resp.headers["content-security-policy"].startswith("default-src 'none'")
    assert b'http-equiv="refresh"' in _page("report.html", kiosk=True, can_stop=False,
                                            **view.build(running, None, None)).body
    assert b'id="fig-registrations"' not in resp.body  # a run without registrations does not show them
    registered = {"id": "r", "status": "COMPLETED", "passed": True, "calls": [], "summary": {
        "registrationsOk": 2, "registrationsFailed": 1, "registerP50Ms": 4.5, "registerP95Ms": 9.5}}
    body = _page("report.html", kiosk=False, can_stop=False, **view.build(registered, None, None)).body.decode()
    assert "2 ok / 1 failed" in body and "4.5 ms / 9.5 ms" in body, body


def test_the_table_is_the_page_it_is_given_and_ladders_are_bounded():
    many = [_call(i, "CALL_FAILED", "2026-01-01T00:00:00Z", "2026-01-01T00:00:01Z", code=503)
            for i in range(view.MAX_LADDERS + 10)]
    page = {"calls": many[:view.TABLE_PAGE], "total": 250_000, "nextUrl": "/reports/runs/r?cursor=abc",
            "firstUrl": None, "outcome": "", "sort": "index"}
    ctx = view.build({"id": "r", "status": "FAILED", "summary": {}}, None, None, page, many, 250_000)
    assert ctx["calls"] == many[:view.TABLE_PAGE] and ctx["calls_total"] == 250_000
    assert len(ctx["failed_calls"]) == view.MAX_LADDERS and ctx["failed_total"] == 250_000
