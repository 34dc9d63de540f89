"""A code's page is assembled once (kg/facts): `spinekg code-info CODE --format json` and GET /codes/{CODE}
give the same JSON for every code; tests/cases/code-pages.yaml pins parts of pages (the conflicts section
among them) as JSON and as text; and fixture graphs (tests/fixtures/graphs/) show that the page and the
filters read their policy from the graph: a status R record is contractor-priced, and a region added to
the ontology is a filter value GET /codes accepts."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pyoxigraph as ox
import pytest
from fastapi.testclient import TestClient

from spinekg.api.cli import main as spinekg_main
from spinekg.api.main import create_app
from spinekg.kg.facts import Facts
from spinekg.kg.facts.codes import known_codes
from spinekg.kg.graph import KnowledgeGraph
from spinekg.kg.namespaces import ASSERTED_GRAPH
from tests.api.conftest import TEST_SETTINGS
from tests.api.test_api import lookup
from tests.conftest import FIXTURES, load_cases

CASES = load_cases("code-pages.yaml")


def cli_page(
    graph: KnowledgeGraph, code: str, fmt: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> str:
    """The standard output of `spinekg code-info CODE --format FMT`, on ``graph`` (already loaded)."""
    monkeypatch.setattr("spinekg.kg.graph.load_graph", lambda *args, **kwargs: graph)
    status = spinekg_main(["code-info", code, "--format", fmt])
    out, err = capsys.readouterr()
    assert status == 0, err
    return out


def test_cli_and_api_give_the_same_page_for_every_code(
    client: TestClient, graph: KnowledgeGraph, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    codes = known_codes(Facts(graph))
    assert len(codes) > 20
    for code in codes:
        response = client.get(f"/codes/{code}")
        assert response.status_code == 200, code
        assert json.loads(cli_page(graph, code, "json", monkeypatch, capsys)) == response.json(), code


def test_case_ids_are_unique_and_every_case_checks_something() -> None:
    ids = [c["id"] for c in CASES]
    assert len(ids) == len(set(ids))
    for case in CASES:
        assert set(case) <= {"id", "why", "code", "page", "text"}, case["id"]
        assert case.get("page") or case.get("text"), case["id"]


@pytest.mark.parametrize("case", CASES, ids=[c["id"] for c in CASES])
def test_code_page(
    client: TestClient,
    graph: KnowledgeGraph,
    case: dict[str, Any],
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    page = client.get(f"/codes/{case['code']}").json()
    assert json.loads(cli_page(graph, case["code"], "json", monkeypatch, capsys)) == page
    for path, expected in (case.get("page") or {}).items():
        found = lookup(page, path.split("."))
        assert found == (expected if "*" in path else [expected]), f"{path}: {found}"
    text = cli_page(graph, case["code"], "text", monkeypatch, capsys)
    for line in case.get("text") or []:
        assert line in text, f"{line!r} not in the text page"


# -- policy read from the graph: fixture graphs -------------------------------------------------------


@pytest.fixture(scope="module")
def fixture_graph(graph: KnowledgeGraph) -> KnowledgeGraph:
    """The built graph plus tests/fixtures/graphs/*.ttl in the asserted graph (no SPARQL pool: no build)."""
    assert graph.build is not None
    extended = KnowledgeGraph.from_files(graph.build.asserted_path, graph.build.inferred_path)
    fixtures = sorted((FIXTURES / "graphs").glob("*.ttl"))
    assert fixtures
    for path in fixtures:
        extended.store.load(path=str(path), format=ox.RdfFormat.TURTLE, to_graph=ox.NamedNode(ASSERTED_GRAPH))
    return extended


@pytest.fixture(scope="module")
def fixture_client(fixture_graph: KnowledgeGraph) -> Iterator[TestClient]:
    with TestClient(create_app(TEST_SETTINGS, graph=fixture_graph)) as test_client:
        yield test_client


def test_status_r_is_contractor_priced(
    fixture_client: TestClient, fixture_graph: KnowledgeGraph, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """Status R is contractor-priced in the ontology (skg:contractorPriced on ind:status-R, after the RVU
    file layout): no national amount, though the record has RVUs; the status A year beside it keeps its amounts."""
    page = fixture_client.get("/codes/22511").json()
    restricted, active = page["fee_schedule"][0], page["fee_schedule"][1]
    assert (restricted["year"], restricted["status"]["value"], restricted["contractor_priced"]) == (2099, "R", True)
    assert restricted["rvu"]["total_non_facility"] == 53.11
    assert restricted["national_amount"] == {
        "non_facility": None,
        "facility": None,
        "note": "contractor-priced (status R): the MAC sets the amount",
    }
    assert (active["year"], active["contractor_priced"], active["national_amount"]["non_facility"]) == (2026, False, "1773.92")
    assert json.loads(cli_page(fixture_graph, "22511", "json", monkeypatch, capsys)) == page
    text = cli_page(fixture_graph, "22511", "text", monkeypatch, capsys)
    assert (
        "2099 global status R, global 010, work 7.15, total RVU 53.11 NF / 10.82 F, CF 33.4009: contractor-priced (status R)"
        in text
    )


def test_a_region_added_to_the_graph_is_a_filter_value(client: TestClient, fixture_client: TestClient) -> None:
    """tests/fixtures/graphs/new-region.ttl adds the spinal region lumbosacral-junction: the API accepts it
    with no change to Python, and names it among the known values when it refuses another."""
    unknown = client.get("/codes?region=lumbosacral-junction")
    assert unknown.status_code == 422 and unknown.json()["field"] == "region"
    accepted = fixture_client.get("/codes?region=lumbosacral-junction")
    assert accepted.status_code == 200 and accepted.json() == []  # no code applies there
    refused = fixture_client.get("/codes?region=neck")
    assert refused.status_code == 422
    assert refused.json() == {
        "detail": "region: 'neck' is not a region the graph knows; "
        "known: cervical, coccygeal, lumbar, lumbosacral-junction, sacral, thoracic",
        "field": "region",
    }
    assert fixture_client.get("/codes?region=lumbar&kind=primary").json()[0]["code"] == "22511"
