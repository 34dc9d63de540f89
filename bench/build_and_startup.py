"""Build time (cold and cached), triple counts, and start-up time of a process that answers one query.

    python bench/build_and_startup.py [--runs 10]

Cold builds use a temporary build directory so the user's build cache is left alone."""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def timed(cmd: list[str], env: dict[str, str]) -> tuple[float, str]:
    started = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=ROOT, check=True)
    return time.perf_counter() - started, proc.stdout


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=10)
    args = parser.parse_args()
    spinekg = [sys.executable, "-m", "spinekg.kg.cli"]
    with tempfile.TemporaryDirectory() as tmp:
        env = dict(os.environ, SPINEKG_BUILD_DIR=tmp)
        cold = [timed(spinekg + ["build", "--force"], env) for _ in range(3)]
        cached = [timed(spinekg + ["build"], env)[0] for _ in range(args.runs)]
        query = [timed(spinekg + ["query", "pairs-with", "-p", "code=22512"], env)[0] for _ in range(args.runs)]
        python_only = [timed([sys.executable, "-c", "pass"], env)[0] for _ in range(args.runs)]
    print(f"cold build (process, median of 3): {statistics.median(t for t, _ in cold):.2f} s")
    print("  " + cold[-1][1].strip())
    print(f"cached build (process, median of {args.runs}): {statistics.median(cached) * 1000:.0f} ms")
    print(f"start-up + one query (process, median of {args.runs}): {statistics.median(query) * 1000:.0f} ms")
    print(f"  bare python start-up for reference: {statistics.median(python_only) * 1000:.0f} ms")


if __name__ == "__main__":
    main()
