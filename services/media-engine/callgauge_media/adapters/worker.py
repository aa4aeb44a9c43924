"""The media worker process: one pjsua2 Endpoint holding many calls, driven over two pipes.

Protocol (tuples, pickled by multiprocessing.Connection):

parent -> worker (``jobs`` pipe)
    ("call", token, CallJob)      place a call; exactly one ("result", token, ...) follows
    ("hangup", token, reason)     end that call early (its result still follows)
    ("ua", token, UaJob)          start a user agent (register / answer calls) until ("ua_close", token)
    ("ua_close", token)           hang up its calls, unregister; ("ua_done", token, dict) follows
    ("stop",)                     hang up everything, report, destroy the library, exit 0

worker -> parent (``results`` pipe)
    ("ready", {"pid", "sip", "codecs"})
    ("result", token, bytes)      a serialized CallMeasurement
    ("answered", token)           the call got its 2xx (before its result)
    ("progress", [(token, rx_packets, rx_lost, jitter_ms), ...])
                                  about once a second while calls are answered
    ("ua_event", token, dict)     a UA's registration outcome ("registered" | "ready" | "failed"), or "lost"
    ("ua_call", token, bytes)     a serialized CallMeasurement of a call the UA answered
    ("ua_done", token, dict)      the UA is gone: registrations, refreshes, unregistered, answered, ...
    ("fatal", text)               the Endpoint could not start; the process exits 1
    ("stopped",)

This module does not import pjsua2 at import time (the pool imports it in the parent); the
adapter is imported inside :func:`worker_main`, in the child.
"""

from __future__ import annotations

import logging
import os
import signal
import time
import traceback
from dataclasses import dataclass
from multiprocessing.connection import Connection

from callgauge_media.domain.jobs import TlsFiles
from callgauge_media.settings import RECORDED_JITTER_BUFFER_MS

# PJSUA_MAX_CALLS of the pjsua2 build (third_party/pjproject/config_site.h): pjsua silently clamps
# uaConfig.maxCalls to it, so asking for more would look fine and then refuse calls (PJ_ETOOMANY)
MAX_CALLS_PER_WORKER = 256
# Calls one worker process holds by default (CALLGAUGE_MEDIA_CALLS_PER_WORKER). Measured here
# (docs/performance.md): CPU per call falls as calls share a process (~0.33 % of a core fixed per process +
# ~0.067 % per call; 0.099 % per call at 16, 0.074 at 64, 0.062 at 128, 0.072 at 256); 64 takes most
# of that gain while a worker crash still loses only 64 calls.
DEFAULT_CALLS_PER_WORKER = 64
RTP_PORTS_PER_CALL = 4  # RTP + RTCP, and as many again for the sockets of calls that just ended
SAMPLE_EVERY_S = 1.0  # RTP counters of answered calls go to the parent this often


@dataclass(frozen=True, slots=True)
class WorkerConfig:
    index: int
    bind_host: str
    rtp_port: int
    rtp_port_range: int
    max_calls: int = DEFAULT_CALLS_PER_WORKER
    log_level: int = 1  # pjsua console log level
    drain_rx: bool = True  # EndpointOptions.drain_rx
    sip_message_log: bool = True  # EndpointOptions.sip_message_log (ladders with every SIP message)
    poll_ms: int = 500  # longest wait in libHandleEvents; the pool also wakes it per job (doorbell)
    tls: TlsFiles = TlsFiles()  # CA bundle, own certificate and key for SIP over TLS
    recorded_jitter_buffer_ms: int = RECORDED_JITTER_BUFFER_MS  # EndpointOptions.recorded_jitter_buffer_ms


def worker_main(cfg: WorkerConfig, jobs: Connection, results: Connection) -> None:
    """Process entry point (multiprocessing "spawn")."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the parent's business: it stops us
    stop_requested = False

    def on_term(signum, frame):  # noqa: ANN001
        nonlocal stop_requested
        stop_requested = True

    signal.signal(signal.SIGTERM, on_term)
    logging.basicConfig(
        level=logging.WARNING, format=f"media-worker[{cfg.index}] %(levelname)s %(name)s: %(message)s"
    )
    log = logging.getLogger("callgauge_media.worker")

    # the pjsua2 modules (callgauge_media.adapters.pjsua) are imported in this child only
    from callgauge_media.adapters.pjsua.caller import CallerAgent
    from callgauge_media.adapters.pjsua.endpoint import EndpointOptions, redirect_native_stdout

    redirect_native_stdout()
    parent_gone = False

    def send(msg: tuple) -> None:
        nonlocal parent_gone
        if parent_gone:
            return
        try:
            results.send(msg)
        except (OSError, EOFError, ValueError):
            parent_gone = True

    agent = CallerAgent(
        EndpointOptions(
            bind_host=cfg.bind_host,
            sip_port=0,
            rtp_port=cfg.rtp_port,
            rtp_port_range=cfg.rtp_port_range,
            max_calls=cfg.max_calls,
            log_level=cfg.log_level,
            drain_rx=cfg.drain_rx,
            sip_message_log=cfg.sip_message_log,
            tcp=False,  # a TCP listener only when a job asks for TCP
            tls=cfg.tls,
            recorded_jitter_buffer_ms=cfg.recorded_jitter_buffer_ms,
        ),
        on_result=lambda token, m: send(("result", token, m.SerializeToString())),
        on_answer=lambda token: send(("answered", token)),
        on_event=lambda kind, token, payload: send(
            (kind, token, payload.SerializeToString() if hasattr(payload, "SerializeToString") else payload)
        ),
    )
    try:
        sip = agent.start()
    except BaseException:  # noqa: BLE001
        send(("fatal", traceback.format_exc()))
        os._exit(1)  # the half-built Endpoint may assert on a normal interpreter exit
    send(("ready", {"pid": os.getpid(), "sip": sip, "codecs": agent.codec_ids}))

    stopping = False
    next_sample = time.monotonic() + SAMPLE_EVERY_S
    while not stopping:
        try:
            agent.poll(min(cfg.poll_ms, max(0, int((next_sample - time.monotonic()) * 1000))))
        except Exception:  # noqa: BLE001 - keep serving the other calls
            log.exception("poll")
        now = time.monotonic()
        if now >= next_sample:
            next_sample = now + SAMPLE_EVERY_S
            try:
                samples = agent.sample_stats()
            except Exception:  # noqa: BLE001
                log.exception("sample_stats")
                samples = []
            if samples:
                send(("progress", samples))
        try:
            while jobs.poll(0):
                msg = jobs.recv()
                kind = msg[0]
                if kind == "call":
                    try:
                        agent.submit(msg[1], msg[2])
                    except Exception:  # noqa: BLE001
                        log.exception("submit")
                elif kind == "hangup":
                    agent.request_hangup(msg[1], msg[2] if len(msg) > 2 else "hung up on request")
                elif kind == "ua":
                    try:
                        agent.submit_ua(msg[1], msg[2])
                    except Exception:  # noqa: BLE001
                        log.exception("submit_ua")
                elif kind == "ua_close":
                    try:
                        agent.close_ua(msg[1])
                    except Exception:  # noqa: BLE001
                        log.exception("close_ua")
                elif kind == "stop":
                    stopping = True
                    break
        except (EOFError, OSError):
            stopping = True  # the parent went away
        if stop_requested or parent_gone:
            stopping = True
    try:
        agent.shutdown("media engine stopping")
    except BaseException:  # noqa: BLE001
        log.exception("shutdown")
        send(("stopped",))
        os._exit(1)
    send(("stopped",))
