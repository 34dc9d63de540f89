"""The NCCI store on the shared CMS tables: import time, size and peak memory per table, cold open, lookup latency.

    python bench/ncci_bench.py [--shared DIR] [--lookups 200000] [--cache DIR] [--json]

DIR holds the shared copies (default: $SPINEKG_SHARED_NCCI, else ../shared/reference/cms/ncci beside
the checkout); without them the benchmark says so and exits 0. Each table is imported in its own
process (so its peak RSS is its own), into a temporary cache unless --cache names one. Cold open is a
fresh process opening the store and answering one pair (mapping the table); lookups are timed one by
one over a stream of real pairs (every row's pair, sampled) and of pairs with no edit. Targets (issue 9):
one full PTP table imported in <= 2 min, open < 50 ms, a pair in a few microseconds, RSS <= 500 MB.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import random
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import date
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
DEFAULT_SHARED = REPO.parent / "shared" / "reference" / "cms" / "ncci"
TABLES = ["ptp-practitioner-v301r0.tsv.gz", "ptp-practitioner-2024-07-01.tsv.gz", "mue-2024-04-01.tsv.gz", "AOC_V2026Q2-MCR.xlsx"]
ON = date(2024, 8, 1)

IMPORT_CHILD = """
import json, resource, sys, time
from pathlib import Path
from spinekg.kg.ncci import import_ncci
started = time.perf_counter()
results = import_ncci([Path(sys.argv[1])], cache=Path(sys.argv[2]))
print(json.dumps({"seconds": time.perf_counter() - started, "rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
                  "tables": [{"kind": r.kind, "release": r.release.id, "rows": r.rows, "bytes": r.bytes,
                              "table_seconds": r.seconds} for r in results]}))
"""

OPEN_CHILD = """
import json, sys, time
from datetime import date
from pathlib import Path
t0 = time.perf_counter()
from spinekg.kg.ncci import NcciStore
t1 = time.perf_counter()
store = NcciStore.open(Path(sys.argv[1]))
t2 = time.perf_counter()
edit = store.ptp("22510", "22511", on=date(2024, 8, 1))
t3 = time.perf_counter()
print(json.dumps({"import_module_ms": (t1 - t0) * 1e3, "open_ms": (t2 - t1) * 1e3, "first_pair_ms": (t3 - t2) * 1e3,
                  "answer": edit.modifier_indicator if edit else None}))
"""


def rss_now_mb() -> float:
    with open("/proc/self/status", encoding="ascii") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def child(script: str, *args: str) -> dict[str, Any]:
    done = subprocess.run([sys.executable, "-c", script, *args], capture_output=True, text=True, check=False, timeout=900)
    if done.returncode != 0:
        raise SystemExit(f"child failed: {done.stderr.strip()[-2000:]}")
    result: dict[str, Any] = json.loads(done.stdout)
    return result


def percentiles(samples: list[int]) -> dict[str, float]:
    samples.sort()
    return {
        "p50_us": samples[len(samples) // 2] / 1e3,
        "p99_us": samples[int(len(samples) * 0.99)] / 1e3,
        "mean_us": statistics.fmean(samples) / 1e3,
    }


def lookups(cache: Path, count: int) -> dict[str, Any]:
    from spinekg.kg.ncci import NcciStore
    from spinekg.kg.ncci.values import code_text

    rng = random.Random(9)
    store = NcciStore.open(cache)
    info = store.release("ptp-practitioner", ON)
    assert info is not None
    keys = store.table(info).columns["key"]
    rows = len(keys)
    real = [(code_text(k >> 32), code_text(k & 0xFFFFFFFF)) for k in (keys[rng.randrange(rows)] for _ in range(count // 2))]
    codes = sorted({c for pair in real for c in pair})
    absent = [(rng.choice(codes), rng.choice(codes)) for _ in range(count - len(real))]
    stream = real + absent
    rng.shuffle(stream)
    for a, b in stream[:2000]:  # warm the code cache the way a running service would be
        store.ptp(a, b, on=ON)
    gc.freeze()  # as a service does after start-up: the sample stream is not rescanned by every collection
    passes = []
    found = 0
    clock = time.perf_counter_ns
    for _ in range(2):  # the first pass also faults the mapped pages in; the second is a warm process
        timings: list[int] = []
        found = 0
        for a, b in stream:
            started = clock()
            edit = store.ptp(a, b, on=ON)
            timings.append(clock() - started)
            found += edit is not None
        passes.append(percentiles(timings))
    started = time.perf_counter()
    for a, b in stream:
        store.ptp(a, b, on=ON)
    per_second = len(stream) / (time.perf_counter() - started)
    other: dict[str, Any] = {}
    for name, call in (
        ("column2_of", lambda c: store.column2_of(c, on=ON)),
        ("mue", lambda c: store.mue(c, on=ON)),
        ("aoc_primaries", lambda c: store.aoc_primaries(c, on=date(2026, 5, 1))),
    ):
        sample = [rng.choice(codes) for _ in range(min(count, 20000))]
        spent = []
        for code in sample:
            started_ns = clock()
            call(code)
            spent.append(clock() - started_ns)
        other[name] = percentiles(spent)
    return {
        "pairs": len(stream),
        "with_an_edit": found,
        "ptp_first_pass": passes[0],
        "ptp": passes[1],
        "ptp_per_second": per_second,
        **other,
        "rss_mb_now": rss_now_mb(),
        "rss_mb_peak": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    }


def diff_figures(cache: Path) -> dict[str, Any]:
    from spinekg.kg.ncci import NcciStore, diff_ptp

    with NcciStore.open(cache) as store:
        started = time.perf_counter()
        result = diff_ptp(store, "v30.1", "2024-07-01")
        seconds = time.perf_counter() - started
    return {**result.summary(), "seconds": seconds}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--shared", type=Path, default=Path(os.environ.get("SPINEKG_SHARED_NCCI", DEFAULT_SHARED)))
    parser.add_argument("--cache", type=Path, help="import here (kept) instead of a temporary folder")
    parser.add_argument("--lookups", type=int, default=200_000)
    parser.add_argument("--json", action="store_true", help="print the figures as JSON")
    args = parser.parse_args()
    missing = [name for name in TABLES if not (args.shared / name).is_file()]
    if missing:
        print(f"ncci_bench: skipped: the shared NCCI tables are not in {args.shared} (missing {', '.join(missing)})")
        return 0
    with tempfile.TemporaryDirectory(prefix="ncci-bench-") as scratch:
        cache = args.cache or Path(scratch)
        figures: dict[str, Any] = {"imports": []}
        for name in TABLES:
            figures["imports"].append({"file": name, **child(IMPORT_CHILD, str(args.shared / name), str(cache))})
        opens = [child(OPEN_CHILD, str(cache)) for _ in range(5)]
        figures["open"] = {
            key: statistics.median(o[key] for o in opens) for key in ("import_module_ms", "open_ms", "first_pair_ms")
        }
        figures["lookups"] = lookups(cache, args.lookups)
        figures["diff"] = diff_figures(cache)
    if args.json:
        print(json.dumps(figures, indent=2))
        return 0
    for entry in figures["imports"]:
        for table in entry["tables"]:
            print(
                f"import {table['kind']:17} {table['release']:10} {table['rows']:>9,} rows  {table['bytes'] / 1e6:6.1f} MB  "
                f"{entry['seconds']:5.1f} s  peak RSS {entry['rss_mb']:.0f} MB  ({entry['file']})"
            )
    o = figures["open"]
    print(
        f"cold open (fresh process, median of 5): {o['open_ms']:.2f} ms open + {o['first_pair_ms']:.2f} ms first pair "
        f"(importing spinekg.kg.ncci: {o['import_module_ms']:.0f} ms)"
    )
    lk = figures["lookups"]
    first = lk["ptp_first_pass"]
    print(
        f"ptp pair lookup ({lk['pairs']:,} pairs, {lk['with_an_edit']:,} with an edit): p50 {lk['ptp']['p50_us']:.2f} us, "
        f"p99 {lk['ptp']['p99_us']:.2f} us, {lk['ptp_per_second']:,.0f}/s (first pass, pages faulting in: "
        f"p50 {first['p50_us']:.2f} us, p99 {first['p99_us']:.2f} us)"
    )
    for name in ("column2_of", "mue", "aoc_primaries"):
        print(f"{name}: p50 {lk[name]['p50_us']:.2f} us, p99 {lk[name]['p99_us']:.2f} us")
    print(f"RSS after lookups: {lk['rss_mb_now']:.0f} MB (peak {lk['rss_mb_peak']:.0f} MB)")
    d = figures["diff"]
    print(
        f"diff v30.1 -> 2024-07-01: {d['added']:,} added, {d['deleted']:,} deleted, {d['changed']:,} changed, "
        f"{d['removed']:,} removed, {d['unchanged']:,} unchanged in {d['seconds']:.2f} s"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
