"""The graph in an external SPARQL store (SPINEKG_SPARQL_ENDPOINT): Oxigraph's own server is started,
`spinekg push` sends the build there, and lookups, code pages, claim verdicts and an API answer are the
same as from the embedded store."""

from __future__ import annotations

import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from spinekg.api.main import create_app
from spinekg.kg.claims import ClaimValidator
from spinekg.kg.claims.sample import random_claims
from spinekg.kg.facts import Facts, page
from spinekg.kg.graph import KnowledgeGraph, load_graph
from spinekg.kg.queries import get_query
from spinekg.kg.remote import RemoteGraph
from tests.api.conftest import TEST_SETTINGS
from tests.conftest import REPO

OXIGRAPH = shutil.which("oxigraph") or str(Path(sys.executable).parent / "oxigraph")
pytestmark = pytest.mark.skipif(not Path(OXIGRAPH).exists(), reason="Oxigraph's server (pip install oxigraph) is not installed")
LOOKUPS: list[tuple[str, dict[str, str]]] = [
    ("pairs-with", {"code": "22512"}),
    ("codes", {}),
    ("vertebra", {"level": "L6"}),
    ("codes-at-vertebra", {"level": "S1"}),
    ("fee-schedule", {"code": "22511"}),
]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture(scope="module")
def remote(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RemoteGraph]:
    port = _free_port()
    base = f"http://127.0.0.1:{port}"
    location = tmp_path_factory.mktemp("oxigraph")
    server = subprocess.Popen(
        [OXIGRAPH, "serve", "--location", str(location), "--bind", f"127.0.0.1:{port}", "--union-default-graph"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        for _ in range(100):
            try:
                urllib.request.urlopen(base + "/query?query=ASK%7B%7D", timeout=1).read()  # noqa: S310 - loopback
                break
            except OSError:
                time.sleep(0.1)
        pushed = subprocess.run(
            [sys.executable, "-m", "spinekg.kg.cli", "push", base + "/store"],
            cwd=REPO,
            capture_output=True,
            text=True,
            check=False,
        )
        assert pushed.returncode == 0 and "pushed" in pushed.stdout, pushed.stderr
        with pytest.MonkeyPatch.context() as patch:
            patch.setenv("SPINEKG_SPARQL_ENDPOINT", base + "/query")
            graph = load_graph(quiet=True)
            assert isinstance(graph, RemoteGraph)
            yield graph
    finally:
        server.terminate()
        server.wait(10)


def _rows(graph: KnowledgeGraph, name: str, params: dict[str, str]) -> list[dict[str, Any]]:
    rows = get_query(name).run(graph, params).values()
    # a GROUP_CONCAT lists its values in no set order: compare them as sets
    return sorted(
        (
            {k: " | ".join(sorted(v.split(" | "))) if isinstance(v, str) and " | " in v else v for k, v in row.items()}
            for row in rows
        ),
        key=repr,
    )


@pytest.mark.parametrize(("name", "params"), LOOKUPS, ids=[n for n, _ in LOOKUPS])
def test_lookups_are_the_same(remote: RemoteGraph, graph: KnowledgeGraph, name: str, params: dict[str, str]) -> None:
    assert _rows(remote, name, params) == _rows(graph, name, params)
    assert _rows(remote, name, params), "the lookup answers something"


def test_claims_are_judged_the_same(remote: RemoteGraph, graph: KnowledgeGraph) -> None:
    local, far = ClaimValidator(graph), ClaimValidator(remote)
    assert [r.id for r in far.rules] == [r.id for r in local.rules]
    for claim in random_claims(local, 300, seed=23, mistake_rate=0.4):
        assert far.validate(claim) == local.validate(claim), claim


def test_the_count_and_a_code_page(remote: RemoteGraph, graph: KnowledgeGraph) -> None:
    assert remote.count() == graph.count() > 5000
    assert page.code_page(Facts(remote), "22514")["code"] == "22514"


def test_the_api_answers_from_the_store(remote: RemoteGraph, graph: KnowledgeGraph) -> None:
    with TestClient(create_app(TEST_SETTINGS, graph=remote)) as far, TestClient(create_app(TEST_SETTINGS, graph=graph)) as near:
        for path in ("/codes/22512/pairs", "/vertebrae/L6", "/claims/rules"):
            assert far.get(path).json() == near.get(path).json(), path
