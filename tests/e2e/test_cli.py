"""The `callgauge` CLI as a CI pipeline uses it, as a subprocess against the whole running stack:
login, projects, tests from a YAML file, runs with live progress, JSON and JUnit output (checked
with junitparser), and its exit codes (0 passed, 1 failed, 2 usage/connection errors)."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import uuid

import pytest
import yaml
from junitparser import JUnitXml

from callgauge_client import Client, Unauthorized
from callgauge_platform.stack import free_port

pytestmark = pytest.mark.e2e


@pytest.fixture
def cli(stack, tmp_path):
    env = {**os.environ, "CALLGAUGE_CONFIG": str(tmp_path / "config.json"), "NO_COLOR": "1", "COLUMNS": "200"}
    env.pop("CALLGAUGE_URL", None)
    env.pop("CALLGAUGE_API_KEY", None)

    def run(*args: str, timeout: float = 180, **extra_env: str) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, "-m", "callgauge_app", *args], env={**env, **extra_env},
                              cwd=tmp_path,
                              capture_output=True, text=True, timeout=timeout, stdin=subprocess.DEVNULL)

    run.env = env  # type: ignore[attr-defined]
    return run


@pytest.fixture
def logged_in(cli, stack):
    r = cli("login", "--url", stack.settings.gateway_url(), "--api-key", stack.settings.api_key)
    assert r.returncode == 0, r.stderr
    return cli


@pytest.fixture
def sdk(stack):
    with Client(stack.settings.gateway_url(), stack.settings.api_key) as c:
        yield c


def test_login_saves_the_gateway_and_key(cli, stack, tmp_path):
    r = cli("login", "--url", stack.settings.gateway_url(), "--api-key", stack.settings.api_key)
    assert r.returncode == 0, r.stderr
    saved = json.loads((tmp_path / "config.json").read_text())
    assert saved["url"] == stack.settings.gateway_url() and saved["api_key"] == stack.settings.api_key
    assert oct((tmp_path / "config.json").stat().st_mode & 0o777) == "0o600"
    bad = cli("login", "--url", stack.settings.gateway_url(), "--api-key", "cgk_live_wrong")
    assert bad.returncode == 2 and "401" in bad.stderr


def test_projects_create_and_list(logged_in):
    r = logged_in("projects", "create", "CLI project", "--json")
    assert r.returncode == 0, r.stderr
    project = json.loads(r.stdout)
    listed = logged_in("projects", "list", "--json")
    assert listed.returncode == 0, listed.stderr
    assert project["id"] in {p["id"] for p in json.loads(listed.stdout)}


def test_run_that_passes_exits_0_with_json_and_junit(logged_in, sdk, stack, tmp_path):
    """Found by name with no project (Sipfront's POST /tests/run), its destination overridden with
    --set: the test's own destination answers nothing, the override reaches the responder."""
    dead = free_port(kind=socket.SOCK_DGRAM)
    name = f"echo {uuid.uuid4().hex[:8]}"
    project = sdk.create_project("CLI pass")
    sdk.create_test(project.id, {
        "name": name, "steps": [{"actions": [{"type": "call", "dial_destination": f"sip:x@127.0.0.1:{dead}",
                                              "duration_ms": 2000, "setup_timeout_ms": 1500}]}],
        "assertions": [{"metric": "asr", "op": ">=", "value": 1.0}, {"metric": "mos_min", "op": ">=", "value": 3.5}]})
    junit_path = tmp_path / "report.xml"
    r = logged_in("run", name, "--set", f"step.0.0.dial_destination={stack.responder_uri()}", "--wait", "--json",
                  "--junit", str(junit_path))
    assert r.returncode == 0, r.stdout + r.stderr
    result = json.loads(r.stdout)
    assert result["status"] == "COMPLETED" and result["passed"] is True
    assert [a["passed"] for a in result["assertions"]] == [True, True]
    assert result["callsRecorded"] == 1 and result["failedCalls"] == [] and "calls" not in result
    assert result["reportUrl"].endswith(f"/reports/runs/{result['testRunId']}")
    assert "calls" in r.stderr and "COMPLETED" in r.stderr  # the progress line
    (suite,) = list(JUnitXml.fromfile(str(junit_path)))
    assert suite.tests == 2 and suite.failures == 0 and suite.errors == 0
    assert {c.name for c in suite} == {"asr >= 1", "mos_min >= 3.5"}


def test_run_that_fails_exits_1_and_junit_names_the_failed_call(logged_in, sdk, tmp_path):
    dead = free_port(kind=socket.SOCK_DGRAM)  # nothing answers there
    project = sdk.create_project("CLI fail")
    test = sdk.create_test(project.id, {
        "name": "nobody home", "steps": [{"actions": [{"type": "call", "dial_destination": f"sip:x@127.0.0.1:{dead}",
                                                       "duration_ms": 1000, "setup_timeout_ms": 1500}]}],
        "assertions": [{"metric": "asr", "op": ">=", "value": 1.0}]})
    junit_path = tmp_path / "fail.xml"
    r = logged_in("run", test.name, "--project", project.slug, "--junit", str(junit_path))
    assert r.returncode == 1, r.stdout + r.stderr
    assert "FAILED" in r.stdout and "FAILED FAILED" not in r.stdout  # the verdict is said once
    listed = logged_in("runs", "list", "--project", project.id, "--status", "failed", "--json")
    assert listed.returncode == 0, listed.stderr
    (listed_run,) = json.loads(listed.stdout)
    status = logged_in("runs", "status", listed_run["id"])
    assert status.returncode == 1 and "FAILED" in status.stdout and "FAILED — failed" not in status.stdout
    # at 80 columns the table keeps the run id whole (the result column gives way); --wide too
    for args, env in ((), {"COLUMNS": "80"}), (("--wide",), {"COLUMNS": "80"}):
        table = logged_in("runs", "list", "--project", project.id, *args, **env)
        assert table.returncode == 0 and listed_run["id"] in table.stdout, table.stdout
        assert "failed" in table.stdout
    (suite,) = list(JUnitXml.fromfile(str(junit_path)))
    cases = {c.name: c for c in suite}
    assert not cases["asr >= 1"].is_passed
    call_cases = [c for name, c in cases.items() if name.startswith("call 0")]
    assert len(call_cases) == 1 and not call_cases[0].is_passed
    assert suite.failures == 2


def test_tests_apply_creates_then_updates_by_name(logged_in, sdk, stack, tmp_path):
    project = sdk.create_project("CLI apply")
    spec = {"name": "from a file", "steps": [{"actions": [{"type": "call", "dial_destination": stack.responder_uri(),
                                                           "duration_ms": 1000}]}],
            "assertions": [{"metric": "asr", "op": ">=", "value": 1.0}]}
    f = tmp_path / "test.yaml"
    f.write_text(yaml.safe_dump(spec))
    first = logged_in("tests", "apply", "-f", str(f), "--project", project.id)
    assert first.returncode == 0 and "created" in first.stdout, first.stdout + first.stderr
    spec["steps"][0]["actions"][0]["duration_ms"] = 1500
    f.write_text(yaml.safe_dump(spec))
    second = logged_in("tests", "apply", "-f", str(f), "--project", project.id)
    assert second.returncode == 0 and "updated" in second.stdout, second.stdout + second.stderr
    third = logged_in("tests", "apply", "-f", str(f), "--project", project.id)  # the same file again
    assert third.returncode == 0 and "unchanged" in third.stdout, third.stdout + third.stderr
    tests = sdk.list_tests(project.id).items
    assert [t.name for t in tests] == ["from a file"]
    assert tests[0].steps[0]["actions"][0]["duration_ms"] == 1500


def test_usage_and_connection_errors_exit_2(cli, logged_in, stack, tmp_path):
    no_key = cli("--url", stack.settings.gateway_url(), "projects", "list",
                 CALLGAUGE_CONFIG=str(tmp_path / "none.json"))
    assert no_key.returncode == 2 and "API key" in no_key.stderr
    down = cli("--url", f"http://127.0.0.1:{free_port()}", "--api-key", "k", "projects", "list")
    assert down.returncode == 2 and "cannot reach" in down.stderr
    assert logged_in("run").returncode == 2                     # missing TEST
    bad_set = logged_in("run", "x", "--project", "p", "--set", "nonsense")
    assert bad_set.returncode == 2 and "step.N.M.attr=value" in bad_set.stderr
    missing = logged_in("tests", "apply", "-f", str(tmp_path / "nope.yaml"), "--project", "p")
    assert missing.returncode == 2 and "cannot read" in missing.stderr
    unknown = logged_in("run", "no-such-test", "--project", "no-such-project")
    assert unknown.returncode == 2 and "no project" in unknown.stderr


def test_platform_commands_still_answer(cli):
    r = cli("demo", "--help")
    assert r.returncode == 0 and "--destination" in r.stdout
    r = cli("events", "--help")
    assert r.returncode == 0


def test_user_login_and_key_management(cli, stack, tmp_path):
    """login --email creates a key for the CLI (and keeps a rotating refresh token), keys create
    uses that login, keys list never shows a whole key, keys revoke stops one at once."""
    url = stack.settings.gateway_url()
    email, password = f"cli-{uuid.uuid4().hex[:8]}@example.org", "a long enough password"
    with Client(url, "") as anon:
        anon.register(email, password)
    r = cli("login", "--url", url, "--email", email, "--password", password, "--mode", "test")
    assert r.returncode == 0, r.stderr
    saved = json.loads((tmp_path / "config.json").read_text())
    assert saved["api_key"].startswith("cgk_test_") and saved["refresh_token"]
    created = cli("keys", "create", "ci", "--mode", "live", "--json")
    assert created.returncode == 0, created.stderr
    key = json.loads(created.stdout)
    assert key["key"].startswith("cgk_live_")
    assert json.loads((tmp_path / "config.json").read_text())["refresh_token"] != saved["refresh_token"]  # rotated
    listed = cli("keys", "list", "--json")
    assert listed.returncode == 0, listed.stderr
    keys = json.loads(listed.stdout)
    assert {k["name"] for k in keys} >= {"ci"} and all(k.get("key") is None for k in keys)
    assert key["key"] not in listed.stdout
    assert cli("keys", "revoke", key["id"]).returncode == 0
    with Client(url, key["key"]) as revoked, pytest.raises(Unauthorized):
        revoked.list_projects()
    bad = cli("login", "--url", url, "--email", email, "--password", "wrong password")
    assert bad.returncode == 2 and "401" in bad.stderr
