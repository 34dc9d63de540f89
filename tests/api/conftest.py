from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from spinekg.api.main import create_app
from spinekg.api.settings import Settings
from spinekg.kg.graph import KnowledgeGraph
from tests.conftest import REPO

TEST_SETTINGS = Settings(sparql_timeout_seconds=3, sparql_max_rows=50, batch_max_claims=5, sparql_workers=1)


@pytest.fixture(scope="session")
def client(graph: KnowledgeGraph) -> Iterator[TestClient]:
    with TestClient(create_app(TEST_SETTINGS, graph=graph)) as test_client:
        yield test_client


@dataclass
class LiveServer:
    url: str
    process: subprocess.Popen[bytes]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture(scope="session")
def live_server(graph: KnowledgeGraph) -> Iterator[LiveServer]:
    """`spinekg serve` as a real process on a free loopback port (the graph is already built)."""
    port = _free_port()
    env = dict(os.environ, SPINEKG_SPARQL_TIMEOUT_SECONDS="3", SPINEKG_SPARQL_WORKERS="1")
    script = Path(sys.executable).with_name("spinekg")
    process = subprocess.Popen(
        [str(script), "serve", "--port", str(port), "--log-level", "warning"],
        cwd=REPO,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"spinekg serve exited: {process.stderr.read().decode()[-2000:] if process.stderr else ''}")
        try:
            with urllib.request.urlopen(url + "/healthz", timeout=2) as response:
                if response.status == 200:
                    break
        except OSError:
            time.sleep(0.2)
    else:
        process.kill()
        raise RuntimeError("spinekg serve did not answer /healthz within 120 s")
    yield LiveServer(url, process)
    process.send_signal(signal.SIGINT)
    try:
        process.wait(15)
    except subprocess.TimeoutExpired:
        process.kill()
