"""Helpers of the security suite."""

from __future__ import annotations

import uuid

import httpx

PASSWORD = "correct horse battery staple"


def rss_bytes(pid: int) -> int:
    """A process's resident set size, from /proc (Linux)."""
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    raise RuntimeError(f"no VmRSS for pid {pid}")


def client_from(address: str, base_url: str, **kwargs) -> httpx.Client:
    """An HTTP client whose connections come from `address` (any 127.x.y.z on Linux), so a test is
    its own client address to the gateway's failed-authentication counters."""
    return httpx.Client(base_url=base_url, transport=httpx.HTTPTransport(local_address=address), timeout=60,
                        **kwargs)


def new_user(gateway: str) -> tuple[str, dict]:
    """Register a user; (email, login JWT header)."""
    email = f"sec-{uuid.uuid4().hex[:10]}@example.com"
    base = f"{gateway}/api/v1"
    r = httpx.post(f"{base}/auth/register", json={"email": email, "password": PASSWORD}, timeout=60)
    assert r.status_code == 201, r.text
    r = httpx.post(f"{base}/auth/login", json={"email": email, "password": PASSWORD}, timeout=60)
    assert r.status_code == 200, r.text
    return email, {"Authorization": f"Bearer {r.json()['data']['accessToken']}"}


def new_key(gateway: str, jwt: dict, mode: str = "live", **extra) -> dict:
    r = httpx.post(f"{gateway}/api/v1/api-keys", json={"name": f"{mode} key", "mode": mode, **extra},
                   headers=jwt, timeout=60)
    assert r.status_code == 201, r.text
    return r.json()["data"]


def bearer(key: str) -> dict:
    return {"Authorization": f"Bearer {key}"}


def descendants(pid: int) -> list[int]:
    """Every process below `pid` (children, grandchildren, ...), from /proc (Linux)."""
    import os

    parent: dict[int, int] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                stat = f.read()
        except OSError:
            continue
        parent[int(entry)] = int(stat.rsplit(")", 1)[1].split()[1])
    out, frontier = [], [pid]
    while frontier:
        p = frontier.pop()
        kids = [c for c, pp in parent.items() if pp == p]
        out += kids
        frontier += kids
    return out
