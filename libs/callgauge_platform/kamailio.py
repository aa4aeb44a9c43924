"""Kamailio (Debian `kamailio`) as a registrar and digest-auth proxy for tests and the demo.

    with Kamailio.on_free_port(tmp_dir, {"alice": "secret", "bob": "pw"}) as k:
        k.uri            # "sip:127.0.0.1:PORT"
        k.domain         # "127.0.0.1" (the auth realm is the From/To domain)

Runs ``kamailio -f infra/kamailio/kamailio.cfg -DD -E`` listening on UDP and TCP on one loopback
port, with a db_text subscriber table (plain-text passwords, ``calculate_ha1``) written into a
private directory that also holds its runtime files. Stop = SIGTERM (then SIGKILL). Nothing is
written outside that directory.

With ``tls_cert``/``tls_key`` (PEM files; Debian `kamailio-tls-modules`) it also listens for SIP over
TLS on ``tls_port`` (``k.tls_uri``), its `tls.cfg` written beside the subscriber table.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

from callgauge_platform.stack import with_pdeathsig, free_port, stop_process, udp_port_taken

SUBSCRIBER_TABLE_VERSION = 7  # Kamailio 5.x `subscriber` schema version
_CONFIG_ENV = "CALLGAUGE_KAMAILIO_CFG"


class KamailioError(RuntimeError):
    pass


def kamailio_binary() -> str:
    path = shutil.which("kamailio") or ("/usr/sbin/kamailio" if os.access("/usr/sbin/kamailio", os.X_OK) else None)
    if path is None:
        raise KamailioError("kamailio is not installed (Debian package `kamailio`)")
    return path


def default_config() -> Path:
    """infra/kamailio/kamailio.cfg of this checkout, or $CALLGAUGE_KAMAILIO_CFG."""
    if os.environ.get(_CONFIG_ENV):
        return Path(os.environ[_CONFIG_ENV])
    return Path(__file__).resolve().parents[2] / "infra" / "kamailio" / "kamailio.cfg"


def _dbtext_escape(value: str) -> str:
    if any(c in value for c in "\n\r\0"):
        raise ValueError("SIP usernames, domains and passwords must not contain line breaks or NUL")
    return value.replace("\\", "\\\\").replace(":", "\\:")


def write_subscribers(db_dir: Path, users: dict[str, str], domain: str) -> None:
    """The db_text tables auth_db reads: `version` and `subscriber` (username -> password)."""
    db_dir.mkdir(parents=True, exist_ok=True)
    (db_dir / "version").write_text(
        "table_name(str) table_version(int)\n"
        f"subscriber:{SUBSCRIBER_TABLE_VERSION}\n"
    )
    rows = ["id(int,auto) username(str) domain(str) password(str) ha1(str,null) ha1b(str,null)"]
    for i, (user, password) in enumerate(sorted(users.items()), start=1):
        if not user:
            raise ValueError("empty SIP username")
        rows.append(f"{i}:{_dbtext_escape(user)}:{_dbtext_escape(domain)}:{_dbtext_escape(password)}::")
    (db_dir / "subscriber").write_text("\n".join(rows) + "\n")


def write_tls_config(path: Path, cert: Path, key: Path) -> None:
    """The tls module's configuration: our certificate and key for TLS servers, TLS 1.2 or later,
    no client certificates asked for or checked (the test UAs have none)."""
    path.write_text(
        "[server:default]\n"
        "method = TLSv1.2+\n"
        "verify_certificate = no\n"
        "require_certificate = no\n"
        f"certificate = {Path(cert).resolve()}\n"
        f"private_key = {Path(key).resolve()}\n"
        "\n[client:default]\n"
        "method = TLSv1.2+\n"
        "verify_certificate = no\n"
        "require_certificate = no\n"
    )


def command(config: Path, run_dir: Path, host: str, port: int, *, db_dir: Path, min_expires: int = 5,
            log_level: int = 1, check_only: bool = False, tls_port: int = 0,
            tls_config: Path | None = None) -> list[str]:
    argv = [kamailio_binary(), "-f", str(config)]
    if check_only:
        argv.append("-c")
    else:
        argv += ["-DD", "-E"]
    argv += [
        "-Y", str(run_dir), "-w", str(run_dir), "-P", str(run_dir / "kamailio.pid"),
        "-m", "64" if tls_config else "32", "-M", "8",
        "-l", f"udp:{host}:{port}", "-l", f"tcp:{host}:{port}",
        "-A", f'DBURL="text://{db_dir.resolve()}"',
        "-A", f"MIN_EXPIRES={int(min_expires)}",
        "-A", f"LOG_LEVEL={int(log_level)}",
    ]
    if tls_config is not None:
        argv += ["-l", f"tls:{host}:{tls_port}", "-A", "WITH_TLS", "-A", f'TLS_CFG="{Path(tls_config).resolve()}"']
    return argv


def check_config(config: Path | None = None, work_dir: Path | None = None, *,
                 tls: tuple[Path, Path] | None = None) -> subprocess.CompletedProcess:
    """``kamailio -c``: parse the configuration and load its modules (exit 0 when valid); with
    ``tls`` (certificate, key) the TLS part too."""
    import tempfile

    with tempfile.TemporaryDirectory(prefix="callgauge-kamailio-check-") as tmp:
        base = Path(work_dir or tmp)
        db = base / "db"
        write_subscribers(db, {"check": "check"}, "127.0.0.1")
        tls_cfg = None
        if tls is not None:
            tls_cfg = base / "tls.cfg"
            write_tls_config(tls_cfg, *tls)
        return subprocess.run(
            command(config or default_config(), base, "127.0.0.1", 5060, db_dir=db, check_only=True,
                    tls_port=5061, tls_config=tls_cfg),
            capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL,
        )


@dataclass
class Kamailio:
    """One Kamailio process on ``host:port`` (UDP and TCP) with its own subscriber table."""

    work_dir: Path
    users: dict[str, str]
    host: str = "127.0.0.1"
    port: int = 0
    domain: str = ""
    config: Path = field(default_factory=default_config)
    min_expires: int = 5
    log_level: int = 1
    tls_cert: Path | None = None  # PEM: with tls_key, SIP over TLS on tls_port too
    tls_key: Path | None = None
    tls_port: int = 0
    proc: subprocess.Popen | None = None

    @classmethod
    def on_free_port(cls, work_dir: Path, users: dict[str, str], **kw) -> Kamailio:
        host = kw.pop("host", "127.0.0.1")
        if kw.get("tls_cert") and not kw.get("tls_port"):
            kw["tls_port"] = free_port(host)
        for _ in range(20):  # the port must be free on both UDP and TCP
            port = free_port(host)
            if not udp_port_taken(port, host) and port != kw.get("tls_port"):
                return cls(Path(work_dir), dict(users), host=host, port=port, **kw)
        raise KamailioError("no port free on both UDP and TCP")

    def __post_init__(self) -> None:
        self.domain = self.domain or self.host

    @property
    def uri(self) -> str:
        return f"sip:{self.host}:{self.port}"

    @property
    def tls_uri(self) -> str:
        """Where SIP over TLS goes (only with ``tls_cert``)."""
        return f"sip:{self.host}:{self.tls_port};transport=tls"

    @property
    def log_path(self) -> Path:
        return self.work_dir / "kamailio.log"

    def log_tail(self, chars: int = 3000) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-chars:]
        except OSError:
            return ""

    def start(self, timeout: float = 20.0) -> Kamailio:
        if self.proc is not None:
            return self
        if not self.port:
            raise KamailioError("no port given: use Kamailio.on_free_port")
        self.work_dir.mkdir(parents=True, exist_ok=True)
        db = self.work_dir / "db"
        write_subscribers(db, self.users, self.domain)
        tls_cfg = None
        if self.tls_cert is not None:
            if self.tls_key is None or not self.tls_port:
                raise KamailioError("TLS needs tls_cert, tls_key and tls_port (Kamailio.on_free_port picks one)")
            tls_cfg = self.work_dir / "tls.cfg"
            write_tls_config(tls_cfg, self.tls_cert, self.tls_key)
        argv = command(self.config, self.work_dir, self.host, self.port, db_dir=db,
                       min_expires=self.min_expires, log_level=self.log_level, tls_port=self.tls_port,
                       tls_config=tls_cfg)
        with open(self.log_path, "ab") as log:
            self.proc = subprocess.Popen(with_pdeathsig(argv), stdin=subprocess.DEVNULL, stdout=log,
                                         stderr=subprocess.STDOUT, cwd=self.work_dir)
        deadline = time.monotonic() + timeout
        while not self._answers():
            if self.proc.poll() is not None:
                code = self.proc.returncode
                self.proc = None
                raise KamailioError(f"kamailio exited with {code} before it was ready:\n{self.log_tail()}")
            if time.monotonic() >= deadline:
                self.stop()
                raise KamailioError(f"kamailio not ready on {self.host}:{self.port} within {timeout} s:\n"
                                    f"{self.log_tail()}")
            time.sleep(0.1)
        return self

    def _answers(self) -> bool:
        """An OPTIONS keep-alive to the server itself is answered 200."""
        import socket

        branch = f"z9hG4bK{os.getpid()}{time.monotonic_ns()}"
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        s.bind((self.host, 0))
        msg = (
            f"OPTIONS sip:{self.host}:{self.port} SIP/2.0\r\n"
            f"Via: SIP/2.0/UDP {self.host}:{s.getsockname()[1]};rport;branch={branch}\r\n"
            "Max-Forwards: 70\r\n"
            f"From: <sip:probe@{self.host}>;tag=probe\r\n"
            f"To: <sip:{self.host}:{self.port}>\r\n"
            f"Call-ID: {branch}@callgauge\r\n"
            "CSeq: 1 OPTIONS\r\n"
            "Content-Length: 0\r\n\r\n"
        ).encode()
        with s:
            s.settimeout(0.3)
            try:
                s.sendto(msg, (self.host, self.port))
                data, _ = s.recvfrom(65535)
            except OSError:
                return False
        return data.startswith(b"SIP/2.0 200")

    def stop(self, timeout: float = 10.0) -> int | None:
        proc, self.proc = self.proc, None
        if proc is None:
            return None
        return stop_process(proc, timeout)

    def __enter__(self) -> Kamailio:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
