"""Callgauge media engine: carries runs out over SIP and RTP (pjsua2 worker processes or SIPp) and
measures every call.

Layout (checked by the ``media-engine-layered`` import contract in pyproject.toml):
``bootstrap.py`` the composition root; ``settings.py`` its settings (MediaSettings); ``domain/``
pure logic (jobs, measurements, E-model, run figures, load shapes, fair share, impairment, ports);
``handlers/`` run events (MediaEngine, the runner, sharded runs, the billing guard); ``adapters/``
pjsua2 workers, SIPp, impairment relays, audio, credentials, Kafka reader, metrics;
``entrypoints/`` command lines. ``python -m callgauge_media`` runs the service,
``python -m callgauge_media.responder`` the built-in SIP target.
"""
