"""Deciders of projects (update/delete, slugs, modes), tests (update/delete, pools), registrars,
credential pools, step overrides, stop and kiosk links: given events / when command / then events."""

from __future__ import annotations

import pytest

from callgauge_proto.callgauge.common.v1 import test_spec_pb2 as spec_pb2
from callgauge_proto.callgauge.events.v1 import media_pb2, runs_pb2
from callgauge_proto.callgauge.media.v1 import measurements_pb2 as m_pb2
from callgauge_runs.domain import project as project_model, resources as resource_model, run as run_model, test as test_model
from callgauge_runs.domain.errors import Conflict, Invalid, NotFound


def fold(evolve, events):
    state = None
    for e in events:
        state = evolve(state, e, None)
    return state


def locs(err) -> list:
    return [e.loc for e in err.value.errors]


PROJECT = runs_pb2.ProjectCreated(project_id="p1", account_id="a1", name="PBX", slug="pbx", mode="live")
TEST_MODE_PROJECT = runs_pb2.ProjectCreated(project_id="p2", account_id="a1", name="PBX", slug="pbx", mode="test")
REGISTRAR = runs_pb2.RegistrarCreated(registrar_id="r1", project_id="p1", account_id="a1", mode="live", name="lab",
                                      host="127.0.0.1", port=5060, transport="udp", domain="127.0.0.1")
POOL = runs_pb2.CredentialPoolCreated(pool_id="c1", project_id="p1", account_id="a1", mode="live", name="users",
                                      credentials=[runs_pb2.StoredCredential(username="1001",
                                                                             password_ciphertext=b"gAAAA-1001")])


def project(*more):
    return fold(project_model.evolve_project, [PROJECT, *more])


def resources():
    return resource_model.Resources({"r1": fold(resource_model.evolve_registrar, [REGISTRAR])}, {"c1": fold(resource_model.evolve_pool, [POOL])})


# ---------------------------------------------------------------- projects


def test_events_without_mode_read_as_live():
    old = runs_pb2.ProjectCreated(project_id="p0", account_id="a1", name="old", slug="old")
    assert fold(project_model.evolve_project, [old]).mode == "live"


def test_update_project_changes_only_what_is_given():
    [event] = project_model.decide_update_project(project(), project_model.UpdateProject("p1", "a1", "live", name="PBX 2"))
    assert event == runs_pb2.ProjectUpdated(project_id="p1", name="PBX 2", slug="pbx")
    assert project(event).name == "PBX 2"


def test_update_project_to_the_same_values_decides_nothing():
    assert project_model.decide_update_project(project(), project_model.UpdateProject("p1", "a1", "live", name="PBX")) == []


def test_a_taken_slug_conflicts_on_create_and_update():
    with pytest.raises(Conflict):
        project_model.decide_create_project(None, project_model.CreateProject("p3", "a1", "x", slug="pbx"), slug_taken=True)
    with pytest.raises(Conflict):
        project_model.decide_update_project(project(), project_model.UpdateProject("p1", "a1", "live", slug="other"), slug_taken=True)


def test_a_bad_slug_and_empty_name_name_their_fields():
    with pytest.raises(Invalid) as err:
        project_model.decide_update_project(project(), project_model.UpdateProject("p1", "a1", "live", name=" ", slug="Bad Slug"))
    assert locs(err) == [["name"], ["slug"]]


@pytest.mark.parametrize("account, mode", [("other", "live"), ("a1", "test")])
def test_another_account_or_mode_does_not_find_the_project(account, mode):
    with pytest.raises(NotFound):
        project_model.decide_update_project(project(), project_model.UpdateProject("p1", account, mode, name="x"))
    with pytest.raises(NotFound):
        project_model.decide_delete_project(project(), project_model.DeleteProject("p1", account, mode))


def test_a_deleted_project_is_gone():
    [event] = project_model.decide_delete_project(project(), project_model.DeleteProject("p1", "a1", "live"))
    gone = project(event)
    assert gone.deleted
    with pytest.raises(NotFound):
        project_model.decide_delete_project(gone, project_model.DeleteProject("p1", "a1", "live"))
    with pytest.raises(NotFound):
        test_model.decide_create_test(gone, None, test_model.CreateTest("t1", "p1", "a1", "x", call_spec()))


# ---------------------------------------------------------------- tests


def call_spec(**kw) -> spec_pb2.TestSpec:
    spec = spec_pb2.TestSpec()
    spec.steps.add().actions.add().call.CopyFrom(spec_pb2.CallAction(
        dial_destination=kw.pop("dial_destination", "sip:echo@127.0.0.1:5070"), **kw))
    return spec


def basic_call_spec() -> spec_pb2.TestSpec:
    """Sipfront's basic call: step 0 registers callees and waits, step 1 calls them."""
    spec = spec_pb2.TestSpec()
    s0 = spec.steps.add()
    s0.actions.add().register.CopyFrom(spec_pb2.RegisterAction(target_pool="r1", credential_pool="c1"))
    s0.actions.add().wait_for_calls.CopyFrom(spec_pb2.WaitForCallsAction(credential_pool="c1"))
    spec.steps.add().actions.add().call.CopyFrom(spec_pb2.CallAction(dial_destination="1001", target_pool="r1"))
    return spec


def test_create_test_in_a_test_mode_project_needs_a_test_mode_command():
    p = fold(project_model.evolve_project, [TEST_MODE_PROJECT])
    with pytest.raises(NotFound):
        test_model.decide_create_test(p, None, test_model.CreateTest("t1", "p2", "a1", "x", call_spec()))
    [event] = test_model.decide_create_test(p, None, test_model.CreateTest("t1", "p2", "a1", "x", call_spec(), mode="test"))
    assert event.mode == "test"


def test_pools_the_test_names_must_exist_in_the_project():
    with pytest.raises(Invalid) as err:
        test_model.decide_create_test(project(), None, test_model.CreateTest("t1", "p1", "a1", "x", basic_call_spec()))
    assert locs(err) == [["steps", 0, "actions", 0, "target_pool"], ["steps", 0, "actions", 0, "credential_pool"],
                         ["steps", 0, "actions", 1, "credential_pool"], ["steps", 1, "actions", 0, "target_pool"]]
    [event] = test_model.decide_create_test(project(), None, test_model.CreateTest("t1", "p1", "a1", "x", basic_call_spec()),
                                       resources())
    assert event.spec.steps[0].actions[0].register.regexpire == 3600  # default filled in


def test_every_action_type_is_validated_at_its_location():
    spec = spec_pb2.TestSpec()
    s = spec.steps.add()
    s.actions.add().register.CopyFrom(spec_pb2.RegisterAction(regexpire=5, transport="sctp"))
    s.actions.add().wait_for_calls.CopyFrom(spec_pb2.WaitForCallsAction(credential_pool="c1", hangup_by="callee",
                                                                        expect_dtmf="xyz"))
    s.actions.add().load.CopyFrom(spec_pb2.LoadAction(dial_destination="1234", cps=0, driver="kamikaze"))
    s.actions.add().call.CopyFrom(spec_pb2.CallAction(dial_destination="sip:a@h", dtmf="12E"))
    with pytest.raises(Invalid) as err:
        test_model.decide_create_test(project(), None, test_model.CreateTest("t1", "p1", "a1", "x", spec), resources())
    assert sorted(map(tuple, locs(err))) == sorted([
        ("steps", 0, "actions", 0, "transport"), ("steps", 0, "actions", 0, "regexpire"),
        ("steps", 0, "actions", 0, "target_pool"), ("steps", 0, "actions", 0, "credential_pool"),
        ("steps", 0, "actions", 1, "expect_dtmf"), ("steps", 0, "actions", 1, "duration_ms"),
        ("steps", 0, "actions", 2, "dial_destination"), ("steps", 0, "actions", 2, "cps"),
        ("steps", 0, "actions", 2, "hold_s"), ("steps", 0, "actions", 2, "driver"),
        ("steps", 0, "actions", 3, "dtmf")])


TEST = runs_pb2.TestCreated(test_id="t1", project_id="p1", account_id="a1", name="basic", spec=basic_call_spec(),
                            mode="live")


def test_patch_replaces_only_the_given_parts():
    test = fold(test_model.evolve_test, [TEST])
    [event] = test_model.decide_update_test(test, test_model.UpdateTest("t1", "p1", "a1", "live", name="renamed"), resources())
    assert event.name == "renamed" and event.spec.steps[1].actions[0].call.dial_destination == "1001"
    asserts = spec_pb2.TestSpec(assertions=[spec_pb2.Assertion(metric="mos_min", op=">=", value=4)])
    [event] = test_model.decide_update_test(test, test_model.UpdateTest("t1", "p1", "a1", "live", assertions=asserts),
                                       resources())
    assert [a.metric for a in event.spec.assertions] == ["mos_min"] and len(event.spec.steps) == 2


def test_update_test_validates_like_create():
    test = fold(test_model.evolve_test, [TEST])
    with pytest.raises(Invalid) as err:
        test_model.decide_update_test(test, test_model.UpdateTest("t1", "p1", "a1", "live", steps=call_spec(codec="MP3")),
                                 resources())
    assert locs(err) == [["steps", 0, "actions", 0, "codec"]]


def test_delete_test_then_it_is_not_found():
    test = fold(test_model.evolve_test, [TEST])
    [event] = test_model.decide_delete_test(test, test_model.DeleteTest("t1", "p1", "a1", "live"))
    assert event == runs_pb2.TestDeleted(test_id="t1", project_id="p1")
    with pytest.raises(NotFound):
        test_model.decide_update_test(fold(test_model.evolve_test, [TEST, event]),
                                 test_model.UpdateTest("t1", "p1", "a1", "live", name="x"))
    with pytest.raises(NotFound):
        test_model.decide_delete_test(test, test_model.DeleteTest("t1", "p9", "a1", "live"))


# ---------------------------------------------------------------- registrars and pools


def test_create_registrar_defaults_port_transport_and_domain():
    [event] = resource_model.decide_create_registrar(project(), None, resource_model.CreateRegistrar(
        "r2", "p1", "a1", "live", resource_model.RegistrarFields(name="lab", host="sip.example")))
    assert (event.port, event.transport, event.domain) == (5060, "udp", "sip.example")


def test_registrar_input_errors_name_the_field():
    with pytest.raises(Invalid) as err:
        resource_model.decide_create_registrar(project(), None, resource_model.CreateRegistrar(
            "r2", "p1", "a1", "live", resource_model.RegistrarFields(name="", host="a b", port=70000, transport="sctp")))
    assert locs(err) == [["name"], ["host"], ["port"], ["transport"]]


def test_update_and_delete_registrar():
    reg = fold(resource_model.evolve_registrar, [REGISTRAR])
    [event] = resource_model.decide_update_registrar(reg, resource_model.UpdateRegistrar("r1", "p1", "a1", "live",
                                                                       resource_model.RegistrarFields(port=5080)))
    assert (event.port, event.host, event.domain) == (5080, "127.0.0.1", "127.0.0.1")
    with pytest.raises(Conflict):
        resource_model.decide_delete_registrar(reg, resource_model.DeleteResource("r1", "p1", "a1", "live"), used_by=("basic",))
    assert resource_model.decide_delete_registrar(reg, resource_model.DeleteResource("r1", "p1", "a1", "live")) == [
        runs_pb2.RegistrarDeleted(registrar_id="r1", project_id="p1")]
    with pytest.raises(NotFound):
        resource_model.decide_update_registrar(reg, resource_model.UpdateRegistrar("r1", "p1", "a1", "test", resource_model.RegistrarFields()))


def test_pool_keeps_ciphertext_only_and_a_password_is_required():
    [event] = resource_model.decide_create_pool(project(), None, resource_model.CreateCredentialPool(
        "c2", "p1", "a1", "live", "users", (resource_model.Credential("1001", password_ciphertext="gAAAA-x"),)))
    assert event.credentials[0].password_ciphertext == b"gAAAA-x"
    with pytest.raises(Invalid) as err:
        resource_model.decide_create_pool(project(), None, resource_model.CreateCredentialPool(
            "c2", "p1", "a1", "live", "users", (resource_model.Credential("1001"), resource_model.Credential("bad user", "", "", "x"))))
    assert locs(err) == [["credentials", 0, "password"], ["credentials", 1, "username"]]


def test_pool_update_without_password_keeps_the_stored_one():
    pool = fold(resource_model.evolve_pool, [POOL])
    [event] = resource_model.decide_update_pool(pool, resource_model.UpdateCredentialPool(
        "c1", "p1", "a1", "live", credentials=(resource_model.Credential("1001", domain="lab"),
                                               resource_model.Credential("1002", password_ciphertext="gAAAA-1002"))))
    assert [(c.username, c.domain, c.password_ciphertext) for c in event.credentials] == [
        ("1001", "lab", b"gAAAA-1001"), ("1002", "", b"gAAAA-1002")]


# ---------------------------------------------------------------- runs: overrides, pools, stop, kiosk


def start(overrides=None, **kw):
    test = fold(test_model.evolve_test, [TEST])
    return run_model.decide_start_run(test, None, run_model.StartRun("run1", "p1", "t1", "a1", overrides=overrides or {},
                                                             **kw), resources())


def test_start_run_resolves_pools_into_targets_and_usernames():
    [event] = start()
    assert [(t.id, t.host, t.port, t.transport) for t in event.targets] == [("r1", "127.0.0.1", 5060, "udp")]
    assert [(p.id, [(c.username, c.auth_username) for c in p.credentials]) for p in event.pools] == [
        ("c1", [("1001", "1001")])]
    assert b"gAAAA" not in event.SerializeToString()  # no ciphertext, no password on Kafka
    assert fold(run_model.evolve_run, [event]).credential_pools == ("c1",)


def test_overrides_are_coerced_by_the_attribute_type():
    [event] = start({"step.0.0.regexpire": "600", "step.1.0.dial_destination": "1002",
                     "step.1.0.max_total_calls": "10", "step.0.0.keep_registered": "true"})
    assert event.spec.steps[0].actions[0].register.regexpire == 600
    assert event.spec.steps[0].actions[0].register.keep_registered is True
    assert event.spec.steps[1].actions[0].call.dial_destination == "1002"
    assert event.spec.steps[1].actions[0].call.max_total_calls == 10
    # the test itself is unchanged
    assert TEST.spec.steps[1].actions[0].call.dial_destination == "1001"


def test_bad_overrides_name_the_key():
    with pytest.raises(Invalid) as err:
        start({"step.2.0.dial_destination": "x", "step.0.5.regexpire": "1", "step.0.0.dial_destination": "x",
               "step.1.0.max_total_calls": "-1", "step.1.0.max_total_calls ": "1", "step.0.0.keep_registered": "maybe"})
    by_key = {e.loc[0]: e for e in err.value.errors}
    assert set(by_key) == {"step.2.0.dial_destination", "step.0.5.regexpire", "step.0.0.dial_destination",
                           "step.1.0.max_total_calls", "step.1.0.max_total_calls ", "step.0.0.keep_registered"}
    assert by_key["step.2.0.dial_destination"].type == "unknown_step"
    assert by_key["step.0.5.regexpire"].type == "unknown_action"
    assert by_key["step.0.0.dial_destination"].type == "unknown_attribute"
    assert "regexpire" in by_key["step.0.0.dial_destination"].msg  # lists the register action's attributes


def test_override_values_are_validated_like_the_test_at_the_key():
    with pytest.raises(Invalid) as err:
        start({"step.0.0.regexpire": "5", "step.1.0.credential_pool": "elsewhere", "step.1.0.codec": "MP3"})
    assert sorted(e.loc[0] for e in err.value.errors) == [
        "step.0.0.regexpire", "step.1.0.codec", "step.1.0.credential_pool"]


def test_a_kiosk_link_is_kept_as_its_hash_and_revocable():
    events = start(kiosk_token_sha256="ab" * 32)
    assert [type(e).__name__ for e in events] == ["RunRequested", "RunKioskLinkCreated"]
    run = fold(run_model.evolve_run, events)
    assert run.kiosk_hashes == ("ab" * 32,)
    [revoked] = run_model.decide_revoke_kiosk(run, run_model.RevokeKioskLinks("run1", "a1", "live"))
    assert fold(run_model.evolve_run, [*events, revoked]).kiosk_hashes == ()
    with pytest.raises(NotFound):
        run_model.decide_revoke_kiosk(run, run_model.RevokeKioskLinks("run1", "a2", "live"))


def test_stop_a_pending_run_cancels_at_once():
    events = start()
    stop = run_model.decide_stop_run(fold(run_model.evolve_run, events), run_model.StopRun("run1", "a1", "live"))
    assert [type(e).__name__ for e in stop] == ["RunStopRequested", "RunCancelled"]
    run = fold(run_model.evolve_run, [*events, *stop])
    assert run.status == "CANCELLED" and run.finished and not run.passed
    with pytest.raises(Conflict):
        run_model.decide_stop_run(run, run_model.StopRun("run1", "a1", "live"))


def test_stop_a_running_run_waits_for_the_engine_then_cancels():
    events = start()
    events.append(runs_pb2.RunStarted(run_id="run1", engine_id="e"))
    [stop] = run_model.decide_stop_run(fold(run_model.evolve_run, events), run_model.StopRun("run1", "a1", "live"))
    events.append(stop)
    assert fold(run_model.evolve_run, events).status == "STOPPING"
    assert run_model.decide_stop_run(fold(run_model.evolve_run, events), run_model.StopRun("run1", "a1", "live")) == []
    summary = m_pb2.RunSummary(calls_attempted=3, calls_answered=3, asr=1.0)
    [end] = run_model.decide_media_event(fold(run_model.evolve_run, events),
                                     media_pb2.RunMediaFinished(run_id="run1", summary=summary))
    assert isinstance(end, runs_pb2.RunCancelled) and "3 call(s)" in end.result_description
    with pytest.raises(NotFound):
        run_model.decide_stop_run(fold(run_model.evolve_run, events), run_model.StopRun("run1", "a1", "test"))


def test_a_slug_is_claimed_once_and_released_by_its_holder_only():
    [claim] = project_model.decide_claim_slug(None, "p1", "pbx")
    holder = fold(project_model.evolve_slug, [claim])
    assert holder == "p1" and project_model.decide_claim_slug(holder, "p1", "pbx") == []
    with pytest.raises(Conflict):
        project_model.decide_claim_slug(holder, "p2", "pbx")
    assert project_model.decide_release_slug(holder, "p2", "pbx") == []
    [release] = project_model.decide_release_slug(holder, "p1", "pbx")
    assert fold(project_model.evolve_slug, [claim, release]) is None
