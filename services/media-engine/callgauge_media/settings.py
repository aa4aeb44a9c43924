"""The media-engine's settings: its own fields and the shared parts it reads."""

from __future__ import annotations

from pydantic import Field

from callgauge_platform.settings import DialSettings, MediaEndpoint, RunLimitsSettings, RunsTarget, StoreServiceSettings

# The fixed receive jitter buffer of recorded calls and of the built-in responder's echo, ms (docs/quality.md,
# "The measurement path's own noise": with pjmedia's adaptive one, clean calls recorded while the scoring pool
# ran came back with 10 ms shifts; 60 ms held with two CPU burners besides, on 2 cores, and adds that much to
# the echo's round trip). At most MAX_JITTER_BUFFER_MS: pjmedia's buffer holds 500 ms.
RECORDED_JITTER_BUFFER_MS = 60
MAX_JITTER_BUFFER_MS = 400


class MediaSettings(StoreServiceSettings, MediaEndpoint, RunsTarget, RunLimitsSettings, DialSettings):
    """Every CALLGAUGE_* setting the media-engine reads (the docs' settings reference)."""

    media_max_calls: int = Field(128, ge=1, le=16384, description="concurrent calls one media-engine holds; "
                                 "the worker pool has ceil(max_calls / calls_per_worker) processes")
    media_calls_per_worker: int = Field(64, ge=1, le=256, description="calls one pjsua2 worker process holds "
                                        "(at most PJSUA_MAX_CALLS = 256 of our build); default from the benchmark")
    media_workers: int = Field(0, ge=0, le=256, description="worker processes; 0 = sized by media_max_calls")
    media_rtp_port_base: int = Field(40000, ge=1024, le=65000)
    media_engine_id: str = ""
    media_run_fetch_wait_ms: int = Field(20, ge=1, le=500, description="how long the broker may hold the "
                                         "media-engine's fetch of run requests when none is waiting: the "
                                         "latency of a run's start (Tansu answers a fetch only when this is up)")
    media_lease_renew_s: float = Field(10.0, gt=0, le=300, description="how often the media-engine renews the "
                                       "lease of each run it carries out (RunLeaseRenewed)")
    media_sip_message_log: bool = Field(True, description="SIP ladders of failed calls and registrations from "
                                        "pjsip's message log (every message, 401/407 challenges included; "
                                        "~0.35 ms of worker CPU per call); false: what pjsua2's callbacks show")
    media_tls_ca_file: str = Field("", description="PEM file of the CA certificates the media engine trusts for SIP "
                                   "over TLS (registrars, sips: destinations); empty = the system's bundle "
                                   "(/etc/ssl/certs/ca-certificates.crt). A registrar's tls_verify false skips the check")
    media_tls_cert_file: str = Field("", description="PEM certificate the media engine presents over SIP TLS (to a "
                                     "registrar asking for a client certificate, and on its TLS listener for calls "
                                     "a proxy opens a new connection for); empty = none")
    media_tls_key_file: str = Field("", description="PEM private key of media_tls_cert_file")
    media_load_shards: int = Field(1, ge=0, le=64, description="split a load run over the replicas: 1 = no, "
                                   "N = N shards, 0 = one per partition of the media-work topic")
    media_fair_reserve_calls: int = Field(-1, ge=-1, le=16384,
                                          description="call slots of a media-engine one account can never take, "
                                          "kept for the other accounts (fair sharing); -1 = an eighth of the "
                                          "engine's capacity, at least 1")
    media_progress_interval_s: float = Field(2.0, gt=0, le=60, description="CallProgress tick while a call is up")
    media_recorded_jitter_buffer_ms: int = Field(RECORDED_JITTER_BUFFER_MS, ge=0, le=MAX_JITTER_BUFFER_MS, description="receive jitter buffer of "
                                                 "recorded calls: fixed at this many ms, never shrunk by dropping "
                                                 "frames, so what arrived intact is recorded intact (docs/quality.md); "
                                                 "0: pjmedia's adaptive buffer. Unrecorded calls keep the adaptive one")
    audio_scorers: int = Field(1, ge=1, le=64, description="processes of the media engine's audio scoring pool "
                               "(ViSQOL, alignment), apart from the pjsua2 workers")
    audio_score_queue: int = Field(16, ge=1, le=10_000, description="calls waiting for the scoring pool at most; "
                                   "a call beyond it is reported unscored")
    audio_max_recordings_per_run: int = Field(200, ge=0, le=1_000_000, description="recorded calls one run keeps "
                                              "at most (each leg counts); beyond it calls are placed unrecorded")
    audio_max_run_mb: int = Field(200, ge=0, le=1_000_000, description="disk one run's recordings may take, MB")
    audio_max_total_mb: int = Field(2000, ge=0, le=10_000_000, description="disk all recordings may take, MB; "
                                    "the oldest runs' recordings are deleted beyond it (0: no limit)")
    audio_retention_days: float = Field(7.0, ge=0, le=3650, description="recordings older than this are deleted "
                                        "(0: kept until the disk cap)")
