"""Fuzz every form of every meshbot flow with many more hostile values than the suite does.

Run with `.venv/bin/python -m bench.fuzz_flows --examples 20000` (examples per form; the suite
runs 1,150 per form). It runs `tests/test_flow_fuzz.py` through pytest with
`MESHBOT_FLOW_EXAMPLES` set, so the checks are the suite's: every example ends in the schema's
refusal, a translated error on a field of the form, or an entry that sets up. Exit status is
pytest's; the first failure is printed with the example that reproduces it.
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path
import subprocess
import sys
import time

FUZZ_TEST = Path(__file__).parent.parent / "tests" / "test_flow_fuzz.py"
FORMS = 9


def main() -> int:
    """Run the flow fuzz with the examples asked for and report the rate."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--examples", type=int, default=20_000, help="examples per form")
    parser.add_argument("-k", default=None, help="only the forms whose name matches (pytest -k)")
    args = parser.parse_args()
    command = [sys.executable, "-m", "pytest", str(FUZZ_TEST), "-q", "-p", "no:cacheprovider"]
    if args.k:
        command += ["-k", args.k]
    environment = {**os.environ, "MESHBOT_FLOW_EXAMPLES": str(args.examples)}
    started = time.perf_counter()
    status = subprocess.call(command, env=environment)
    elapsed = time.perf_counter() - started
    forms = FORMS if not args.k else "some"
    print(f"{args.examples} examples per form ({forms} forms) in {elapsed:.0f} s: exit {status}")
    return status


if __name__ == "__main__":
    sys.exit(main())
