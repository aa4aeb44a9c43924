"""python -m callgauge_media — the media-engine."""

import sys

from callgauge_platform.lifecycle import run_service

from callgauge_media.bootstrap import SERVICE, bootstrap
from callgauge_media.settings import MediaSettings

if __name__ == "__main__":
    sys.exit(run_service(SERVICE, bootstrap, MediaSettings))
