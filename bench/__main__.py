"""`make bench`: run every benchmark and print one JSON object with all their results.

Each benchmark module has a ``main(argv)`` that prints one JSON object; this runner runs
them in subprocesses (so one benchmark's heap does not skew the next) and merges them.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time

BENCHES = ["routing_bench", "ami_bench", "sim_bench", "db_bench", "crm_bench", "live_bench"]


def main() -> int:
    quick = "--quick" in sys.argv[1:]
    results: dict[str, object] = {}
    failed = 0
    for name in BENCHES:
        cmd = [sys.executable, "-m", f"bench.{name}"] + (["--quick"] if quick else [])
        started = time.perf_counter()
        proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
        elapsed = round(time.perf_counter() - started, 1)
        print(f"[bench] {name}: exit {proc.returncode} in {elapsed}s", file=sys.stderr)
        try:
            results[name] = json.loads(proc.stdout.strip().splitlines()[-1])
        except (ValueError, IndexError):
            failed += 1
            results[name] = {"error": proc.stderr.strip()[-2000:], "exit": proc.returncode}
    print(json.dumps(results, indent=2))
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
