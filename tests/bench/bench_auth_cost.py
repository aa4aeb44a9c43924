"""What authenticating one internal gRPC call costs (#15 finding 1): the client's token (signed once,
then cached per audience), the server interceptor's decision with a token it has seen (cache hit:
the steady state) and with a new token (full Ed25519 signature check, the first call of each token,
about once per 100 s per caller and service), each timed in-process over N calls.

    .venv/bin/python tests/bench/bench_auth_cost.py [N]

Prints µs per call and the load average (the machine is shared: figures under load are upper bounds)."""

from __future__ import annotations

import os
import sys
import time

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from callgauge_platform.service_auth import METADATA_KEY, ServerAuthInterceptor, ServiceTokens, TokenVerifier

METHOD = "/callgauge.runs.v1.RunsService/GetRun"


def _per_call_us(fn, n: int) -> float:
    start = time.perf_counter()
    for _ in range(n):
        fn()
    return (time.perf_counter() - start) / n * 1e6


def main() -> None:
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 20_000
    key = Ed25519PrivateKey.generate()
    tokens = ServiceTokens("gateway", key)
    verifier = TokenVerifier("runs", {"gateway": key.public_key()})
    interceptor = ServerAuthInterceptor("runs", verifier, acl={METHOD: frozenset({"gateway"})})
    md = ((METADATA_KEY, "Bearer " + tokens.token("runs")),)
    assert interceptor.decide(METHOD, md)[0].name == "OK"
    client_cached = _per_call_us(lambda: tokens.token("runs"), n)
    server_cached = _per_call_us(lambda: interceptor.decide(METHOD, md), n)
    fresh = [((METADATA_KEY, "Bearer " + ServiceTokens("gateway", key).token("runs")),) for _ in range(min(n, 2000))]
    it = iter(fresh)
    server_fresh = _per_call_us(lambda: interceptor.decide(METHOD, next(it)), len(fresh))
    it2 = iter(range(len(fresh)))
    sign = _per_call_us(lambda: (next(it2), ServiceTokens("gateway", key).token("runs")), len(fresh))
    load = os.getloadavg()
    print(f"calls={n} client token (cached)={client_cached:.2f} µs  server decide (seen token)={server_cached:.2f} µs  "
          f"server decide (new token, Ed25519 verify)={server_fresh:.1f} µs  sign a new token={sign:.1f} µs  "
          f"load average={load[0]:.2f} {load[1]:.2f} {load[2]:.2f}  cores={os.cpu_count()}")


if __name__ == "__main__":
    main()
