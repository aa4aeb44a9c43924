"""The HTML run reports in a real browser (Debian's chromium, headless, over the DevTools
protocol) against the whole stack: the signed-in page refuses without credentials and shows the
report after signing in through its form, with no console errors, every chart drawn and a
calls table paged, sorted and filtered on the server; the kiosk page works without credentials and offers nothing
that changes state. Screenshots are kept under test-artifacts/."""

from __future__ import annotations

import socket
import time
from pathlib import Path

import httpx
import pytest

from callgauge_client import Client
from callgauge_platform.stack import free_port

pytestmark = pytest.mark.e2e
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"

CANVAS_INK = """Array.from(document.querySelectorAll('#charts canvas')).map(c => {
  const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data; let n = 0;
  for (let i = 3; i < d.length; i += 4) if (d[i]) n++; return n; })"""


@pytest.fixture(scope="module")
def sdk(stack):
    with Client(stack.settings.gateway_url(), stack.settings.api_key) as c:
        yield c


@pytest.fixture(scope="module")
def finished_run(sdk, stack):
    """Two answered calls to the responder and one to a port where nobody answers."""
    project = sdk.create_project("Report pages")
    dead = free_port(kind=socket.SOCK_DGRAM)
    test = sdk.create_test(project.id, {"name": "report mix", "steps": [
        {"actions": [{"type": "call", "dial_destination": stack.responder_uri(), "duration_ms": 2000,
                      "max_total_calls": 2}]},
        {"actions": [{"type": "call", "dial_destination": f"sip:nobody@127.0.0.1:{dead}", "duration_ms": 1000,
                      "setup_timeout_ms": 1500}]}],
        "assertions": [{"metric": "asr", "op": ">=", "value": 0.5}, {"metric": "mos_min", "op": ">=", "value": 4.0}]})
    started = sdk.start_run(project.id, test.id)
    run = sdk.wait_for_run(project.id, started.test_run_id, timeout=120, poll=0.5)
    calls = list(sdk.run_calls(project.id, run.id))
    # two answered and one failed, unless the engine lost some (then the run says why): the page shows what is there
    assert calls and any(c.outcome == "SUCCESS" for c in calls), run.result_description
    return project, test, run, calls


@pytest.fixture
def browser():
    from chromium_cdp import CHROMIUM, Browser

    if CHROMIUM is None:
        pytest.skip("chromium is not installed (Debian package `chromium`, in install.sh's APT_PACKAGES)")
    with Browser() as b:
        yield b


def test_per_second_statistics_over_rest(sdk, finished_run):
    project, _, run, calls = finished_run
    seconds = sdk.run_seconds(project.id, run.id)
    assert seconds and {"at", "activeCalls", "attempts", "answers", "failures", "jitterMsMean", "lossPct"} <= set(
        seconds[0])
    assert sum(s["attempts"] for s in seconds) == len(calls)
    assert [s["at"] for s in seconds] == sorted(s["at"] for s in seconds)


def test_report_refuses_without_credentials_over_plain_http(stack, finished_run):
    _, _, run, _ = finished_run
    url = f"{stack.settings.gateway_url()}/reports/runs/{run.id}"
    r = httpx.get(url)
    assert r.status_code == 401 and "text/html" in r.headers["content-type"]
    assert 'action="/reports/login"' in r.text and "Content-Security-Policy" in r.headers
    assert httpx.get(url, headers={"Authorization": "Bearer cgk_live_nope"}).status_code == 401
    assert httpx.get(url, cookies={"callgauge_report_session": "cgk_live_nope"}).status_code == 401
    ok = httpx.get(url, headers={"Authorization": f"Bearer {stack.settings.api_key}"})
    assert ok.status_code == 200 and run.id in ok.text
    missing = httpx.get(f"{stack.settings.gateway_url()}/reports/runs/0190aaaa-0000-7000-8000-000000000000",
                        headers={"Authorization": f"Bearer {stack.settings.api_key}"})
    assert missing.status_code == 404 and "No such report" in missing.text
    assert httpx.get(f"{stack.settings.gateway_url()}/reports/kiosk/not-a-token").status_code == 404
    js = httpx.get(f"{stack.settings.gateway_url()}/reports/static/vendor/chart.umd.min.js")
    assert js.status_code == 200 and "Chart.js v4" in js.text[:200]
    # no open redirect through the sign-in form; a key that is not accepted gets no session
    form = {"Content-Type": "application/x-www-form-urlencoded"}
    r = httpx.post(f"{stack.settings.gateway_url()}/reports/login",
                   content=f"key={stack.settings.api_key}&next=https://evil.example/", headers=form)
    assert r.status_code == 303 and r.headers["location"] == "/reports/login"
    r = httpx.post(f"{stack.settings.gateway_url()}/reports/login", content="key=abc&next=/reports/", headers=form)
    assert r.status_code == 401 and "set-cookie" not in r.headers


def test_signed_in_report_in_chromium(browser, stack, finished_run):
    _, _, run, calls = finished_run
    url = f"{stack.settings.gateway_url()}/reports/runs/{run.id}"
    refused = browser.navigate(url)
    assert refused.status == 401
    assert browser.evaluate("document.querySelector('#login-form') !== null")
    # sign in as a person does: paste the key into the form, submit
    browser.evaluate(f"document.querySelector('#key').value = {stack.settings.api_key!r};"
                     "document.querySelector('#login-form').submit(); true")
    browser._wait_event("Page.loadEventFired")
    assert browser.evaluate("location.pathname") == f"/reports/runs/{run.id}"
    page = browser.navigate(url)  # again, with the session cookie, collecting every error from the start
    assert page.status == 200
    assert page.errors == []
    assert browser.evaluate("document.querySelector('#verdict .status').textContent") == run.status
    assert browser.evaluate("window.callgaugeCharts.length") == 6
    ink = browser.evaluate(CANVAS_INK)
    assert len(ink) == 6 and all(n > 100 for n in ink), ink
    # the engine's per-second statistics, kept by the runs service, drive the series
    assert "media engine's per-second statistics" in browser.evaluate("document.querySelector('#charts').textContent")
    failed = [c for c in calls if c.outcome != "SUCCESS"]
    assert browser.evaluate("document.querySelectorAll('#calls-table tbody tr').length") == len(calls)
    assert browser.evaluate("document.querySelectorAll('#assertions tbody tr').length") == 2
    assert browser.evaluate("document.querySelectorAll('#ladders details.ladder').length") == len(failed)
    shot = browser.screenshot(ARTIFACTS / "report-run.png")
    # sorted on the server: the index header's link sorts descending, then ascending again
    for order in ("desc", "asc"):
        browser.evaluate("document.querySelector('#calls-table th a[data-sort=index]').click(); true")
        browser._wait_event("Page.loadEventFired")
        indexes = browser.evaluate("Array.from(document.querySelectorAll('#calls-table tbody tr'))"
                                   ".map(r => Number(r.cells[0].textContent.trim()))")
        assert indexes == sorted(indexes, reverse=order == "desc") and len(indexes) == len(calls), (order, indexes)
        assert browser.evaluate("document.querySelector('#calls-table th a[data-sort=index]')"
                                ".getAttribute('aria-sort')") == ("ascending" if order == "asc" else "descending")
    # filtered on the server by outcome
    browser.evaluate("document.querySelector('#outcome-filter a[data-outcome=SUCCESS]').click(); true")
    browser._wait_event("Page.loadEventFired")
    shown = browser.evaluate("Array.from(document.querySelectorAll('#calls-table tbody tr')).map(r => r.dataset.outcome)")
    assert shown == ["SUCCESS"] * (len(calls) - len(failed))
    assert "outcome=SUCCESS" in browser.evaluate("location.search")
    assert shot.stat().st_size > 10_000
    # times shown in the browser's time zone (localtime.js, no CSP error), and the link back to the runs
    assert browser.evaluate("document.querySelectorAll('time[data-local]').length") >= 1
    back = browser.evaluate("document.querySelector('#project-runs').getAttribute('href')")
    assert back == f"/reports/projects/{run.project_id}/runs"
    listed = browser.navigate(stack.settings.gateway_url() + back)
    assert listed.status == 200 and listed.errors == []
    assert browser.evaluate(f"document.querySelector('tr[data-run=\"{run.id}\"] a') !== null")
    assert browser.evaluate("document.querySelectorAll('#runs time[data-local]').length") >= 1
    browser.screenshot(ARTIFACTS / "run-list.png")
    home = browser.navigate(stack.settings.gateway_url() + "/")
    assert home.status == 200 and home.errors == []
    assert browser.evaluate("document.querySelector('#link-runs').getAttribute('href')") == "/reports/"


def test_kiosk_report_in_chromium_without_credentials(browser, sdk, stack, finished_run):
    project, test, _, _ = finished_run
    started = sdk.start_run(project.id, test.id, kiosk=True)
    assert started.kiosk_url, f"a run started with kiosk=True minted no kiosk link: {started}"
    sdk.wait_for_run(project.id, started.test_run_id, timeout=120, poll=0.5)
    page = browser.navigate(started.kiosk_url)
    assert page.status == 200 and page.errors == []
    assert browser.evaluate("document.querySelector('#kiosk-badge') !== null")
    assert browser.evaluate("document.querySelectorAll('form, button').length") == 0  # nothing changes state
    ink = browser.evaluate(CANVAS_INK)
    assert len(ink) == 6 and all(n > 100 for n in ink), ink
    browser.screenshot(ARTIFACTS / "report-kiosk.png")
    sdk.revoke_kiosk(started.test_run_id)
    assert httpx.get(started.kiosk_url).status_code == 404


def test_signed_in_report_can_stop_a_running_run(browser, sdk, stack):
    project = sdk.create_project("Report stop")
    test = sdk.create_test(project.id, {"name": "long call", "steps": [{"actions": [
        {"type": "call", "dial_destination": stack.responder_uri(), "duration_ms": 60000}]}]})
    started = sdk.start_run(project.id, test.id)
    for _ in range(120):  # bounded: until the call is up
        run = sdk.get_run(project.id, started.test_run_id)
        if run.status == "RUNNING":
            break
        assert run.status in ("PENDING", "QUEUED"), run.result_description
        time.sleep(0.5)
    browser.set_header("Authorization", f"Bearer {stack.settings.api_key}")
    page = browser.navigate(f"{stack.settings.gateway_url()}/reports/runs/{started.test_run_id}")
    assert page.status == 200 and page.errors == []
    assert browser.evaluate("document.querySelector('#verdict').className").endswith("running")
    browser.evaluate("document.querySelector('#stop-form button').click(); true")
    browser._wait_event("Page.loadEventFired")
    run = sdk.wait_for_run(project.id, started.test_run_id, timeout=60, poll=0.5)
    assert run.status == "CANCELLED"
    page = browser.navigate(f"{stack.settings.gateway_url()}/reports/runs/{started.test_run_id}")
    assert page.status == 200 and browser.evaluate("document.querySelector('#stop-form')") is None
    browser.clear_headers()
