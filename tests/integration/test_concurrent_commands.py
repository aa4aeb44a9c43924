"""Concurrent writers on one stream, through the one command loop (decide_and_append), on SQLite
and PostgreSQL: two 'processes' (each its own store adapter and app, as two replicas) issue
commands on the same stream at once. Either every command succeeds (decided again on the other's
result), or the domain refuses one with its own error; a version conflict never reaches the
caller. Runs: project slug claims, StartRun of one run id, media events of one run, project
updates. Accounts: the email claim, sessions (logout, refresh), email changes."""

from __future__ import annotations

import asyncio

import pytest
from argon2 import PasswordHasher
from callgauge_accounts.adapters.passwords import Argon2Passwords
from callgauge_accounts.domain import errors as accounts_errors
from callgauge_accounts.handlers.app import AccountsApp
from callgauge_bus.codec import Delivered, decode_payload, envelope_for
from callgauge_eventstore import WrongExpectedVersion
from callgauge_proto.callgauge.common.v1 import test_spec_pb2 as spec_pb2
from callgauge_proto.callgauge.events.v1 import media_pb2, runs_pb2
from callgauge_proto.callgauge.media.v1 import measurements_pb2 as m_pb2
from callgauge_runs.domain import project as project_model, run as run_model, test as test_model
from callgauge_runs.domain.errors import Conflict, DomainError
from callgauge_runs.handlers.app import RunsApp, new_id, run_stream

PASSWORD = "correct horse battery staple"
JWT_SECRET = "s" * 40
TIMEOUT = 120


async def at_once(*commands):
    """Run the commands concurrently; their results or exceptions. A version conflict is a failure."""
    async with asyncio.timeout(TIMEOUT):
        results = await asyncio.gather(*commands, return_exceptions=True)
    leaked = [r for r in results if isinstance(r, WrongExpectedVersion)]
    assert not leaked, f"a version conflict reached the caller: {leaked}"
    return results


def refused(results, error: type[BaseException]) -> list:
    out = [r for r in results if isinstance(r, BaseException)]
    assert all(isinstance(r, error) for r in out), [repr(r) for r in out]
    return out


# ---------------------------------------------------------------- runs


@pytest.fixture
async def two_runs(store_backend):
    """Two runs 'processes' on one store (the shared store_backend: SQLite, then PostgreSQL)."""
    apps = [RunsApp(store_backend.new_store("runs")) for _ in range(2)]
    for app in apps:
        await app.start()
    yield apps
    for app in apps:
        await app.stop()


async def a_test(runs: RunsApp, account: str = "acct") -> tuple[str, str]:
    pid, tid = new_id(), new_id()
    await runs.create_project(project_model.CreateProject(pid, account, "PBX"))
    spec = spec_pb2.TestSpec()
    spec.steps.add().actions.add().call.CopyFrom(spec_pb2.CallAction(dial_destination="sip:echo@127.0.0.1:5070"))
    await runs.create_test(test_model.CreateTest(tid, pid, account, "echo", spec))
    return pid, tid


async def test_two_projects_claiming_one_slug_at_once_one_is_refused_by_the_domain(two_runs):
    a, b = two_runs
    ids = [new_id(), new_id()]
    results = await at_once(*(app.create_project(project_model.CreateProject(pid, "acct", "Core", slug="core"))
                              for app, pid in zip((a, b), ids)))
    assert len(refused(results, DomainError)) == 1, results
    [winner] = [r for r in results if not isinstance(r, BaseException)]
    await b.view.wait_for(await b.store.last_position())
    assert [p.project.id for p in b.list_projects("acct") if p.project.slug == "core"] == [winner.project.id]
    loser = next(pid for pid in ids if pid != winner.project.id)
    assert loser not in b.view.projects  # the loser holds nothing: its slug claim was undone or never made


async def test_two_starts_of_one_run_id_start_it_once_and_refuse_the_other(two_runs):
    a, b = two_runs
    pid, tid = await a_test(a)
    await b.view.wait_for(await b.store.last_position())
    run_id = new_id()  # as two probe schedulers starting one slot's run
    results = await at_once(*(app.start_run(run_model.StartRun(run_id, pid, tid, "acct")) for app in (a, b)))
    assert len(refused(results, Conflict)) == 1, results
    requested = [ev for ev in await a.store.read_stream(run_stream(run_id)) if ev.type.endswith("RunRequested")]
    assert len(requested) == 1


async def test_updates_of_one_project_at_once_all_land(two_runs):
    a, b = two_runs
    pid, _ = await a_test(a)
    await b.view.wait_for(await b.store.last_position())
    names = [f"name {i}" for i in range(6)]
    results = await at_once(*((a, b)[i % 2].update_project(project_model.UpdateProject(pid, "acct", "live", name=n))
                              for i, n in enumerate(names)))
    refused(results, DomainError)
    assert not [r for r in results if isinstance(r, BaseException)], results
    renamed = [decode_payload(ev.type, ev.data).name for ev in await a.store.read_stream(f"project-{pid}")
               if ev.type.endswith("ProjectUpdated")]
    assert sorted(renamed) == sorted(names)


async def test_media_events_of_one_run_from_two_consumers_at_once_are_all_recorded(two_runs):
    a, b = two_runs
    pid, tid = await a_test(a)
    run = await a.start_run(run_model.StartRun(new_id(), pid, tid, "acct"))
    await b.view.wait_for(await b.store.last_position())

    def delivered(msg, n: int) -> Delivered:
        return Delivered(envelope_for(msg, f"media-run-{run.id}", n, run.id, "", "media-engine"), msg)

    await a.on_media_event(delivered(media_pb2.RunAccepted(run_id=run.id, engine_id="e", planned_calls=8), 0))
    calls = [delivered(media_pb2.CallMeasured(run_id=run.id, engine_id="e", call=m_pb2.CallMeasurement(
        call_id=f"c{i}", outcome=m_pb2.SUCCESS)), i + 1) for i in range(8)]
    # each call once by each consumer (a redelivery racing the first delivery), all at once
    await at_once(*((a, b)[i % 2].on_media_event(d) for i, d in enumerate(calls + calls)))
    recorded = [decode_payload(ev.type, ev.data) for ev in await a.store.read_stream(run_stream(run.id))]
    call_ids = [e.call.call_id for e in recorded if isinstance(e, runs_pb2.CallRecorded)]
    assert sorted(call_ids) == sorted(f"c{i}" for i in range(8)), call_ids


# ---------------------------------------------------------------- accounts


@pytest.fixture
async def two_accounts(store_backend):
    # cheap hashing: the races are the point
    passwords = Argon2Passwords(PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1))
    apps = [AccountsApp(store_backend.new_store("accounts"), JWT_SECRET, passwords=passwords) for _ in range(2)]
    for app in apps:
        await app.start()
    yield apps
    for app in apps:
        await app.stop()


async def test_one_email_registered_twice_at_once_makes_one_account(two_accounts):
    a, b = two_accounts
    results = await at_once(*(app.register("race@example.com", PASSWORD) for app in (a, b, a, b)))
    assert len(refused(results, accounts_errors.Conflict)) == 3, results


async def test_a_session_ended_twice_and_refreshed_at_once(two_accounts):
    a, b = two_accounts
    account = await a.register("s@example.com", PASSWORD)
    tokens = await a.login("s@example.com", PASSWORD)
    sid = a.view.sessions and next(s.id for s in a.view.sessions.values() if s.account_id == account.id)
    await b.view.wait_for(await b.store.last_position())
    results = await at_once(a.end_session(account.id, sid), b.end_session(account.id, sid),
                            b.refresh(tokens.refresh_token))
    assert results[:2] == [None, None], results  # both logouts succeed (the second has nothing to do)
    refused(results, accounts_errors.Unauthenticated)  # the refresh may have come first, or be refused
    with pytest.raises(accounts_errors.Unauthenticated):
        await a.refresh(tokens.refresh_token)


async def test_two_email_changes_of_one_account_at_once_both_land_and_free_what_they_leave(two_accounts):
    a, b = two_accounts
    account = await a.register("old@example.com", PASSWORD)
    await b.view.wait_for(await b.store.last_position())
    results = await at_once(a.update_account(account.id, "one@example.com", "", PASSWORD),
                            b.update_account(account.id, "two@example.com", "", PASSWORD))
    assert not [r for r in results if isinstance(r, BaseException)], results
    await a.view.wait_for(await a.store.last_position())
    final = a.get_account(account.id).email
    assert final in ("one@example.com", "two@example.com")
    # every address the account no longer has is free again; the one it has is not
    for email in {"old@example.com", "one@example.com", "two@example.com"} - {final}:
        await a.register(email, PASSWORD)
    with pytest.raises(accounts_errors.Conflict):
        await a.register(final, PASSWORD)
