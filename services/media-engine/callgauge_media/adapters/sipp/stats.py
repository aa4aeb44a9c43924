"""The SIPp load driver's reading side: SIPp's statistics files into RunSecondStats and a
RunSummary, and its per-call message log into each call's answer, end and CallMeasured.

Files SIPp writes (all in the driver's work directory):

* ``-trace_stat -stf stat.csv -fd 1``: one row per second, ``;``-separated; ``(P)`` columns count
  the period (the last second), ``(C)`` ones the whole run. We use ``OutgoingCall``,
  ``CurrentCall``, ``SuccessfulCall``, ``FailedCall`` and ``CallLength``.
* ``-trace_counts``: per scenario step, cumulative message counts, same frequency; the 200s to
  the INVITE (one step, two when the calls authenticate) are the number of calls answered so far.
* ``-trace_rtt -rtt_freq 1``: every response-time sample (INVITE sent -> 200 OK, ``rtd``), one row
  per answered call: the setup times.
* ``-trace_error_codes``: the SIP codes of unexpected responses (486, 503, ...), one per line.
* ``-trace_shortmsg -shortmessage_file calls.log``: one line per SIP message sent or received
  (time, direction, Call-ID, CSeq, first line), written as it happens: :class:`SippCalls` turns
  it into each call's answer and end (CallAnswered / CallProgress for billing, CallMeasured).
"""

from __future__ import annotations

import csv
from array import array
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from callgauge_proto.callgauge.events.v1 import media_pb2
from callgauge_proto.callgauge.media.v1 import measurements_pb2 as m_pb2

from callgauge_media.adapters.sipp.scenario import ANSWER_STEP
from callgauge_media.domain.measurement import ladder_facts, timeout_detail
from callgauge_media.domain.summary import percentile


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


@dataclass(slots=True)
class CountRow:
    answers: int = 0  # 200s to an INVITE so far
    refusals: Counter = field(default_factory=Counter)  # final answers to the authenticated INVITE so far


def parse_counts(path: Path) -> list[CountRow]:
    """One row per ``-trace_counts`` row (cumulative): the 200s to the INVITEs (every
    ``<step>_200_Recv`` column but the last, the BYE's: one, or two when the scenario
    authenticates) and the refusals of the authenticated INVITE (``<step>_<code>_Recv`` >= 300
    after the second ``INVITE_Sent`` column)."""
    rows = _rows(path)
    if len(rows) < 2:
        return []
    head = [h.strip() for h in rows[0]]
    ok = [i for i, h in enumerate(head) if h.endswith(f"_{ANSWER_STEP}_Recv")][:-1]
    if not ok:
        return []
    invites = [i for i, h in enumerate(head) if h.endswith("_INVITE_Sent")]
    refused: list[tuple[int, int]] = []
    if len(invites) > 1:
        for i, h in enumerate(head[invites[1]:], start=invites[1]):
            parts = h.split("_")
            if len(parts) == 3 and parts[2] == "Recv" and parts[1].isdigit() and int(parts[1]) >= 300:
                refused.append((i, int(parts[1])))
    out = []
    for r in rows[1:]:
        row = CountRow(answers=sum(_int(r[i]) for i in ok if i < len(r)))
        for i, code in refused:
            n = _int(r[i]) if i < len(r) else 0
            if n:
                row.refusals[code] += n
        out.append(row)
    return out


def parse_answer_counts(path: Path) -> list[int]:
    """Cumulative number of 200 responses to the INVITEs, one per ``-trace_counts`` row."""
    return [r.answers for r in parse_counts(path)]


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
    _refusals_seen: int = 0
    emitted_rows: int = 0
    peak: int = 0
    history: list[media_pb2.RunSecondStats] = field(default_factory=list)

    def next(self, row: StatRow, answers_total: int | None, at_ns: int,
             refusals_total: int = 0) -> media_pb2.RunSecondStats:
        """``refusals_total``: the calls so far that SIPp counted successful although the
        authenticated INVITE was refused (:func:`parse_counts`): failures here."""
        answers = 0
        if answers_total is not None:
            answers = max(0, answers_total - self._answers_seen)
            self._answers_seen = max(self._answers_seen, answers_total)
        refused = max(0, refusals_total - self._refusals_seen)
        self._refusals_seen = max(self._refusals_seen, refusals_total)
        self.peak = max(self.peak, row.current)
        s = media_pb2.RunSecondStats(
            run_id=self.run_id, engine_id=self.engine_id, second=self.second, active_calls=row.current,
            attempts=row.outgoing_p, answers=answers, failures=row.failed_p + refused,
            calls_ended=row.successful_p + row.failed_p, driver="sipp")
        s.at.FromNanoseconds(at_ns)
        self.second += 1
        self.emitted_rows += 1
        self.history.append(s)
        return s


def sipp_summary(rows: Sequence[StatRow], answered_total: int | None, setups_ms: Iterable[float],
                 error_codes: Counter, *, calls_planned: int, peak: int,
                 refusals: Counter | None = None, acd_ms: float | None = None) -> m_pb2.RunSummary:
    """A RunSummary from what SIPp counted. No RTP is measured: MOS, loss and jitter stay absent.
    ``refusals`` (:func:`parse_counts`) add to the codes of SIPp's unexpected answers. ``acd_ms``:
    the mean talk time of the answered calls when the per-call log measured it, else SIPp's mean
    call length minus the median setup time (its CallLength runs from the INVITE to the end of
    the scenario)."""
    error_codes = Counter(error_codes) + Counter(refusals or {})
    last = rows[-1] if rows else StatRow()
    attempted = max(last.total_created, last.successful_c + last.failed_c)
    answered = answered_total if answered_total is not None else last.successful_c
    answered = min(answered, attempted)
    setups = list(setups_ms)
    s = m_pb2.RunSummary(calls_attempted=attempted, calls_answered=answered, calls_failed=attempted - answered,
                         calls_planned=calls_planned, peak_concurrency=peak, driver="sipp")
    if attempted:
        s.asr = answered / attempted
    if setups:
        s.setup_p50_ms = percentile(setups, 50)
        s.setup_p95_ms = percentile(setups, 95)
        s.setup_p99_ms = percentile(setups, 99)
    if answered and acd_ms is not None:
        s.acd_ms = acd_ms
    elif answered and last.call_length_c_ms:
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


# ----------------------------------------------------------------------------- per call
SIPP_CALL_DETAIL = "RTP is not measured by the SIPp driver"
_LADDER_MAX = 12  # messages kept per call for a failed call's ladder (first lines only)


@dataclass(slots=True)
class _Call:
    number: int
    sip_call_id: str
    started: float  # epoch seconds: the first INVITE sent
    last: float = 0.0  # the call's latest message
    first_response: float | None = None  # first 18x or final answer
    answered: float | None = None
    answer_code: int = 0
    answer_reason: str = ""
    ladder: list[tuple[float, str, str, str]] = field(default_factory=list)  # (at, direction, first line, CSeq method)


def _parse_line(line: str) -> tuple[float, str, str, int, str, str] | None:
    """One ``-trace_shortmsg`` line: ``<date>\\t<time>\\t<epoch.us>\\t<S|R>\\t<Call-ID>\\tCSeq:<n method>\\t
    <first line>`` -> (epoch, direction, Call-ID, CSeq number, CSeq method, first line)."""
    parts = line.rstrip("\r\n").split("\t")
    try:
        i = next(k for k in (3, 1, 2, 4) if k < len(parts) and parts[k] in ("S", "R"))
    except StopIteration:
        return None
    if len(parts) < i + 4:
        return None
    try:
        at = float(parts[i - 1])
    except ValueError:
        return None
    cseq = parts[i + 2]
    cseq = cseq[5:] if cseq[:5].lower() == "cseq:" else cseq
    num, _, method = cseq.strip().partition(" ")
    return at, parts[i], parts[i + 1], _int(num), method.strip().upper(), "\t".join(parts[i + 3:]).strip()


class SippCalls:
    """Follows SIPp's per-message log (``-trace_shortmsg``) and turns it into per-call facts,
    with a bounded memory: a call is kept from its first INVITE until it ends.

    :meth:`feed` takes new lines and returns ``("answered", call_id, None)`` at a call's 200 OK
    and ``("ended", call_id, measurement)`` when it ends: at our BYE (SUCCESS; ``duration_ms`` =
    answer -> BYE), at the far end's BYE, at a final answer >= 300 (not the challenge the scenario
    answers with credentials: a 401/407 to CSeq 1 when ``auth``), or at a CANCEL (SIPp gave up on
    a call that had a provisional answer: TIMEOUT). :meth:`expire` ends the calls still without a
    final answer ``setup_timeout_s`` after their INVITE (TIMEOUT, 408 "Setup Timeout", as the
    pjsua driver reports them); :meth:`flush` ends every call left when SIPp is gone. Call *n*
    (SIPp's call number, from the Call-ID ``n-pid@ip``) is ``<prefix><n-1>``."""

    def __init__(self, prefix: str, *, step: int, action: int, destination: str, auth: bool = False,
                 setup_timeout_s: float = 32.0, timeout_ms: float | None = None) -> None:
        self.prefix = prefix
        self.step, self.action, self.destination = step, action, destination
        self.auth = auth
        self.setup_timeout_s = setup_timeout_s
        self.timeout_ms = setup_timeout_s * 1000 if timeout_ms is None else timeout_ms  # SIPp's -recv_timeout
        self.pending: dict[str, _Call] = {}  # INVITE sent, no answer yet (in start order)
        self.up: dict[str, _Call] = {}  # answered, not ended
        self.ended = 0
        self.talk_ms = 0.0  # sum of the answered calls' talk times
        self.talked = 0  # answered calls ended
        self.setups_ms = array("d")  # their setup times (microsecond resolution; SIPp's rtd has ms)
        self.last_at = 0.0  # the newest timestamp seen

    def call_id(self, c: _Call) -> str:
        return f"{self.prefix}{max(0, c.number - 1)}"

    def feed(self, lines: Iterable[str]) -> list[tuple[str, str, m_pb2.CallMeasurement | None]]:
        out: list[tuple[str, str, m_pb2.CallMeasurement | None]] = []
        for line in lines:
            p = _parse_line(line)
            if p is None:
                continue
            at, direction, sip_call_id, cseq, method, first = p
            self.last_at = max(self.last_at, at)
            c = self.pending.get(sip_call_id) or self.up.get(sip_call_id)
            if c is None:
                if direction == "S" and method == "INVITE" and first.startswith("INVITE "):
                    number = _int(sip_call_id.split("-", 1)[0])
                    c = _Call(number, sip_call_id, at, at)
                    c.ladder.append((at, "out", first, method))
                    self.pending[sip_call_id] = c
                continue
            c.last = at
            if len(c.ladder) < _LADDER_MAX:
                c.ladder.append((at, "out" if direction == "S" else "in", first, method))
            if direction == "R" and first.startswith("SIP/2.0 "):
                code_text, _, reason = first[8:].partition(" ")
                code = _int(code_text)
                if method != "INVITE" or code < 100:
                    continue
                if code >= 180 and c.first_response is None:
                    c.first_response = at
                if code < 200 or c.answered is not None:
                    continue
                if code < 300:
                    c.answered, c.answer_code, c.answer_reason = at, code, reason.strip()
                    del self.pending[sip_call_id]
                    self.up[sip_call_id] = c
                    out.append(("answered", self.call_id(c), None))
                elif not (self.auth and code in (401, 407) and cseq == 1):
                    out.append(("ended", self.call_id(c), self._end(c, at, code=code, reason=reason.strip())))
            elif direction == "S" and method == "BYE" and c.answered is not None:
                out.append(("ended", self.call_id(c), self._end(c, at)))
            elif direction == "R" and method == "BYE" and first.startswith("BYE ") and c.answered is not None:
                out.append(("ended", self.call_id(c), self._end(c, at, note="far end hung up")))
            elif direction == "S" and method == "CANCEL" and c.answered is None:
                if c.ladder[-1][:3] != (at, "out", first):  # the message that ended it, even past the bound
                    c.ladder.append((at, "out", first, method))
                out.append(("ended", self.call_id(c), self._end(c, at, timeout=True)))
        return out

    def expire(self, now: float) -> list[tuple[str, str, m_pb2.CallMeasurement]]:
        """End the unanswered calls that saw no message for the setup timeout (SIPp's
        ``-recv_timeout`` dropped them without one). Call it with the log read to its end."""
        limit = now - self.setup_timeout_s
        gone = []
        for c in self.pending.values():  # in start order: none after the first recent start
            if c.started > limit:
                break
            if c.last <= limit:
                gone.append(c)
        return [("ended", self.call_id(c), self._end(c, now, timeout=True)) for c in gone]

    def flush(self, now: float,
              why: str = "SIPp ended before the call did") -> list[tuple[str, str, m_pb2.CallMeasurement]]:
        """End every call still known (SIPp is gone): unanswered ones as TIMEOUT, answered ones
        as up until ``now``."""
        out = []
        for c in list(self.pending.values()) + list(self.up.values()):
            if c.answered is None:
                out.append(("ended", self.call_id(c), self._end(c, now, timeout=True, note=why)))
            else:
                out.append(("ended", self.call_id(c), self._end(c, max(now, c.answered), note=why)))
        return out

    def _end(self, c: _Call, at: float, *, code: int = 0, reason: str = "", timeout: bool = False,
             note: str = "") -> m_pb2.CallMeasurement:
        self.pending.pop(c.sip_call_id, None)
        self.up.pop(c.sip_call_id, None)
        self.ended += 1
        m = m_pb2.CallMeasurement(call_id=self.call_id(c), step=self.step, action=self.action,
                                  index=max(0, c.number - 1), destination=self.destination,
                                  sip_call_id=c.sip_call_id, role="caller")
        m.started_at.FromNanoseconds(int(c.started * 1e9))
        m.ended_at.FromNanoseconds(int(max(at, c.started) * 1e9))
        if c.first_response is not None:
            m.post_dial_delay_ms = max(0.0, (c.first_response - c.started) * 1000.0)
        notes = []
        if c.answered is not None:
            m.outcome = m_pb2.SUCCESS
            m.sip_code, m.sip_reason = c.answer_code, c.answer_reason or "OK"
            m.setup_time_ms = max(0.0, (c.answered - c.started) * 1000.0)
            m.duration_ms = max(0.0, (at - c.answered) * 1000.0)
            self.talk_ms += m.duration_ms
            self.talked += 1
            self.setups_ms.append(m.setup_time_ms)
            if note:
                notes.append(f"{note} after {m.duration_ms:.0f} ms")
        elif timeout:
            m.outcome = m_pb2.TIMEOUT
            m.sip_code, m.sip_reason = 408, "Setup Timeout"
            # what the call's ladder shows: a CANCEL only when SIPp sent one (after a provisional)
            facts = ladder_facts((d, first, method) for _t, d, first, method in c.ladder)
            notes.append(timeout_detail(self.timeout_ms, facts, complete=len(c.ladder) < _LADDER_MAX, why=note))
        else:
            m.sip_code, m.sip_reason = code, reason
            m.outcome = (m_pb2.TIMEOUT if code == 408 else
                         m_pb2.NEGOTIATION_FAILED if code in (488, 606) else m_pb2.CALL_FAILED)
            if self.auth and code in (401, 407):
                notes.append("the credentials were refused (challenged again)")
        notes.append(SIPP_CALL_DETAIL)
        m.detail = "; ".join(notes)
        if m.outcome != m_pb2.SUCCESS:
            for t, direction, first, _method in c.ladder:
                summary = first[8:] if first.startswith("SIP/2.0 ") else first.removesuffix(" SIP/2.0")
                m.sip_ladder.add(at_ms=round(max(0.0, (t - c.started) * 1000.0), 3), direction=direction,
                                 summary=summary[:200])
        return m
