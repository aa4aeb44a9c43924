"""Pick and construct an event store adapter from a URL (nothing is opened here).

URL rules (``namespace`` is the service's store name, [a-z0-9_-], e.g. ``runs``):

- ``sqlite:///<path>`` — SQLAlchemy style: the path is everything after ``sqlite:///``,
  so ``sqlite:///data/x.db`` and ``sqlite:///./.callgauge/`` are relative (to the current
  directory when open_event_store is called) and ``sqlite:////var/lib/x.db`` is absolute.
  * If the path ends with ``/`` or is an existing directory, it is a DIRECTORY and the
    store is the file ``<dir>/<namespace>.db`` — one file per service. This is the
    embedded default (``sqlite:///.../.callgauge/``).
  * Otherwise the path is the database FILE itself. The namespace is recorded in the file
    on first use, and opening it later under another namespace fails, so two services
    cannot end up sharing one file's streams by accident.
  Parent directories are created on first use.
- ``sqlite::memory:`` (or ``sqlite:///:memory:``) — a private in-memory store, for tests.
- ``postgresql://...`` or ``postgres://...`` — PostgreSQL; the whole URL is the libpq
  conninfo and the namespace is the schema (created if missing).
- ``kurrentdb://``, ``kurrentdb+discover://``, ``esdb://``, ``esdb+discover://`` —
  KurrentDB/EventStoreDB: the whole URL is the kurrentdbclient connection string (e.g.
  ``kurrentdb://127.0.0.1:2113?tls=false``) and the namespace prefixes every stream name
  (``{namespace}-{stream}``). Needs the ``kurrentdb`` extra (kurrentdbclient).
"""

from __future__ import annotations

import os

from callgauge_eventstore._common import check_namespace
from callgauge_eventstore.port import EventStore, EventStoreError


class AdapterNotBuilt(EventStoreError, NotImplementedError):
    """The URL names an adapter that does not exist yet (none today; kept for callers that catch it)."""


_KURRENT_SCHEMES = ("kurrentdb://", "kurrentdb+discover://", "esdb://", "esdb+discover://")


def sqlite_path_for(url: str, namespace: str) -> str:
    """The SQLite file a ``sqlite:`` URL designates for ``namespace`` (``":memory:"`` for memory)."""
    check_namespace(namespace)
    if url in ("sqlite::memory:", "sqlite:///:memory:"):
        return ":memory:"
    if not url.startswith("sqlite:///"):
        raise EventStoreError(
            f"bad SQLite event store URL {url!r}: use sqlite:///relative/path, sqlite:////absolute/path "
            "(a path ending in '/' is a directory holding <namespace>.db) or sqlite::memory:"
        )
    path = url[len("sqlite:///") :]
    if not path:
        raise EventStoreError(f"SQLite event store URL {url!r} has no path")
    if "?" in path or "#" in path:
        raise EventStoreError(
            f"SQLite event store URL {url!r}: query strings and fragments are not supported"
        )
    if path.endswith("/") or os.path.isdir(path):
        path = os.path.join(path, f"{namespace}.db")
    return os.path.abspath(path)


def open_event_store(url: str, namespace: str) -> EventStore:
    """Construct the adapter for ``url`` (see the module docstring for the rules).

    Nothing connects here: the store opens on ``await store.open()`` or its first use;
    ``await store.close()`` when done.
    """
    check_namespace(namespace)
    url = (url or "").strip()
    if url.startswith("sqlite:"):
        from callgauge_eventstore.sqlite import SqliteEventStore

        return SqliteEventStore(sqlite_path_for(url, namespace), namespace=namespace)
    if url.startswith(("postgresql://", "postgres://")):
        from callgauge_eventstore.postgres import PostgresEventStore

        return PostgresEventStore(url, schema=namespace)
    if url.startswith(_KURRENT_SCHEMES):
        try:
            from callgauge_eventstore.kurrentdb import KurrentDBEventStore
        except ImportError as e:
            raise EventStoreError(
                f"the KurrentDB event store adapter needs kurrentdbclient ({e}); "
                "install the 'kurrentdb' extra: pip install -e '.[kurrentdb]'"
            ) from e

        return KurrentDBEventStore(url, namespace)
    scheme = url.split(":", 1)[0] if ":" in url else url[:20]  # never echo a URL: it may hold a password
    raise EventStoreError(
        f"unsupported event store URL scheme {scheme!r}: expected sqlite:///..., sqlite::memory:, "
        "postgresql://... or kurrentdb://..."
    )
