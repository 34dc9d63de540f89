"""Hostile claims against a real `spinekg serve`: for each request its status, time and response size,
the server's resident memory (now and at its peak), and the /healthz latency seen while it ran (a
second thread polls /healthz every 10 ms).

    python -m bench.claims_hostile [--json]

It prints figures; tests/api/test_claims_hostile.py holds the pass/fail checks. Loopback only."""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass

from bench.server import free_port, memory_mb, running, spinekg_serve
from tests.hostile_claims import DEEP, POLLER, alternating, claim, dump, worst

JSON_HEADERS = {"Content-Type": "application/json"}


def post(base: str, path: str, body: bytes) -> tuple[int, int]:
    """Status and size of the answer, read in pieces and dropped (the client keeps no big buffer)."""
    req = urllib.request.Request(base + path, data=body, headers=JSON_HEADERS, method="POST")
    try:
        with urllib.request.urlopen(req, timeout=600) as response:
            size = 0
            while piece := response.read(1 << 20):
                size += len(piece)
            return response.status, size
    except urllib.error.HTTPError as exc:
        return exc.code, len(exc.read())


@dataclass
class Outcome:
    case: str
    request_bytes: int
    status: int
    seconds: float
    response_bytes: int
    rss_mb: float
    rss_peak_mb: float
    healthz_p50_ms: float
    healthz_max_ms: float
    healthz_polls: int


class Watch:
    """Polls /healthz every 10 ms while a request runs, from a process of its own (so that the
    client threads of this process do not delay the polls)."""

    def __init__(self, base: str) -> None:
        self.base = base
        self.latencies: list[float] = []
        self._process: subprocess.Popen[str] | None = None

    def __enter__(self) -> Watch:
        self._process = subprocess.Popen(
            [sys.executable, "-c", POLLER, self.base + "/healthz"], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
        )
        time.sleep(0.3)
        return self

    def __exit__(self, *_: object) -> None:
        assert self._process is not None
        out, _ = self._process.communicate("", timeout=60)
        self.latencies = json.loads(out)


def cases() -> list[tuple[str, str, bytes]]:
    big = dump({"claims": [claim(worst(50), id=f"w{i}") for i in range(1000)]})
    full_alternating = dump({"claims": [claim(alternating(50), id=i) for i in range(1000)]})
    return [
        ("claim: 2,000 alternating primaries", "/claims/validate", dump(claim(alternating(2000)))),
        ("claim: 300,000 lines", "/claims/validate", dump(claim([{"code": "22510"}] * 300_000))),
        ("claim: 50 alternating primaries", "/claims/validate", dump(claim(alternating(50)))),
        ("claim: 50 worst-case lines", "/claims/validate", dump(claim(worst(50)))),
        ("claim: lone surrogate id", "/claims/validate", b'{"id":"\\ud800","lines":[{"code":"22510"}]}'),
        ("claim: id 10^30", "/claims/validate", b'{"id":1000000000000000000000000000000,"lines":[{"code":"22510"}]}'),
        ("claim: units 1e400", "/claims/validate", b'{"lines":[{"code":"22510","units":1e400}]}'),
        ("claim: 10,000-deep array in an unknown field", "/claims/validate", b'{"lines":[{"code":"22510"}],"x":' + DEEP + b"}"),
        ("claim: 5 MB id", "/claims/validate", b'{"id":"' + b"a" * 5_000_000 + b'","lines":[{"code":"22510"}]}'),
        ("batch: 1,000 claims x 50 alternating lines", "/claims/validate/batch", full_alternating),
        ("batch: 1,000 claims x 50 worst-case lines", "/claims/validate/batch", big),
        ("batch: worst-case claims up to the 2 MiB cap", "/claims/validate/batch", _fill(2 * 1024 * 1024)),
    ]


def _fill(limit: int) -> bytes:
    one = dump(claim(worst(50)))
    n = (limit - 20) // (len(one) + 1)
    return dump({"claims": [claim(worst(50))] * n})


def run(base: str, pid: int, name: str, path: str, body: bytes) -> Outcome:
    with Watch(base) as watch:
        started = time.perf_counter()
        status, size = post(base, path, body)
        seconds = time.perf_counter() - started
    lat = watch.latencies or [0.0]
    return Outcome(
        name, len(body), status, seconds, size, memory_mb(pid, "VmRSS"), memory_mb(pid, "VmHWM"),
        statistics.median(lat), max(lat), len(watch.latencies),
    )  # fmt: skip


def concurrent_batches(base: str, pid: int, n: int = 6) -> Outcome:
    """n worst-case batches at once (more than the claim threads): /healthz meanwhile."""
    body = _fill(2 * 1024 * 1024)
    with Watch(base) as watch, ThreadPoolExecutor(n) as pool:
        started = time.perf_counter()
        results = list(pool.map(lambda _: post(base, "/claims/validate/batch", body), range(n)))
        seconds = time.perf_counter() - started
    lat = watch.latencies or [0.0]
    return Outcome(
        f"{n} such batches at once", len(body) * n, max(s for s, _ in results), seconds, sum(b for _, b in results),
        memory_mb(pid, "VmRSS"), memory_mb(pid, "VmHWM"), statistics.median(lat), max(lat), len(watch.latencies),
    )  # fmt: skip


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    port = free_port()
    with running(spinekg_serve(port), port) as (base, server):
        results = [run(base, server.pid, name, path, body) for name, path, body in cases()]
        results.append(concurrent_batches(base, server.pid))
    if args.json:
        print(json.dumps([asdict(r) for r in results], indent=2))
        return
    print(
        f"{'case':<46} {'request':>10} {'status':>6} {'time':>8} {'response':>11} {'RSS':>6} {'peak':>6} "
        f"{'healthz p50':>11} {'max':>8} {'polls':>5}"
    )
    for r in results:
        print(
            f"{r.case[:46]:<46} {r.request_bytes:>10,} {r.status:>6} {r.seconds:>7.3f}s {r.response_bytes:>11,} "
            f"{r.rss_mb:>5.0f}M {r.rss_peak_mb:>5.0f}M {r.healthz_p50_ms:>9.1f}ms {r.healthz_max_ms:>6.1f}ms {r.healthz_polls:>5}"
        )


if __name__ == "__main__":
    main()
