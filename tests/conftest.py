"""Fixtures shared by every test folder: a real Tansu broker on a free loopback port; the event
stores a test runs on (SQLite always; PostgreSQL at CALLGAUGE_TEST_PG_URL when it answers, marked
`postgres`; KurrentDB where CALLGAUGE_TEST_KURRENTDB_URL is set); and the SIP peers: SIPp's uas,
Kamailio (plain, or with TLS and a certificate of the test's own CA)."""

from __future__ import annotations

import asyncio
import functools
import os
import shutil
import socket
import subprocess
import time
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from callgauge_eventstore import EventStore
from callgauge_eventstore.factory import open_event_store
from callgauge_platform.broker import tansu_command
from callgauge_platform.kamailio import Kamailio
from callgauge_platform.stack import free_port, stop_process, udp_port_taken
from tls_certs import make_ca

# The only place the suites read where their servers are.
PG_URL = os.environ.get("CALLGAUGE_TEST_PG_URL", "postgresql://postgres@127.0.0.1:5432/test")
KURRENTDB_URL = os.environ.get("CALLGAUGE_TEST_KURRENTDB_URL", "")  # e.g. kurrentdb://127.0.0.1:2113?tls=false
REDIS_URL = os.environ.get("CALLGAUGE_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")


class Broker:
    def __init__(self) -> None:
        self.port = free_port()
        self.bootstrap = f"127.0.0.1:{self.port}"
        self.proc: subprocess.Popen | None = None

    def start(self) -> None:
        self.proc = subprocess.Popen(tansu_command("127.0.0.1", self.port), stdout=subprocess.DEVNULL,
                                     stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                socket.create_connection(("127.0.0.1", self.port), 0.2).close()
                return
            except OSError:
                assert self.proc.poll() is None, f"tansu exited with {self.proc.returncode}"
                time.sleep(0.05)
        raise RuntimeError("tansu did not open its port")

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            stop_process(self.proc)


@pytest.fixture(scope="session")
def broker():
    """A real Tansu broker (memory storage), shared by the session; tests isolate by topic prefix."""
    b = Broker()
    b.start()
    yield b
    b.stop()


@pytest.fixture
def topic_prefix() -> str:
    return f"t{uuid.uuid4().hex[:8]}."


@pytest.fixture
def redis_url() -> str:
    """The URL of the Redis server at CALLGAUGE_TEST_REDIS_URL when it answers a PING; else the test
    is skipped, saying so."""
    parts = urlsplit(REDIS_URL)
    host, port = parts.hostname or "127.0.0.1", parts.port or 6379
    try:
        with socket.create_connection((host, port), 1) as s:
            s.sendall(b"PING\r\n")
            answers = s.recv(16).startswith(b"+PONG")
    except OSError:
        answers = False
    if not answers:
        pytest.skip(f"Redis at {host}:{port} not reachable")
    return REDIS_URL


# ---------------------------------------------------------------------------------- event stores


@functools.cache
def postgres_unreachable() -> str | None:
    """None when the PostgreSQL server at PG_URL answers, else why not."""
    import psycopg

    try:
        with psycopg.connect(PG_URL, connect_timeout=3) as conn:
            conn.execute("SELECT 1")
    except Exception as e:  # noqa: BLE001 - any failure means: skip
        parts = urlsplit(PG_URL)
        why = " ".join(str(e).split()) or type(e).__name__
        return f"PostgreSQL at {parts.hostname}:{parts.port or 5432} not reachable: {why}"
    return None


def _drop_schemas(schemas: list[str]) -> None:
    import psycopg
    from psycopg import sql

    with psycopg.connect(PG_URL, autocommit=True, connect_timeout=5) as conn:
        for schema in schemas:
            conn.execute(sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(sql.Identifier(schema)))


@dataclass
class StoreBackend:
    """Where one test's event stores live: its own SQLite directory, or on a shared server
    (PostgreSQL, KurrentDB) a namespace of its own per name it asks for (a PostgreSQL schema,
    dropped after the test; a KurrentDB stream-name prefix, left on the server)."""

    name: str  # sqlite | postgres | kurrentdb
    url: str
    suffix: str  # what makes this test's namespaces its own on a shared server
    stores: list[EventStore] = field(default_factory=list)
    namespaces: dict[str, str] = field(default_factory=dict)

    def namespace(self, name: str = "events") -> str:
        """The namespace that `name` stands for in this test (the same one every time it is asked)."""
        if self.name == "sqlite":
            return name  # <tmp_path>/<name>.db
        return self.namespaces.setdefault(name, f"{name}_{self.suffix}")

    def new_store(self, name: str = "events") -> EventStore:
        """A store instance on the namespace `name`; every instance of one name shares its events.
        Closed after the test (closing twice is fine)."""
        store = open_event_store(self.url, self.namespace(name))
        self.stores.append(store)
        return store

    async def close(self) -> None:
        for store in self.stores:
            await asyncio.wait_for(store.close(), 10)
        if self.name == "postgres" and self.namespaces:
            await asyncio.to_thread(_drop_schemas, list(self.namespaces.values()))


@pytest.fixture
async def store_backends(tmp_path) -> AsyncIterator[Callable[[str], StoreBackend]]:
    """Factory: the StoreBackend of a kind for this test; a kind whose server is not there skips it."""
    made: list[StoreBackend] = []

    def make(kind: str) -> StoreBackend:
        if kind == "sqlite":
            url = f"sqlite:///{tmp_path}/"
        elif kind == "postgres":
            reason = postgres_unreachable()
            if reason:
                pytest.skip(reason)
            url = PG_URL
        elif kind == "kurrentdb":
            if not KURRENTDB_URL:
                pytest.skip("set CALLGAUGE_TEST_KURRENTDB_URL to run the KurrentDB adapter against a server")
            url = KURRENTDB_URL
        else:
            raise ValueError(f"no such store backend: {kind}")
        made.append(StoreBackend(kind, url, uuid.uuid4().hex[:12]))
        return made[-1]

    try:
        yield make
    finally:
        for backend in made:
            await backend.close()


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def store_backend(request, store_backends) -> StoreBackend:
    """Each test that asks for it runs on SQLite, then on PostgreSQL (marked `postgres`)."""
    return store_backends(request.param)


# ---------------------------------------------------------------------------------- SIP peers

HOST = "127.0.0.1"
_KAMAILIO_MODULES = ("/usr/lib/x86_64-linux-gnu/kamailio/modules", "/usr/lib/kamailio/modules")
HAS_KAMAILIO = shutil.which("kamailio") is not None or Path("/usr/sbin/kamailio").exists()
HAS_KAMAILIO_TLS = HAS_KAMAILIO and any(Path(d, "tls.so").exists() for d in _KAMAILIO_MODULES)


def pytest_runtest_setup(item: pytest.Item) -> None:
    """Tests marked `kamailio` / `kamailio_tls` are skipped, saying why, where that is not installed."""
    if item.get_closest_marker("kamailio") and not HAS_KAMAILIO:
        pytest.skip("kamailio (Debian package) is not installed")
    if item.get_closest_marker("kamailio_tls") and not HAS_KAMAILIO_TLS:
        pytest.skip("kamailio with its tls module (Debian kamailio-tls-modules) is not installed")


@pytest.fixture
def sipp_uas_factory(tmp_path) -> Iterator[Callable[..., str]]:
    """Factory: SIPp's built-in uas on free loopback ports, started and listening; returns its URI.
    `echo`: RTP echoed back (-rtp_echo); `calls`: it exits after that many calls (0: never)."""
    procs: list[subprocess.Popen] = []

    def start(*, echo: bool = True, calls: int = 0) -> str:
        if shutil.which("sipp") is None:
            pytest.skip("sipp (Debian package sip-tester; install.sh installs it) is not installed")
        sip_port, media_port = free_port(HOST, socket.SOCK_DGRAM), free_port(HOST, socket.SOCK_DGRAM)
        err = tmp_path / f"sipp-uas-{len(procs)}.err"
        cmd = ["sipp", "-sn", "uas", *(["-rtp_echo"] if echo else []), "-i", HOST, "-p", str(sip_port),
               "-mp", str(media_port), *(["-m", str(calls)] if calls else []), "-nostdin",
               "-timeout", "900"]  # a SIPp left behind by a killed test run ends by itself
        with open(err, "w") as stderr:
            proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=stderr,
                                    cwd=tmp_path)
        procs.append(proc)
        deadline = time.monotonic() + 10
        while not udp_port_taken(sip_port):
            if proc.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"sipp did not start: {err.read_text()[-2000:]}")
            time.sleep(0.05)
        return f"sip:service@{HOST}:{sip_port}"

    try:
        yield start
    finally:
        for proc in procs:
            stop_process(proc)


@pytest.fixture
def sipp_uas(sipp_uas_factory) -> str:
    """SIPp as the far end: answers every call and echoes RTP; its URI."""
    return sipp_uas_factory()


@pytest.fixture(scope="module")
def start_kamailio(tmp_path_factory) -> Iterator[Callable[..., Kamailio]]:
    """Factory (one per test module): Kamailio on free loopback ports with `users` (name -> password),
    started; with `tls` (an issued certificate of tls_certs) it also listens for SIP over TLS. Skips
    when Kamailio, or its tls module, is not installed."""
    started: list[Kamailio] = []

    def start(users: dict[str, str], tls=None) -> Kamailio:
        if not HAS_KAMAILIO:
            pytest.skip("kamailio (Debian package) is not installed")
        if tls is not None and not HAS_KAMAILIO_TLS:
            pytest.skip("kamailio with its tls module (Debian kamailio-tls-modules) is not installed")
        k = Kamailio.on_free_port(tmp_path_factory.mktemp("kamailio-tls" if tls else "kamailio"), users,
                                  **({"tls_cert": tls.cert_path, "tls_key": tls.key_path} if tls else {}))
        started.append(k)
        k.start()
        return k

    try:
        yield start
    finally:
        for k in started:
            k.stop()


@pytest.fixture(scope="module")
def pki(tmp_path_factory) -> dict:
    """A CA of the test's ("ca", given to the engine) with a certificate for 127.0.0.1 ("server"),
    and one for 127.0.0.1 of a CA the engine does not trust ("stranger")."""
    base = tmp_path_factory.mktemp("pki")
    ca = make_ca(base, "ca")
    stranger = make_ca(base / "stranger", "stranger")
    return {"ca": ca, "server": ca.issue(base, HOST), "stranger": stranger.issue(base / "stranger", HOST)}
