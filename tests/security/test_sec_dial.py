"""Finding 4 (SSRF through dial destinations) and finding 11 (SIPp's control port): the operator's
allow/deny lists are enforced when a test or run is created (422 naming the field) and again by
the media engine on the addresses names resolve to; URIs with header fields and hosts that look like
options are refused; SIPp's control port binds to loopback."""

from __future__ import annotations

import ipaddress
import socket
import subprocess
import time
import uuid

import pytest

from callgauge_media.handlers.media_engine import dial_refusal
from callgauge_media.adapters.sipp.scenario import Target, sipp_command
from callgauge_platform.destinations import DialPolicy, parse_cidrs
from callgauge_app.settings import PlatformSettings
from callgauge_platform.stack import free_port, udp_port_taken
from callgauge_proto.callgauge.common.v1 import test_spec_pb2 as spec_pb2
from callgauge_proto.callgauge.events.v1 import runs_pb2

DEFAULT = DialPolicy.from_settings(PlatformSettings())


@pytest.mark.parametrize("address", ["127.0.0.1", "127.9.9.9", "::1", "::ffff:127.0.0.1", "169.254.169.254",
                                     "fe80::1", "0.0.0.0", "100.100.100.200", "fd00:ec2::254", "224.0.0.1"])
def test_default_policy_denies_loopback_link_local_and_metadata(address):
    assert DEFAULT.static_refusal(address, 5060) is not None


@pytest.mark.parametrize("address", ["192.0.2.10", "10.1.2.3", "2001:db8::5"])
def test_default_policy_allows_other_networks(address):
    assert DEFAULT.static_refusal(address, 5060) is None


def test_ports_names_and_the_allow_list():
    assert "port 22" in DEFAULT.static_refusal("192.0.2.10", 22)
    assert DEFAULT.static_refusal("localhost", 5060) is not None
    assert DEFAULT.static_refusal("metadata.google.internal", 5060) is not None
    assert DEFAULT.static_refusal("-oops", 5060) is not None
    loop_ok = DialPolicy.from_settings(PlatformSettings(dial_allow_cidrs="127.0.0.0/8"))
    assert loop_ok.static_refusal("127.0.0.1", 5060) is None
    assert loop_ok.static_refusal("169.254.169.254", 5060) is not None  # still denied
    only_lab = DialPolicy.from_settings(PlatformSettings(dial_deny_cidrs="0.0.0.0/0,::/0", dial_allow_cidrs="192.0.2.0/24",
                                                 dial_deny_ports="5062"))
    assert only_lab.static_refusal("192.0.2.7", 5060) is None
    assert only_lab.static_refusal("198.51.100.7", 5060) is not None
    assert only_lab.static_refusal("192.0.2.7", 5062) is not None
    with pytest.raises(ValueError):
        parse_cidrs("10.0.0.0/8,nonsense")


def _loopback_name() -> str:
    for name in (socket.gethostname(), "localhost"):
        try:
            if all(ipaddress.ip_address(i[4][0]).is_loopback for i in socket.getaddrinfo(name, 5060)):
                return name
        except OSError:
            continue
    pytest.skip("no host name resolves to loopback here")


async def test_media_engine_checks_what_a_name_resolves_to():
    """A name passes the runs service's static check (it cannot resolve); the engine resolves it and
    refuses the run when an address is denied."""
    name = _loopback_name()
    policy = DialPolicy(deny_hosts=frozenset())  # the name itself is not on the deny-list
    assert policy.static_refusal(name, 5060) is None
    spec = spec_pb2.TestSpec()
    spec.steps.add().actions.add().call.CopyFrom(spec_pb2.CallAction(dial_destination=f"sip:echo@{name}:5070"))
    req = runs_pb2.RunRequested(run_id="r1", spec=spec)
    refusal = await dial_refusal(policy, req)
    assert refusal and "127.0.0.0/8" in refusal
    assert await dial_refusal(DialPolicy(allow=parse_cidrs("127.0.0.0/8"), deny_hosts=frozenset()), req) is None
    # registrars are destinations too
    req2 = runs_pb2.RunRequested(run_id="r2", spec=spec_pb2.TestSpec(),
                                 targets=[spec_pb2.ResolvedTarget(id="g", host="169.254.169.254", port=5060)])
    assert "169.254.0.0/16" in await dial_refusal(DialPolicy(), req2)


def _project(api) -> str:
    r = api.post("/projects", json={"name": f"ssrf-{uuid.uuid4().hex[:6]}"})
    assert r.status_code == 201, r.text
    return r.json()["data"]["id"]


def _test_body(dest: str, kind: str = "call") -> dict:
    action = {"type": kind, "dial_destination": dest}
    if kind == "load":
        action.update(cps=1, max_total_calls=1)
    return {"name": f"t-{uuid.uuid4().hex[:6]}", "steps": [{"actions": [{"type": "call", "dial_destination":
                                                                         "sip:ok@192.0.2.10:5060"}, action]}]}


@pytest.mark.parametrize("dest", ["sip:x@169.254.169.254:5060", "sip:x@[fd00:ec2::254]:5060",
                                  "sip:x@100.100.100.200", "sip:x@192.0.2.10:22", "sip:x@metadata.google.internal",
                                  "sip:x@192.0.2.10:5060?X-Injected=1", "sip:x@192.0.2.10;transport=udp?Foo=bar",
                                  "sip:x@-oocsf:5060"])
@pytest.mark.parametrize("kind", ["call", "load"])
def test_test_creation_refuses_denied_destinations_naming_the_field(api, dest, kind):
    pid = _project(api)
    r = api.post(f"/projects/{pid}/tests", json=_test_body(dest, kind))
    assert r.status_code == 422, r.text
    locs = [d["loc"] for d in r.json()["error"]["details"]]
    assert ["body", "steps", 0, "actions", 1, "dial_destination"] in locs or \
        ["steps", 0, "actions", 1, "dial_destination"] in locs, locs


def test_run_overrides_are_checked_too(api):
    pid = _project(api)
    r = api.post(f"/projects/{pid}/tests", json=_test_body("sip:ok@192.0.2.11:5060"))
    assert r.status_code == 201, r.text
    tid = r.json()["data"]["id"]
    r = api.post(f"/projects/{pid}/tests/{tid}/run", json={"step.0.1.dial_destination": "sip:x@169.254.169.254"})
    assert r.status_code == 422, r.text
    assert [d["loc"] for d in r.json()["error"]["details"]] in (
        [["body", "step.0.1.dial_destination"]], [["step.0.1.dial_destination"]])


def test_registrar_on_a_metadata_address_is_refused(api):
    pid = _project(api)
    r = api.post(f"/projects/{pid}/registrars", json={"name": "meta", "host": "169.254.169.254", "port": 5060})
    assert r.status_code == 422, r.text
    assert r.json()["error"]["details"][0]["loc"][-1] == "host"


def test_sipp_never_gets_an_option_as_destination_and_its_control_port_is_loopback():
    load = spec_pb2.LoadAction(cps=1, max_total_calls=1)
    with pytest.raises(ValueError):
        sipp_command(load, Target(user="x", host="-trace_msg", port=5060), scenario="s.xml", local_ip="127.0.0.1",
                     sip_port=5060, media_port=6000, control_port=8888, initial_rate=1, max_calls=1, timeout_s=5)
    cmd = sipp_command(load, Target(user="x", host="127.0.0.1", port=5060), scenario="s.xml", local_ip="0.0.0.0",
                       sip_port=0, media_port=0, control_port=8888, initial_rate=1, max_calls=1, timeout_s=5)
    assert cmd[cmd.index("-ci") + 1] == "127.0.0.1"


def test_sipp_control_port_is_not_reachable_on_other_addresses(tmp_path):
    """SIPp started as the driver starts it (bound to all addresses for SIP): its control port is
    on loopback only."""
    import shutil

    if shutil.which("sipp") is None:
        pytest.skip("sipp not installed")
    load = spec_pb2.LoadAction(cps=1, max_total_calls=1)
    control = free_port(kind=socket.SOCK_DGRAM)
    cmd = sipp_command(load, Target(user="x", host="127.0.0.1", port=free_port(kind=socket.SOCK_DGRAM)),
                       scenario="uac", local_ip="0.0.0.0", sip_port=0, media_port=0, control_port=control,
                       initial_rate=0, max_calls=1, timeout_s=10)
    cmd[cmd.index("-sf"):cmd.index("-sf") + 2] = ["-sn", "uac"]
    proc = subprocess.Popen(cmd, cwd=tmp_path, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            stdin=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 10
        while not udp_port_taken(control) and time.monotonic() < deadline and proc.poll() is None:
            time.sleep(0.05)
        assert udp_port_taken(control), "SIPp did not open its control port"
        out = subprocess.run(["ss", "-Hlun", f"sport = :{control}"], capture_output=True, text=True).stdout
        assert out.strip(), "ss shows no socket on the control port"
        assert all(line.split()[3].startswith("127.0.0.1:") for line in out.strip().splitlines()), out
    finally:
        proc.kill()
        proc.wait(5)
