"""Callgauge outbox relay: publishes an event store's global log to Kafka.

It joins the store (`callgauge_eventstore`) and the bus (`callgauge_bus`), so it sits above both
in the import graph; neither imports it (the layers are checked by import-linter, see
pyproject.toml `[tool.importlinter]`)."""

from callgauge_relay.relay import OutboxRelay

__all__ = ["OutboxRelay"]
