"""The Python client over the whole /api/v1 of the running stack, as a user's script does it:
auth and keys, projects, registrars, credential pools, tests, runs (start by id and by name,
status, detail, list, stop), billing, probes, comparison — sync and async — with typed errors."""

from __future__ import annotations

import asyncio
import uuid

import pytest

from callgauge_client import (
    AsyncClient,
    Client,
    Conflict,
    Forbidden,
    NotFound,
    ValidationFailed,
)

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def user(stack):
    url = stack.settings.gateway_url()
    email, password = f"sdk-{uuid.uuid4().hex[:8]}@example.org", "a long enough password"
    with Client(url, "") as anon:
        me = anon.register(email, password)
        tokens = anon.login(email, password)
    with Client(url, tokens.access_token) as jwt:
        assert jwt.me().email == email == me.email
        key = jwt.create_api_key("sdk", "test")
    return url, key


def test_the_whole_api_through_the_sync_client(user, stack):
    url, key = user
    with Client(url, key.key) as cg:
        with pytest.raises(Forbidden):
            cg.create_api_key("not with an API key")
        with pytest.raises(Forbidden):  # listing keys needs a login token too (#15 finding 6)
            cg.list_api_keys()

        project = cg.create_project("SDK tour", slug=f"sdk-{uuid.uuid4().hex[:6]}", metadata={"team": "voice"})
        assert cg.get_project(project.id).metadata == {"team": "voice"}
        assert cg.update_project(project.id, name="SDK tour 2").name == "SDK tour 2"

        registrar = cg.create_registrar(project.id, "lab", "127.0.0.1", 5060)
        assert [r.id for r in cg.list_registrars(project.id)] == [registrar.id]
        pool = cg.create_credential_pool(project.id, "users", [{"username": "alice", "password": "s3cret"}])
        got = cg.get_credential_pool(project.id, pool.id)
        assert got.credentials[0].username == "alice" and got.credentials[0].has_password
        assert "s3cret" not in got.model_dump_json()

        spec = {"name": f"sdk call {uuid.uuid4().hex[:6]}", "steps": [{"actions": [
            {"type": "call", "dial_destination": stack.responder_uri(), "duration_ms": 30000}]}]}
        test = cg.create_test(project.id, spec)
        assert [t.id for t in cg.list_tests(project.id)] == [test.id]
        spec["steps"][0]["actions"][0]["duration_ms"] = 60000
        assert cg.update_test(project.id, test.id, spec).steps[0]["actions"][0]["duration_ms"] == 60000
        with pytest.raises(ValidationFailed) as bad:
            cg.create_test(project.id, {"name": "bad", "steps": [{"actions": [{"type": "call"}]}]})
        assert bad.value.details and bad.value.code == "VALIDATION_ERROR"

        with pytest.raises(ValidationFailed) as unknown:
            cg.start_run(project.id, test.id, {"step.5.0.dial_destination": "sip:a@b"})
        assert "step.5.0" in str(unknown.value)
        started = cg.run_test(test_name=test.name, tags=["sdk"], kiosk=True)
        assert started.project_id == project.id and started.kiosk_url and started.report_url
        status = cg.run_status(started.test_run_id)
        assert status.test_name == test.name and not status.is_finished
        assert started.test_run_id in {r.id for r in cg.list_runs(project.id, test_id=test.id)}
        cg.stop_run(started.test_run_id)
        run = cg.wait_for_run(project.id, started.test_run_id, timeout=60, poll=0.5)
        assert run.status == "CANCELLED" and run.tags == ["sdk"]
        with pytest.raises(Conflict):
            cg.stop_run(started.test_run_id)
        cg.revoke_kiosk(started.test_run_id)

        before = cg.wallet()
        after = cg.top_up(2500)
        assert after.balance_minor == before.balance_minor + 2500 and after.currency

        probe = cg.create_probe(project.id, test.id, "sdk probe", 3600, enabled=False,
                                thresholds={"mos": {"warning": 4.0, "critical": 3.0}})
        assert probe.enabled is False and probe.thresholds["mos"]["critical"] == 3.0
        assert [p.id for p in cg.list_probes(project.id)] == [probe.id]
        assert cg.update_probe(project.id, probe.id, intervalSeconds=7200).interval_seconds == 7200
        cg.delete_probe(project.id, probe.id)
        with pytest.raises(NotFound):
            cg.get_probe(project.id, probe.id)

        cg.delete_test(project.id, test.id)
        with pytest.raises(NotFound):
            cg.get_test(project.id, test.id)


def test_the_async_client(user):
    url, key = user

    async def go():
        async with AsyncClient(url, key.key) as cg:
            project = await cg.create_project("SDK async")
            listed = await cg.list_projects()
            with pytest.raises(NotFound):
                await cg.get_project(str(uuid.uuid4()))
            return project, listed

    project, listed = asyncio.run(go())
    assert project.id in {p.id for p in listed}
