"""Callgauge accounts service: users, sessions, API keys."""
