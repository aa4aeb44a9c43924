"""python -m callgauge_billing — the billing service."""

import sys

from callgauge_platform.lifecycle import run_service

from callgauge_billing.bootstrap import SERVICE, bootstrap

if __name__ == "__main__":
    sys.exit(run_service(SERVICE, bootstrap))
