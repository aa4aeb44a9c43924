"""The gateway's idempotency stores, SQLite file and Redis (when it answers at CALLGAUGE_TEST_REDIS_URL):
one claim wins, the record is replayed once complete, a release frees the key, records expire."""

from __future__ import annotations

import asyncio
import uuid

import pytest

from callgauge_gateway.adapters.idempotency_store import RedisStore, SqliteStore


@pytest.fixture(params=["sqlite", "redis"])
async def store(request, tmp_path):
    if request.param == "redis":
        s = RedisStore(request.getfixturevalue("redis_url"))
    else:
        s = SqliteStore(tmp_path / "idem.db")
    yield s
    await s.close()


async def test_one_claim_wins_then_the_record_replays(store) -> None:
    key = f"acc:live:{uuid.uuid4().hex}"
    results = await asyncio.gather(*(store.claim(key, "fp1", 60) for _ in range(5)))
    assert results.count(None) == 1  # exactly one owner
    for r in results:
        if r is not None:
            assert r.fingerprint == "fp1" and not r.done
    await store.complete(key, "fp1", 201, {"content-type": "application/json"}, b'{"data":1}', 60)
    rec = await store.claim(key, "fp1", 60)
    assert rec is not None and rec.done and rec.status == 201 and rec.body == b'{"data":1}'
    assert rec.headers == {"content-type": "application/json"}
    other = await store.claim(key, "fp2", 60)
    assert other is not None and other.fingerprint == "fp1"


async def test_release_frees_the_key_and_records_expire(store) -> None:
    key = f"acc:live:{uuid.uuid4().hex}"
    assert await store.claim(key, "fp", 60) is None
    await store.release(key, "fp")
    assert await store.claim(key, "fp", 60) is None  # free again: a retry runs
    await store.complete(key, "fp", 200, {}, b"x", 1)
    assert (await store.claim(key, "fp", 60)).done
    await asyncio.sleep(2.1)  # the 1 s retention has passed (bounded sleep, no timing assertion)
    assert await store.claim(key, "fp", 60) is None
