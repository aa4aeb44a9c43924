"""The installed pjsua2 binding is Callgauge's own build (third_party/pjproject, config_site.h):
one process holds many calls (checked by placing them: pjsua silently clamps ``maxCalls`` to the
compiled PJSUA_MAX_CALLS, so reading the config back proves nothing), it has Opus and TLS, and
DTLS-SRTP keying (PJMEDIA_SRTP_HAS_DTLS: pjsua2 has no constant that says so, so an offer with the
DTLS keying only is made and read off the wire).

Runs in a subprocess: the pjsua2 Endpoint is a process singleton."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from callgauge_media.adapters.worker import DEFAULT_CALLS_PER_WORKER, MAX_CALLS_PER_WORKER


pytest.importorskip("pjsua2", reason="pjsua2 is not installed (install.sh builds it)")

PROBE = r"""
import json, os, socket, sys
import pjsua2 as pj
n = int(sys.argv[1])
# a UDP socket nobody reads: INVITEs go out and stay unanswered, each holding a call slot
sink = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); sink.bind(("127.0.0.1", 0))
ep = pj.Endpoint(); ep.libCreate()
cfg = pj.EpConfig(); cfg.uaConfig.maxCalls = n + 1; cfg.uaConfig.threadCnt = 0; cfg.uaConfig.mainThreadOnly = True
cfg.logConfig.level = cfg.logConfig.consoleLevel = 0
cfg.medConfig.maxMediaPorts = 2 * n + 4
ep.libInit(cfg); ep.audDevManager().setNullDev()
tc = pj.TransportConfig(); tc.boundAddress = "127.0.0.1"
ep.transportCreate(pj.PJSIP_TRANSPORT_UDP, tc)
tls = True
try:
    ep.transportCreate(pj.PJSIP_TRANSPORT_TLS, tc)
except pj.Error:
    tls = False
ep.libStart()
acfg = pj.AccountConfig(); acfg.idUri = "sip:probe@127.0.0.1"
acfg.mediaConfig.transportConfig.port = 41000; acfg.mediaConfig.transportConfig.portRange = 4 * n
acc = pj.Account(); acc.create(acfg, True)
calls, error = [], ""
dest = "sip:sink@127.0.0.1:%d" % sink.getsockname()[1]
for i in range(n + 1):
    c = pj.Call(acc)
    try:
        c.makeCall(dest, pj.CallOpParam(True))
    except pj.Error as e:
        error = "%s (status %d)" % (e.reason, e.status)
        break
    calls.append(c)
print(json.dumps({"placed": len(calls), "error": error, "tls": tls,
                  "codecs": [ci.codecId for ci in ep.codecEnum2()]}), flush=True)
os._exit(0)  # the unanswered calls' slots are not freed: skip libDestroy's asserts
"""


def probe(calls: int) -> dict:
    out = subprocess.run([sys.executable, "-c", PROBE, str(calls)], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr[-2000:]
    return json.loads(out.stdout.strip().splitlines()[-1])


def test_one_process_places_more_than_four_calls_up_to_the_compiled_limit() -> None:
    # 256 = PJSUA_MAX_CALLS of third_party/pjproject/config_site.h; the 257th call is refused
    r = probe(MAX_CALLS_PER_WORKER)
    assert r["placed"] == MAX_CALLS_PER_WORKER >= DEFAULT_CALLS_PER_WORKER > 4, r
    assert "Too many" in r["error"] or "70010" in r["error"], r


def test_the_binding_lists_opus_and_has_tls() -> None:
    r = probe(1)
    assert any(c.startswith("opus/") for c in r["codecs"]), r["codecs"]
    assert {"PCMU/8000/1", "PCMA/8000/1", "G722/16000/1", "GSM/8000/1"} <= set(r["codecs"])
    assert r["tls"] is True


DTLS_PROBE = r"""
import json, os, socket
import pjsua2 as pj
sink = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); sink.bind(("127.0.0.1", 0)); sink.settimeout(10)
ep = pj.Endpoint(); ep.libCreate()
cfg = pj.EpConfig(); cfg.uaConfig.threadCnt = 0; cfg.uaConfig.mainThreadOnly = True
cfg.logConfig.level = cfg.logConfig.consoleLevel = 0
ep.libInit(cfg); ep.audDevManager().setNullDev()
tc = pj.TransportConfig(); tc.boundAddress = "127.0.0.1"
ep.transportCreate(pj.PJSIP_TRANSPORT_UDP, tc)
ep.libStart()
acfg = pj.AccountConfig(); acfg.idUri = "sip:probe@127.0.0.1"
acfg.mediaConfig.transportConfig.port = 41600; acfg.mediaConfig.transportConfig.portRange = 20
acfg.mediaConfig.srtpUse = pj.PJMEDIA_SRTP_MANDATORY; acfg.mediaConfig.srtpSecureSignaling = 0
keyings = pj.IntVector(); keyings.append(pj.PJMEDIA_SRTP_KEYING_DTLS_SRTP)
acfg.mediaConfig.srtpOpt.keyings = keyings
acc = pj.Account(); acc.create(acfg, True)
call, error, invite = pj.Call(acc), "", ""
try:
    call.makeCall("sip:sink@127.0.0.1:%d" % sink.getsockname()[1], pj.CallOpParam(True))
    ep.libHandleEvents(10)
    invite = sink.recv(65535).decode("utf-8", "replace")
except (pj.Error, OSError) as e:
    error = str(getattr(e, "reason", e))
print(json.dumps({"error": error, "invite": invite}), flush=True)
os._exit(0)
"""


def test_the_binding_has_dtls_srtp_keying() -> None:
    """An offer with only the DTLS-SRTP keying: with PJMEDIA_SRTP_HAS_DTLS its audio is offered as
    UDP/TLS/RTP/SAVP with the certificate's fingerprint and a=setup (RFC 5763); without it pjmedia has
    no keying to offer and the INVITE carries neither."""
    out = subprocess.run([sys.executable, "-c", DTLS_PROBE], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr[-2000:]
    r = json.loads(out.stdout.strip().splitlines()[-1])
    invite = r["invite"]
    assert invite.startswith("INVITE "), r
    assert "m=audio" in invite and "UDP/TLS/RTP/SAVP" in invite, invite
    assert "a=fingerprint:SHA-256 " in invite and "a=setup:actpass" in invite, invite
