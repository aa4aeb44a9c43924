"""python -m callgauge_billing — the billing service."""

import sys

from callgauge_platform.lifecycle import run_service

from callgauge_billing.bootstrap import SERVICE, bootstrap
from callgauge_billing.settings import BillingSettings

if __name__ == "__main__":
    sys.exit(run_service(SERVICE, bootstrap, BillingSettings))
