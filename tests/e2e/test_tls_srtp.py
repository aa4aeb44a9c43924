"""SIP over TLS and SRTP through the REST API of the whole stack (#16 item 4).

The test makes its own CA and a certificate for 127.0.0.1, gives that CA to the media engine
(CALLGAUGE_MEDIA_TLS_CA_FILE) and the certificate to Kamailio with its TLS module (Debian
`kamailio-tls-modules`). Then:
- a TLS call through Kamailio-TLS, certificate verification on (the registrar's default): both users
  register over TLS, the caller's INVITE and the callee's leg go over TLS, SRTP mandatory end to end;
- an SRTP call to the built-in responder (SRTP when offered): measured SRTP on, with its suite;
- a call that requires SRTP to a callee without it: refused 488, NEGOTIATION_FAILED, a clear detail;
- DTLS-SRTP (`srtp_keying: dtls`): a call to the built-in responder and one through Kamailio to a
  `wait_for_calls` user that takes DTLS-SRTP only, both measured with keying dtls and a MOS;
- validation: 422 per field for an unknown srtp value, sips: with transport udp, SRTP with SIPp, an
  unknown srtp_keying, srtp_keying with srtp off.
"""

from __future__ import annotations

import time
import uuid

import httpx
import pytest

from callgauge_client import Client
from callgauge_platform.kamailio import Kamailio
from callgauge_platform.stack import Stack
from callgauge_platform.run_states import TERMINAL
from tests.e2e.test_walking_skeleton import calls_of
from api_envelope import data

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.kamailio,
    pytest.mark.kamailio_tls,
]

USERS = {"alice": "alice-tls-e2e", "bob": "bob-tls-e2e", "carol": "carol-plain-e2e", "dave": "dave-dtls-e2e"}


@pytest.fixture(scope="module")
def kamailio(start_kamailio, pki) -> Kamailio:
    return start_kamailio(USERS, tls=pki["server"])


@pytest.fixture(scope="module")
def tls_stack(tmp_path_factory, pki):
    s = Stack.on_free_ports(tmp_path_factory.mktemp("tls-stack") / "data", media_tls_ca_file=str(pki["ca"].cert_path),
                            dial_allow_ports="1-65535")
    s.start(timeout=90)
    yield s
    s.stop()


@pytest.fixture(scope="module")
def api(tls_stack):
    with httpx.Client(base_url=f"{tls_stack.settings.gateway_url()}/api/v1",
                      headers={"Authorization": f"Bearer {tls_stack.settings.api_key}"}, timeout=30) as client:
        yield client


def _project(api) -> str:
    return data(api.post("/projects", json={"name": f"tls-{uuid.uuid4().hex[:8]}"}), 201)["id"]


def _udp_registrar(api, kamailio) -> tuple[str, dict]:
    """A new project and its registrar for Kamailio over UDP: (project id, registrar)."""
    pid = _project(api)
    return pid, data(api.post(f"/projects/{pid}/registrars", json={
        "name": "kamailio-udp", "host": kamailio.host, "port": kamailio.port, "transport": "udp"}), 201)


def _pool(api, pid: str, *users: str) -> str:
    return data(api.post(f"/projects/{pid}/credential-pools", json={
        "name": "-".join(users), "credentials": [{"username": u, "password": USERS[u]} for u in users]}), 201)["id"]


def _run(api, pid: str, steps: list, limit_s: float = 120) -> tuple[dict, list[dict]]:
    t = data(api.post(f"/projects/{pid}/tests", json={"name": "tls-srtp", "steps": steps}), 201)
    started = data(api.post(f"/projects/{pid}/tests/{t['id']}/run"), 201)
    deadline = time.monotonic() + limit_s  # bounds the poll loop, not a timing assertion
    while time.monotonic() < deadline:
        run = data(api.get(f"/projects/{pid}/test-runs/{started['testRunId']}"))
        if run["status"] in TERMINAL:
            return run, calls_of(api, pid, run["id"])
        time.sleep(0.3)
    pytest.fail(f"run {started['testRunId']} did not end within {limit_s} s")


def test_tls_call_through_kamailio_tls_with_verification_on(api, kamailio):
    pid = _project(api)
    reg = data(api.post(f"/projects/{pid}/registrars", json={
        "name": "kamailio-tls", "host": kamailio.host, "port": kamailio.tls_port, "transport": "tls"}), 201)
    assert reg["transport"] == "tls" and reg["tlsVerify"] is True, reg  # verification is the default
    callers, callees = _pool(api, pid, "alice"), _pool(api, pid, "bob")
    run, calls = _run(api, pid, [
        {"actions": [
            {"type": "register", "target_pool": reg["id"], "credential_pool": callers, "regexpire": 120},
            {"type": "wait_for_calls", "target_pool": reg["id"], "credential_pool": callees, "srtp": "optional"}]},
        {"actions": [
            {"type": "call", "dial_destination": "bob", "target_pool": reg["id"], "credential_pool": callers,
             "duration_ms": 2000, "tone_hz": 440, "srtp": "mandatory"}]},
    ])
    assert run["status"] == "COMPLETED", (run["resultDescription"], calls, kamailio.log_tail())
    [call] = [c for c in calls if c.get("role", "caller") == "caller"]
    assert call["outcome"] == "SUCCESS" and call["transport"] == "tls", call
    assert call["srtp"] is True and call["srtpSuite"] and call["srtpKeying"] == "sdes", call


def test_srtp_call_to_the_builtin_responder_measures_srtp_on(api, tls_stack):
    pid = _project(api)
    run, [call] = _run(api, pid, [{"actions": [
        {"type": "call", "dial_destination": tls_stack.responder_uri(), "duration_ms": 1500, "tone_hz": 440,
         "srtp": "mandatory"}]}])
    assert run["status"] == "COMPLETED", (run["resultDescription"], call)
    assert call["outcome"] == "SUCCESS" and call["srtp"] is True and call["srtpSuite"], call
    assert call["transport"] == "udp" and call["mos"] is not None, call
    # the Python client reads the same facts, and makes a TLS registrar (5061, verification on)
    with Client(tls_stack.settings.gateway_url(), tls_stack.settings.api_key) as cg:
        [m] = cg.run_calls_page(pid, run["id"]).items
        assert (m.srtp, m.srtp_suite, m.srtp_keying, m.transport) == (True, call["srtpSuite"], "sdes", "udp"), m
        reg = cg.create_registrar(pid, "tls", "pbx.example", transport="tls")
        assert (reg.port, reg.transport, reg.tls_verify) == (5061, "tls", True), reg
        lax = cg.create_registrar(pid, "lab", "pbx.example", transport="tls", tls_verify=False)
        assert lax.tls_verify is False, lax


def test_dtls_srtp_call_to_the_builtin_responder(api, tls_stack):
    pid = _project(api)
    run, [call] = _run(api, pid, [{"actions": [
        {"type": "call", "dial_destination": tls_stack.responder_uri(), "duration_ms": 1500, "tone_hz": 440,
         "srtp": "mandatory", "srtp_keying": "dtls"}]}])
    assert run["status"] == "COMPLETED", (run["resultDescription"], call)
    assert call["outcome"] == "SUCCESS" and call["srtp"] is True and call["srtpSuite"], call
    assert call["srtpKeying"] == "dtls" and call["mos"] is not None, call
    with Client(tls_stack.settings.gateway_url(), tls_stack.settings.api_key) as cg:
        [m] = cg.run_calls_page(pid, run["id"]).items
        assert (m.srtp, m.srtp_keying) == (True, "dtls"), m


def test_dtls_srtp_through_kamailio_to_a_callee_that_takes_dtls_only(api, kamailio):
    pid, reg = _udp_registrar(api, kamailio)
    callers, callees = _pool(api, pid, "alice"), _pool(api, pid, "dave")
    run, calls = _run(api, pid, [
        {"actions": [
            {"type": "register", "target_pool": reg["id"], "credential_pool": callers, "regexpire": 120},
            {"type": "wait_for_calls", "target_pool": reg["id"], "credential_pool": callees,
             "srtp": "mandatory", "srtp_keying": "dtls"}]},
        {"actions": [
            {"type": "call", "dial_destination": "dave", "target_pool": reg["id"], "credential_pool": callers,
             "duration_ms": 2000, "tone_hz": 440, "srtp": "mandatory", "srtp_keying": "dtls"}]},
    ])
    assert run["status"] == "COMPLETED", (run["resultDescription"], calls, kamailio.log_tail())
    [call] = [c for c in calls if c.get("role", "caller") == "caller"]
    assert call["outcome"] == "SUCCESS" and call["srtp"] is True and call["srtpKeying"] == "dtls", call
    assert call["mos"] is not None, call  # (a call between the run's own users is one measurement)


def test_srtp_required_by_the_test_and_refused_by_the_far_end(api, kamailio):
    pid, reg = _udp_registrar(api, kamailio)
    callers, callees = _pool(api, pid, "alice"), _pool(api, pid, "carol")
    run, calls = _run(api, pid, [
        {"actions": [
            {"type": "wait_for_calls", "target_pool": reg["id"], "credential_pool": callees}]},  # no SRTP
        {"actions": [
            {"type": "call", "dial_destination": "carol", "target_pool": reg["id"], "credential_pool": callers,
             "duration_ms": 1000, "srtp": "mandatory",
             "expect": [{"outcome": "NEGOTIATION_FAILED", "sip_code": 488}]}]},
    ])
    [call] = [c for c in calls if c.get("role", "caller") == "caller"]
    assert call["outcome"] == "NEGOTIATION_FAILED" and call["sipCode"] == 488, call
    assert "SRTP was required" in call["detail"] and call["srtp"] is False, call
    assert run["status"] == "COMPLETED", (run["resultDescription"], call)  # the refusal was expected


def test_validation_names_each_field(api):
    pid = _project(api)

    def locs(steps) -> list:
        r = api.post(f"/projects/{pid}/tests", json={"name": "bad", "steps": steps})
        assert r.status_code == 422, r.text
        return [d["loc"] for d in r.json()["error"]["details"]]

    bad = locs([{"actions": [{"type": "call", "dial_destination": "sip:a@127.0.0.1", "srtp": "always"}]}])
    assert any(loc[-1] == "srtp" for loc in bad), bad
    bad = locs([{"actions": [{"type": "call", "dial_destination": "sips:a@127.0.0.1", "transport": "udp"}]}])
    assert any(loc[-1] == "transport" for loc in bad), bad
    bad = locs([{"actions": [{"type": "load", "dial_destination": "sip:a@127.0.0.1", "cps": 1, "hold_s": 1,
                              "driver": "sipp", "srtp": "mandatory"}]}])
    assert any(loc[-1] == "srtp" for loc in bad), bad
    bad = locs([{"actions": [{"type": "call", "dial_destination": "sip:a@127.0.0.1", "srtp": "mandatory",
                              "srtp_keying": "zrtp"}]}])  # the gateway's schema: one of sdes, dtls
    assert any(loc[-1] == "srtp_keying" for loc in bad), bad
    r = api.post(f"/projects/{pid}/tests", json={"name": "bad", "steps": [{"actions": [
        {"type": "call", "dial_destination": "sip:a@127.0.0.1", "srtp_keying": "dtls"}]}]})
    assert r.status_code == 422, r.text  # the runs service: SRTP keying without SRTP
    [detail] = r.json()["error"]["details"]
    assert detail["loc"][-1] == "srtp_keying" and "srtp is off" in detail["msg"], detail
    r = api.post(f"/projects/{pid}/registrars", json={"name": "x", "host": "127.0.0.1", "transport": "tls",
                                                      "tls_verify": "maybe"})
    assert r.status_code == 422, r.text
