"""CPU cost of SRTP (SDES) per full-media call beside plain PCMU, caller and callee side.

    .venv/bin/python -m tests.bench.bench_srtp_cost [--calls 32] [--talk-s 14] [--rounds 2]

The codec-cost bench (``bench_codec_cost``, same worker, responder and measurement) with the variants
``PCMU`` (plain RTP) and ``PCMU+srtp`` (SRTP mandatory, SDES keys): one pjsua2 worker process places
``--calls`` PCMU calls with a 440 Hz tone at once to the built-in responder (which answers an SRTP
offer with SRTP), all held ``--talk-s`` seconds; the variants take turns, their order rotating each
round. It prints per round the calls answered, the SRTP calls and suite, loss, MOS and the % of a
core per call on each side, then the medians and SRTP's extra. Loopback only; no assertions on time.
"""

from __future__ import annotations

import sys

from tests.bench.bench_codec_cost import main as codec_cost


def main(argv: list[str] | None = None) -> int:
    return codec_cost(["--codecs", "PCMU,PCMU+srtp", "--title", "SRTP cost", *(sys.argv[1:] if argv is None else argv)])


if __name__ == "__main__":
    sys.exit(main())
