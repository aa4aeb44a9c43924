"""The Python client's pure parts: retry policy, Retry-After parsing, typed errors from the
envelope, run bodies, assertion verdicts, the CLI's --set parsing and its JUnit file (checked
with junitparser)."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from email.utils import format_datetime

import httpx
import pytest
from junitparser import Failure, JUnitXml

from callgauge_cli import junit
from callgauge_client import (
    ApiError,
    CallMeasurement,
    NotFound,
    RateLimited,
    RetryPolicy,
    Run,
    ServerError,
    ValidationFailed,
    evaluate_assertions,
    run_body,
)
from callgauge_client._base import normalise_url
from callgauge_client.errors import error_from_response, parse_retry_after


def _resp(status: int, body=None, headers=None, text=None) -> httpx.Response:
    req = httpx.Request("POST", "http://gw/api/v1/projects")
    if body is not None:
        return httpx.Response(status, json=body, headers=headers, request=req)
    return httpx.Response(status, text=text or "", headers=headers, request=req)


def test_retry_after_seconds_and_http_date():
    assert parse_retry_after("3") == 3.0
    assert parse_retry_after(" 0 ") == 0.0
    assert parse_retry_after(None) is None
    assert parse_retry_after("soon") is None
    later = format_datetime(datetime.now(timezone.utc) + timedelta(seconds=30), usegmt=True)
    assert 25 <= parse_retry_after(later) <= 31


def test_retry_policy_is_bounded():
    policy = RetryPolicy(max_retries=2, max_wait=10)
    r429 = _resp(429, {"error": {}}, {"Retry-After": "2"})
    assert policy.wait_for(r429, 0) == 2.0
    assert policy.wait_for(r429, 1) == 2.0
    assert policy.wait_for(r429, 2) is None          # out of retries
    assert policy.wait_for(_resp(429, {}, {"Retry-After": "60"}), 0) is None  # asks too much: surface it
    assert policy.wait_for(_resp(400, {}), 0) is None
    assert 0 < policy.wait_for(_resp(503, {}), 0) <= 1.0  # no Retry-After: short backoff


def test_errors_are_typed_and_carry_the_envelope():
    body = {"error": {"code": "VALIDATION_ERROR", "message": "The request is not valid: see details",
                      "details": [{"loc": ["body", "name"], "msg": "Field required", "type": "missing"}]},
            "meta": {"requestId": "rid-1"}}
    exc = error_from_response(_resp(422, body))
    assert isinstance(exc, ValidationFailed) and isinstance(exc, ApiError)
    assert (exc.status, exc.code, exc.request_id) == (422, "VALIDATION_ERROR", "rid-1")
    assert exc.details[0]["loc"] == ["body", "name"]
    assert "body.name: Field required" in str(exc) and "POST /api/v1/projects" in str(exc)
    assert isinstance(error_from_response(_resp(404, {"error": {"code": "NOT_FOUND", "message": "x"}})), NotFound)
    limited = error_from_response(_resp(429, {"error": {"code": "RATE_LIMITED", "message": "slow"}},
                                        {"Retry-After": "7"}))
    assert isinstance(limited, RateLimited) and limited.retry_after == 7.0
    plain = error_from_response(_resp(502, text="<html>bad gateway</html>"))
    assert isinstance(plain, ServerError) and plain.status == 502 and "bad gateway" in plain.message


def test_run_body_uses_sipfront_flat_keys():
    body = run_body({"1.0.dial_destination": "sip:a@b", "step.0.0.max_total_calls": 3}, tags=["ci"], kiosk=True,
                    test_name="smoke")
    assert body == {"test.name": "smoke", "step.1.0.dial_destination": "sip:a@b", "step.0.0.max_total_calls": 3,
                    "report.mode": "kiosk", "tags": ["ci"]}


def test_base_url_is_normalised():
    assert normalise_url("127.0.0.1:8080/api/v1/") == "http://127.0.0.1:8080"
    assert normalise_url("https://cg.example.org") == "https://cg.example.org"


def test_assertion_verdicts_from_summary():
    summary = {"callsAttempted": 4, "asr": 0.75, "mosMin": 4.1, "setupP95Ms": 120.0}
    res = evaluate_assertions([{"metric": "asr", "op": ">=", "value": 1.0},
                               {"metric": "mos_min", "op": ">=", "value": 4.0},
                               {"metric": "setup_p95_ms", "op": "<", "value": 100}], summary)
    assert [(r.name, r.passed) for r in res] == [("asr >= 1", False), ("mos_min >= 4", True),
                                                 ("setup_p95_ms < 100", False)]
    assert res[0].actual == 0.75
    acd = evaluate_assertions([{"metric": "acd_s", "op": ">=", "value": 2}], {"callsAttempted": 1, "acdMs": 2500})
    assert acd[0].actual == 2.5 and acd[0].passed
    # no calls measured: nothing held; no assertions: the service's default (every call answered)
    assert evaluate_assertions([{"metric": "asr", "op": ">=", "value": 0}], {"callsAttempted": 0})[0].passed is False
    assert evaluate_assertions([], summary)[0].name == "asr >= 1"


def _run(**kw) -> Run:
    base = {"id": "run-1", "testName": "Smoke call", "status": "FAILED", "passed": False,
            "resultDescription": "assertion failed: asr >= 1 (0.5)",
            "startedAt": "2026-01-01T00:00:00Z", "stoppedAt": "2026-01-01T00:00:10Z",
            "summary": {"callsAttempted": 2, "callsAnswered": 1, "asr": 0.5, "mosMean": 4.3}}
    return Run.model_validate({**base, **kw})


# the run's failed calls, as GET …/calls?outcome=… answers them (the run JSON carries no calls)
FAILED = [CallMeasurement.model_validate({
    "index": 1, "outcome": "CALL_FAILED", "sipCode": 486, "sipReason": "Busy Here", "destination": "sip:a@b",
    "detail": "callee busy", "setupTimeMs": None,
    "sipLadder": [{"direction": "out", "summary": "INVITE sip:a@b"}, {"direction": "in", "summary": "SIP/2.0 486 Busy Here"}]})]


def test_junit_file_has_one_case_per_assertion_and_failed_call(tmp_path):
    run = _run()
    results = evaluate_assertions([{"metric": "asr", "op": ">=", "value": 1.0},
                                   {"metric": "mos_mean", "op": ">=", "value": 4.0}], run.summary)
    path = tmp_path / "report.xml"
    junit.write(path, run, results, FAILED, failed_total=1)
    xml = JUnitXml.fromfile(str(path))
    suites = list(xml)
    assert len(suites) == 1 and suites[0].name == "Smoke call"
    cases = {c.name: c for c in suites[0]}
    assert set(cases) == {"asr >= 1", "mos_mean >= 4", "call 1 (step 0, action 0) to sip:a@b"}
    assert cases["mos_mean >= 4"].is_passed
    failure = cases["call 1 (step 0, action 0) to sip:a@b"].result[0]
    assert isinstance(failure, Failure) and failure.type == "CALL_FAILED" and "486" in failure.message
    assert "SIP/2.0 486 Busy Here" in failure.text
    assert suites[0].failures == 2 and suites[0].tests == 3


def test_junit_names_a_failed_run_even_without_failed_assertions(tmp_path):
    run = _run(summary={"callsAttempted": 0}, resultDescription="media engine: no worker")
    path = tmp_path / "r.xml"
    junit.write(path, run, [])
    (suite,) = list(JUnitXml.fromfile(str(path)))
    (case,) = list(suite)
    assert case.name == "run" and "no worker" in case.result[0].message


def test_set_parsing():
    from callgauge_cli.main import _parse_sets

    assert _parse_sets(["step.1.0.dial_destination=sip:x@y:5060", "0.0.max_total_calls=5"]) == {
        "step.1.0.dial_destination": "sip:x@y:5060", "step.0.0.max_total_calls": "5"}
    import typer

    for bad in ("foo", "step.a.0.x=1", "step.0.0=1", "=3"):
        with pytest.raises(typer.Exit):
            _parse_sets([bad])


# ------------------------------------------------------------------ downloads (export, call audio)

def _download_handler(request: httpx.Request) -> httpx.Response:
    if request.url.path.endswith("/missing/audio"):
        return httpx.Response(404, json={"error": {"code": "NOT_FOUND", "message": "no recording"}})
    if request.url.path.endswith("/broken/audio"):
        raise httpx.ReadError("connection reset", request=request)
    return httpx.Response(200, content=b"x" * 70_000)


def test_sync_downloads_write_the_file_and_clean_up(tmp_path):
    from callgauge_client import Client

    with Client("http://gw", "key", transport=httpx.MockTransport(_download_handler)) as c:
        assert c.export_run_calls("p1", "r1", tmp_path / "calls.csv") == 70_000
        assert (tmp_path / "calls.csv").read_bytes() == b"x" * 70_000
        assert c.download_call_audio("p1", "r1", "c1", tmp_path / "c1.wav") == 70_000
        with pytest.raises(NotFound):
            c.download_call_audio("p1", "r1", "missing", tmp_path / "missing.wav")
        with pytest.raises(Exception, match="the download from http://gw broke off") as broke:
            c.download_call_audio("p1", "r1", "broken", tmp_path / "broken.wav")
        assert type(broke.value).__name__ == "TransportError"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["c1.wav", "calls.csv"]  # no .part left


async def test_async_downloads_write_the_file_and_clean_up(tmp_path):
    from callgauge_client import AsyncClient

    async with AsyncClient("http://gw", "key", transport=httpx.MockTransport(_download_handler)) as c:
        assert await c.export_run_calls("p1", "r1", tmp_path / "calls.parquet", "parquet") == 70_000
        assert await c.download_call_audio("p1", "r1", "c1", tmp_path / "c1.wav", "callee") == 70_000
        with pytest.raises(NotFound):
            await c.download_call_audio("p1", "r1", "missing", tmp_path / "missing.wav")
        with pytest.raises(Exception, match="the download from http://gw broke off"):
            await c.download_call_audio("p1", "r1", "broken", tmp_path / "broken.wav")
        with pytest.raises(ValueError):
            await c.export_run_calls("p1", "r1", tmp_path / "calls.xls", "xls")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["c1.wav", "calls.parquet"]
