"""Command lines of the media engine's processes (the service itself is ``python -m callgauge_media``)."""
