"""Callgauge bus: the Kafka envelope codec, producer and consumer (aiokafka)."""
