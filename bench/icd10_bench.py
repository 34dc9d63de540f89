"""ICD-10-CM as data (kg/icd10): what the code set costs at build time and at start-up, its size, and the
latency of a lookup.

    python bench/icd10_bench.py [--runs 5]

Cold figures write into a temporary folder, so the user's cache is left alone; the start-up and lookup
figures use the current build (built first if needed; SPINEKG_HOME and SPINEKG_DATA_DIR are honoured). The in-memory alternative
(loading the ICD-10-CM N-Triples into a pyoxigraph memory store at every start) is measured in a child
process, beside the read-only on-disk store the build writes, in the same run."""

from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import date
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CLAIM = {
    "date_of_service": "2026-05-05",
    "diagnoses": ["M80.08XA", "C79.51", "M84.58XA"],
    "lines": [{"code": "22513", "levels": ["T8"], "diagnosis_pointers": [2, 3]}],
}
MEMORY_LOAD = """
import sys, time, pyoxigraph as ox
started = time.perf_counter()
store = ox.Store()
store.bulk_load(path=sys.argv[1], format=ox.RdfFormat.N_TRIPLES, to_graph=ox.NamedNode("urn:icd10cm"))
print(time.perf_counter() - started, PEAK)
"""
OPEN_STORE = """
import sys, time, pyoxigraph as ox
started = time.perf_counter()
store = ox.Store.read_only(sys.argv[1])
next(iter(store.quads_for_pattern(None, None, None, None)))
print(time.perf_counter() - started, PEAK)
"""
BARE = "import pyoxigraph\nprint(0, PEAK)"
# The peak memory of the child's own image (VmHWM starts afresh at exec; ru_maxrss would carry the parent's).
PEAK = "int(next(ln for ln in open('/proc/self/status') if ln.startswith('VmHWM')).split()[1]) / 1024"


def child(code: str, *args: str) -> tuple[float, float]:
    """A Python child's printed seconds and its own peak memory in MB (Linux: /proc/self/status)."""
    out = subprocess.run([sys.executable, "-c", code.replace("PEAK", PEAK), *args], capture_output=True, text=True, check=True)
    seconds, peak = out.stdout.split()
    return float(seconds), float(peak)


def wall(cmd: list[str], env: dict[str, str] | None = None) -> tuple[float, str]:
    started = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=ROOT, check=False)
    if proc.returncode not in (0, 1):
        raise SystemExit(f"{' '.join(cmd)} failed: {proc.stderr.strip()}")
    return time.perf_counter() - started, proc.stdout


def size(path: Path) -> int:
    if path.is_file():
        return path.stat().st_size
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


def mb(n: float) -> str:
    return f"{n / 1e6:.1f} MB"


def cold(runs: int) -> None:
    """The ICD-10-CM artefacts from nothing: read the package, write the graph, its store and the index."""
    from rdflib import Graph

    from spinekg.kg.icd10 import build as icd_build
    from spinekg.kg.icd10.source import read_package
    from spinekg.kg.load import load_asserted

    asserted: Graph = load_asserted()
    with tempfile.TemporaryDirectory() as tmp:
        started = time.perf_counter()
        package = read_package()  # importing simple_icd_10_cm parses its XML: the largest part
        read = time.perf_counter() - started
        release = icd_build.release_facts(asserted, package.release, package.version)
        started = time.perf_counter()
        built = icd_build.write(package, release, Path(tmp))
        written = time.perf_counter() - started
        print(
            f"ICD-10-CM {package.release} from simple-icd-10-cm {package.version}: {built.entries:,} items "
            f"({built.billable:,} billable), {built.triples:,} triples"
        )
        print(f"  cold: read the package {read:.2f} s; graph + store + index {written:.2f} s")
        print(
            f"  sizes: {built.graph_path.name} {mb(size(built.graph_path))}, store {mb(size(built.store_path))}, "
            f"{built.index_path.name} {mb(size(built.index_path))}"
        )


def per_build(runs: int) -> None:
    """What every (re)build adds once the ICD-10-CM artefacts are cached: the build's store."""
    from spinekg.kg.build import build_graph, write_store
    from spinekg.kg.icd10 import build as icd_build

    build = build_graph()
    icd_store = icd_build.cache_root(build.folder.parent)
    stores = [p / icd_build.STORE_DIR for p in icd_store.iterdir() if (p / icd_build.STORE_DIR).is_dir()]
    if not stores:
        print("  (no cached ICD-10-CM store found)")
        return
    times = []
    with tempfile.TemporaryDirectory() as tmp:
        for _ in range(runs):
            started = time.perf_counter()
            write_store(Path(tmp), build.asserted_path, build.inferred_path, stores[0])
            times.append(time.perf_counter() - started)
    print(
        f"  per build with the ICD-10-CM cache: the store (checkpoint + ontology graphs) {statistics.median(times):.2f} s "
        f"(median of {runs})"
    )


def processes(runs: int) -> None:
    from spinekg.kg.build import build_graph

    build = build_graph()
    python = [sys.executable, "-m", "spinekg.kg.cli"]
    env = dict(os.environ)
    with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False) as f:
        json.dump(CLAIM, f)
        claim = f.name
    try:
        wall(python + ["validate", claim], env)  # once, so that the build folder keeps the answers of the rules
        cached = [wall(python + ["build"], env)[0] for _ in range(runs)]
        validate = [wall(python + ["validate", claim], env)[0] for _ in range(runs)]
        page = [wall(python + ["diagnosis", "M80.08XA"], env)[0] for _ in range(runs)]
        bare = [wall([sys.executable, "-c", "pass"], env)[0] for _ in range(runs)]
    finally:
        os.unlink(claim)
    print(f"cached build (process, median of {runs}): {statistics.median(cached) * 1000:.0f} ms")
    print(
        f"start-up: spinekg validate of one claim with 3 diagnoses (process, median of {runs}): "
        f"{statistics.median(validate) * 1000:.0f} ms"
    )
    print(
        f"  spinekg diagnosis M80.08XA (process): {statistics.median(page) * 1000:.0f} ms; "
        f"bare python: {statistics.median(bare) * 1000:.0f} ms"
    )
    store = build.store_path or build.folder
    print(
        f"build folder: {store.name}/ {mb(size(store))} (all graphs), icd10cm.nt {mb(size(build.folder / 'icd10cm.nt'))}, "
        f"icd10cm.sqlite {mb(size(build.folder / 'icd10cm.sqlite'))}"
    )
    _, bare_mb = child(BARE)
    opened, opened_mb = child(OPEN_STORE, str(store))
    loaded, loaded_mb = child(MEMORY_LOAD, str(build.folder / "icd10cm.nt"))
    print(
        f"opening the on-disk store read-only: {opened * 1000:.0f} ms, peak {opened_mb:.0f} MB (python with pyoxigraph "
        f"alone: {bare_mb:.0f} MB); the alternative, loading icd10cm.nt into memory: {loaded:.2f} s, peak {loaded_mb:.0f} MB"
    )


def lookups(runs: int) -> None:
    from spinekg.kg.facts import Facts
    from spinekg.kg.facts.diagnoses import diagnosis_page
    from spinekg.kg.graph import load_graph
    from spinekg.kg.icd10.store import CodeSet
    from spinekg.kg.queries import get_query

    graph = load_graph(quiet=True)
    assert graph.build is not None
    started = time.perf_counter()
    codes = CodeSet.open(graph.build.folder)
    opened = time.perf_counter() - started
    on = date(2026, 5, 5)
    sample = random.Random(10).sample(
        [n for (n,) in codes._db.execute("SELECT notation FROM entry WHERE billable = 1")],
        20_000,  # noqa: SLF001
    )
    started = time.perf_counter()
    for code in sample:
        codes.lookup(code, on=on)
    first = (time.perf_counter() - started) / len(sample)
    started = time.perf_counter()
    for _ in range(5):
        for code in sample:
            codes.lookup(code, on=on)
    again = (time.perf_counter() - started) / (5 * len(sample))
    print(
        f"lookup (kg/icd10 CodeSet): open {opened * 1000:.1f} ms; first lookup of a code {first * 1e6:.1f} µs, "
        f"remembered {again * 1e6:.2f} µs (20,000 billable codes)"
    )
    query = get_query("diagnosis-descendants")
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        rows = query.run(graph, {"code": "M80"}).rows
        times.append(time.perf_counter() - started)
    label = "SELECT ?t WHERE { <https://w3id.org/spinekg/icd10cm/M8008XA> <http://www.w3.org/2004/02/skos/core#prefLabel> ?t }"
    one = []
    for _ in range(runs * 20):
        started = time.perf_counter()
        graph.select(label)
        one.append(time.perf_counter() - started)
    print(
        f"SPARQL over the store: descendants of M80 ({len(rows)} rows) {statistics.median(times) * 1000:.1f} ms; "
        f"one title {statistics.median(one) * 1e6:.0f} µs"
    )
    facts = Facts(graph)
    started = time.perf_counter()
    diagnosis_page(facts, "M80.08", on)
    page = time.perf_counter() - started
    print(f"GET /diagnoses/M80.08 page (kg/facts, first time): {page * 1000:.1f} ms")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    cold(args.runs)
    per_build(args.runs)
    processes(args.runs)
    lookups(args.runs)


if __name__ == "__main__":
    main()
