"""HTTP throughput and latency under wrk on loopback, each endpoint beside a constant-dict endpoint
in the same server and the same run.

    python -m bench.api_bench [--duration 10] [--connections 16] [--long 60]

One uvicorn worker pinned to CPU 0 and wrk pinned to CPU 1 (when the machine has two). Reports
requests/s, p50/p99 latency, errors (non-2xx and socket errors) and the server's RSS before and after."""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import urllib.parse
import urllib.request
from pathlib import Path

from bench.server import free_port, memory_mb, running

CLAIM = {
    "date_of_service": "2026-05-05",
    "lines": [
        {"code": "22511", "levels": ["L2"]},
        {"code": "22512", "units": 2, "levels": ["L3", "L4"]},
        {"code": "99152"},
    ],
}
SELECT = "SELECT ?addon ?primary WHERE { ?addon <https://w3id.org/spinekg/vocab/addOnFor> ?primary } ORDER BY ?addon ?primary"


def parse_wrk(text: str) -> dict[str, float]:
    def latency(label: str) -> float:
        m = re.search(rf"^\s+{label}\s+([\d.]+)(us|ms|s)\s*$", text, re.M)
        if not m:
            return float("nan")
        value, unit = float(m.group(1)), m.group(2)
        return value / 1000 if unit == "us" else value * 1000 if unit == "s" else value

    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", text).group(1))  # type: ignore[union-attr]
    non2xx = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", text)
    sock = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", text)
    return {
        "rps": rps,
        "p50": latency("50%"),
        "p99": latency("99%"),
        "errors": (int(non2xx.group(1)) if non2xx else 0) + (sum(map(int, sock.groups())) if sock else 0),
    }


def wrk(pin: list[str], url: str, script: Path | None, connections: int, seconds: int) -> str:
    """One wrk run with latency percentiles; its report as text."""
    command = [*pin, "wrk", "-t1", f"-c{connections}", f"-d{seconds}s", "--latency"]
    command += ["-s", str(script)] if script else []
    return subprocess.run([*command, url], capture_output=True, text=True, check=True).stdout


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--duration", type=int, default=10)
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--long", type=int, default=0, help="also run POST /claims/validate for this many seconds")
    parser.add_argument("--http", choices=("h11", "httptools"), default="h11", help="uvicorn's parser (spinekg serve: h11)")
    args = parser.parse_args()
    if not shutil.which("wrk"):
        sys.exit("wrk is not installed (Debian: apt install wrk)")
    port = free_port()
    two_cpus = (os.cpu_count() or 1) >= 2
    pin_server = ["taskset", "-c", "0"] if two_cpus and shutil.which("taskset") else []
    pin_wrk = ["taskset", "-c", "1"] if pin_server else []
    app = [
        sys.executable,
        "-m",
        "uvicorn",
        "bench.api_app:create_bench_app",
        "--factory",
        "--port",
        str(port),
        "--http",
        args.http,
    ]
    with running([*app, "--log-level", "warning", "--no-access-log"], port, pin_server) as (base, server):
        measure(args, base, server, pin_server, pin_wrk)


def measure(
    args: argparse.Namespace, base: str, server: subprocess.Popen[bytes], pin_server: list[str], pin_wrk: list[str]
) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        post = Path(tmp) / "post.lua"
        post.write_text(
            f'wrk.method = "POST"\nwrk.headers["Content-Type"] = "application/json"\nwrk.body = {json.dumps(json.dumps(CLAIM))}\n'
        )
        targets = [
            ("GET /constant (baseline)", base + "/constant", None),
            ("GET /codes/22512/pairs", base + "/codes/22512/pairs", None),
            ("POST /claims/validate (3 lines)", base + "/claims/validate", post),
            ("GET /sparql SELECT", base + "/sparql?" + urllib.parse.urlencode({"query": SELECT}), None),
        ]
        for _name, url, script in targets:  # warm up caches and workers
            wrk(pin_wrk, url, script, 4, 2)
        results = {}
        for name, url, script in targets:
            before = memory_mb(server.pid)
            out = wrk(pin_wrk, url, script, args.connections, args.duration)
            results[name] = parse_wrk(out) | {"rss_before_mb": before, "rss_after_mb": memory_mb(server.pid)}
        baseline = results["GET /constant (baseline)"]["rps"]
        print(
            f"one uvicorn worker{' on CPU 0, wrk on CPU 1' if pin_server else ''}; {args.connections} connections, "
            f"{args.duration} s each"
        )
        for name, r in results.items():
            print(
                f"  {name:<34} {r['rps']:>8,.0f} req/s ({r['rps'] / baseline:>4.0%} of constant)  p50 {r['p50']:.2f} ms  "
                f"p99 {r['p99']:.2f} ms  errors {r['errors']:.0f}  RSS {r['rss_before_mb']:.0f} -> {r['rss_after_mb']:.0f} MB"
            )
        if args.long:
            before = memory_mb(server.pid)
            out = wrk(pin_wrk, base + "/claims/validate", post, args.connections, args.long)
            r = parse_wrk(out)
            print(
                f"  {args.long} s of POST /claims/validate: {r['rps']:,.0f} req/s, p99 {r['p99']:.2f} ms, "
                f"errors {r['errors']:.0f}, RSS {before:.0f} -> {memory_mb(server.pid):.0f} MB"
            )


if __name__ == "__main__":
    main()
