"""Runs, call placement and the pjsua2 worker pool of the media-engine (pjsua2 itself only in worker processes)."""
