"""Claim validation speed: single-claim latency, batch NDJSON throughput (in process and through the
CLI, end to end), and the ratio to a hand-written checker of three rules.

    python -m bench.claims_bench [--claims 100000] [--repeats 5]

The hand-written reference reads its tables from the same compiled graph (no code numbers here
either) and checks only: add-on without its primary, units of a primary > 1, modifiers not allowed."""

from __future__ import annotations

import argparse
import shutil
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
from spinekg.kg.claims.kinds import ModifierAllowed, RequiresPartner, UnitLimit
from spinekg.kg.claims.sample import random_claims
from spinekg.kg.graph import load_graph

ROOT = Path(__file__).resolve().parent.parent
THREE_LINE_CLAIM = {
    "date_of_service": "2026-05-05",
    "lines": [{"code": "", "levels": []}, {"code": "", "units": 2, "levels": []}, {"code": "", "levels": []}],
}


def reference_checker(validator: ClaimValidator) -> Callable[[bytes], bytes]:
    """Three rules written by hand as plain Python over the parsed JSON."""
    partners = next(c for c in validator.checkers if isinstance(c, RequiresPartner) and not c.others and c.always).always
    limits = {
        code: rows[0][0]
        for code, rows in next(c for c in validator.checkers if isinstance(c, UnitLimit) and c.limits).limits.items()
    }
    forbidden = next(c for c in validator.checkers if isinstance(c, ModifierAllowed))

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
                if (code, mod) in forbidden.always or (code, mod) in table:
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
    parser.add_argument("--reference", type=Path, help="run only the hand-written checker over this NDJSON file (end to end)")
    args = parser.parse_args()
    if args.reference:
        raise SystemExit(run_reference(args.reference))
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

    # End to end, as a payer would run it: a process per batch, NDJSON in and out, a third of the claims
    # invalid, both programs pinned to one core (taskset) when the machine has it.
    data, invalid = third_invalid(validator, args.claims)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "claims.ndjson"
        path.write_bytes(b"\n".join(data) + b"\n")
        pin = ["taskset", "-c", "0"] if shutil.which("taskset") else []
        engine_s = end_to_end([*pin, sys.executable, "-m", "spinekg.kg.cli", "validate", "--batch", str(path)])
        ref_s = end_to_end([*pin, sys.executable, "-m", "bench.claims_bench", "--reference", str(path)])
        print(
            f"CLI end to end{' on one core' if pin else ''} (process start, load, {len(data):,} claims NDJSON in -> "
            f"NDJSON out, {invalid:.0%} invalid): spinekg validate --batch {engine_s:.2f} s = {len(data) / engine_s:,.0f} "
            f"claims/s; hand-written 3 rules {ref_s:.2f} s = {len(data) / ref_s:,.0f} claims/s; "
            f"ratio {engine_s / ref_s:.1f}x the time"
        )


def third_invalid(validator: ClaimValidator, n: int) -> tuple[list[bytes], float]:
    """n sample claims of which about a third are invalid (the mistake rate is searched for, then the
    share is measured and printed)."""
    rate, share = 0.35, 0.0
    for _ in range(6):
        claims = random_claims(validator, 3000, seed=11, mistake_rate=rate)
        share = sum(not validator.validate(c)["valid"] for c in claims) / len(claims)
        if abs(share - 1 / 3) < 0.02:
            break
        rate = min(1.0, rate * (1 / 3) / max(share, 0.01))
    claims = random_claims(validator, n, seed=5, mistake_rate=rate)
    share = sum(not validator.validate(c)["valid"] for c in claims) / n
    return [orjson.dumps(c) for c in claims], share


def end_to_end(command: list[str], runs: int = 3) -> float:
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        proc = subprocess.run(command, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, check=False)
        times.append(time.perf_counter() - started)
        if proc.returncode not in (0, 1):
            raise SystemExit(f"{' '.join(command)} failed: {proc.stderr.decode(errors='replace')[-500:]}")
    return statistics.median(times)


def run_reference(path: Path) -> int:
    """The hand-written checker as a program: load the graph and the tables, stream the file to stdout."""
    reference = reference_checker(ClaimValidator(load_graph(quiet=True)))
    write = sys.stdout.buffer.write
    invalid = False
    with path.open("rb") as stream:
        for raw in stream:
            if raw.strip():
                out = reference(raw)
                invalid = invalid or b'"valid":false' in out
                write(out)
    sys.stdout.buffer.flush()
    return 1 if invalid else 0


if __name__ == "__main__":
    main()
