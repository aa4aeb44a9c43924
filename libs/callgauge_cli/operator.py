"""The operator's commands that start no service: they read the event streams or talk to a service
over gRPC as an internal identity.

  callgauge events tail --topic runs|billing|media|accounts [--from earliest|latest] [--json] [--max N] [--timeout S]
  callgauge events export [--topic media] --to measurements.csv|measurements.parquet [--from …] [--timeout S]
  callgauge credit --account ID --amount N [--mode live|test] …   credit a wallet (no payment)
  callgauge service-keys DIR                                      the internal services' key pairs

The commands that start or compose services (up, demo, service, responder, replay) are the
application's (callgauge_app), which adds them to the same typer application.
"""

from __future__ import annotations

import asyncio
import sys
import uuid
from pathlib import Path
from typing import Annotated, Literal

import typer

from callgauge_bus import events_cli

events_app = typer.Typer(no_args_is_help=True, help="read the Kafka event streams (tail, export)")

Area = Literal["runs", "billing", "media", "accounts"]  # events_cli.AREAS
From = Literal["earliest", "latest"]


def _broker(bootstrap: str | None, area: str) -> tuple[str, str]:
    """(bootstrap, topic): CALLGAUGE_KAFKA_BOOTSTRAP and CALLGAUGE_KAFKA_TOPIC_PREFIX unless given."""
    from callgauge_platform.settings import BrokerSettings

    settings = BrokerSettings()
    return bootstrap or settings.kafka_bootstrap, settings.topic(area)


def _run_events(coro) -> None:
    try:
        asyncio.run(coro)
    except events_cli.EventsCliError as exc:
        print(f"callgauge: {exc}", file=sys.stderr)
        raise typer.Exit(2) from None
    except KeyboardInterrupt:
        raise typer.Exit(130) from None


@events_app.command("tail")
def events_tail(
    topic: Annotated[Area, typer.Option("--topic", help="the stream to read")],
    start: Annotated[From, typer.Option("--from")] = "earliest",
    bootstrap: Annotated[str | None, typer.Option("--bootstrap", help="HOST:PORT (default: "
                                                  "CALLGAUGE_KAFKA_BOOTSTRAP)")] = None,
    max_events: Annotated[int | None, typer.Option("--max", help="stop after N events")] = None,
    timeout: Annotated[float | None, typer.Option("--timeout", help="stop after S seconds without a new "
                                                  "event")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="one JSON object per line")] = False,
) -> None:
    """Print decoded events (without a consumer group: nothing is committed)."""
    servers, name = _broker(bootstrap, topic)
    _run_events(events_cli.tail(servers, name, start, as_json, max_events, timeout))


@events_app.command("export")
def events_export(
    to: Annotated[Path, typer.Option("--to", help="output file: .csv or .parquet")],
    topic: Annotated[Area, typer.Option("--topic")] = "media",
    start: Annotated[From, typer.Option("--from")] = "earliest",
    bootstrap: Annotated[str | None, typer.Option("--bootstrap", help="HOST:PORT (default: "
                                                  "CALLGAUGE_KAFKA_BOOTSTRAP)")] = None,
    max_events: Annotated[int | None, typer.Option("--max", help="stop after N events")] = None,
    timeout: Annotated[float, typer.Option("--timeout", help="stop after S seconds without a new event")] = 5.0,
) -> None:
    """Write CallMeasured rows to CSV/Parquet."""
    servers, name = _broker(bootstrap, topic)
    _run_events(events_cli.export(servers, name, to, start, timeout, max_events))


def credit(
    account: Annotated[str, typer.Option("--account", help="the account id")],
    amount: Annotated[int, typer.Option("--amount", help="minor units, e.g. cents")],
    mode: Annotated[Literal["live", "test"], typer.Option("--mode")] = "live",
    currency: Annotated[str, typer.Option("--currency")] = "",
    credit_id: Annotated[str, typer.Option("--credit-id", help="idempotency: the same id credits once")] = "",
    reason: Annotated[str, typer.Option("--reason")] = "",
    data_dir: Annotated[Path | None, typer.Option("--data-dir", help="as for `up` (its service keys hold the "
                                                  "operator's)")] = None,
) -> None:
    """Credit a wallet as the operator (no payment): signed with the operator's service key."""
    import grpc

    from callgauge_platform.grpcutil import service_channel
    from callgauge_platform.settings import BillingTarget, ServiceAuthSettings
    from callgauge_proto.callgauge.billing.v1 import billing_service_pb2 as bpb
    from callgauge_proto.callgauge.billing.v1 import billing_service_pb2_grpc as bpb_grpc

    class OperatorSettings(ServiceAuthSettings, BillingTarget):
        """What `credit` reads: the operator's service key and where billing is."""

    settings = OperatorSettings(data_dir=data_dir) if data_dir else OperatorSettings()

    async def go():
        async with service_channel(settings, "billing", "operator") as ch:
            return await bpb_grpc.BillingServiceStub(ch).Credit(bpb.CreditRequest(
                account_id=account, mode=mode, amount_minor=amount, currency=currency,
                credit_id=credit_id or str(uuid.uuid4()), reason=reason), timeout=15)

    try:
        w = asyncio.run(go())
    except grpc.aio.AioRpcError as exc:
        print(f"callgauge: credit refused: {exc.code().name}: {exc.details()}", file=sys.stderr)
        raise typer.Exit(1) from None
    print(f"credited {amount} to {account} ({mode}): balance {w.balance_minor} {w.currency}")


def service_keys(directory: Annotated[str, typer.Argument(help="where the key pairs are written")]) -> None:
    """Make the internal services' key pairs in a directory (compose, k8s); existing ones are kept."""
    import contextlib
    import os

    from callgauge_platform.service_auth import generate_keys

    made = generate_keys(Path(directory))
    with contextlib.suppress(OSError):
        os.unlink(Path(directory) / ".lock")
    print(f"{directory}: made {', '.join(made) if made else 'nothing (every pair exists)'}")
