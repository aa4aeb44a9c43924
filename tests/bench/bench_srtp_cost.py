"""CPU cost of SRTP per full-media call beside plain PCMU, caller and callee side.

    .venv/bin/python -m tests.bench.bench_srtp_cost [--keying sdes|dtls|both] [--calls 32] [--talk-s 14]
        [--rounds 2]

The codec-cost bench (``bench_codec_cost``, same worker, responder and measurement) with the variants
``PCMU`` (plain RTP) and ``PCMU+srtp`` (SRTP mandatory, SDES keys; ``--keying dtls``: ``PCMU+dtls``,
DTLS-SRTP keys; ``both``: the three): one pjsua2 worker process places ``--calls`` PCMU calls with a
440 Hz tone at once to the built-in responder (which answers an SRTP offer with SRTP, either keying),
all held ``--talk-s`` seconds; the variants take turns, their order rotating each round. It prints per
round the calls answered, the SRTP calls and suite/keying, loss, MOS and the % of a core per call on
each side, then the medians and SRTP's extra. Loopback only; no assertions on time.
"""

from __future__ import annotations

import sys

from tests.bench.bench_codec_cost import main as codec_cost


VARIANTS = {"sdes": "PCMU,PCMU+srtp", "dtls": "PCMU,PCMU+dtls", "both": "PCMU,PCMU+srtp,PCMU+dtls"}


def main(argv: list[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    keying = "sdes"
    if "--keying" in args:
        i = args.index("--keying")
        keying = args[i + 1] if i + 1 < len(args) else ""
        del args[i:i + 2]
    if keying not in VARIANTS:
        print(f"--keying: one of {', '.join(VARIANTS)}", file=sys.stderr)
        return 2
    return codec_cost(["--codecs", VARIANTS[keying], "--title", "SRTP cost", *args])


if __name__ == "__main__":
    sys.exit(main())
