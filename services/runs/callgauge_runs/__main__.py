"""python -m callgauge_runs — the runs service."""

import sys

from callgauge_platform.lifecycle import run_service

from callgauge_runs.bootstrap import SERVICE, bootstrap
from callgauge_runs.settings import RunsSettings

if __name__ == "__main__":
    sys.exit(run_service(SERVICE, bootstrap, RunsSettings))
