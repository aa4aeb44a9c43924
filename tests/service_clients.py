"""The one way tests reach an internal gRPC service: through channels that carry a service token,
as the services themselves do (callgauge_platform.grpcutil.service_channel).

`acl_stub` gives a stub whose every method is called as an identity the access-control table allows
for it (the gateway for public methods, runs for Reserve/Release, the media-engine for
GetRunCredentials, the operator for Charge), so a test drives a service the way its real callers do.
"""

from __future__ import annotations

import grpc

from callgauge_platform.grpcutil import service_channel
from callgauge_platform.service_auth import ACL


class AclStub:
    """Calls each method of `stub_cls` as the first identity ACL allows for it."""

    def __init__(self, settings, service: str, stub_cls, target: str | None = None) -> None:
        self._settings, self._service, self._stub_cls, self._target = settings, service, stub_cls, target
        self._stubs: dict[str, object] = {}
        self._channels: list[grpc.aio.Channel] = []
        self._prefix = {"RunsServiceStub": "/callgauge.runs.v1.RunsService/",
                        "MonitorServiceStub": "/callgauge.runs.v1.MonitorService/",
                        "BillingServiceStub": "/callgauge.billing.v1.BillingService/",
                        "AccountsServiceStub": "/callgauge.accounts.v1.AccountsService/"}[stub_cls.__name__]

    def __getattr__(self, name: str):
        if name.startswith("_"):
            raise AttributeError(name)
        allowed = ACL[self._service].get(self._prefix + name)
        if not allowed:
            raise AttributeError(f"no identity may call {self._prefix}{name}")
        identity = sorted(allowed)[0]
        if identity not in self._stubs:
            ch = service_channel(self._settings, self._service, identity, self._target)
            self._channels.append(ch)
            self._stubs[identity] = self._stub_cls(ch)
        return getattr(self._stubs[identity], name)

    async def close(self) -> None:
        for ch in self._channels:
            await ch.close()
        self._channels.clear()
        self._stubs.clear()

    async def __aenter__(self) -> AclStub:
        return self

    async def __aexit__(self, *exc) -> None:
        await self.close()


def acl_stub(settings, service: str, stub_cls, target: str | None = None) -> AclStub:
    return AclStub(settings, service, stub_cls, target)
