"""`python -m callgauge_app …` is the `callgauge` command."""

import sys

from callgauge_app.main import main

sys.exit(main())
