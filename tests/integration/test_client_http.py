"""The client over a real HTTP server (uvicorn on loopback): a 429 with Retry-After is retried
with the same Idempotency-Key, bounded retries end in RateLimited, the async client does the same,
and an unreachable gateway is a TransportError."""

from __future__ import annotations

import asyncio
import threading
import time

import pytest
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from callgauge_client import AsyncClient, Client, RateLimited, RetryPolicy, TransportError
from callgauge_platform.stack import free_port


class Recorder:
    def __init__(self) -> None:
        self.seen: list[tuple[str, str, str]] = []  # (method, idempotency key, authorization)
        self.limited = 0  # how many 429s to answer before succeeding

    async def projects(self, request: Request):
        self.seen.append((request.method, request.headers.get("idempotency-key", ""),
                          request.headers.get("authorization", "")))
        if self.limited > 0:
            self.limited -= 1
            return JSONResponse({"error": {"code": "RATE_LIMITED", "message": "slow down", "details": []},
                                 "meta": {"requestId": "r"}}, status_code=429, headers={"Retry-After": "0"})
        if request.method == "POST":
            body = await request.json()
            return JSONResponse({"data": {"id": "p1", "name": body["name"], "testCount": 2},
                                 "meta": {"requestId": "r"}}, status_code=201)
        return JSONResponse({"data": [{"id": "p1", "name": "x"}],
                             "meta": {"requestId": "r", "pagination": {"page": 1, "perPage": 25, "total": 1,
                                                                       "totalPages": 1}}})


@pytest.fixture(scope="module")
def server():
    rec = Recorder()
    app = Starlette(routes=[Route("/api/v1/projects", rec.projects, methods=["GET", "POST"])])
    port = free_port()
    srv = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="off"))
    thread = threading.Thread(target=srv.run, daemon=True)
    thread.start()
    for _ in range(200):
        if srv.started:
            break
        time.sleep(0.02)
    else:
        pytest.fail("test HTTP server did not start")
    yield f"http://127.0.0.1:{port}", rec
    srv.should_exit = True
    thread.join(10)


def test_post_retried_on_429_with_one_idempotency_key(server):
    url, rec = server
    rec.seen.clear()
    rec.limited = 2
    with Client(url, "cgk_test_abc") as c:
        p = c.create_project("PBX")
        assert c.retries_done == 2
    assert p.id == "p1" and p.test_count == 2
    keys = {k for _, k, _ in rec.seen}
    assert len(rec.seen) == 3 and len(keys) == 1 and "" not in keys
    assert {a for _, _, a in rec.seen} == {"Bearer cgk_test_abc"}


def test_each_post_gets_its_own_key_and_gets_none(server):
    url, rec = server
    rec.seen.clear()
    with Client(url, "k") as c:
        c.create_project("a")
        c.create_project("b")
        page = c.list_projects()
    assert page.pagination.total == 1 and page.items[0].name == "x"
    post_keys = [k for m, k, _ in rec.seen if m == "POST"]
    assert len(set(post_keys)) == 2
    assert [k for m, k, _ in rec.seen if m == "GET"] == [""]


def test_retries_are_bounded(server):
    url, rec = server
    rec.seen.clear()
    rec.limited = 10
    with Client(url, "k", retry=RetryPolicy(max_retries=2)) as c, pytest.raises(RateLimited) as exc:
        c.list_projects()
    assert len(rec.seen) == 3 and exc.value.code == "RATE_LIMITED" and exc.value.retry_after == 0
    rec.limited = 0


def test_async_client_retries_too(server):
    url, rec = server
    rec.seen.clear()
    rec.limited = 1

    async def go():
        async with AsyncClient(url, "k") as c:
            return await c.create_project("async"), c.retries_done

    project, retries = asyncio.run(go())
    assert project.name == "async" and retries == 1
    assert len({k for _, k, _ in rec.seen}) == 1


def test_unreachable_gateway_is_a_transport_error():
    with Client(f"http://127.0.0.1:{free_port()}", "k", timeout=2) as c, pytest.raises(TransportError):
        c.list_projects()
