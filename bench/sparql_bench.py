"""`GET /sparql` of `spinekg serve` beside Oxigraph's own server, on the same data and the same SELECTs.

    python -m bench.sparql_bench [--duration 10] [--rounds 3] [--connections 16] [--oxigraph PATH]
                                 [--http h11|httptools]

The built graph is exported (`spinekg export`, asserted + inferred triples) to a Turtle file that an
in-memory `oxigraph serve` loads (POST /store; it answers over the union of its graphs as spinekg does).
Both servers are pinned to CPU 0 (`taskset`; spinekg's SPARQL worker processes inherit the pin, so the
whole of spinekg runs on that one core) and wrk, pinned to CPU 1, sends each query by GET with the same
connections, duration and Accept (SPARQL JSON), to one server then the other, ``--rounds`` times. The
queries: queries/api/pairs-with.rq with its parameter given as a constant, and a one-triple lookup.
Before timing, the two answers are compared (same variables, same rows). Prints the median req/s and
p50/p99 latency of each, the errors, and spinekg's req/s as a share of Oxigraph's.

Oxigraph's server is the `oxigraph` package on PyPI (its CLI), best in a venv of its own that git
ignores (bench/README.md): `python3 -m venv .venv-bench && echo '*' > .venv-bench/.gitignore &&
.venv-bench/bin/pip install oxigraph`. `--oxigraph` names another binary, else `oxigraph` on PATH, in
.venv-bench/bin or beside this Python."""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.parse
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from statistics import median

from bench.api_bench import parse_wrk, wrk
from bench.server import ROOT, free_port, memory_mb, running, spinekg_serve

ACCEPT = "application/sparql-results+json"
# issue 8's target: at least half of Oxigraph's requests per second, with a p99 latency of 15 ms at most
TARGET_SHARE, TARGET_P99_MS = 0.5, 15.0
Solutions = tuple[list[str], list[tuple[tuple[str, str], ...]]]


def pairs_with(code: str) -> str:
    """queries/api/pairs-with.rq as the API runs it, its parameter given as a constant (VALUES)."""
    text = (ROOT / "queries" / "api" / "pairs-with.rq").read_text()
    text = "\n".join(line for line in text.splitlines() if not line.startswith("#+"))
    return re.sub(r"WHERE\s*\{", lambda m: m.group(0) + f'\n  VALUES ?code {{ "{code}" }}', text, count=1)


LOOKUP = (
    "PREFIX rdfs: <http://www.w3.org/2000/01/rdf-schema#>\n"
    "SELECT ?label WHERE { <https://w3id.org/spinekg/code/cpt/22512> rdfs:label ?label }"
)
QUERIES = {"pairs-with 22512": pairs_with("22512"), "label of 22512": LOOKUP}


def find_oxigraph(given: str | None) -> str:
    for candidate in (
        given,
        shutil.which("oxigraph"),
        str(ROOT / ".venv-bench" / "bin" / "oxigraph"),
        str(Path(sys.executable).parent / "oxigraph"),
    ):
        if candidate and Path(candidate).is_file() and os.access(candidate, os.X_OK):
            return candidate
    sys.exit("Oxigraph's server was not found: install the oxigraph package from PyPI (bench/README.md) or give --oxigraph")


def export(path: Path) -> None:
    """The built graph (asserted + inferred) as one Turtle file, as `spinekg export` writes it."""
    subprocess.run([sys.executable, "-m", "spinekg.api.cli", "export", "-f", "ttl", "-o", str(path)], cwd=ROOT, check=True)


@contextmanager
def oxigraph_serve(binary: str, data: Path, port: int, pin: list[str]) -> Iterator[tuple[str, subprocess.Popen[bytes]]]:
    """An in-memory `oxigraph serve` pinned by ``pin``, loaded with ``data``; stopped afterwards."""
    base = f"http://127.0.0.1:{port}"
    server = subprocess.Popen(
        [*pin, binary, "serve", "--bind", f"127.0.0.1:{port}", "--union-default-graph"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        for _ in range(300):
            try:
                load = urllib.request.Request(base + "/store?default", data=data.read_bytes(), method="POST")
                load.add_header("Content-Type", "text/turtle")
                urllib.request.urlopen(load, timeout=30)
                break
            except OSError:
                if server.poll() is not None:
                    sys.exit(f"oxigraph serve stopped (exit status {server.returncode})")
                time.sleep(0.1)
        else:
            sys.exit("oxigraph serve did not answer")
        yield base, server
    finally:
        server.terminate()
        server.wait(15)


def rss_with_children(pid: int) -> float:
    """The RSS of a process and its children (spinekg's SPARQL workers), in MiB."""
    children: set[int] = set()
    for task in Path(f"/proc/{pid}/task").glob("*"):  # each thread's: the workers are started off the loop
        with contextlib.suppress(OSError):
            children.update(int(child) for child in (task / "children").read_text().split())
    return memory_mb(pid) + sum(memory_mb(child) for child in children)


def query_url(endpoint: str, query: str) -> str:
    return f"{endpoint}?{urllib.parse.urlencode({'query': query})}"


def solutions(url: str) -> Solutions:
    """Variables and rows (sorted) of a SPARQL JSON answer, to check both servers answer alike."""
    request = urllib.request.Request(url, headers={"Accept": ACCEPT})
    with urllib.request.urlopen(request, timeout=30) as response:
        data = json.load(response)
    variables = list(data["head"]["vars"])
    # a GROUP_CONCAT lists its values in no set order (" | " joins them in our queries): compare them as sets
    rows = sorted(
        tuple(sorted((k, " | ".join(sorted(v["value"].split(" | ")))) for k, v in row.items()))
        for row in data["results"]["bindings"]
    )
    return variables, rows


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--duration", type=int, default=10, help="seconds of each wrk run")
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--rounds", type=int, default=3, help="runs of each query on each server, alternating; medians shown")
    parser.add_argument("--oxigraph", help="the oxigraph binary (default: found on PATH or in .venv-bench/bin)")
    parser.add_argument("--http", choices=("h11", "httptools"), default="h11", help="uvicorn's parser (spinekg serve: h11)")
    args = parser.parse_args()
    if not shutil.which("wrk"):
        sys.exit("wrk is not installed (Debian: apt install wrk)")
    binary = find_oxigraph(args.oxigraph)
    two_cpus = (os.cpu_count() or 1) >= 2 and shutil.which("taskset") is not None
    pin_server = ["taskset", "-c", "0"] if two_cpus else []
    pin_wrk = ["taskset", "-c", "1"] if two_cpus else []
    runs: dict[tuple[str, str], list[dict[str, float]]] = {}
    answers: dict[tuple[str, str], Solutions] = {}
    with tempfile.TemporaryDirectory() as tmp, contextlib.ExitStack() as stack:
        data = Path(tmp) / "spinekg.ttl"
        export(data)
        script = Path(tmp) / "accept.lua"
        script.write_text(f'wrk.headers["Accept"] = "{ACCEPT}"\n')
        # Both servers stay up, pinned to the same CPU, and take turns: a run of one then a run of the other,
        # so that whatever else the machine does weighs on both alike. The idle one costs next to nothing.
        port = free_port()
        oxigraph_base, oxigraph = stack.enter_context(oxigraph_serve(binary, data, port, pin_server))
        port = free_port()
        pin_spinekg = [*pin_server, "env", f"SPINEKG_HTTP_PARSER={args.http}"]
        spinekg_base, spinekg = stack.enter_context(running(spinekg_serve(port), port, pin_spinekg))
        servers = {"oxigraph": (oxigraph_base + "/query", oxigraph), "spinekg": (spinekg_base + "/sparql", spinekg)}
        for label, query in QUERIES.items():
            for name, (endpoint, _) in servers.items():
                url = query_url(endpoint, query)
                answers[name, label] = solutions(url)
                wrk(pin_wrk, url, script, 4, 2)  # warm up: caches, workers
            for _ in range(args.rounds):
                for name, (endpoint, server) in servers.items():
                    out = wrk(pin_wrk, query_url(endpoint, query), script, args.connections, args.duration)
                    runs.setdefault((name, label), []).append(parse_wrk(out) | {"rss_mb": rss_with_children(server.pid)})
    for label in QUERIES:
        if answers["oxigraph", label] != answers["spinekg", label]:
            sys.exit(f"the two servers answer {label!r} differently")
    version = subprocess.run([binary, "--version"], capture_output=True, text=True, check=False).stdout.strip()
    where = " on CPU 0, wrk on CPU 1" if pin_server else ""
    print(
        f"{version} (in memory) vs spinekg serve ({args.http}; its SPARQL workers included, in the RSS too){where}; "
        f"{args.connections} connections, {args.rounds} x {args.duration} s each, alternating, medians; Accept: {ACCEPT}"
    )
    for label in QUERIES:
        rows = len(answers["spinekg", label][1])
        print(f"  {label} ({rows} rows)")
        rps = {}
        for name in ("oxigraph", "spinekg"):
            done = runs[name, label]
            each = ", ".join(f"{r['rps']:,.0f}" for r in done)
            rps[name] = median([r["rps"] for r in done])
            print(
                f"    {name:<9} {rps[name]:>8,.0f} req/s  p50 {median([r['p50'] for r in done]):6.2f} ms  "
                f"p99 {median([r['p99'] for r in done]):6.2f} ms  errors {sum(r['errors'] for r in done):.0f}  "
                f"RSS {done[-1]['rss_mb']:.0f} MB   (runs: {each})"
            )
        share, p99 = rps["spinekg"] / rps["oxigraph"], median([r["p99"] for r in runs["spinekg", label]])
        met = "met" if share >= TARGET_SHARE and p99 <= TARGET_P99_MS else "not met"
        print(f"    spinekg / oxigraph: {share:.0%}  (target >= {TARGET_SHARE:.0%} with p99 <= {TARGET_P99_MS:g} ms: {met})")


if __name__ == "__main__":
    main()
