"""What the HTTP benchmarks share: a free loopback port, a process's memory from /proc, and a
`spinekg serve` (or another ASGI app) started for the length of a `with` block."""

from __future__ import annotations

import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def memory_mb(pid: int, field: str = "VmRSS") -> float:
    """A memory figure of /proc/PID/status in MiB (VmRSS now, VmHWM the peak); 0 when the process is gone."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return 0.0


@contextmanager
def running(command: list[str], port: int, pin: list[str] | None = None) -> Iterator[tuple[str, subprocess.Popen[bytes]]]:
    """Start ``command`` (which listens on ``port``), wait until /healthz answers, stop it afterwards."""
    server = subprocess.Popen([*(pin or []), *command], cwd=ROOT, stdout=subprocess.DEVNULL)
    base = f"http://127.0.0.1:{port}"
    try:
        for _ in range(600):
            try:
                urllib.request.urlopen(base + "/healthz", timeout=1)
                break
            except OSError:
                time.sleep(0.2)
        yield base, server
    finally:
        server.terminate()
        server.wait(15)


def spinekg_serve(port: int) -> list[str]:
    return [sys.executable, "-m", "spinekg.api.cli", "serve", "--port", str(port), "--log-level", "warning", "--no-access-log"]
