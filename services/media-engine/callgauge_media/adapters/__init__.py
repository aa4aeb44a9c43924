"""The media engine's adapters: the pjsua2 worker pool and its processes (pjsua2 only in those),
the SIPp driver, the impairment relays, audio files and scoring, the run-credentials client, the
media-topic reader and the metrics."""
