"""The media engine's event handling: the run-event consumer (MediaEngine), the runner that carries
a run out, the registrar-side user agents of a run, sharded load runs and the billing guard."""
