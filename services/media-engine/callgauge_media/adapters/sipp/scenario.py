"""The SIPp load driver's scenario side: the generated UAC scenario, the injection file of a
credential pool's users, and the command line. No process is started here; what SIPp writes back
is read by :mod:`callgauge_media.adapters.sipp.stats`."""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import unquote

from callgauge_proto.callgauge.common.v1 import test_spec_pb2 as spec_pb2

from callgauge_media.domain.load_shape import DEFAULT_DURATION_MS, DISTRIBUTIONS, MAX_DURATION_MS

PCAP_DIR = Path("/usr/share/sip-tester")  # Debian's sip-tester ships g711a.pcap here
PCAP = PCAP_DIR / "g711a.pcap"
ANSWER_STEP = "200"  # the response whose count is "answered"
CALLS_LOG = "calls.log"  # -trace_shortmsg: every message of every call, one line each
# final answers to the authenticated INVITE that the scenario ACKs itself (others: SIPp's abort)
REFUSALS = (400, 401, 402, 403, 404, 405, 406, 407, 408, 410, 413, 414, 415, 416, 420, 421, 423, 428, 429,
            433, 480, 481, 482, 483, 484, 485, 486, 487, 488, 489, 491, 493, 494, 500, 501, 502, 503, 504,
            505, 513, 580, 600, 603, 604, 606, 607, 608)

_URI = re.compile(r"^(?:sips?:)?(?:(?P<user>[^@;>]+)@)?(?P<host>\[[^\]]+\]|[^:;>]+)(?::(?P<port>\d{1,5}))?")


@dataclass(frozen=True, slots=True)
class Target:
    user: str
    host: str
    port: int

    @property
    def remote(self) -> str:
        return f"{self.host}:{self.port}"


def parse_destination(uri: str) -> Target:
    """``sip:user@host:port`` -> (user, host, port); ValueError when it is not one."""
    text = (uri or "").strip().strip("<>")
    m = _URI.match(text)
    if not m or not m.group("host"):
        raise ValueError(f"{uri!r} is not a SIP URI like sip:user@host:5060")
    user = unquote(m.group("user") or "service")
    if not re.fullmatch(r"[A-Za-z0-9\-_.!~*'()&=+$,;?/%]+", user):
        raise ValueError(f"user part {user!r} cannot be used in a SIPp scenario")
    return Target(user=user, host=m.group("host"), port=int(m.group("port") or 5060))


def _pause(load: spec_pb2.LoadAction) -> str:
    mean = min(load.duration_ms or DEFAULT_DURATION_MS, MAX_DURATION_MS)
    dist = (load.duration_distribution or "fixed").strip().lower()
    if dist not in DISTRIBUTIONS:
        raise ValueError(f"unknown duration_distribution {load.duration_distribution!r}; one of {', '.join(DISTRIBUTIONS)}")
    if dist == "uniform" and load.duration_spread_ms:
        lo, hi = max(0, mean - load.duration_spread_ms), mean + load.duration_spread_ms
        return f'  <pause distribution="uniform" min="{lo}" max="{hi}"/>\n'
    if dist == "exponential":
        return f'  <pause distribution="exponential" mean="{mean}"/>\n'
    return f'  <pause milliseconds="{mean}"/>\n'


def _media(with_pcap: bool) -> str:
    """G.711 A-law pcap playback (~7 s; a longer call goes silent after it, a shorter one stops it
    at the BYE). Played in the background while the pause runs."""
    if not with_pcap:
        return ""
    return f'  <nop><action><exec play_pcap_audio="{PCAP}"/></action></nop>\n'


def _ack_of_error(ruri: str, cseq: int) -> str:
    """The ACK of a non-2xx final answer to the INVITE of CSeq ``cseq`` (same branch: ``last_Via``)."""
    return f"""  <send>
    <![CDATA[
      ACK {ruri} SIP/2.0
      [last_Via:]
      [last_From:]
      [last_To:]
      Call-ID: [call_id]
      CSeq: {cseq} ACK
      Max-Forwards: 70
      Content-Length: 0

    ]]>
  </send>
"""


def _invite(ruri: str, from_uri: str, to_uri: str, contact_user: str, cseq: int, codec_pt: int, codec: str,
            auth: str = "") -> str:
    return f"""  <send retrans="500"{' start_rtd="1"' if cseq == 1 else ''}>
    <![CDATA[
      INVITE {ruri} SIP/2.0
      Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch]
      From: callgauge <{from_uri}>;tag=[pid]CG[call_number]
      To: <{to_uri}>
      Call-ID: [call_id]
      CSeq: {cseq} INVITE
      Contact: <sip:{contact_user}@[local_ip]:[local_port];transport=[transport]>
{auth}      Max-Forwards: 70
      Subject: Callgauge load
      Content-Type: application/sdp
      Content-Length: [len]

      v=0
      o=callgauge 53655765 2353687637 IN IP[local_ip_type] [local_ip]
      s=-
      c=IN IP[media_ip_type] [media_ip]
      t=0 0
      m=audio [media_port] RTP/AVP {codec_pt}
      a=rtpmap:{codec_pt} {codec}/8000

    ]]>
  </send>
"""


def uac_scenario(load: spec_pb2.LoadAction, target: Target, *, with_pcap: bool = False, auth: bool = False) -> str:
    """A UAC scenario: INVITE (PCMU/PCMA offer), optional 100/180/183, 200 (the setup time is
    ``rtd`` 1; the route set of its Record-Route is kept), ACK, optional G.711 pcap playback, a
    pause of the talk time (SIPp's own fixed, uniform or exponential distribution), BYE, 200.

    With ``auth`` the calls are made as the users of the injection file (:func:`injection_file`):
    From ``[field0]@[field2]`` (user at its domain, the digest realm Kamailio challenges with), To
    the destination user at that domain; a 401/407 to the INVITE is ACKed and the INVITE sent
    again (CSeq 2) with SIPp's ``[authentication]`` credentials (``[field1]``). A final answer
    >= 300 to the first INVITE other than a challenge is SIPp's unexpected message (ACKed, the
    call failed, its code in ``-trace_error_codes``). One of :data:`REFUSALS` to the second (a
    wrong password is a second challenge) is ACKed by the scenario, which then ends (SIPp's own
    abort would send a BYE after the challenge's ACK, and its ``stop_call`` does not stop a call
    from a ``nop`` or ``send``): SIPp counts such a call successful, :func:`parse_counts` finds it
    in the refusal steps' columns and the driver counts it failed with its code."""
    codec_pt, codec = (8, "PCMA") if with_pcap or (load.codec or "").upper() == "PCMA" else (0, "PCMU")
    ruri = f"sip:{target.user}@{target.remote}"
    if not auth:
        from_uri, to_uri, contact_user = "sip:callgauge@[local_ip]:[local_port]", ruri, "callgauge"
    else:
        from_uri, to_uri, contact_user = "sip:[field0]@[field2]", f"sip:{target.user}@[field2]", "[field0]"
    progress = """  <recv response="100" optional="true"/>
  <recv response="180" optional="true"/>
  <recv response="183" optional="true"/>
"""
    parts = [_invite(ruri, from_uri, to_uri, contact_user, 1, codec_pt, codec), progress]
    if not auth:
        parts.append(f'  <recv response="{ANSWER_STEP}" rtd="1" rrs="true"/>\n')
    else:
        parts.append(f"""  <recv response="401" optional="true" auth="true" next="challenged"/>
  <recv response="407" optional="true" auth="true" next="challenged"/>
  <recv response="{ANSWER_STEP}" rtd="1" rrs="true" next="answered"/>
  <label id="challenged"/>
""" + _ack_of_error(ruri, 1))
        parts.append(_invite(ruri, from_uri, to_uri, contact_user, 2, codec_pt, codec, "      [field1]\n"))
        parts.append(progress)
        parts.append("".join(f'  <recv response="{code}" optional="true" next="refused"/>\n'
                             for code in REFUSALS))
        parts.append(f"""  <recv response="{ANSWER_STEP}" rtd="1" rrs="true" next="answered"/>
  <label id="refused"/>
{_ack_of_error(ruri, 2)}  <nop next="done"/>
  <label id="answered"/>
""")
    in_dialog = f"""      From: callgauge <{from_uri}>;tag=[pid]CG[call_number]
      To: <{to_uri}>[peer_tag_param]
      Call-ID: [call_id]"""
    parts.append(f"""  <send>
    <![CDATA[
      ACK [next_url] SIP/2.0
      Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch]
      [routes]
{in_dialog}
      CSeq: [last_cseq_number] ACK
      Max-Forwards: 70
      Content-Length: 0

    ]]>
  </send>
{_media(with_pcap)}{_pause(load)}  <send retrans="500">
    <![CDATA[
      BYE [next_url] SIP/2.0
      Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch]
      [routes]
{in_dialog}
      CSeq: 3 BYE
      Max-Forwards: 70
      Content-Length: 0

    ]]>
  </send>
  <recv response="200" crlf="true"/>
{'  <label id="done"/>' + chr(10) if auth else ''}  <ResponseTimeRepartition value="10, 20, 30, 40, 50, 100, 150, 200"/>
  <CallLengthRepartition value="10, 50, 100, 500, 1000, 5000, 10000"/>
""")
    return f"""<?xml version="1.0" encoding="ISO-8859-1" ?>
<scenario name="callgauge load">
{"".join(parts)}</scenario>
"""


_INF_BAD = re.compile(r"[;\r\n\0\[\]]")


def injection_file(users: Sequence[tuple[str, str, str, str]]) -> str:
    """SIPp's ``-inf`` file of the calling users: ``SEQUENTIAL`` (call *n* takes line *n* mod the
    number of users, like the pjsua driver's ``accounts[index % len]``), then per user
    ``user;[authentication username=0x.. password=0x..];domain;``: SIPp reads an
    ``[authentication]`` keyword injected from a file when it builds the message (a keyword inside
    the scenario's ``[authentication]`` is not expanded), and hex-encoded values carry any
    character. Kept out of the command line, where every local user could read the passwords.
    ValueError for a user or domain SIPp's format cannot carry."""
    if not users:
        raise ValueError("no calling users for the SIPp scenario")
    lines = ["SEQUENTIAL"]
    for user, auth_user, password, domain in users:
        for what, value in (("username", user), ("domain", domain)):
            if _INF_BAD.search(value or ""):
                raise ValueError(f"the {what} of SIP user {user!r} contains ';', '[', ']' or a line break, which "
                                 "SIPp's injection file cannot carry; use driver pjsua for this credential pool")
        if not re.fullmatch(r"[A-Za-z0-9\-_.!~*'()&=+$,?/%]+", user or ""):
            raise ValueError(f"SIP username {user!r} cannot be used in a SIPp scenario")
        if not re.fullmatch(r"[A-Za-z0-9\-_.:\[\]]+", domain or ""):
            raise ValueError(f"SIP domain {domain!r} cannot be used in a SIPp scenario")
        hex_user, hex_password = (auth_user or user).encode().hex(), (password or "").encode().hex()
        if len(hex_user) > 250 or len(hex_password) > 250:
            raise ValueError(f"the credentials of SIP user {user!r} are too long for SIPp (at most 125 bytes each)")
        auth = f"[authentication username=0x{hex_user}" + (f" password=0x{hex_password}]" if password else "]")
        lines.append(f"{user};{auth};{domain};")
    return "\n".join(lines) + "\n"


def sipp_command(load: spec_pb2.LoadAction, target: Target, *, scenario: str, local_ip: str, sip_port: int,
                 media_port: int, control_port: int, initial_rate: float, max_calls: int,
                 timeout_s: int, users_file: str = "", calls_log: str = CALLS_LOG) -> list[str]:
    """The command line. The rate starts at ``initial_rate`` and is then steered over the control
    port (``cset rate N``) to follow the shape; ``-m`` stops it after ``max_calls`` calls. Every
    message of every call goes to ``calls_log`` (``-trace_shortmsg``), which the driver follows
    while SIPp runs (:class:`SippCalls`); Call-IDs are ``<call number>-<pid>@<local ip>``."""
    if target.remote.startswith("-") or target.host.startswith("-") or local_ip.startswith("-"):
        raise ValueError(f"{target.host!r} cannot be a SIPp destination (it would be read as an option)")
    transport = "t1" if (load.transport or "udp").lower() == "tcp" else "u1"
    # the control port (rate steering, quit) listens on loopback only: nobody else may steer SIPp
    cmd = ["sipp", target.remote, "-sf", scenario, "-i", local_ip, "-p", str(sip_port), "-mp", str(media_port),
           "-cp", str(control_port), "-ci", "127.0.0.1", "-t", transport,
           "-r", f"{max(0.0, initial_rate):g}", "-rp", "1000", "-m", str(max_calls),
           "-nostdin", "-timeout", f"{timeout_s}s", "-timeout_error",
           "-trace_stat", "-stf", "stat.csv", "-fd", "1",
           "-trace_counts", "-trace_rtt", "-rtt_freq", "1", "-trace_error_codes",
           "-trace_shortmsg", "-shortmessage_file", calls_log, "-cid_str", "%u-%p@%s",
           "-max_socket", "10000", "-recv_timeout", str(max(1000, load.setup_timeout_ms or 32_000)) + "ms"]
    if users_file:
        cmd += ["-inf", users_file]
    # always a limit of our own: SIPp's default (3 x rate x call length, recomputed at each rate
    # change) held attempts back whenever calls waited for answers, and planned calls went unplaced
    cmd += ["-l", str(load.max_concurrency or max(1, max_calls))]
    return cmd
