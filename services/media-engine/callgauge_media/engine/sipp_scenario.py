"""The SIPp load driver's pure parts: the generated UAC scenario, the command line, and the parsing
of SIPp's statistics files into RunSecondStats and a RunSummary. No process is started here.

Files SIPp writes (all in the driver's work directory):

* ``-trace_stat -stf stat.csv -fd 1``: one row per second, ``;``-separated; ``(P)`` columns count
  the period (the last second), ``(C)`` ones the whole run. We use ``OutgoingCall``,
  ``CurrentCall``, ``SuccessfulCall``, ``FailedCall`` and ``CallLength``.
* ``-trace_counts``: per scenario step, cumulative message counts, same frequency; the 200 to the
  INVITE (step 3 here) is the number of calls answered so far.
* ``-trace_rtt -rtt_freq 1``: every response-time sample (INVITE sent -> 200 OK, ``rtd``), one row
  per answered call: the setup times.
* ``-trace_error_codes``: the SIP codes of unexpected responses (486, 503, ...), one per line.
"""

from __future__ import annotations

import csv
import re
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import unquote

from callgauge_proto.callgauge.common.v1 import test_spec_pb2 as spec_pb2
from callgauge_proto.callgauge.events.v1 import media_pb2
from callgauge_proto.callgauge.media.v1 import measurements_pb2 as m_pb2

from callgauge_media.engine.load_shape import DEFAULT_DURATION_MS, DISTRIBUTIONS, MAX_DURATION_MS
from callgauge_media.engine.summary import percentile

PCAP_DIR = Path("/usr/share/sip-tester")  # Debian's sip-tester ships g711a.pcap here
PCAP = PCAP_DIR / "g711a.pcap"
ANSWER_STEP = "200"  # the response whose count is "answered"

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


def uac_scenario(load: spec_pb2.LoadAction, target: Target, *, with_pcap: bool = False) -> str:
    """A UAC scenario: INVITE (PCMU/PCMA offer), optional 100/180/183, 200 (the setup time is
    ``rtd`` 1), ACK, optional G.711 pcap playback, a pause of the talk time (SIPp's own fixed,
    uniform or exponential distribution), BYE, 200."""
    codec_pt, codec = (8, "PCMA") if with_pcap or (load.codec or "").upper() == "PCMA" else (0, "PCMU")
    ruri = f"sip:{target.user}@{target.remote}"
    common = f"""      Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch]
      From: callgauge <sip:callgauge@[local_ip]:[local_port]>;tag=[pid]CG[call_number]
      To: <{ruri}>"""
    return f"""<?xml version="1.0" encoding="ISO-8859-1" ?>
<scenario name="callgauge load">
  <send retrans="500" start_rtd="1">
    <![CDATA[
      INVITE {ruri} SIP/2.0
{common}
      Call-ID: [call_id]
      CSeq: 1 INVITE
      Contact: sip:callgauge@[local_ip]:[local_port]
      Max-Forwards: 70
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
  <recv response="100" optional="true"/>
  <recv response="180" optional="true"/>
  <recv response="183" optional="true"/>
  <recv response="{ANSWER_STEP}" rtd="1" crlf="true"/>
  <send>
    <![CDATA[
      ACK {ruri} SIP/2.0
{common}[peer_tag_param]
      Call-ID: [call_id]
      CSeq: 1 ACK
      Contact: sip:callgauge@[local_ip]:[local_port]
      Max-Forwards: 70
      Content-Length: 0

    ]]>
  </send>
{_media(with_pcap)}{_pause(load)}  <send retrans="500">
    <![CDATA[
      BYE {ruri} SIP/2.0
{common}[peer_tag_param]
      Call-ID: [call_id]
      CSeq: 2 BYE
      Contact: sip:callgauge@[local_ip]:[local_port]
      Max-Forwards: 70
      Content-Length: 0

    ]]>
  </send>
  <recv response="200" crlf="true"/>
  <ResponseTimeRepartition value="10, 20, 30, 40, 50, 100, 150, 200"/>
  <CallLengthRepartition value="10, 50, 100, 500, 1000, 5000, 10000"/>
</scenario>
"""


def sipp_command(load: spec_pb2.LoadAction, target: Target, *, scenario: str, local_ip: str, sip_port: int,
                 media_port: int, control_port: int, initial_rate: float, max_calls: int,
                 timeout_s: int) -> list[str]:
    """The command line. The rate starts at ``initial_rate`` and is then steered over the control
    port (``cset rate N``) to follow the shape; ``-m`` stops it after ``max_calls`` calls."""
    transport = "t1" if (load.transport or "udp").lower() == "tcp" else "u1"
    cmd = ["sipp", target.remote, "-sf", scenario, "-i", local_ip, "-p", str(sip_port), "-mp", str(media_port),
           "-cp", str(control_port), "-t", transport,
           "-r", f"{max(0.0, initial_rate):g}", "-rp", "1000", "-m", str(max_calls),
           "-nostdin", "-timeout", f"{timeout_s}s", "-timeout_error",
           "-trace_stat", "-stf", "stat.csv", "-fd", "1",
           "-trace_counts", "-trace_rtt", "-rtt_freq", "1", "-trace_error_codes",
           "-max_socket", "10000", "-recv_timeout", str(max(1000, load.setup_timeout_ms or 32_000)) + "ms"]
    if load.max_concurrency:
        cmd += ["-l", str(load.max_concurrency)]
    return cmd


# ----------------------------------------------------------------------------- parsing
def _rows(path: Path) -> list[list[str]]:
    try:
        text = path.read_text(errors="replace")
    except OSError:
        return []
    return [r for r in csv.reader(text.splitlines(), delimiter=";") if r]


def _int(text: str) -> int:
    try:
        return int(float(text))
    except (TypeError, ValueError):
        return 0


def _duration_ms(text: str) -> float:
    """SIPp durations in the statistics file are ``HH:MM:SS:uuuuuu`` (microseconds, 6 digits);
    ``HH:MM:SS:mmm`` (3 digits) is read as milliseconds."""
    parts = [p for p in (text or "").strip().split(":") if p != ""]
    if len(parts) != 4 or not all(p.isdigit() for p in parts):
        return 0.0
    h, m, s = (int(p) for p in parts[:3])
    frac = parts[3]
    frac_ms = int(frac) / 1000 if len(frac) > 3 else float(int(frac))
    return ((h * 60 + m) * 60 + s) * 1000 + frac_ms


@dataclass(slots=True)
class StatRow:
    outgoing_p: int = 0
    current: int = 0
    successful_p: int = 0
    failed_p: int = 0
    total_created: int = 0
    successful_c: int = 0
    failed_c: int = 0
    call_length_c_ms: float = 0.0


def parse_stat_rows(path: Path) -> list[StatRow]:
    """Every data row of a ``-trace_stat`` file (the header names the columns)."""
    rows = _rows(path)
    if len(rows) < 2:
        return []
    col = {name.strip(): i for i, name in enumerate(rows[0])}

    def get(r: list[str], name: str) -> str:
        i = col.get(name)
        return r[i] if i is not None and i < len(r) else ""

    out = []
    for r in rows[1:]:
        out.append(StatRow(
            outgoing_p=_int(get(r, "OutgoingCall(P)")), current=_int(get(r, "CurrentCall")),
            successful_p=_int(get(r, "SuccessfulCall(P)")), failed_p=_int(get(r, "FailedCall(P)")),
            total_created=_int(get(r, "TotalCallCreated")), successful_c=_int(get(r, "SuccessfulCall(C)")),
            failed_c=_int(get(r, "FailedCall(C)")), call_length_c_ms=_duration_ms(get(r, "CallLength(C)")),
        ))
    return out


def parse_answer_counts(path: Path) -> list[int]:
    """Cumulative number of 200 responses to the INVITE, one per ``-trace_counts`` row."""
    rows = _rows(path)
    if len(rows) < 2:
        return []
    head = [h.strip() for h in rows[0]]
    # columns: Time;Elapsed;<step>_<msg>_Sent|Recv|Retrans|...; the first "..._200_Recv" is the INVITE's
    idx = next((i for i, h in enumerate(head) if h.endswith(f"_{ANSWER_STEP}_Recv")), None)
    if idx is None:
        return []
    return [_int(r[idx]) if idx < len(r) else 0 for r in rows[1:]]


def parse_rtt_ms(path: Path) -> list[float]:
    """The setup times (rtd 1) of ``-trace_rtt``: rows ``date_ms;date_s;response_time_ms;rtd_no``
    or ``date;response_time;rtd`` depending on the version: the value before the last column."""
    out = []
    for r in _rows(path)[1:]:
        if len(r) >= 2:
            try:
                out.append(float(r[-2]))
            except ValueError:
                continue
    return out


def parse_error_codes(path: Path) -> Counter:
    """SIP codes of the unexpected responses in ``-trace_error_codes``: rows
    ``time;elapsed;486,486,...`` (the codes of each period, comma-separated)."""
    codes: Counter = Counter()
    for r in _rows(path):
        for cell in r[2:]:
            for tok in cell.split(","):
                tok = tok.strip()
                if tok.isdigit() and 100 <= int(tok) <= 699:
                    codes[int(tok)] += 1
    return codes


@dataclass
class SippSeconds:
    """Turns successive stat rows (+ answer counts) into RunSecondStats, one per row."""

    run_id: str
    engine_id: str
    second: int = 0
    _answers_seen: int = 0
    emitted_rows: int = 0
    peak: int = 0
    history: list[media_pb2.RunSecondStats] = field(default_factory=list)

    def next(self, row: StatRow, answers_total: int | None, at_ns: int) -> media_pb2.RunSecondStats:
        answers = 0
        if answers_total is not None:
            answers = max(0, answers_total - self._answers_seen)
            self._answers_seen = max(self._answers_seen, answers_total)
        self.peak = max(self.peak, row.current)
        s = media_pb2.RunSecondStats(
            run_id=self.run_id, engine_id=self.engine_id, second=self.second, active_calls=row.current,
            attempts=row.outgoing_p, answers=answers, failures=row.failed_p,
            calls_ended=row.successful_p + row.failed_p, driver="sipp")
        s.at.FromNanoseconds(at_ns)
        self.second += 1
        self.emitted_rows += 1
        self.history.append(s)
        return s


def sipp_summary(rows: Sequence[StatRow], answered_total: int | None, setups_ms: Iterable[float],
                 error_codes: Counter, *, calls_planned: int, peak: int) -> m_pb2.RunSummary:
    """A RunSummary from what SIPp counted. No RTP is measured: MOS, loss and jitter stay 0.
    ``acd_ms`` is the mean call length minus the median setup time (SIPp's CallLength runs from
    the INVITE to the end of the scenario)."""
    last = rows[-1] if rows else StatRow()
    attempted = max(last.total_created, last.successful_c + last.failed_c)
    answered = answered_total if answered_total is not None else last.successful_c
    answered = min(answered, attempted)
    setups = list(setups_ms)
    s = m_pb2.RunSummary(calls_attempted=attempted, calls_answered=answered, calls_failed=attempted - answered,
                         calls_planned=calls_planned, peak_concurrency=peak, driver="sipp")
    s.asr = answered / attempted if attempted else 0.0
    if setups:
        s.setup_p50_ms = percentile(setups, 50)
        s.setup_p95_ms = percentile(setups, 95)
        s.setup_p99_ms = percentile(setups, 99)
    if answered and last.call_length_c_ms:
        s.acd_ms = max(0.0, last.call_length_c_ms - s.setup_p50_ms)
    if answered:
        s.sip_codes[200] = answered
        s.outcomes["SUCCESS"] = answered
    failed = attempted - answered
    known = 0
    for code, n in sorted(error_codes.items()):
        n = min(n, failed - known)
        if n <= 0:
            break
        s.sip_codes[code] = n
        known += n
    if failed:
        if failed - known > 0:
            s.sip_codes[0] = s.sip_codes[0] + (failed - known)  # no final answer SIPp could name (timeouts)
        s.outcomes["CALL_FAILED"] = failed
    return s
