"""python -m callgauge_accounts — the accounts service."""

import sys

from callgauge_platform.lifecycle import run_service

from callgauge_accounts.bootstrap import SERVICE, bootstrap
from callgauge_accounts.settings import AccountsSettings

if __name__ == "__main__":
    sys.exit(run_service(SERVICE, bootstrap, AccountsSettings))
