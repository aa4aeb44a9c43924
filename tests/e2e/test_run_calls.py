"""A run's calls through the REST API of the whole stack, at any run size: keyset pages with filters
and sort (`GET …/test-runs/{id}/calls`), 422 for bad parameters, exports streamed as CSV and
Parquet, the client and the CLI; and the issue's big run — a SIPp-driven load at full rate whose
every call appears exactly once across the pages, whose counts match its summary, whose page
boundaries hold while it is still being recorded, and whose run JSON does not grow with it."""

from __future__ import annotations

import csv
import io
import json
import os
import shutil
import socket
import subprocess
import sys
import time

import pyarrow.parquet as pq
import pytest

from callgauge_client import Client, ValidationFailed
from callgauge_platform.stack import free_port
from callgauge_platform.run_states import TERMINAL
from tests.e2e.test_billing_metering import client, new_api_key
from tests.e2e.test_walking_skeleton import calls_of, data

pytestmark = pytest.mark.e2e
# The e2e size. 20,000 calls at 1,000 calls/s; CALLGAUGE_TEST_BIG_RUN_CALLS changes it.
BIG_RUN_CALLS = int(os.environ.get("CALLGAUGE_TEST_BIG_RUN_CALLS", "20000"))


def wait_end(api, project_id: str, run_id: str, limit_s: float = 120, every=None) -> dict:
    deadline = time.monotonic() + limit_s  # bounds the poll; not a timing assertion
    while time.monotonic() < deadline:
        run = data(api.get(f"/projects/{project_id}/test-runs/{run_id}"))
        if every is not None:
            every(run)
        if run["status"] in TERMINAL:
            return run
        time.sleep(0.5)
    pytest.fail(f"run {run_id} still {run['status']} after {limit_s} s")


def errors_of(resp) -> dict:
    assert resp.status_code == 422, resp.text
    return {".".join(map(str, d["loc"])): d["msg"] for d in resp.json()["error"]["details"]}


@pytest.fixture(scope="module")
def mixed_run(stack):
    """A test-mode account's run of 4 answered calls and 2 that nobody answers."""
    key = new_api_key(stack, "test")
    dead = free_port(kind=socket.SOCK_DGRAM)
    with client(stack, key) as api:
        project = data(api.post("/projects", json={"name": "calls"}), 201)
        test = data(api.post(f"/projects/{project['id']}/tests", json={"name": "mixed", "steps": [{"actions": [
            {"type": "call", "dial_destination": stack.responder_uri(), "duration_ms": 500, "max_total_calls": 4,
             "concurrency": 2},
            {"type": "call", "dial_destination": f"sip:nobody@127.0.0.1:{dead}", "duration_ms": 500,
             "setup_timeout_ms": 1000, "max_total_calls": 2, "concurrency": 2}]}]}), 201)
        started = data(api.post(f"/projects/{project['id']}/tests/{test['id']}/run"), 201)
        run = wait_end(api, project["id"], started["testRunId"])
    return key, project, run


def test_pages_filters_sort_and_bad_parameters(stack, mixed_run) -> None:
    key, project, run = mixed_run
    with client(stack, key) as api:
        base = f"/projects/{project['id']}/test-runs/{run['id']}/calls"
        every = calls_of(api, project["id"], run["id"])
        assert len(every) == 6 and len({c["callId"] for c in every}) == 6
        assert "calls" not in run and run["callsRecorded"] == 6
        # one call per page, following the cursor: the same calls, in index order, each once
        walked, cursor, pages = [], None, 0
        while True:
            body = api.get(base, params={"perPage": 1, **({"cursor": cursor} if cursor else {})}).json()
            pages += 1
            walked += body["data"]
            p = body["meta"]["pagination"]
            assert p["perPage"] == 1 and p["total"] == 6 and p["cursor"] == cursor
            cursor = p["nextCursor"]
            assert (cursor is None) == (body["meta"]["links"]["next"] is None)
            if cursor is None:
                break
        assert pages == 6 and [c["callId"] for c in walked] == [c["callId"] for c in every]
        keys = [(c["action"], c["index"]) for c in walked]
        assert keys == sorted(keys) or [c["index"] for c in walked] == sorted(c["index"] for c in walked)
        # filters
        ok = data(api.get(base, params={"outcome": "SUCCESS"}))
        assert len(ok) == 4 and all(c["outcome"] == "SUCCESS" for c in ok)
        failed = data(api.get(base, params={"outcome": "CALL_FAILED,TIMEOUT"}))
        assert len(failed) == 2 and all(c["outcome"] != "SUCCESS" for c in failed)
        assert len(data(api.get(base, params=[("outcome", "SUCCESS"), ("outcome", "TIMEOUT")]))) == len(ok) + sum(
            c["outcome"] == "TIMEOUT" for c in failed)
        assert {c["callId"] for c in data(api.get(base, params={"sipCode": 200}))} == {c["callId"] for c in ok}
        mos = sorted(c["mos"] for c in ok)
        high = data(api.get(base, params={"mosMin": mos[1]}))
        assert high and all(c["mos"] >= mos[1] for c in high)
        assert all(c["mos"] <= mos[-1] for c in data(api.get(base, params={"mosMax": mos[-1]})))
        # sort
        down = data(api.get(base, params={"sort": "-index"}))
        assert [c["callId"] for c in down] == [c["callId"] for c in reversed(every)]
        by_setup = data(api.get(base, params={"sort": "setupMs", "outcome": "SUCCESS"}))
        assert [c["setupTimeMs"] for c in by_setup] == sorted(c["setupTimeMs"] for c in ok)
        by_mos = data(api.get(base, params={"sort": "-mos", "outcome": "SUCCESS"}))
        assert [c["mos"] for c in by_mos] == sorted((c["mos"] for c in ok), reverse=True)
        # bad parameters: 422 naming the parameter, never a 500
        assert "query.outcome" in errors_of(api.get(base, params={"outcome": "NOPE"}))
        assert "query.sipCode" in errors_of(api.get(base, params={"sipCode": "99"}))
        assert "query.sipCode" in errors_of(api.get(base, params={"sipCode": "abc"}))
        assert "query.mosMin" in errors_of(api.get(base, params={"mosMin": 4, "mosMax": 3}))
        assert "query.mosMin" in errors_of(api.get(base, params={"mosMin": 9}))
        assert "query.sort" in errors_of(api.get(base, params={"sort": "duration"}))
        assert "query.perPage" in errors_of(api.get(base, params={"perPage": 1001}))
        assert "query.perPage" in errors_of(api.get(base, params={"perPage": 0}))
        garbage = api.get(base, params={"cursor": "not-a-cursor"})
        assert garbage.status_code == 422 and "Traceback" not in garbage.text
        # a cursor belongs to its filter and sort
        first = api.get(base, params={"perPage": 1}).json()["meta"]["pagination"]["nextCursor"]
        assert api.get(base, params={"perPage": 1, "cursor": first, "sort": "-index"}).status_code == 422
        # someone else's run, or an unknown one: 404
        with client(stack, new_api_key(stack, "test")) as other:
            assert other.get(base).status_code == 404
            assert other.get(f"{base}.csv").status_code == 404
        assert api.get(f"/projects/{project['id']}/test-runs/0190aaaa-0000-7000-8000-000000000000/calls"
                       ).status_code == 404


def test_exports_hold_the_same_calls_as_the_pages(stack, mixed_run, tmp_path) -> None:
    key, project, run = mixed_run
    with client(stack, key) as api:
        every = calls_of(api, project["id"], run["id"])
        base = f"/projects/{project['id']}/test-runs/{run['id']}/calls"
        r = api.get(f"{base}.csv")
        assert r.status_code == 200 and r.headers["content-type"].startswith("text/csv")
        assert r.headers["x-total-count"] == "6" and "attachment" in r.headers["content-disposition"]
        rows = list(csv.DictReader(io.StringIO(r.text)))
        assert [row["callId"] for row in rows] == [c["callId"] for c in every]
        assert "sipLadder" not in rows[0]
        p = api.get(f"{base}.parquet", params={"outcome": "SUCCESS"})
        assert p.status_code == 200 and p.headers["content-type"] == "application/vnd.apache.parquet"
        table = pq.read_table(io.BytesIO(p.content))
        assert table.num_rows == 4 and set(table.column("outcome").to_pylist()) == {"SUCCESS"}
        parquet_rows = {row["callId"]: row for row in table.to_pylist()}
        for c in every:
            csv_row = next(row for row in rows if row["callId"] == c["callId"])
            for name, value in c.items():
                if name == "sipLadder" or name not in csv_row:
                    continue
                # a value the API shows as null (not measured) is an empty CSV cell and a Parquet null
                assert (value in (None, "")) == (csv_row[name] == ""), (name, value, csv_row[name])
                if c["callId"] in parquet_rows:
                    assert (value is None) == (parquet_rows[c["callId"]][name] is None), name
            if c["outcome"] == "SUCCESS":
                assert float(csv_row["mos"]) == pytest.approx(c["mos"], abs=1e-3)
                assert parquet_rows[c["callId"]]["mos"] == pytest.approx(c["mos"], abs=1e-3)
        assert "query.outcome" in errors_of(api.get(f"{base}.csv", params={"outcome": "NOPE"}))
    # the Python client: iterator over pages and the export download
    with Client(stack.settings.gateway_url(), key) as cg:
        listed = list(cg.run_calls(project["id"], run["id"], per_page=2))
        assert [c.call_id for c in listed] == [c["callId"] for c in every]
        assert [c.outcome for c in cg.run_calls(project["id"], run["id"], outcome=["CALL_FAILED", "TIMEOUT"])
                ] == [c["outcome"] for c in every if c["outcome"] != "SUCCESS"]
        size = cg.export_run_calls(project["id"], run["id"], tmp_path / "calls.parquet", "parquet")
        assert size == (tmp_path / "calls.parquet").stat().st_size and pq.read_table(tmp_path / "calls.parquet"
                                                                                      ).num_rows == 6
        with pytest.raises(ValidationFailed):
            cg.export_run_calls(project["id"], run["id"], tmp_path / "bad.csv", "csv", sort="nope")
        assert not (tmp_path / "bad.csv").exists() and not (tmp_path / "bad.csv.part").exists()


def test_the_cli_lists_and_exports_a_runs_calls(stack, mixed_run, tmp_path) -> None:
    key, project, run = mixed_run
    env = {**os.environ, "CALLGAUGE_URL": stack.settings.gateway_url(), "CALLGAUGE_API_KEY": key,
           "CALLGAUGE_CONFIG": str(tmp_path / "cfg.json")}

    def cli(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, "-m", "callgauge_app", *args], env=env, capture_output=True,
                              text=True, timeout=60)

    r = cli("runs", "calls", run["id"], "--json", "--all", "--sort", "-index")
    assert r.returncode == 0, r.stderr
    listed = [json.loads(line) for line in r.stdout.splitlines()]
    assert [c["index"] for c in listed] == sorted((c["index"] for c in listed), reverse=True) and len(listed) == 6
    r = cli("runs", "calls", run["id"], "--outcome", "success", "--limit", "2")
    assert r.returncode == 0 and "4 calls match" in r.stdout and "2 of 4 shown" in r.stderr, r.stdout + r.stderr
    out = tmp_path / "calls.csv"
    r = cli("runs", "export", run["id"], "--format", "csv", "-o", str(out))
    assert r.returncode == 0, r.stderr
    assert len(list(csv.DictReader(out.open()))) == 6
    r = cli("runs", "export", run["id"], "--format", "xml", "-o", str(tmp_path / "x"))
    assert r.returncode == 2 and "csv or parquet" in r.stderr


@pytest.mark.timeout(900)
@pytest.mark.skipif(shutil.which("sipp") is None, reason="sipp (Debian sip-tester) is not installed")
def test_a_big_sipp_run_reads_in_pages_while_and_after_it_is_recorded(stack, sipp_uas) -> None:
    """The issue's e2e: BIG_RUN_CALLS SIPp-driven calls at 1,000 calls/s against `sipp -sn uas`."""
    with client(stack, new_api_key(stack, "test")) as api:  # a test key: never charged
        project = data(api.post("/projects", json={"name": "big run"}), 201)
        test = data(api.post(f"/projects/{project['id']}/tests", json={"name": "full rate", "steps": [{"actions": [{
            "type": "load", "driver": "sipp", "dial_destination": sipp_uas, "cps": 1000,
            "hold_s": max(10, BIG_RUN_CALLS // 1000 + 10), "max_total_calls": BIG_RUN_CALLS,
            "duration_ms": 200, "max_concurrency": 1000}]}]}), 201)
        pid, base = project["id"], None

        # a small run of the same test first: its run JSON is the yardstick
        small = data(api.post(f"/projects/{pid}/tests/{test['id']}/run",
                              json={"step.0.0.max_total_calls": 10, "step.0.0.cps": 10}), 201)
        small_run = wait_end(api, pid, small["testRunId"], limit_s=120)
        small = api.get(f"/projects/{pid}/test-runs/{small_run['id']}").json()["data"]
        small_size = len(json.dumps({k: v for k, v in small.items() if k != "firstFailedCalls"}))

        started = data(api.post(f"/projects/{pid}/tests/{test['id']}/run"), 201)
        run_id = started["testRunId"]
        base = f"/projects/{pid}/test-runs/{run_id}/calls"
        live: dict = {"walks": 0, "boundaries": []}

        def read_while_recording(run: dict) -> None:
            """Page through what is recorded so far; keep each page's cursor and its last call."""
            if run["status"] in TERMINAL or live["walks"] >= 3:
                return
            seen, cursor = [], None
            for _ in range(BIG_RUN_CALLS // 1000 + 2):
                body = api.get(base, params={"perPage": 1000, **({"cursor": cursor} if cursor else {})})
                assert body.status_code == 200, body.text
                page = body.json()
                seen += [c["index"] for c in page["data"]]
                cursor = page["meta"]["pagination"]["nextCursor"]
                if not cursor:
                    break
                live["boundaries"].append((cursor, page["data"][-1]["index"]))
            assert seen == sorted(seen) and len(seen) == len(set(seen)), "a live walk repeated or reordered calls"
            if seen:
                live["walks"] += 1

        run = wait_end(api, pid, run_id, limit_s=600, every=read_while_recording)
        assert run["status"] in ("COMPLETED", "FAILED"), run["resultDescription"]
        summary = run["summary"]

        # a cursor taken while the run was recording still continues right after its page's last call
        for cursor, last_index in live["boundaries"][:5]:
            later = data(api.get(base, params={"perPage": 1000, "cursor": cursor}))
            assert later and later[0]["index"] > last_index and all(c["index"] > last_index for c in later)

        # every call exactly once across the pages; the counts match the summary
        every = calls_of(api, pid, run_id)
        ids = [c["callId"] for c in every]
        assert len(ids) == len(set(ids)), "a call appeared twice across the pages"
        indexes = [c["index"] for c in every]
        assert indexes == sorted(indexes) and len(set(indexes)) == len(indexes)
        assert len(every) == run["callsRecorded"] == summary["callsAttempted"], (len(every), run["callsRecorded"],
                                                                                 summary)
        outcomes: dict[str, int] = {}
        for c in every:
            outcomes[c["outcome"]] = outcomes.get(c["outcome"], 0) + 1
        # the runs service's figures of the recorded calls, outcome by outcome
        assert outcomes == {k: v for k, v in run["recorded"]["outcomes"].items() if v}, (outcomes, run["recorded"])
        assert run["recorded"]["callsAttempted"] == len(every)
        # the engine's own summary: the same answered and failed counts (it names SIPp's timeouts CALL_FAILED)
        assert outcomes.get("SUCCESS", 0) == summary["callsAnswered"] == run["recorded"]["callsAnswered"]
        assert len(every) - outcomes.get("SUCCESS", 0) == summary["callsFailed"], (outcomes, summary)
        print(f"\nbig run: {len(every)} of {BIG_RUN_CALLS} planned calls recorded, {live['walks']} live walks, "
              f"outcomes {outcomes}", flush=True)

        # the run JSON does not grow with the calls
        # (a run names at most its first 3 failed calls: the one part of it that a failed call adds to,
        # bounded; a loaded machine gives the big run a few SIPp timeouts, the small one none)
        big = api.get(f"/projects/{pid}/test-runs/{run_id}").json()["data"]
        assert len(big.get("firstFailedCalls", [])) <= 3
        big_size = len(json.dumps({k: v for k, v in big.items() if k != "firstFailedCalls"}))
        status_size = len(api.get(f"/runs/{run_id}/status").content)
        assert abs(big_size - small_size) < 2048 and big_size < 16_384 and status_size < 4096, (
            small_size, big_size, big)

        # exports of every call, streamed
        r = api.get(f"{base}.csv", timeout=300)
        assert r.status_code == 200
        assert [int(row["index"]) for row in csv.DictReader(io.StringIO(r.text))] == indexes
        p = api.get(f"{base}.parquet", timeout=300)
        parquet = pq.ParquetFile(io.BytesIO(p.content))
        assert parquet.metadata.num_rows == len(every)
        assert parquet.metadata.num_row_groups == max(1, -(-len(every) // 10_000))

        # the report page holds one page of calls and a link to the next
        report = api.get(f"{stack.settings.gateway_url()}/reports/runs/{run_id}", timeout=60)
        assert report.status_code == 200 and report.text.count('<tr data-outcome=') == min(100, len(every))
        assert ('id="calls-next"' in report.text) == (len(every) > 100) and len(report.content) < 400_000
