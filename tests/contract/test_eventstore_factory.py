"""open_event_store: the URL rules (no server needed)."""

from __future__ import annotations

from pathlib import Path

import pytest
from callgauge_eventstore import (
    AdapterNotBuilt,
    EventStore,
    EventStoreError,
    NewEvent,
    StreamState,
    open_event_store,
)
from callgauge_eventstore.factory import sqlite_path_for
from callgauge_eventstore.postgres import PostgresEventStore
from callgauge_eventstore.sqlite import SqliteEventStore


def test_sqlite_directory_url_gives_one_file_per_namespace(tmp_path: Path) -> None:
    assert sqlite_path_for(f"sqlite:///{tmp_path}/", "runs") == str(tmp_path / "runs.db")
    assert sqlite_path_for(f"sqlite:///{tmp_path}", "runs") == str(tmp_path / "runs.db")  # existing dir
    assert sqlite_path_for(f"sqlite:///{tmp_path}/new/sub/", "billing") == str(
        tmp_path / "new/sub/billing.db"
    )


def test_sqlite_file_url_and_sqlalchemy_style_paths(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    assert sqlite_path_for("sqlite:///data/x.db", "runs") == str(
        tmp_path / "data/x.db"
    )  # 3 slashes: relative
    assert sqlite_path_for("sqlite:///./.callgauge/", "runs") == str(tmp_path / ".callgauge/runs.db")
    assert sqlite_path_for("sqlite:////var/lib/x.db", "runs") == "/var/lib/x.db"  # 4 slashes: absolute
    assert sqlite_path_for("sqlite::memory:", "runs") == ":memory:"
    for bad in ("sqlite://x.db", "sqlite:///", "sqlite:///x.db?mode=ro"):
        with pytest.raises(EventStoreError):
            sqlite_path_for(bad, "runs")


async def test_sqlite_store_creates_parent_dirs_lazily_and_guards_its_namespace(tmp_path: Path) -> None:
    target = tmp_path / "a" / "b"
    store = open_event_store(f"sqlite:///{target}/", "runs")
    assert isinstance(store, SqliteEventStore) and isinstance(store, EventStore)
    assert not target.exists()  # nothing happens at construction
    await store.append_to_stream("s", StreamState.NO_STREAM, [NewEvent("t", b"x")])
    await store.close()
    assert (target / "runs.db").is_file()

    file_url = f"sqlite:///{target}/runs.db"
    again = open_event_store(file_url, "runs")
    assert await again.stream_version("s") == 0
    await again.close()
    other = open_event_store(file_url, "billing")
    with pytest.raises(EventStoreError, match="namespace 'runs'"):
        await other.open()
    await other.close()


async def test_memory_store() -> None:
    store = open_event_store("sqlite::memory:", "runs")
    assert await store.append_to_stream("s", StreamState.NO_STREAM, [NewEvent("t", b"x")]) == 1
    assert await store.last_position() == 1
    await store.close()


def test_postgres_url_connects_nothing_at_construction() -> None:
    store = open_event_store("postgresql://nobody:secret@127.0.0.1:1/none", "runs")
    assert isinstance(store, PostgresEventStore) and store.schema == "runs"
    assert isinstance(open_event_store("postgres://h/db", "billing"), PostgresEventStore)


@pytest.mark.parametrize(
    "url",
    [
        "kurrentdb://127.0.0.1:1?tls=false",  # nothing listens on port 1: constructing must not connect
        "kurrentdb://admin:changeit@localhost:2113",
        "esdb://localhost:2113?tls=false",
        "esdb+discover://admin:changeit@cluster.example:2113",
        "kurrentdb+discover://x:2113?tls=false",
    ],
)
async def test_kurrentdb_urls_build_the_adapter_without_connecting(url: str) -> None:
    pytest.importorskip("kurrentdbclient")
    from callgauge_eventstore.kurrentdb import KurrentDBEventStore

    store = open_event_store(url, "runs")
    assert isinstance(store, KurrentDBEventStore) and isinstance(store, EventStore)
    assert store.namespace == "runs"
    assert store._client is None  # no client, no channel: nothing connected
    await store.close()  # closing an unused store is fine (and connects nothing)


def test_kurrentdb_bad_connection_string_does_not_echo_the_password() -> None:
    pytest.importorskip("kurrentdbclient")
    with pytest.raises(EventStoreError, match="KurrentDB") as e:
        open_event_store("kurrentdb://admin:hunter2@", "runs")  # no host
    assert "hunter2" not in str(e.value)
    with pytest.raises(EventStoreError, match="Username and password are required"):
        open_event_store("kurrentdb://localhost:2113", "runs")  # TLS (the default) needs credentials


def test_adapter_not_built_is_still_exported() -> None:
    assert issubclass(AdapterNotBuilt, EventStoreError) and issubclass(AdapterNotBuilt, NotImplementedError)


def test_bad_urls_and_namespaces() -> None:
    with pytest.raises(EventStoreError, match="unsupported") as e:
        open_event_store("mysql://root:hunter2@db/x", "runs")
    assert "hunter2" not in str(e.value)
    with pytest.raises(EventStoreError, match="unsupported"):
        open_event_store("", "runs")
    assert isinstance(open_event_store("sqlite::memory:", "media-engine"), SqliteEventStore)
    for ns in ("", "Runs", "-runs", "1runs", "pg_runs", "x" * 64, "a/b"):
        with pytest.raises(EventStoreError, match="namespace"):
            open_event_store("sqlite::memory:", ns)
