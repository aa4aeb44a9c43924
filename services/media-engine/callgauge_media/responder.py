"""``python -m callgauge_media.responder``: the built-in SIP target (see
:mod:`callgauge_media.entrypoints.responder`)."""

import sys

from callgauge_media.entrypoints.responder import main

if __name__ == "__main__":
    sys.exit(main())
