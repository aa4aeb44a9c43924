"""Per-second statistics of a run (pure): fed with what happens to its calls, cut into seconds.

The runner calls :meth:`SecondStats.attempt` when it starts a call, :meth:`answered` when the
worker reports the 200 OK, :meth:`progress` with each call's RTP counters (the workers sample
every answered call about once a second), :meth:`ended` with the final measurement, and
:meth:`cut` once a second to get the ``RunSecondStats`` of the second that just ended.

Loss and packet counts of a second are the deltas of each call's counters since its previous
sample (the final measurement is the last sample); jitter of a second is the mean and the max over
the calls sampled in it (each sample is the RFC 3550 interarrival jitter the receiver has seen so
far on that call).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from callgauge_proto.callgauge.events.v1 import media_pb2
from callgauge_proto.callgauge.media.v1 import measurements_pb2 as m_pb2


@dataclass(slots=True)
class _Counters:
    rx: int = 0
    lost: int = 0


@dataclass
class SecondStats:
    run_id: str
    engine_id: str
    driver: str = "pjsua"
    active: set[str] = field(default_factory=set)
    answered_ids: set[str] = field(default_factory=set)
    peak_active: int = 0
    _last: dict[str, _Counters] = field(default_factory=dict)
    _jitter: dict[str, float] = field(default_factory=dict)
    _attempts: int = 0
    _answers: int = 0
    _failures: int = 0
    _ended: int = 0
    _rx: int = 0
    _lost: int = 0
    _second: int = 0

    def attempt(self, call_id: str) -> None:
        self._attempts += 1
        self.active.add(call_id)
        self.peak_active = max(self.peak_active, len(self.active))

    def answered(self, call_id: str) -> None:
        if call_id in self.active and call_id not in self.answered_ids:
            self.answered_ids.add(call_id)
            self._answers += 1

    def progress(self, call_id: str, rx_packets: int, lost_packets: int, jitter_ms: float) -> None:
        if call_id not in self.active:
            return
        prev = self._last.setdefault(call_id, _Counters())
        self._rx += max(0, rx_packets - prev.rx)
        self._lost += max(0, lost_packets - prev.lost)
        prev.rx, prev.lost = max(prev.rx, rx_packets), max(prev.lost, lost_packets)
        self._jitter[call_id] = jitter_ms

    def ended(self, call_id: str, m: m_pb2.CallMeasurement) -> None:
        if call_id not in self.active:
            return
        if m.outcome == m_pb2.SUCCESS:
            self.answered(call_id)  # a worker that never said "answered" still counts once
            self.progress(call_id, m.rx_packets, m.rx_lost_packets, m.jitter_ms)
        else:
            self._failures += 1
        self._ended += 1
        self.active.discard(call_id)
        self.answered_ids.discard(call_id)
        self._last.pop(call_id, None)

    def cut(self, at_ns: int) -> media_pb2.RunSecondStats:
        """The statistics of the second that ends now (``at_ns``: its start, epoch nanoseconds);
        the counters start again from zero."""
        jit = list(self._jitter.values())
        expected = self._rx + self._lost
        s = media_pb2.RunSecondStats(
            run_id=self.run_id, engine_id=self.engine_id, second=self._second, active_calls=len(self.active),
            attempts=self._attempts, answers=self._answers, failures=self._failures, calls_ended=self._ended,
            jitter_ms_mean=sum(jit) / len(jit) if jit else 0.0, jitter_ms_max=max(jit) if jit else 0.0,
            loss_pct=100.0 * self._lost / expected if expected else 0.0,
            rx_packets=self._rx, lost_packets=self._lost, driver=self.driver,
        )
        s.at.FromNanoseconds(at_ns)
        self._second += 1
        self._attempts = self._answers = self._failures = self._ended = self._rx = self._lost = 0
        self._jitter = {}
        return s
