"""Passwords of a run's credential pools, from the runs service (rpc GetRunCredentials).

Passwords never travel on Kafka: RunRequested carries usernames only, and the media-engine asks
the runs service for the secrets of the one run it is carrying out, over gRPC, when the run needs
them (the first register / wait_for_calls / call with a credential pool)."""

from __future__ import annotations

from collections.abc import Mapping

from callgauge_platform.grpcutil import service_channel
from callgauge_proto.callgauge.runs.v1 import runs_service_pb2 as pb
from callgauge_proto.callgauge.runs.v1 import runs_service_pb2_grpc as runs_grpc

FETCH_TIMEOUT_S = 10.0


class GrpcRunCredentials:
    """A :class:`~callgauge_media.handlers.sip_run.CredentialSource` over the runs service's gRPC API;
    the channel is opened on first use (no connection at construction)."""

    def __init__(self, settings, timeout_s: float = FETCH_TIMEOUT_S) -> None:
        self._settings = settings
        self._timeout_s = timeout_s
        self._channel = None
        self._stub = None

    async def run_passwords(self, run_id: str) -> Mapping[str, str]:
        if self._stub is None:
            self._channel = service_channel(self._settings, "runs", "media-engine")
            self._stub = runs_grpc.RunsServiceStub(self._channel)
        resp = await self._stub.GetRunCredentials(pb.GetRunCredentialsRequest(run_id=run_id), timeout=self._timeout_s)
        return dict(resp.passwords)

    async def close(self) -> None:
        channel, self._channel, self._stub = self._channel, None, None
        if channel is not None:
            await channel.close()
