"""The `callgauge` command: platform commands (up, demo, service, replay, responder, events) and the
API commands (login, keys, projects, tests, run) on the Python client."""
