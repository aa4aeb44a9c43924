"""`callgauge up`: the whole platform on one machine as child processes — the Tansu broker, the
accounts, runs, billing, media-engine and gateway services and the built-in SIP responder — each started in
order and awaited until ready. Stopped in dependency order (STOP_ORDER: the gateway first, so no new
run arrives; the media-engine next, draining its runs while runs, billing and the broker still take
their events; the broker last), each given longer than its own drain before a SIGKILL. A child that
crashes is restarted with backoff (`supervise`, like systemd Restart=on-failure); after
RESTART_BURST crashes within RESTART_WINDOW_S the supervisor gives up loudly. Every child gets
PR_SET_PDEATHSIG, so even a SIGKILLed supervisor leaves no process behind.

Two stacks must never mix (issue 18: a second `callgauge up` on the same ports printed "Callgauge is
up." because the first stack answered its readiness checks, then its processes joined the first
stack's consumer groups and wrote into its logs). So `start` first takes an exclusive lock on the data
dir (`up.lock`, held while the stack runs), then checks that every port it is about to use is free
and names the holder of any that is not — before anything is started or written. Readiness is then
checked against the processes this stack started: each service answers /readyz with this start's
instance token (`X-Callgauge-Instance`, from CALLGAUGE_INSTANCE_TOKEN), the broker's port must be
held by the broker's pid, and the responder's readiness line must be new in its log."""

from __future__ import annotations

import fcntl
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

import httpx
from pydantic import ValidationError
from pydantic_settings import BaseSettings

from callgauge_platform import service_auth
from callgauge_platform.broker import tansu_command
from callgauge_platform.datadir import PRIVATE_UMASK, make_private
from callgauge_platform.destinations import LOOPBACK_CIDRS
from callgauge_platform.ports import holder_pids, holders, port_free
from callgauge_platform.settings import StackSettings

INSTANCE_HEADER = "X-Callgauge-Instance"  # /readyz of every service: the token of the start that made it
LOCK_FILE = "up.lock"

# Every child runs under util-linux's `setpriv --pdeathsig KILL`, which sets PR_SET_PDEATHSIG
# and execs the command. Not a preexec_fn: that forces a plain fork() of this process, whose
# pthread_atfork handlers (gRPC's, once a channel exists here) can abort the child before exec.
_SETPRIV = shutil.which("setpriv")


def with_pdeathsig(argv: list[str]) -> list[str]:
    """argv run so that the process gets SIGKILL when its parent dies (setpriv execs it)."""
    return [_SETPRIV, "--pdeathsig", "KILL", "--", *argv] if _SETPRIV else argv


STOP_ORDER = ("gateway", "media-engine", "responder", "billing", "runs", "accounts", "tansu")
STOP_TIMEOUT_S = 20.0  # every child but the media-engine drains within a few seconds
STOP_MARGIN_S = 15.0  # the media-engine: its drain + this (publishing, pool shut-down)
RESTART_BURST = 5  # crashes of one child within RESTART_WINDOW_S before the supervisor gives up
RESTART_WINDOW_S = 120.0
RESTART_BACKOFF_S = (1.0, 2.0, 4.0, 8.0, 16.0)


def free_port(host: str = "127.0.0.1", kind: int = socket.SOCK_STREAM) -> int:
    with socket.socket(socket.AF_INET, kind) as s:
        s.bind((host, 0))
        return s.getsockname()[1]


def udp_port_taken(port: int, host: str = "127.0.0.1") -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        try:
            s.bind((host, port))
        except OSError:
            return True
    return False


def stop_process(proc: subprocess.Popen, timeout: float = 10.0) -> int | None:
    """SIGTERM, wait up to `timeout`, then SIGKILL; the exit code."""
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)
    return proc.returncode


class StackError(RuntimeError):
    pass


def setting_errors(owner: str, exc: ValidationError) -> list[str]:
    """One line per bad CALLGAUGE_* value of a settings class: who reads it, the variable, why."""
    lines = []
    for e in exc.errors():
        name = "_".join(map(str, e["loc"]))
        lines.append(f"{owner}: CALLGAUGE_{name.upper()} ({name}): {e['msg']}")
    return lines


def invalid_settings(lines: list[str]) -> str:
    return "cannot start: a setting is not valid\n  " + "\n  ".join(lines) + "\nNothing was started."


class DataDirInUse(StackError):
    """The data dir is another running stack's (its lock is held)."""


@dataclass
class Child:
    name: str
    proc: subprocess.Popen
    log_path: Path
    argv: list[str] = field(default_factory=list)
    stop_timeout: float = STOP_TIMEOUT_S
    crashes: list[float] = field(default_factory=list)  # monotonic times of the recent crashes
    restart_at: float | None = None  # when a crashed child is due to be started again
    log_start: int = 0  # size of its log file when it was started (the log is appended to)


@dataclass
class Stack:
    settings: StackSettings
    with_responder: bool = True
    extra_env: dict[str, str] = field(default_factory=dict)  # e.g. OTEL_BSP_SCHEDULE_DELAY
    # child name -> its settings class (`callgauge up` gives every service's): that child is handed
    # exactly the settings of its class, built from the stack's and the environment before anything
    # starts. A child without one gets the stack's settings and every CALLGAUGE_* of the environment.
    service_settings: Mapping[str, type[BaseSettings]] = field(default_factory=dict)
    children: list[Child] = field(default_factory=list)
    exit_codes: dict[str, int] = field(default_factory=dict)  # of the children stopped last
    _lock_fd: int | None = field(default=None, repr=False)

    @classmethod
    def on_free_ports(cls, data_dir: Path, **overrides) -> Stack:
        """A stack whose every port is picked free on 127.0.0.1 (tests, side-by-side stacks). Such
        stacks poll their API hard (tests, the demo), so their default rate limit is high unless
        `rate_limit_per_minute` is given; keys with their own limit keep it."""
        overrides.setdefault("rate_limit_per_minute", 1_000_000)
        # test suites send many bad credentials on purpose from one address (127.0.0.1); the security
        # suite sets low bounds and probes them from other loopback addresses
        overrides.setdefault("auth_failures_per_client", 100_000)
        overrides.setdefault("login_failures_per_account", 100_000)
        overrides.setdefault("quota_concurrent_runs", 1000)  # test suites start many runs on one account
        # tests and the demo call the built-in responder and SIPp on loopback, denied by default
        overrides.setdefault("dial_allow_cidrs", LOOPBACK_CIDRS)
        # one-user stacks (tests, the demo): top-ups are "paid" by the local provider; `callgauge up`
        # keeps the default (none: only the operator credits wallets)
        overrides.setdefault("billing_payment_provider", "local")
        picked: set[int] = set()

        def port() -> int:
            """A free TCP port none of this stack's other parts got: two picks of port 0 may return the
            same number, and the part started second would then fail to bind while the readiness
            probe is answered by the first (seen: the gateway's port was a health server's)."""
            for _ in range(100):
                p = free_port()
                if p not in picked:
                    picked.add(p)
                    return p
            raise StackError("no distinct free TCP port on 127.0.0.1")

        s = StackSettings(
            data_dir=data_dir, kafka_bootstrap=f"127.0.0.1:{port()}",
            runs_grpc=f"127.0.0.1:{port()}", billing_grpc=f"127.0.0.1:{port()}",
            accounts_grpc=f"127.0.0.1:{port()}", accounts_http_port=port(),
            runs_http_port=port(), billing_http_port=port(), media_http_port=port(),
            gateway_port=port(), responder_port=free_port(kind=socket.SOCK_DGRAM),
            responder_rtp_port=20000 + secrets.randbelow(4000) * 2,
            media_rtp_port_base=30000 + secrets.randbelow(300) * 100,
            **overrides,
        )
        return cls(s)

    # ------------------------------------------------------------------ env

    def ensure_api_key(self) -> str:
        if self.settings.api_key:
            return self.settings.api_key
        path = self.settings.data_dir / "api_key"
        if path.exists():
            key = path.read_text().strip()
        else:
            key = "cgk_live_" + secrets.token_urlsafe(32)
            self.settings.data_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
            with os.fdopen(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600), "w") as f:
                f.write(key + "\n")
        self.settings.api_key = key
        return key

    def settings_of(self, name: str) -> BaseSettings:
        """The settings of child `name` (a key of service_settings): the stack's own, with any other
        setting given to it, over the environment. ValidationError on a bad value."""
        return self.service_settings[name](**self.settings.model_dump())

    def check_settings(self) -> None:
        """StackError naming every bad value of every service's settings (nothing is started)."""
        bad = []
        for name in self.service_settings:
            try:
                self.settings_of(name)
            except ValidationError as exc:
                bad += setting_errors(name, exc)
        if bad:
            raise StackError(invalid_settings(bad))

    def env(self, name: str | None = None) -> dict[str, str]:
        """The environment of child `name`: its own settings (service_settings), else the stack's and
        every CALLGAUGE_* of this process's environment."""
        if name in self.service_settings:
            env = {k: v for k, v in os.environ.items() if not k.startswith("CALLGAUGE_")}
            values = self.settings_of(name).model_dump()
            env["CALLGAUGE_INSTANCE_TOKEN"] = self.settings.instance_token  # /readyz answers it (health.py)
        else:
            env = dict(os.environ)
            values = self.settings.model_dump()
        for key, value in values.items():
            env[f"CALLGAUGE_{key.upper()}"] = str(value).lower() if isinstance(value, bool) else str(value)
        env["CALLGAUGE_DATA_DIR"] = str(self.settings.data_dir.resolve())
        env["PYTHONUNBUFFERED"] = "1"
        env.update(self.extra_env)
        return env

    # ------------------------------------------------------------------ processes

    # ------------------------------------------------------------------ clashes

    def ports(self) -> list[tuple[str, str, int, int]]:
        """(what, host, port, socket kind) of every port this stack listens on (the media-engine's
        pjsua2 workers take OS-chosen SIP ports; RTP ranges are bound per call, not checked here)."""
        s = self.settings
        tcp, udp = socket.SOCK_STREAM, socket.SOCK_DGRAM
        out = []
        host, _, port = s.kafka_bootstrap.rpartition(":")
        out.append(("the Tansu broker (CALLGAUGE_KAFKA_BOOTSTRAP)", host or "127.0.0.1", int(port), tcp))
        for what, target in (("runs gRPC", s.runs_grpc), ("billing gRPC", s.billing_grpc),
                             ("accounts gRPC", s.accounts_grpc)):
            out.append((f"{what} (CALLGAUGE_{what.split()[0].upper()}_GRPC)", s.bind_host,
                        int(target.rpartition(":")[2]), tcp))
        for what, port in (("accounts", s.accounts_http_port), ("runs", s.runs_http_port),
                           ("billing", s.billing_http_port), ("media_engine", s.media_http_port)):
            env = "MEDIA" if what == "media_engine" else what.upper()
            out.append((f"{what.replace('_', '-')} health/metrics (CALLGAUGE_{env}_HTTP_PORT)", s.bind_host, port, tcp))
        out.append(("the gateway, the REST API (CALLGAUGE_GATEWAY_PORT)", s.gateway_host, s.gateway_port, tcp))
        if self.with_responder:
            out.append(("the SIP responder (CALLGAUGE_RESPONDER_PORT)", s.responder_host, s.responder_port, udp))
        return out

    def check_ports(self) -> None:
        """StackError naming every port this stack needs that is taken, and its holder."""
        taken = []
        first: dict[tuple[int, int], str] = {}
        for what, host, port, kind in self.ports():
            proto = "TCP" if kind == socket.SOCK_STREAM else "UDP"
            if (port, kind) in first:  # two parts of this stack on one port: one would answer for the other
                taken.append(f"port {port}/{proto} is set for both {first[port, kind]} and {what}")
                continue
            first[port, kind] = what
            if port_free(host, port, kind):
                continue
            who = holders(port, kind)
            held = ("held by " + "; ".join(h.describe() for h in who[:3])) if who else \
                "held by a process this user cannot see"
            taken.append(f"port {port}/{proto} on {host} for {what} is in use, {held}")
        if taken:
            raise StackError("cannot start: " + "\n  ".join(["a port this stack needs is taken", *taken]) +
                             "\nStop whatever holds it (another `callgauge up`?) or choose other ports "
                             "(CALLGAUGE_* settings); nothing was started.")

    def lock(self) -> None:
        """Take the data dir's lock (`up.lock`, held until `stop`): one stack per data dir."""
        if self._lock_fd is not None:
            return
        d = self.settings.data_dir
        d.mkdir(parents=True, exist_ok=True, mode=0o700)
        path = d / LOCK_FILE
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            try:
                holder = os.pread(fd, 64, 0).decode(errors="replace").strip()
            finally:
                os.close(fd)
            by = f" (pid {holder})" if holder.isdigit() else ""
            raise DataDirInUse(f"cannot start: data dir {d.resolve()} is in use by another Callgauge stack{by}; "
                             "stop it first, or give this one its own --data-dir. Nothing was started.") from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        self._lock_fd = fd

    def unlock(self) -> None:
        fd, self._lock_fd = self._lock_fd, None
        if fd is not None:
            os.close(fd)  # releases the flock

    def _spawn(self, name: str, argv: list[str]) -> Child:
        logs = self.settings.data_dir / "logs"
        logs.mkdir(parents=True, exist_ok=True, mode=0o700)
        log_path = logs / f"{name}.log"
        child = Child(name, self._popen(argv, log_path, name), log_path, argv, self._stop_timeout(name))
        try:
            child.log_start = log_path.stat().st_size  # what this start writes comes after this
        except OSError:
            child.log_start = 0
        self.children.append(child)
        return child

    def _popen(self, argv: list[str], log_path: Path, name: str | None = None) -> subprocess.Popen:
        out = os.fdopen(os.open(log_path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600), "ab")
        try:  # children write the data dir owner-only (umask 077): stores, secrets, idempotency records
            return subprocess.Popen(with_pdeathsig(argv), env=self.env(name), stdout=out, stderr=subprocess.STDOUT,
                                    stdin=subprocess.DEVNULL, cwd=os.getcwd(), umask=PRIVATE_UMASK)
        finally:
            out.close()

    def _stop_timeout(self, name: str) -> float:
        if name == "media-engine":
            return self.settings.media_drain_timeout_s + STOP_MARGIN_S
        return STOP_TIMEOUT_S

    def supervise(self, say=lambda msg: None, now=time.monotonic) -> str | None:
        """One supervision pass (call it every fraction of a second): a child that exited is
        logged and started again after a growing delay; a child that crashed RESTART_BURST times
        within RESTART_WINDOW_S is given up on. Returns why the supervisor gives up, else None."""
        t = now()
        for child in self.children:
            if child.restart_at is not None:
                if t >= child.restart_at:
                    child.restart_at = None
                    child.proc = self._popen(child.argv, child.log_path, child.name)
                    say(f"{child.name} restarted (pid {child.proc.pid}, restart {len(child.crashes)})")
                continue
            code = child.proc.poll()
            if code is None:
                continue
            child.crashes = [c for c in child.crashes if t - c < RESTART_WINDOW_S] + [t]
            if len(child.crashes) >= RESTART_BURST:
                return (f"{child.name} crashed {len(child.crashes)} times within {RESTART_WINDOW_S:.0f} s "
                        f"(last exit {code}); giving up (see {child.log_path}):\n" + _tail(child.log_path))
            delay = RESTART_BACKOFF_S[min(len(child.crashes), len(RESTART_BACKOFF_S)) - 1]
            child.restart_at = t + delay
            say(f"{child.name} exited with {code}; restarting it in {delay:.0f} s (see {child.log_path})")
        return None

    def _wait(self, child: Child, probe, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if child.proc.poll() is not None:
                raise StackError(f"{child.name} exited with {child.proc.returncode}; see {child.log_path}:\n"
                                 + _tail(child.log_path))
            if probe():
                return
            time.sleep(0.1)
        raise StackError(f"{child.name} not ready after {timeout:.0f} s; see {child.log_path}:\n" + _tail(child.log_path))

    def start(self, timeout: float = 60.0, progress=lambda msg: None) -> None:
        """Start every part and wait until each is ready; StackError (nothing left running) when the
        data dir is another stack's, a port is taken, or a part does not come up."""
        self.lock()
        try:
            self.check_settings()
            self.check_ports()
        except BaseException:
            self.unlock()
            raise
        if not self.settings.instance_token:
            self.settings.instance_token = secrets.token_hex(16)
        token = self.settings.instance_token
        make_private(self.settings.data_dir)  # 0700, and every file already in it 0600
        self.ensure_api_key()
        directory, may_create = service_auth.keys_dir(self.settings)
        if may_create:  # every child signs its internal calls with its own key from here
            service_auth.generate_keys(directory)
        py = sys.executable
        try:
            host, port = self.settings.kafka_bootstrap.rsplit(":", 1)
            progress("starting the Tansu broker")
            c = self._spawn("tansu", tansu_command(host, int(port)))
            self._wait(c, lambda c=c: _tcp_open(host, int(port)) and _held_by(c, int(port)), timeout)
            for name, module, http_port in (
                ("accounts", "callgauge_accounts", self.settings.accounts_http_port),
                ("runs", "callgauge_runs", self.settings.runs_http_port),
                ("billing", "callgauge_billing", self.settings.billing_http_port),
                ("media-engine", "callgauge_media", self.settings.media_http_port),
                ("gateway", "callgauge_gateway", self.settings.gateway_port),
            ):
                progress(f"starting {name}")
                c = self._spawn(name, [py, "-m", module])
                self._wait(c, lambda p=http_port, c=c: _ready(f"http://127.0.0.1:{p}/readyz", token, c), timeout)
            if self.with_responder:
                progress("starting the SIP responder")
                c = self._spawn("responder", [py, "-m", "callgauge_media.responder",
                                              "--host", self.settings.responder_host,
                                              "--port", str(self.settings.responder_port),
                                              "--rtp-port", str(self.settings.responder_rtp_port)])
                self._wait(c, lambda c=c: b"responder ready" in _read_from(c.log_path, c.log_start), timeout)
        except BaseException:
            self.stop()
            raise

    def stop(self, timeout: float | None = None) -> None:
        """SIGTERM one child at a time in STOP_ORDER (a child not named there first), each given
        its stop timeout (longer than its drain) before a SIGKILL."""
        rank = {name: i for i, name in enumerate(STOP_ORDER)}
        for child in sorted(reversed(self.children), key=lambda c: rank.get(c.name, -1)):
            self.exit_codes[child.name] = stop_process(child.proc, child.stop_timeout if timeout is None else timeout)
        self.children.clear()
        self.unlock()

    def unclean_exits(self) -> dict[str, int]:
        """Children that did not exit 0 when stopped (a drained SIGTERM exits 0)."""
        return {name: code for name, code in self.exit_codes.items() if code != 0}

    def responder_uri(self, user: str = "echo") -> str:
        return f"sip:{user}@{self.settings.responder_host}:{self.settings.responder_port}"

    def __enter__(self) -> Stack:
        self.start()
        return self

    def __exit__(self, *exc) -> None:
        self.stop()


def _tcp_open(host: str, port: int) -> bool:
    try:
        socket.create_connection((host, port), 0.5).close()
        return True
    except OSError:
        return False


class _NotOurs(StackError):
    pass


def _ready(url: str, token: str = "", child: Child | None = None) -> bool:
    """/readyz answers 200 with this start's instance token. Another token (or none) means another
    process answers on the port: a StackError naming it, at once."""
    try:
        resp = httpx.get(url, timeout=1.0)
    except httpx.HTTPError:
        return False
    if token and resp.headers.get(INSTANCE_HEADER) != token:
        port = httpx.URL(url).port or 0
        who = holders(port)
        held = "; ".join(h.describe() for h in who[:3]) or "a process this user cannot see"
        name = child.name if child is not None else url
        raise _NotOurs(f"cannot start: port {port}/TCP of {name} is answered by another process ({held}), "
                       f"not by the {name} this stack started")
    return resp.status_code == 200


def _held_by(child: Child, port: int) -> bool:
    """The port is held by the child's process (or /proc cannot tell whose it is)."""
    pids = holder_pids(port)
    if not pids or child.proc.pid in pids:
        return True
    who = "; ".join(h.describe() for h in holders(port)[:3])
    raise _NotOurs(f"cannot start: port {port}/TCP of {child.name} is held by another process ({who}), "
                   f"not by the {child.name} this stack started (pid {child.proc.pid})")


def _read_from(path: Path, offset: int) -> bytes:
    try:
        with open(path, "rb") as f:
            f.seek(offset)
            return f.read()
    except OSError:
        return b""


def _tail(path: Path, lines: int = 15) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return ""
