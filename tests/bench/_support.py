"""Helpers shared by the benchmarks: SIPp processes, /proc sampling, tables.

Everything binds to 127.0.0.1. Every subprocess started here is stopped by its own pid.
"""

from __future__ import annotations

import csv
import os
import re
import shutil
import socket
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

from callgauge_platform.stack import free_port, stop_process, udp_port_taken  # noqa: F401 - re-exported

HOST = "127.0.0.1"
SIPP_PCAP_DIR = Path("/usr/share/sip-tester")  # Debian sip-tester ships g711a.pcap here
_CLK_TCK = os.sysconf("SC_CLK_TCK")


def require_sipp() -> str:
    path = shutil.which("sipp")
    if path is None:
        raise SystemExit("sipp (Debian sip-tester) is not installed")
    return path


def free_udp_port() -> int:
    return free_port(HOST, socket.SOCK_DGRAM)


# ---------------------------------------------------------------- /proc sampling
class CpuSampler:
    """Machine CPU busy % (all cores, from /proc/stat) between :meth:`start` and :meth:`stop`,
    and the CPU seconds of a set of pids (utime+stime from /proc/<pid>/stat)."""

    def __init__(self) -> None:
        self._t0: tuple[int, int] | None = None
        self.busy_pct = 0.0
        self.cores = os.cpu_count() or 1

    @staticmethod
    def _read() -> tuple[int, int]:
        with open("/proc/stat") as f:
            parts = [int(x) for x in f.readline().split()[1:]]
        idle = parts[3] + (parts[4] if len(parts) > 4 else 0)  # idle + iowait
        return sum(parts[:8]), idle

    def start(self) -> None:
        self._t0 = self._read()

    def stop(self) -> float:
        total1, idle1 = self._read()
        total0, idle0 = self._t0 or (total1, idle1)
        dt = total1 - total0
        self.busy_pct = 100.0 * (dt - (idle1 - idle0)) / dt if dt > 0 else 0.0
        return self.busy_pct


def proc_cpu_seconds(pids: list[int]) -> float:
    total = 0
    for pid in pids:
        try:
            with open(f"/proc/{pid}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
            total += int(fields[11]) + int(fields[12])  # utime, stime (fields 14, 15)
        except (OSError, IndexError, ValueError):
            pass
    return total / _CLK_TCK


def rss_kib(pids: list[int]) -> int:
    total = 0
    for pid in pids:
        try:
            with open(f"/proc/{pid}/status") as f:
                for line in f:
                    if line.startswith("VmRSS:"):
                        total += int(line.split()[1])
                        break
        except (OSError, ValueError):
            pass
    return total


# ---------------------------------------------------------------- SIPp
@dataclass
class SippStats:
    outgoing: int = 0
    successful: int = 0
    failed: int = 0
    elapsed_s: float = 0.0
    returncode: int | None = None
    cpu_s: float = 0.0  # CPU seconds of the SIPp process (sampled before it exits)
    rss_kib: int = 0  # peak sampled RSS
    window_busy_pct: float | None = None  # machine CPU busy % (all cores) in the window
    window_proc_cpu_pct: float | None = None  # SIPp (+ extra pids) CPU, % of one core, in the window
    window_rss_kib: int = 0
    echo_drops: int = 0  # datagrams dropped by the kernel at the far end's echo socket (set by the caller)
    echo_packets: int = 0  # RTP packets the calls sent, estimated from calls x talk time x 50/s
    peak_current: int = 0  # highest CurrentCall of the per-second rows: calls up at once


def parse_stat_csv(path: Path) -> SippStats:
    """Last row of a SIPp ``-trace_stat`` file (semicolon separated, cumulative '(C)' columns)."""
    st = SippStats()
    if not path.exists():
        return st
    rows = list(csv.reader(path.read_text(errors="replace").splitlines(), delimiter=";"))
    if len(rows) < 2:
        return st
    head, last = rows[0], rows[-1]
    col = {name: i for i, name in enumerate(head)}

    def get(name: str) -> int:
        i = col.get(name)
        try:
            return int(last[i]) if i is not None and i < len(last) else 0
        except ValueError:
            return 0

    cur = col.get("CurrentCall")
    for row in rows[1:]:
        if cur is None or cur >= len(row):
            continue  # a short (partly written) row
        try:
            st.peak_current = max(st.peak_current, int(row[cur]))
        except ValueError:
            pass
    st.outgoing = get("OutgoingCall(C)")
    st.successful = get("SuccessfulCall(C)")
    st.failed = get("FailedCall(C)")
    return st


def udp_drops() -> dict[int, int]:
    """Datagrams the kernel dropped per local UDP port (``drops`` of /proc/net/udp: the socket's
    receive buffer was full because its owner did not read in time), summed over sockets."""
    out: dict[int, int] = {}
    try:
        lines = Path("/proc/net/udp").read_text().splitlines()[1:]
    except OSError:
        return out
    for line in lines:
        f = line.split()
        if len(f) < 13:
            continue
        try:
            port = int(f[1].rsplit(":", 1)[1], 16)
            out[port] = out.get(port, 0) + int(f[-1])
        except ValueError:
            continue
    return out


def drops_between(before: dict[int, int], after: dict[int, int], ports: range | list[int]) -> int:
    return sum(max(0, after.get(p, 0) - before.get(p, 0)) for p in ports)


class SippUas:
    """``sipp -sn uas [-rtp_echo]`` on 127.0.0.1, answering any number of calls until stopped."""

    def __init__(self, workdir: Path, rtp_echo: bool = True, media_port: int | None = None,
                 realtime: bool = False) -> None:
        self.workdir = workdir
        self.realtime = realtime  # run under SCHED_RR (root only; otherwise ignored)
        self.rtp_echo = rtp_echo
        self.port = free_udp_port()
        self.media_port = media_port or free_udp_port()
        self.proc: subprocess.Popen | None = None
        self.uri = f"sip:service@{HOST}:{self.port}"

    def start(self) -> SippUas:
        require_sipp()
        self.workdir.mkdir(parents=True, exist_ok=True)
        cmd = ["sipp", "-sn", "uas", "-i", HOST, "-p", str(self.port), "-mp", str(self.media_port),
               "-nostdin", "-timeout", "1800", "-max_socket", "10000"]
        if self.rtp_echo:
            cmd.insert(3, "-rtp_echo")
        if self.realtime and os.geteuid() == 0 and shutil.which("chrt"):
            # the far end must not be what limits the load generator being measured: SCHED_RR for
            # every SIPp thread (it blocks on its sockets, so it cannot starve the machine)
            cmd = ["chrt", "-r", "10", *cmd]
        self.err = open(self.workdir / f"uas-{self.port}.err", "w")
        self.proc = subprocess.Popen(cmd, cwd=self.workdir, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                     stderr=self.err)
        deadline = time.monotonic() + 10
        while not udp_port_taken(self.port):
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"sipp uas did not start: {(self.workdir / f'uas-{self.port}.err').read_text()[-1500:]}")
            time.sleep(0.05)
        return self

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def stop(self) -> None:
        if self.proc is not None:
            stop_process(self.proc)
            self.proc = None
            self.err.close()


def pcap_uac_scenario(hold_ms: int) -> str:
    """Debian's built-in ``uac_pcap`` (``sipp -sd uac_pcap``) with the G.711 A-law pcap played
    back to back for ``hold_ms`` (absolute pcap path, the DTMF part dropped)."""
    xml = subprocess.run(["sipp", "-sd", "uac_pcap"], capture_output=True, text=True, timeout=10).stdout
    xml = xml[xml.index("<?xml"):]
    start = xml.index("<!-- Play a pre-recorded PCAP file")
    end = xml.index('<pause milliseconds="1000"/>') + len('<pause milliseconds="1000"/>')
    pcap = SIPP_PCAP_DIR / "g711a.pcap"
    chunk_ms = 7500  # g711a.pcap lasts ~7.05 s
    parts, left = [], hold_ms
    while left > 0:
        step = min(chunk_ms, left)
        parts.append(f'  <nop><action><exec play_pcap_audio="{pcap}"/></action></nop>\n'
                     f'  <pause milliseconds="{step}"/>\n')
        left -= step
    return xml[:start] + "".join(parts) + xml[end:]


def run_sipp_client(args: list[str], workdir: Path, tag: str, timeout_s: float,
                    sample_every_s: float = 0.5, window: tuple[float, float] | None = None,
                    extra_pids: tuple[int, ...] = ()) -> SippStats:
    """Run a SIPp client to completion (bounded by ``timeout_s``), sampling its CPU and RSS;
    statistics come from its ``-trace_stat`` CSV. ``window`` (seconds after start): machine CPU
    and the CPU of SIPp (+ ``extra_pids``) are measured between those two instants."""
    stat = workdir / f"{tag}.csv"
    err = workdir / f"{tag}.err"
    cmd = ["sipp", *args, "-nostdin", "-trace_stat", "-stf", str(stat), "-fd", "1", "-max_socket", "10000"]
    t0 = time.monotonic()
    with open(err, "w") as ef:
        proc = subprocess.Popen(cmd, cwd=workdir, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=ef)
        cpu, peak = 0.0, 0
        machine = CpuSampler()
        w_state = 0
        w_cpu0 = 0.0
        try:
            deadline = t0 + timeout_s
            while proc.poll() is None and time.monotonic() < deadline:
                cpu = max(cpu, proc_cpu_seconds([proc.pid]))
                peak = max(peak, rss_kib([proc.pid]))
                now = time.monotonic() - t0
                if window and w_state == 0 and now >= window[0]:
                    machine.start()
                    w_cpu0, w_t0, w_state = proc_cpu_seconds([proc.pid, *extra_pids]), now, 1
                elif window and w_state == 1 and now >= window[1]:
                    st_busy = machine.stop()
                    w_cpu = proc_cpu_seconds([proc.pid, *extra_pids]) - w_cpu0
                    w_state, w_len = 2, now - w_t0
                    st_rss = rss_kib([proc.pid])
                time.sleep(sample_every_s)
        finally:
            rc = stop_process(proc)
    st = parse_stat_csv(stat)
    st.elapsed_s = time.monotonic() - t0
    st.returncode = rc
    st.cpu_s, st.rss_kib = cpu, peak
    if w_state == 2:
        st.window_busy_pct, st.window_proc_cpu_pct, st.window_rss_kib = st_busy, 100.0 * w_cpu / w_len, st_rss
    return st


class quiet_children:
    """Point fds 1 and 2 at /dev/null while child processes are spawned (pjlib prints its start-up
    banner on the native stdout before any log config applies); restored on exit."""

    def __enter__(self) -> quiet_children:
        import sys
        sys.stdout.flush()
        sys.stderr.flush()
        self._saved = [os.dup(1), os.dup(2)]
        null = os.open(os.devnull, os.O_WRONLY)
        os.dup2(null, 1)
        os.dup2(null, 2)
        os.close(null)
        return self

    def __exit__(self, *exc: object) -> None:
        for fd, saved in zip((1, 2), self._saved):
            os.dup2(saved, fd)
            os.close(saved)


def table(rows: list[list[object]], header: list[str]) -> str:
    cells = [[str(c) for c in header]] + [[str(c) for c in r] for r in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(header))]
    out = []
    for n, r in enumerate(cells):
        out.append("  ".join(c.rjust(w) for c, w in zip(r, widths)))
        if n == 0:
            out.append("  ".join("-" * w for w in widths))
    return "\n".join(out)


def parse_levels(text: str, maximum: int) -> list[int]:
    levels = sorted({int(x) for x in re.split(r"[,\s]+", text.strip()) if x})
    return [n for n in levels if 0 < n <= maximum]
