"""Read models (projections) in the event store's database: rows and their tracking record
commit together. Same backends as the event-store contract suite."""

from __future__ import annotations

import pytest

from test_eventstore_contract import Backend, backend, bounded, store  # noqa: F401 - shared fixtures


@pytest.fixture
def proj_store(backend: Backend, store):  # noqa: F811
    if backend.name == "kurrentdb":
        pytest.skip("read models live in SQLite or PostgreSQL; the KurrentDB adapter keeps events only")
    return store


async def test_empty_projection(proj_store):
    assert await bounded(proj_store.read_projection("views")) == ({}, 0)


async def test_rows_and_checkpoint_commit_together(proj_store):
    await bounded(proj_store.commit_projection("views", 3, {"a": b"1", "b": b"2"}))
    await bounded(proj_store.commit_projection("views", 5, {"b": b"22", "c": b"3"}, deletes=["a"]))
    assert await bounded(proj_store.read_projection("views")) == ({"b": b"22", "c": b"3"}, 5)
    # another projection is untouched, and so is the plain checkpoint namespace
    assert await bounded(proj_store.read_projection("other")) == ({}, 0)
    assert await bounded(proj_store.get_checkpoint("views")) == 0


async def test_replace_drops_every_other_row(proj_store):
    await bounded(proj_store.commit_projection("views", 3, {"a": b"1", "b": b"2"}))
    await bounded(proj_store.commit_projection("views", 9, {"z": b"9"}, replace=True))
    assert await bounded(proj_store.read_projection("views")) == ({"z": b"9"}, 9)


async def test_a_failed_commit_changes_neither_rows_nor_checkpoint(proj_store):
    await bounded(proj_store.commit_projection("views", 3, {"a": b"1"}))

    class Boom:
        def __bytes__(self) -> bytes:
            raise RuntimeError("serialisation failed half-way")

    with pytest.raises(RuntimeError):
        await bounded(proj_store.commit_projection("views", 4, {"b": b"2", "c": Boom()}, deletes=["a"]))
    assert await bounded(proj_store.read_projection("views")) == ({"a": b"1"}, 3)


async def test_another_instance_sees_the_committed_projection(backend: Backend, proj_store):  # noqa: F811
    await bounded(proj_store.commit_projection("views", 7, {"k": b"v"}))
    other = backend.new_store()
    assert await bounded(other.read_projection("views")) == ({"k": b"v"}, 7)
