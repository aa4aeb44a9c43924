"""The contract suites' stores: every test runs on each adapter (SQLite; PostgreSQL, marked
`postgres`; KurrentDB where CALLGAUGE_TEST_KURRENTDB_URL is set), see tests/conftest.py."""

from __future__ import annotations

import pytest

from callgauge_eventstore import EventStore


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres), "kurrentdb"])
def backend(request, store_backends):
    return store_backends(request.param)


@pytest.fixture
def store(backend) -> EventStore:
    return backend.new_store()
