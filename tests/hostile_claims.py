"""Hostile claims and the tools around hostile requests (a latency poller, an SSRF listener), shared by
tests/api (pass/fail) and bench/ (figures): one definition of each, so the benchmarks measure exactly
what the tests check."""

from __future__ import annotations

import json
import socket
import threading
from typing import Any

VERTEBRAE = [f"C{i}" for i in range(1, 8)] + [f"T{i}" for i in range(1, 13)] + [f"L{i}" for i in range(1, 7)]
VERTEBRAE += [f"S{i}" for i in range(1, 6)] + ["Co"]
DEEP = b"[" * 10_000 + b"]" * 10_000


def claim(lines: list[dict[str, Any]], **extra: Any) -> dict[str, Any]:
    return {"date_of_service": "2026-05-05", **extra, "lines": lines}


def alternating(n: int) -> list[dict[str, Any]]:
    """n lines alternating two primaries of one family: once a pairwise blow-up of findings."""
    return [{"code": "22510" if i % 2 == 0 else "22511"} for i in range(n)]


def worst(n: int) -> list[dict[str, Any]]:
    """Lines that each trip many rules: every level, four modifiers, units that match nothing."""
    codes = ("22513", "22512", "20225", "77012", "22511")
    return [{"code": codes[i % 5], "modifiers": ["50", "LT", "RT", "80"], "units": 3, "levels": VERTEBRAE} for i in range(n)]


def dump(obj: Any) -> bytes:
    return json.dumps(obj, separators=(",", ":")).encode()


# A client that polls a URL until its stdin closes and prints the latencies (ms) as JSON: run beside
# hostile requests to see whether the server keeps answering.
POLLER = """
import json, sys, threading, time, urllib.request
url, latencies, stop = sys.argv[1], [], threading.Event()
threading.Thread(target=lambda: (sys.stdin.read(), stop.set()), daemon=True).start()
while not stop.is_set():
    started = time.perf_counter()
    with urllib.request.urlopen(url, timeout=30) as response:
        response.read()
    latencies.append((time.perf_counter() - started) * 1000)
    stop.wait(0.01)
print(json.dumps(latencies))
"""


class Listener:
    """A TCP listener on a free loopback port that counts connections: the SSRF target."""

    def __init__(self) -> None:
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(64)
        self.port = int(self.sock.getsockname()[1])
        self.contacts = 0
        self._thread = threading.Thread(target=self._accept, daemon=True)
        self._thread.start()

    def _accept(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            self.contacts += 1
            conn.close()

    def close(self) -> None:
        self.sock.close()
