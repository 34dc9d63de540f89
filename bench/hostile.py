"""The hostile requests of issue 7 against a real `spinekg serve`, each with its status, time, response
size, the server's memory (its own RSS and the peak RSS of its SPARQL workers) and the worst /healthz
latency seen while it ran (a second thread polls /healthz every 20 ms).

    python -m bench.hostile [--json]

Nothing here is a pass/fail test (tests/ holds those); it prints the figures for the README and the
closing note. Every request goes to loopback only."""

from __future__ import annotations

import argparse
import json
import subprocess
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass
from pathlib import Path

from bench.server import free_port, memory_mb, running, spinekg_serve
from tests.hostile_claims import Listener, alternating, claim, dump


def children(pid: int) -> list[int]:
    """Child processes started by any thread of ``pid`` (the SPARQL workers)."""
    found: list[int] = []
    for task in Path(f"/proc/{pid}/task").glob("*"):
        try:
            found += [int(p) for p in (task / "children").read_text().split()]
        except OSError:
            continue
    return found


@dataclass
class Outcome:
    case: str
    status: int
    seconds: float
    bytes: int
    healthz_max_ms: float
    server_rss_mb: float
    worker_peak_rss_mb: float
    note: str = ""


class Watch:
    """Polls /healthz and samples the workers' RSS while a hostile request runs."""

    def __init__(self, base: str, server_pid: int) -> None:
        self.base, self.pid = base, server_pid
        self.worst_ms = 0.0
        self.worker_peak = 0.0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            started = time.perf_counter()
            try:
                with urllib.request.urlopen(self.base + "/healthz", timeout=30) as response:
                    response.read()
            except OSError:
                pass
            self.worst_ms = max(self.worst_ms, (time.perf_counter() - started) * 1000)
            for child in children(self.pid):
                self.worker_peak = max(self.worker_peak, memory_mb(child))
            time.sleep(0.02)

    def __enter__(self) -> Watch:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join(35)


def request(
    base: str, method: str, path: str, body: bytes | None = None, headers: dict[str, str] | None = None
) -> tuple[int, int]:
    req = urllib.request.Request(base + path, data=body, method=method, headers=headers or {})
    try:
        with urllib.request.urlopen(req, timeout=120) as response:
            return response.status, len(response.read())
    except urllib.error.HTTPError as exc:
        return exc.code, len(exc.read())


def sparql(base: str, query: str, accept: str = "application/sparql-results+json") -> tuple[int, int]:
    return request(base, "POST", "/sparql", query.encode(), {"Content-Type": "application/sparql-query", "Accept": accept})


def cases(base: str, listener: Listener) -> list[tuple[str, Callable[[], tuple[int, int]], str]]:
    json_headers = {"Content-Type": "application/json"}
    target = f"<http://127.0.0.1:{listener.port}/>"
    ssrf = "SELECT * WHERE { BIND('''a\\'''' AS ?x) SERVICE " + target + " { ?s ?p ?o } BIND('z' AS ?y) }"
    concat = "SELECT ?v WHERE { BIND('ab' AS ?v0) " + " ".join(f"BIND(CONCAT(?v{i},?v{i}) AS ?v{i + 1})" for i in range(27))
    concat += " BIND(?v27 AS ?v) }"
    cross = "SELECT ?a ?b ?c WHERE { ?a ?p ?x . ?b ?q ?y . ?c ?r ?z } ORDER BY ?c ?b ?a"
    return [
        (
            "claim: 2,000 alternating primaries (38 kB)",
            lambda: request(base, "POST", "/claims/validate", dump(claim(alternating(2000))), json_headers),
            "",
        ),
        (
            "claim: 50 alternating primaries (the 837P limit)",
            lambda: request(base, "POST", "/claims/validate", dump(claim(alternating(50))), json_headers),
            "",
        ),
        (
            "claim: 300,000 lines (9.9 MB)",
            lambda: request(base, "POST", "/claims/validate", dump(claim([{"code": "22510"}] * 300_000)), json_headers),
            "",
        ),
        (
            "claim: lone surrogate id",
            lambda: request(base, "POST", "/claims/validate", b'{"id":"\\ud800","lines":[{"code":"22510"}]}', json_headers),
            "",
        ),
        (
            "claim: id 10^30",
            lambda: request(
                base,
                "POST",
                "/claims/validate",
                b'{"id":1000000000000000000000000000000,"lines":[{"code":"22510"}]}',
                json_headers,
            ),
            "",
        ),
        (
            "batch: 1,000 claims of 50 lines",
            lambda: request(
                base,
                "POST",
                "/claims/validate/batch",
                json.dumps({"claims": [claim(alternating(50))] * 1000}).encode(),
                json_headers,
            ),
            "",
        ),
        ("sparql: SERVICE behind an escaped long string", lambda: sparql(base, ssrf), "listener"),
        ("sparql: 5,000 nested groups", lambda: sparql(base, "SELECT * WHERE " + "{" * 5000 + "}" * 5000), ""),
        ("sparql: 27 chained CONCAT (134 MB row)", lambda: sparql(base, concat), ""),
        ("sparql: ORDER BY over a 3-way cross join", lambda: sparql(base, cross), ""),
    ]


def flood(base: str, n: int = 60) -> Outcome:
    """n slow SPARQL queries at once; how long /healthz and a lookup wait meanwhile."""
    slow = "SELECT (COUNT(*) AS ?n) WHERE { ?a ?p ?x . ?b ?q ?y }"
    lookups: list[float] = []
    statuses: dict[int, int] = {}
    started = time.perf_counter()
    with ThreadPoolExecutor(n + 1) as pool:
        futures = [pool.submit(sparql, base, slow) for _ in range(n)]
        time.sleep(0.5)
        for _ in range(5):
            t = time.perf_counter()
            request(base, "GET", "/codes/22512/pairs")
            lookups.append((time.perf_counter() - t) * 1000)
            time.sleep(0.1)
        for f in futures:
            status, _ = f.result()
            statuses[status] = statuses.get(status, 0) + 1
    return Outcome(
        f"sparql: {n} concurrent slow queries (statuses {statuses})",
        max(statuses),
        time.perf_counter() - started,
        0,
        max(lookups),
        0.0,
        0.0,
        note="healthz column = worst GET /codes/22512/pairs latency meanwhile",
    )


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    port = free_port()
    with running(spinekg_serve(port), port) as (base, server):
        results = attack(base, server)
    if args.json:
        print(json.dumps([asdict(r) for r in results], indent=2))
        return
    print(f"{'case':<52} {'status':>6} {'time':>9} {'body':>10} {'healthz max':>12} {'server RSS':>11} {'worker peak':>12}")
    for r in results:
        print(
            f"{r.case[:52]:<52} {r.status:>6} {r.seconds:>8.3f}s {r.bytes:>10,} {r.healthz_max_ms:>10.1f}ms "
            f"{r.server_rss_mb:>9.0f}MB {r.worker_peak_rss_mb:>10.0f}MB  {r.note}"
        )


def attack(base: str, server: subprocess.Popen[bytes]) -> list[Outcome]:
    listener = Listener()
    sparql(base, "ASK { ?s ?p ?o }")  # start the workers
    results: list[Outcome] = []
    for name, run, note in cases(base, listener):
        with Watch(base, server.pid) as watch:
            started = time.perf_counter()
            status, size = run()
            seconds = time.perf_counter() - started
        extra = f"listener contacted {listener.contacts} times" if note == "listener" else ""
        results.append(Outcome(name, status, seconds, size, watch.worst_ms, memory_mb(server.pid), watch.worker_peak, extra))
    results.append(flood(base))
    return results


if __name__ == "__main__":
    main()
