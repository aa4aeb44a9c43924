"""The long variant of the chaos suite (issue #20): the cases of tests/chaos/ with longer runs, longer
faults and more kills (CALLGAUGE_CHAOS_LONG=1: runs/billing killed 6 times during a 150 s load, the
engine killed after the first calls of 180 s runs, the disk full for 180 s of a 240 s run, `callgauge
up` stopped mid 180 s run), each repeated --repeat times. Prints each case's measured line (terminal
time after the fault, calls recorded once, billing) and a pass/fail tally. Not a test: figures only;
every case is bounded by its own waits and by --timeout-s per pytest run.

    .venv/bin/python -m tests.bench.bench_chaos                        # every case once, long sizes
    .venv/bin/python -m tests.bench.bench_chaos --repeat 3 -k engine   # the engine kills, 3 times
    .venv/bin/python -m tests.bench.bench_chaos --short --repeat 5     # the default sizes, 5 times
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
FIGURES = re.compile(r"^\s*(\[.*?\] run terminal|runs\+billing killed|gateway/accounts/tansu killed|up stopped|disk full for)")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--repeat", type=int, default=1, help="times to run the suite (1-20)")
    ap.add_argument("-k", default="", help="pytest -k expression to pick cases")
    ap.add_argument("--short", action="store_true", help="the default sizes (as in the default test run)")
    ap.add_argument("--timeout-s", type=int, default=1800, help="per test case")
    args = ap.parse_args()
    repeat = max(1, min(args.repeat, 20))
    env = {**os.environ, "CALLGAUGE_CHAOS_LONG": "" if args.short else "1"}
    tally = {"passed": 0, "failed": 0, "skipped": 0}
    for i in range(repeat):
        cmd = [sys.executable, "-m", "pytest", "tests/chaos", "-s", "-q", "-p", "no:cacheprovider",
               "-o", f"timeout={args.timeout_s}", *(["-k", args.k] if args.k else [])]
        t0 = time.monotonic()
        print(f"== round {i + 1}/{repeat}: {' '.join(cmd[2:])}", flush=True)
        proc = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True,
                              timeout=args.timeout_s * 10)
        for line in proc.stdout.splitlines():
            if FIGURES.match(line):
                print("  " + line.strip(), flush=True)
            elif line.startswith(("FAILED", "SKIPPED", "ERROR")):
                print("  " + line.strip(), flush=True)
        summary = proc.stdout.strip().splitlines()[-1] if proc.stdout.strip() else proc.stderr[-500:]
        for key in tally:
            m = re.search(rf"(\d+) {key}", summary)
            tally[key] += int(m.group(1)) if m else 0
        print(f"  {summary} ({time.monotonic() - t0:.0f} s)", flush=True)
    print(f"== total over {repeat} round(s): {tally}")
    return 0 if tally["failed"] == 0 else 1


if __name__ == "__main__":
    raise SystemExit(main())
