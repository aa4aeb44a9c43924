"""A new user's first hour (issue 18, items 6-8), on a stack configured as `callgauge up` is:
unmetered billing, the `none` payment provider.

- The shell blocks of the README's "Quick start" and of the pages docs/api.md, docs/cli.md and
  docs/accounts.md run as written, in order, in one bash, against this stack: the README and the
  docs cannot drift from what the code does. The only substitutions are the stack's free ports for the
  documented defaults (127.0.0.1:8080 the gateway, 127.0.0.1:5070 the responder), and the
  `callgauge up` block is this fixture.
- Unmetered billing: a probe on a short interval with a one-cent wallet is never refused or hung up
  for money; its usage is recorded and shown.
- The first screens: `GET /`, the run list pages, the report's link back, local times; an expired
  access token's 401 says how to refresh it.
"""

from __future__ import annotations

import os
import re
import subprocess
import time
from pathlib import Path

import httpx
import jwt
import pytest

from callgauge_app.settings import SERVICE_SETTINGS
from callgauge_platform.stack import Stack
from callgauge_platform.run_states import TERMINAL

ROOT = Path(__file__).resolve().parents[2]
README = ROOT / "README.md"
DOCS = ROOT / "docs"
# (file, `## ` section or None for the whole page), in the order a new user reads them
SOURCES = ((README, "Quick start"), (DOCS / "api.md", None), (DOCS / "cli.md", None),
           (DOCS / "accounts.md", None))


@pytest.fixture(scope="module")
def up(tmp_path_factory):
    """`callgauge up`'s configuration on free ports; the data dir is `<cwd>/.callgauge`, like up's."""
    home = tmp_path_factory.mktemp("first-hour")
    s = Stack.on_free_ports(home / ".callgauge", billing_payment_provider="none",  # up's defaults
                            billing_welcome_credit_minor=1,  # a one-cent wallet: prepaid would refuse every run
                            probe_min_interval_seconds=1, probe_tick_seconds=0.5)
    s.service_settings = SERVICE_SETTINGS  # as `callgauge up`: each service is handed its own settings
    assert s.settings_of("billing").billing_mode == "unmetered"  # the default, as for `callgauge up`
    s.start(timeout=90)
    s.home = home  # type: ignore[attr-defined]
    yield s
    s.stop()


def api(stack: Stack, key: str | None = None) -> httpx.Client:
    return httpx.Client(base_url=f"{stack.settings.gateway_url()}/api/v1", timeout=30,
                        headers={"Authorization": f"Bearer {key or stack.settings.api_key}"})


def wait_finished(c: httpx.Client, project: str, run: str, timeout: float = 60) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        r = c.get(f"/projects/{project}/test-runs/{run}").json()["data"]
        if r["status"] in TERMINAL:
            return r
        time.sleep(0.3)
    raise AssertionError(f"run {run} did not end within {timeout} s")


def calls_of_every_run(stack: Stack) -> str:
    """Every run's status and each call's outcome, figures and notes: what a failure needs to say
    why a run failed (a CLI's verdict alone does not say why a call went unmeasured)."""
    lines: list[str] = []
    with api(stack) as c:
        for p in c.get("/projects").json()["data"]:
            for run in c.get(f"/projects/{p['id']}/test-runs").json()["data"]:
                lines.append(f"run {run['id']} {run['status']} passed={run.get('passed')} "
                             f"{run.get('resultDescription')!r}")
                calls = c.get(f"/projects/{p['id']}/test-runs/{run['id']}/calls").json().get("data") or []
                for call in calls:
                    lines.append("  " + repr({k: call.get(k) for k in (
                        "role", "outcome", "sipCode", "durationMs", "txPackets", "rxPackets", "lossPct",
                        "mos", "detail")}))
    return "\n".join(lines)


# ------------------------------------------------------------------------ the README


def readme_shell_blocks() -> list[str]:
    """The ```sh blocks of SOURCES, in order (a section runs to the next `## ` heading)."""
    blocks: list[str] = []
    for path, wanted in SOURCES:
        section, current = "", None
        for line in path.read_text().splitlines():
            if current is not None:
                if line.strip() == "```":
                    blocks.append("\n".join(current))
                    current = None
                else:
                    current.append(line)
                continue
            if line.startswith("## "):
                section = line[3:].strip()
            fence = re.match(r"^```(\w*)\s*$", line)
            if fence and wanted in (None, section) and fence.group(1) in ("sh", "bash"):
                current = []
    return blocks


def test_readme_shell_blocks_are_found():
    blocks = readme_shell_blocks()
    assert blocks[0].startswith(".venv/bin/callgauge up")
    assert any("-F report.mode=kiosk" in b for b in blocks)  # docs/api.md
    assert any("callgauge tests apply" in b for b in blocks)  # docs/cli.md
    assert any("/auth/register" in b for b in blocks)  # docs/accounts.md
    assert len(blocks) >= 6


def test_the_readme_runs_as_written(up):
    blocks = readme_shell_blocks()
    assert blocks[0].strip().splitlines()[0].startswith(".venv/bin/callgauge up")  # this fixture
    gateway = up.settings.gateway_url().removeprefix("http://")
    responder = f"127.0.0.1:{up.settings.responder_port}"
    script = ["set -euo pipefail"]
    for i, block in enumerate(blocks[1:], 1):
        text = block.replace("127.0.0.1:8080", gateway).replace("127.0.0.1:5070", responder)
        script += [f"echo '@@block {i}@@'", text]
    home: Path = up.home
    venv = home / ".venv"
    if not venv.exists():
        venv.symlink_to(ROOT / ".venv")
    env = {k: v for k, v in os.environ.items() if not k.startswith("CALLGAUGE_")}
    env.update(HOME=str(home), CALLGAUGE_CONFIG=str(home / "cli.json"), NO_COLOR="1", COLUMNS="200")
    r = subprocess.run(["bash", "-c", "\n".join(script)], cwd=home, env=env, capture_output=True, text=True,
                       timeout=240)
    assert r.returncode == 0, (f"README shell block failed (exit {r.returncode})\n{r.stdout[-4000:]}\n"
                               f"{r.stderr[-4000:]}\n{calls_of_every_run(up)}")
    outputs = dict(re.findall(r"@@block (\d+)@@\n(.*?)(?=@@block \d+@@|\Z)", r.stdout, re.S))
    assert len(outputs) == len(blocks) - 1
    for n, out in outputs.items():
        assert '"error"' not in out, f"block {n} got an API error:\n{out}"
    # what the flow made: one `echo` (so the kiosk example by name works) and the CLI's pbx-echo
    with api(up) as c:
        projects = {p["name"]: p for p in c.get("/projects").json()["data"]}
        assert {"Production PBX", "My PBX"} <= set(projects)
        names = [t["name"] for t in c.get("/tests").json()["data"]]
        assert names.count("echo") == 1 and names.count("pbx-echo") == 1
        assert re.search(r'"kiosk_url":\s*"http://[^"]+/reports/kiosk/', r.stdout), r.stdout  # by test.name
        runs = c.get(f"/projects/{projects['My PBX']['id']}/test-runs").json()["data"]
        assert [(x["status"], x["passed"]) for x in runs] == [("COMPLETED", True)]
    assert "PASSED" in r.stdout and "COMPLETED PASSED" not in r.stdout
    assert (home / "report.xml").exists() and (home / "calls.parquet").exists()


# ------------------------------------------------------------------------ unmetered billing


def test_unmetered_probes_on_a_one_cent_wallet_are_never_refused_for_money(up, tmp_path):
    with api(up) as c:
        wallet = c.get("/billing/wallet").json()["data"]
        assert wallet["billingMode"] == "unmetered" and wallet["balanceMinor"] <= 1
        project = c.post("/projects", json={"name": "probe unmetered"}).json()["data"]["id"]
        test = c.post(f"/projects/{project}/tests", json={"name": "probe echo", "steps": [{"actions": [{
            "type": "call", "dial_destination": up.responder_uri(), "duration_ms": 1500}]}]}).json()["data"]["id"]
        probe = c.post(f"/projects/{project}/probes", json={"test_id": test, "name": "every second",
                                                             "interval_seconds": 1})
        assert probe.status_code == 201, probe.text
        probe_id = probe.json()["data"]["id"]
        # each run costs 2 call-seconds + 5 for the probe run: a one-cent prepaid wallet refuses the first
        deadline = time.monotonic() + 75
        finished: list[dict] = []
        while time.monotonic() < deadline and len(finished) < 5:
            runs = c.get(f"/projects/{project}/test-runs", params={"testId": test, "perPage": 100}).json()["data"]
            finished = [x for x in runs if x["status"] in TERMINAL]
            time.sleep(0.5)
        c.patch(f"/projects/{project}/probes/{probe_id}", json={"enabled": False})
        assert len(finished) >= 5, f"{len(finished)} probe runs ended in 75 s"
        for run in finished:
            assert (run["status"], run["passed"]) == ("COMPLETED", True), run
            assert "balance" not in (run.get("resultDescription") or "")
        # a run started by hand is not refused either (prepaid: 402 INSUFFICIENT_BALANCE)
        started = c.post(f"/projects/{project}/tests/{test}/run")
        assert started.status_code == 201, started.text
        assert wait_finished(c, project, started.json()["data"]["testRunId"])["passed"] is True
        after = c.get("/billing/wallet").json()["data"]
        assert after["balanceMinor"] == wallet["balanceMinor"] and not after.get("exhausted")
        # usage recorded and shown: call seconds and probe runs, priced at zero
        usage = c.get("/billing/usage", params={"groupBy": "project"}).json()["data"]
        mine = [g for g in usage["groups"] if g["key"] == project]
        assert mine and int(mine[0]["callSeconds"]) >= 2 * len(finished) and int(mine[0]["probeRuns"]) >= 5
        assert int(mine[0].get("amountMinor", 0)) == 0
        history = c.get("/billing/history", params={"perPage": 100}).json()
        assert history["meta"]["pagination"]["total"] > 0


# ------------------------------------------------------------------------ first screens


def test_landing_page_and_run_list_pages(up):
    base = up.settings.gateway_url()
    with httpx.Client(base_url=base, timeout=30) as web, api(up) as c:
        landing = web.get("/")
        assert landing.status_code == 200 and landing.headers["content-type"].startswith("text/html")
        assert "default-src 'none'" in landing.headers["content-security-policy"]
        for href in ('href="/api/docs"', 'href="/api/v1/openapi.json"', 'href="/reports/"'):
            assert href in landing.text
        signin = web.get("/reports/")
        assert signin.status_code == 401 and 'action="/reports/login"' in signin.text

        project = c.post("/projects", json={"name": "screens"}).json()["data"]["id"]
        ok_test = c.post(f"/projects/{project}/tests", json={"name": "answered", "steps": [{"actions": [{
            "type": "call", "dial_destination": up.responder_uri(), "duration_ms": 500}]}]}).json()["data"]["id"]
        ran = [c.post(f"/projects/{project}/tests/{ok_test}/run").json()["data"]["testRunId"] for _ in range(3)]
        for run in ran:
            wait_finished(c, project, run)
        stopped = c.post(f"/projects/{project}/tests/{ok_test}/run").json()["data"]["testRunId"]
        c.post(f"/runs/{stopped}/stop")
        wait_finished(c, project, stopped)

        auth = {"Authorization": f"Bearer {up.settings.api_key}"}
        index = web.get("/reports/", headers=auth)
        assert index.status_code == 200 and f'href="/reports/projects/{project}/runs"' in index.text
        assert all(run in index.text or run == ran[0] for run in ran[1:])  # the latest runs (5 per project)

        page1 = web.get(f"/reports/projects/{project}/runs", headers=auth, params={"perPage": 2})
        assert page1.status_code == 200, page1.text
        assert "default-src 'none'" in page1.headers["content-security-policy"]
        rows = re.findall(r'data-run="([^"]+)"', page1.text)
        assert rows == [stopped, ran[-1]]  # newest first, 2 a page
        assert 'id="runs-next"' in page1.text and "page 1 of 2" in page1.text
        nxt = re.search(r'href="([^"]+)" id="runs-next"', page1.text)
        assert nxt and "page=2" in nxt.group(1) and "perPage=2" in nxt.group(1)
        page2 = web.get(f"/reports/projects/{project}/runs", headers=auth, params={"perPage": 2, "page": 2})
        assert re.findall(r'data-run="([^"]+)"', page2.text) == [ran[1], ran[0]]
        done = web.get(f"/reports/projects/{project}/runs", headers=auth, params={"status": "cancelled"})
        assert re.findall(r'data-run="([^"]+)"', done.text) == [stopped]
        assert re.search(r'<time datetime="\d{4}-\d\d-\d\dT[^"]+Z">', done.text)
        bad = web.get(f"/reports/projects/{project}/runs", headers=auth, params={"status": "BOGUS"})
        assert bad.status_code == 422 and "COMPLETED" in bad.text and "Traceback" not in bad.text
        missing = web.get("/reports/projects/nope/runs", headers=auth)
        assert missing.status_code == 404

        report = web.get(f"/reports/runs/{ran[0]}", headers=auth)
        assert report.status_code == 200
        assert f'href="/reports/projects/{project}/runs"' in report.text
        assert re.search(r'started <time datetime="[^"]+">', report.text)
        assert web.get("/reports/static/localtime.js").status_code == 200


def test_an_expired_access_token_says_how_to_refresh(up):
    base = up.settings.gateway_url()
    with httpx.Client(base_url=f"{base}/api/v1", timeout=30) as anon:
        creds = {"email": "expired@example.com", "password": "a long passphrase"}
        assert anon.post("/auth/register", json=creds).status_code == 201
        tokens = anon.post("/auth/login", json=creds).json()["data"]
        claims = jwt.decode(tokens["accessToken"], options={"verify_signature": False})
        secret = up.settings_of("accounts").jwt_secret_value()  # the stack's (data_dir/jwt_secret)
        now = int(time.time())
        expired = jwt.encode({**claims, "iat": now - 7200, "exp": now - 3600}, secret, algorithm="HS256")
        r = anon.get("/users/me", headers={"Authorization": f"Bearer {expired}"})
        assert r.status_code == 401
        assert "/auth/refresh" in r.json()["error"]["message"]
        forged = jwt.encode({**claims, "iat": now - 7200, "exp": now - 3600}, b"x" * 32, algorithm="HS256")
        other = anon.get("/users/me", headers={"Authorization": f"Bearer {forged}"})
        assert other.status_code == 401 and "/auth/refresh" not in other.json()["error"]["message"]
        assert anon.get("/users/me", headers={"Authorization": f"Bearer {tokens['accessToken']}"}).status_code == 200
