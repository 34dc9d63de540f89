"""End to end: `spinekg serve` as a real process, queried with real SPARQL clients (SPARQLWrapper and
rdflib's SPARQLStore) and plain HTTP; then a property-based fuzz of every operation in the OpenAPI
schema (schemathesis) that must find no server error."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import urllib.error
import urllib.request
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
from rdflib import Graph, URIRef
from rdflib.plugins.stores.sparqlstore import SPARQLStore
from SPARQLWrapper import JSON as SW_JSON
from SPARQLWrapper import TURTLE, SPARQLWrapper

from spinekg.kg.namespaces import PREFIXES
from tests.api.conftest import LiveServer

SKG, CPT = PREFIXES["skg"], PREFIXES["cpt"]
pytestmark = pytest.mark.slow


def test_sparqlwrapper_select(live_server: LiveServer) -> None:
    client = SPARQLWrapper(live_server.url + "/sparql")
    client.setQuery(f"SELECT ?primary WHERE {{ <{CPT}22512> <{SKG}addOnFor> ?primary }}")
    client.setReturnFormat(SW_JSON)
    rows = client.query().convert()["results"]["bindings"]
    assert {r["primary"]["value"] for r in rows} == {CPT + "22510", CPT + "22511"}


def test_sparqlwrapper_construct(live_server: LiveServer) -> None:
    client = SPARQLWrapper(live_server.url + "/sparql")
    client.setQuery(f"CONSTRUCT {{ ?a <{SKG}addOnFor> ?p }} WHERE {{ ?a <{SKG}addOnFor> ?p }}")
    client.setReturnFormat(TURTLE)
    graph = Graph().parse(data=client.query().convert(), format="turtle")
    assert (URIRef(CPT + "22515"), URIRef(SKG + "addOnFor"), URIRef(CPT + "22514")) in graph


def test_rdflib_sparqlstore(live_server: LiveServer) -> None:
    store = SPARQLStore(live_server.url + "/sparql", returnFormat="json")
    graph = Graph(store=store)
    rows = list(graph.query(f"SELECT ?v WHERE {{ <{CPT}22510> <{SKG}appliesAtVertebra> ?v }}"))
    assert len(rows) == 19, "C1-C7 and T1-T12"


def test_plain_http_lookups_and_claims(live_server: LiveServer) -> None:
    with urllib.request.urlopen(live_server.url + "/codes/22512/pairs") as response:
        assert {p["code"] for p in json.load(response)["pairs"]} == {"22510", "22511"}
    claim = {
        "date_of_service": "2026-05-05",
        "lines": [{"code": "22510", "levels": ["T10"]}, {"code": "22511", "levels": ["L2"]}],
    }
    request = urllib.request.Request(
        live_server.url + "/claims/validate",
        data=json.dumps(claim).encode(),
        headers={"content-type": "application/json"},
    )
    with urllib.request.urlopen(request) as response:
        verdict = json.load(response)
    assert verdict["valid"] is False
    assert [ln["code"] for ln in verdict["suggestion"]["lines"]] == ["22510", "22512"]


def test_update_refused_over_http(live_server: LiveServer) -> None:
    request = urllib.request.Request(
        live_server.url + "/sparql", data=b"DROP ALL", headers={"content-type": "application/sparql-update"}
    )
    with pytest.raises(urllib.error.HTTPError) as info:
        urllib.request.urlopen(request)
    assert info.value.code == 403


def test_schemathesis_finds_no_server_error(live_server: LiveServer, tmp_path: Path) -> None:
    """Every documented operation is fuzzed, and none fails: read from schemathesis' JUnit report (a
    testcase per operation), not from its console text."""
    command = shutil.which("schemathesis", path=str(Path(sys.executable).parent)) or "schemathesis"
    report = tmp_path / "junit.xml"
    proc = subprocess.run(
        [
            command,
            "run",
            live_server.url + "/openapi.json",
            "--checks",
            "not_a_server_error",
            "--max-examples",
            "25",
            "--request-timeout",
            "10",
            "--generation-deterministic",
            "--no-color",
            "--report",
            "junit",
            "--report-junit-path",
            str(report),
        ],
        capture_output=True,
        text=True,
        timeout=1500,
        cwd=tmp_path,
        check=False,
    )
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-2000:]
    suites = ET.parse(report).getroot()  # noqa: S314 - schemathesis' own report of this run
    assert (suites.get("failures"), suites.get("errors")) == ("0", "0"), proc.stdout[-4000:]
    bad = {"failure", "error", "skipped"}
    outcomes = {case.get("name"): [child.tag for child in case if child.tag in bad] for case in suites.iter("testcase")}
    with urllib.request.urlopen(live_server.url + "/openapi.json") as response:
        paths = json.load(response)["paths"]
    operations = {f"{method.upper()} {path}" for path, item in paths.items() for method in item}
    assert len(operations) >= 14 and operations <= set(outcomes), f"not fuzzed: {sorted(operations - set(outcomes))}"
    failed = {name: tags for name, tags in outcomes.items() if tags}
    assert not failed, failed


def test_named_queries_run_the_same_against_an_external_endpoint(live_server: LiveServer, graph) -> None:
    """spinekg query --endpoint sends the .rq file with its parameters as a VALUES block."""
    from spinekg.kg.queries import get_query
    from spinekg.kg.remote import run_remote

    for name, params in [
        ("pairs-with", {"code": "22512"}),
        ("codes", {"kind": "add-on", "status": "active"}),
        ("codes-at-vertebra", {"procedure": "augmentation", "level": "S1"}),
        ("fee-schedule", {"code": "22511"}),
    ]:
        query = get_query(name)
        columns, rows = run_remote(query, params, live_server.url + "/sparql")
        local = query.run(graph, params).values()
        assert columns == query.run(graph, params).variables
        key = columns[2] if name != "codes" else "code"
        assert sorted(str(r[key]) for r in rows) == sorted(str(r[key]) for r in local), name
