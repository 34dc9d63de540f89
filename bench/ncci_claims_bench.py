"""Claims of any codes against CMS's full NCCI tables (issue 9's targets): cold start of
`spinekg validate` with the tables present, single-claim latency, batch throughput end to end on one
core over a mixed stream of real code pairs, and peak memory.

    python -m bench.ncci_claims_bench [--ncci-dir DIR] [--claims 100000]

The tables are imported into DIR first (from ../shared/reference/cms/ncci) unless they are there. The
stream: claims of 2-4 lines on 2024-08-01, half of them built around a real PTP edit of the table (its
Column 1 and Column 2 codes, sometimes with a modifier), the others of codes with an MUE drawn at random
(few of those pairs have an edit), with random units."""

from __future__ import annotations

import argparse
import csv
import gzip
import os
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import orjson

ROOT = Path(__file__).resolve().parent.parent
SHARED = ROOT.parent / "shared" / "reference" / "cms" / "ncci"
TABLES = ["ptp-practitioner-2024-07-01.tsv.gz", "mue-2024-04-01.tsv.gz", "AOC_V2026Q2-MCR.xlsx"]
DOS = "2024-08-01"
MODIFIERS = ["59", "XS", "XU", "RT", "LT", "25", "26", "TC"]


def sample_stream(n: int, seed: int = 7) -> list[bytes]:
    rng = random.Random(seed)  # noqa: S311 - sample data
    pairs: list[tuple[str, str]] = []
    with gzip.open(SHARED / TABLES[0], "rt", newline="") as f:
        for i, row in enumerate(csv.DictReader(f, delimiter="\t")):
            if i % 97 == 0 and row["deletion_date"] in ("", "*", "99991231"):
                pairs.append((row["column_1"], row["column_2"]))
    codes: list[str] = []
    with gzip.open(SHARED / TABLES[1], "rt", newline="") as f:
        codes = sorted({row["hcpcs_cpt_code"] for row in csv.DictReader(f, delimiter="\t")})
    claims = []
    for i in range(n):
        if rng.random() < 0.5:
            a, b = rng.choice(pairs)
            lines = [{"code": a}, {"code": b}]
            if rng.random() < 0.3:
                lines[1]["modifiers"] = [rng.choice(MODIFIERS)]
        else:
            lines = [{"code": c, "units": rng.choice((1, 1, 1, 2, 3))} for c in rng.sample(codes, rng.randint(2, 4))]
        claims.append(orjson.dumps({"id": f"c{i}", "date_of_service": DOS, "lines": lines}))
    return claims


def run(command: list[str], env: dict[str, str], stdin: bytes | None = None, stdout: int | None = None) -> tuple[float, int]:
    """Wall time and peak RSS (KiB, from /usr/bin/time when there) of a command."""
    timer = ["/usr/bin/time", "-f", "%M"] if Path("/usr/bin/time").exists() else []
    started = time.perf_counter()
    proc = subprocess.run(
        [*timer, *command], input=stdin, stdout=stdout or subprocess.DEVNULL, stderr=subprocess.PIPE, env=env, check=False
    )
    elapsed = time.perf_counter() - started
    if proc.returncode not in (0, 1):
        raise SystemExit(f"{' '.join(command)} failed: {proc.stderr.decode(errors='replace')[-400:]}")
    rss = int(proc.stderr.decode().strip().splitlines()[-1]) if timer else 0
    return elapsed, rss


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--ncci-dir", type=Path, default=Path(tempfile.gettempdir()) / "spinekg-bench-ncci")
    parser.add_argument("--claims", type=int, default=100_000)
    args = parser.parse_args()
    if not SHARED.is_dir():
        raise SystemExit(f"the shared NCCI tables are not at {SHARED}; nothing to measure")
    env = dict(os.environ, SPINEKG_NCCI_DIR=str(args.ncci_dir))
    spinekg = [sys.executable, "-m", "spinekg.kg.cli"]
    if not (args.ncci_dir / "ptp-practitioner").is_dir():
        took, _ = run([*spinekg, "import", "ncci", *(str(SHARED / t) for t in TABLES)], env)
        print(f"imported the shared tables in {took:.1f} s")
    pin = ["taskset", "-c", "0"] if shutil.which("taskset") else []

    stream = sample_stream(args.claims)
    one = stream[0] + b"\n"
    starts = sorted(run([*pin, *spinekg, "validate", "-"], env, stdin=one)[0] for _ in range(5))
    print(f"cold start, one claim (process start, graph, rules, tables mapped): median {statistics.median(starts) * 1000:.0f} ms")

    from spinekg.kg.claims import ClaimValidator
    from spinekg.kg.graph import load_graph

    os.environ["SPINEKG_NCCI_DIR"] = str(args.ncci_dir)
    validator = ClaimValidator(load_graph(quiet=True))
    sample = [orjson.loads(c) for c in stream[:5000]]
    for claim in sample:
        validator.validate(claim)
    times = []
    for claim in sample:
        t = time.perf_counter_ns()
        validator.validate(claim)
        times.append(time.perf_counter_ns() - t)
    times.sort()
    print(f"one claim in process: p50 {times[len(times) // 2] / 1000:.0f} us, p99 {times[int(len(times) * 0.99)] / 1000:.0f} us")
    invalid = sum(not validator.validate(c)["valid"] for c in sample) / len(sample)

    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "claims.ndjson"
        path.write_bytes(b"\n".join(stream) + b"\n")
        runs = [run([*pin, *spinekg, "validate", "--batch", str(path)], env) for _ in range(3)]
        elapsed = statistics.median(r[0] for r in runs)
        rss = max(r[1] for r in runs)
        print(
            f"spinekg validate --batch{' on one core' if pin else ''}: {len(stream):,} claims ({invalid:.0%} invalid) in "
            f"{elapsed:.2f} s = {len(stream) / elapsed:,.0f} claims/s; peak RSS {rss / 1024:.0f} MB"
        )


if __name__ == "__main__":
    main()
