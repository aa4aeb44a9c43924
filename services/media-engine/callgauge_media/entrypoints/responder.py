"""The built-in SIP target: a pjsua2 agent that answers every INVITE and echoes the audio back.

    python -m callgauge_media.responder --host 127.0.0.1 --port 5070 --rtp-port 30000 \
        [--answer-delay-ms 0] [--code 200] [--hangup-after-ms 0] [--audio echo|silence|prompt:NAME|FILE.wav] \
        [--srtp optional|off|mandatory] [--jitter-buffer-ms 60]

Sends 180 Ringing at once, then ``--code`` (200, or an error such as 486) after
``--answer-delay-ms``. An answered call's audio is connected to itself (echo) until the caller
hangs up (or ``--hangup-after-ms`` passes, then the responder sends BYE). ``--audio`` changes what
it sends back: ``silence`` (RTP of silence: healthy packets, no sound), a built-in prompt
(``prompt:greeting``) or a WAV file, looped — a far end playing the wrong prompt. At most ``--max-calls``
calls at once (default 4, up to 256: PJSUA_MAX_CALLS of our pjsua2 build); more get 486 Busy Here. Prints one line
``responder ready sip:responder@HOST:PORT`` on stdout when listening (pjsua's own logs go to
stderr). ``--srtp``: SRTP, with either keying the offer uses (SDES, RFC 4568: keys in the SDP; DTLS-SRTP,
RFC 5763/5764: keys from a DTLS handshake on the media path) — ``optional`` (default) answers an SRTP
offer with SRTP and a plain one with plain RTP; ``off`` refuses SRTP-only offers (488 Not Acceptable
Here); ``mandatory`` refuses plain ones. ``--jitter-buffer-ms`` (default 60): each call's receive
jitter buffer holds that much audio, fixed, and never drops a frame to shrink, so the echo carries
back exactly what arrived (0: pjmedia's adaptive buffer, which inserts and drops 10 ms frames as it
adapts to the machine's scheduling, and alters the echo of a perfect path). SIGTERM / SIGINT: hang up,
destroy, exit 0.
"""

from __future__ import annotations

import argparse
import logging
import signal
import sys


from callgauge_media.settings import MAX_JITTER_BUFFER_MS, RECORDED_JITTER_BUFFER_MS

# the echo's jitter buffer: fixed, without discarding, as a recorded call's (callgauge_media.settings)
JITTER_BUFFER_MS = RECORDED_JITTER_BUFFER_MS


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m callgauge_media.responder", description=__doc__.split("\n\n")[0])
    p.add_argument("--host", default="127.0.0.1", help="address to bind SIP and RTP to (default 127.0.0.1)")
    p.add_argument("--port", type=int, default=5070, help="SIP port, UDP and TCP (0: any free port)")
    p.add_argument("--rtp-port", type=int, default=30000, help="first port of the RTP range")
    p.add_argument("--rtp-port-range", type=int, default=200, help="ports in the RTP range (default 200)")
    p.add_argument("--answer-delay-ms", type=int, default=0, help="ringing time before the final answer")
    p.add_argument("--code", type=int, default=200, help="final answer: 200 or an error code 300..699")
    p.add_argument("--hangup-after-ms", type=int, default=0, help="send BYE this long after answering (0: never)")
    p.add_argument("--max-calls", type=int, default=4, help="concurrent calls before 486 (at most 256)")
    p.add_argument("--log-level", type=int, default=1, help="pjsua log level 0..6 (stderr)")
    p.add_argument("--audio", default="echo", help="what answered calls hear: echo (default), silence, "
                   "prompt:NAME or a WAV file path (looped)")
    p.add_argument("--srtp", default="optional", choices=("optional", "off", "mandatory"),
                   help="SRTP (SDES or DTLS-SRTP keys, as offered) of answered calls: optional (default: "
                        "SRTP when offered), off, mandatory")
    p.add_argument("--jitter-buffer-ms", type=int, default=JITTER_BUFFER_MS,
                   help=f"fixed receive jitter buffer of each call, ms (default {JITTER_BUFFER_MS}); "
                        "0: pjmedia's adaptive one")
    return p


def _media_file(value: str) -> str:
    """A prompt (synthesised into a temporary media dir) or a WAV path, as 16-bit mono at 8 kHz."""
    import tempfile
    from pathlib import Path

    from callgauge_media.adapters.audio import prompts, wavfile

    media = Path(tempfile.gettempdir()) / "callgauge-responder-media"
    if value.startswith(prompts.PROMPT_PREFIX):
        return str(prompts.resolve(value, media, rate=8000))
    src = Path(value)
    if not src.is_file():
        raise LookupError("no such file")
    dst = media / "converted" / f"{src.stem}-{src.stat().st_size}-8000.wav"
    wavfile.convert_for_pjsua(src, dst, 8000)
    return str(dst)


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if not (args.code == 200 or 300 <= args.code <= 699):
        print("--code must be 200 or 300..699", file=sys.stderr)
        return 2
    if not 0 <= args.jitter_buffer_ms <= MAX_JITTER_BUFFER_MS:
        print(f"--jitter-buffer-ms must be 0..{MAX_JITTER_BUFFER_MS} (pjmedia's buffer holds 500 ms)", file=sys.stderr)
        return 2
    if not 1 <= args.max_calls <= 256:
        print("--max-calls must be 1..256 (PJSUA_MAX_CALLS of the pjsua2 build)", file=sys.stderr)
        return 2
    logging.basicConfig(level=logging.WARNING, format="responder %(levelname)s %(name)s: %(message)s")

    stop = False

    def on_signal(signum, frame):  # noqa: ANN001
        nonlocal stop
        stop = True

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)

    play, silent = "", False
    if args.audio == "silence":
        silent = True
    elif args.audio != "echo":
        try:
            play = _media_file(args.audio)
        except (LookupError, ValueError) as exc:
            print(f"--audio {args.audio}: {exc}", file=sys.stderr)
            return 2

    from callgauge_media.adapters.pjsua.endpoint import EndpointOptions, redirect_native_stdout
    from callgauge_media.adapters.pjsua.responder import ResponderAgent

    out = redirect_native_stdout()
    agent = ResponderAgent(
        EndpointOptions(
            bind_host=args.host,
            sip_port=args.port,
            rtp_port=args.rtp_port,
            rtp_port_range=args.rtp_port_range,
            max_calls=args.max_calls,
            log_level=args.log_level,
            contact_user="responder",
            srtp=args.srtp,
            srtp_keyings=("sdes", "dtls"),  # either keying: SDES offers get SDES, DTLS-SRTP ones DTLS-SRTP
        ),
        answer_delay_ms=args.answer_delay_ms,
        code=args.code,
        hangup_after_ms=args.hangup_after_ms,
        play_file=play,
        silent=silent,
        jitter_buffer_ms=args.jitter_buffer_ms,
    )
    try:
        uri = agent.start()
    except Exception as exc:  # noqa: BLE001
        print(f"responder failed to start: {exc}", file=sys.stderr, flush=True)
        return 1
    out.write(f"responder ready {uri}\n")
    out.flush()
    try:
        while not stop:
            agent.poll(100)
    finally:
        agent.shutdown()
    print(
        f"responder stopped: {agent.answered} answered, {agent.rejected_busy} refused with 486 by the responder",
        file=sys.stderr,
        flush=True,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
