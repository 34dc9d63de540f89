"""Claim validation speed: single-claim latency, batch NDJSON throughput (in process and through the
CLI, end to end), and the ratio to a hand-written checker of three rules.

    python bench/claims_bench.py [--claims 100000] [--repeats 5]

The hand-written reference reads its tables from the same compiled graph (no code numbers here
either) and checks only: add-on without its primary, units of a primary > 1, modifiers not allowed."""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import date
from pathlib import Path
from typing import Any

import orjson

from spinekg.kg.claims import ClaimValidator
from spinekg.kg.claims.checkers import ForbiddenModifier, MaxUnits, RequiresAny
from spinekg.kg.claims.sample import random_claims
from spinekg.kg.graph import load_graph

ROOT = Path(__file__).resolve().parent.parent
THREE_LINE_CLAIM = {
    "date_of_service": "2026-05-05",
    "lines": [{"code": "", "levels": []}, {"code": "", "units": 2, "levels": []}, {"code": "", "levels": []}],
}


def reference_checker(validator: ClaimValidator) -> Callable[[bytes], bytes]:
    """Three rules written by hand as plain Python over the parsed JSON."""
    partners = next(c for c in validator.checkers if isinstance(c, RequiresAny)).partners
    limits = {code: rows[0][0] for code, rows in next(c for c in validator.checkers if isinstance(c, MaxUnits)).limits.items()}
    forbidden = next(c for c in validator.checkers if isinstance(c, ForbiddenModifier))

    def check(raw: bytes) -> bytes:
        claim = orjson.loads(raw)
        lines = claim["lines"]
        codes = {ln["code"] for ln in lines}
        units: dict[str, int] = {}
        findings = []
        table = forbidden.by_year.get(forbidden.year_for(date.fromisoformat(claim["date_of_service"])) or -1, {})
        for n, ln in enumerate(lines, 1):
            code = ln["code"]
            units[code] = units.get(code, 0) + ln.get("units", 1)
            need = partners.get(code)
            if need and need.isdisjoint(codes):
                findings.append({"rule": "addon-without-primary", "lines": [n]})
            for mod in ln.get("modifiers", ()):
                if (code, mod) in forbidden.specific or (code, mod) in table:
                    findings.append({"rule": "modifier-not-allowed", "lines": [n]})
        for code, total in units.items():
            if code in limits and total > limits[code]:
                findings.append({"rule": "units-exceed-limit", "lines": [code]})
        return orjson.dumps({"id": claim.get("id"), "valid": not findings, "findings": findings}) + b"\n"

    return check


def timed_stream(fn: Callable[[], Any], repeats: int) -> float:
    runs = []
    for _ in range(repeats):
        started = time.perf_counter()
        fn()
        runs.append(time.perf_counter() - started)
    return statistics.median(runs)


def latency(validator: ClaimValidator, claim: dict[str, Any], runs: int) -> str:
    times = []
    for _ in range(runs):
        t = time.perf_counter_ns()
        validator.validate(claim)
        times.append(time.perf_counter_ns() - t)
    times.sort()
    return f"p50 {times[len(times) // 2] / 1000:.1f} us, p99 {times[int(len(times) * 0.99)] / 1000:.1f} us"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--claims", type=int, default=100_000)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    graph = load_graph()
    started = time.perf_counter()
    validator = ClaimValidator(graph)
    print(f"rules compiled from the reasoned graph: {len(validator.rules)} in {(time.perf_counter() - started) * 1000:.0f} ms")

    # single-claim latency: a 3-line claim (a primary, its add-on x2, moderate sedation) from the tables
    sample = next(c for c in random_claims(validator, 50, seed=7, mistake_rate=0.0) if len(c["lines"]) == 2)
    claim = dict(THREE_LINE_CLAIM, lines=[*sample["lines"][:2], {"code": "99152"}])
    print(
        f"single claim, in process ({len(claim['lines'])} lines, valid={validator.validate(claim)['valid']}): "
        + latency(validator, claim, 50_000)
    )
    bad = {
        "date_of_service": "2026-05-05",
        "lines": [dict(sample["lines"][0], modifiers=["50"]), {"code": sample["lines"][0]["code"]}],
    }
    print("single invalid claim with a suggestion: " + latency(validator, bad, 20_000))

    reference = reference_checker(validator)
    for rate in (0.0, 0.2, 1.0):
        data = [orjson.dumps(c) for c in random_claims(validator, args.claims, seed=3, mistake_rate=rate)]
        engine = timed_stream(lambda d=data: sum(1 for _ in validator.validate_stream(d)), args.repeats)
        ref = timed_stream(lambda d=data: [reference(x) for x in d], args.repeats)
        print(
            f"batch in process, mistake rate {rate:.0%}: {len(data) / engine:,.0f} claims/s "
            f"({len(validator.rules)} rules); hand-written 3 rules {len(data) / ref:,.0f} claims/s; "
            f"ratio {engine / ref:.1f}x the time"
        )

    data = [orjson.dumps(c) for c in random_claims(validator, args.claims, seed=5, mistake_rate=0.2)]
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "claims.ndjson"
        path.write_bytes(b"\n".join(data) + b"\n")
        env = dict(os.environ)
        runs = []
        for _ in range(3):
            started = time.perf_counter()
            proc = subprocess.run(
                [sys.executable, "-m", "spinekg.kg.cli", "validate", "--batch", str(path)],
                cwd=ROOT,
                env=env,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.PIPE,
                check=False,
            )
            runs.append(time.perf_counter() - started)
            assert proc.returncode in (0, 1), proc.stderr
        elapsed = statistics.median(runs)
        print(
            f"CLI end to end (process start, load, {len(data):,} claims NDJSON in -> NDJSON out): "
            f"{elapsed:.2f} s = {len(data) / elapsed:,.0f} claims/s"
        )


if __name__ == "__main__":
    main()
