"""The SPARQL 1.1 Protocol as clients speak it: the dataset (FROM / FROM NAMED and default-graph-uri /
named-graph-uri), content negotiation with q-values, the `format` / `output` parameters of SPARQLWrapper,
Virtuoso and Fuseki for every query form, the service description in three syntaxes without echoing
the Host header; then SPARQLWrapper against a live server, and `spinekg query --endpoint` (run_remote)
giving the same typed rows as the embedded store."""

from __future__ import annotations

import re
import warnings
from collections.abc import Iterator
from datetime import date
from decimal import Decimal
from typing import Any
from urllib.parse import urlencode

import pytest
from fastapi.testclient import TestClient
from rdflib import Graph, URIRef
from SPARQLWrapper import CSV, JSON, JSONLD, N3, POST, RDFXML, TSV, TURTLE, XML, SPARQLWrapper

from spinekg.api.main import create_app
from spinekg.api.settings import Settings
from spinekg.kg.graph import KnowledgeGraph
from spinekg.kg.namespaces import ASSERTED_GRAPH, INFERRED_GRAPH, PREFIXES
from spinekg.kg.queries import get_query
from spinekg.kg.remote import run_remote
from tests.api.conftest import LiveServer

SKG, CPT = PREFIXES["skg"], PREFIXES["cpt"]
COUNT = "SELECT (COUNT(*) AS ?n) {from} WHERE {{ {pattern} }}"
TRIPLE, QUAD = "?s ?p ?o", "GRAPH ?g { ?s ?p ?o }"
SELECT = f"SELECT ?primary WHERE {{ <{CPT}22512> <{SKG}addOnFor> ?primary }}"
ASK = f"ASK {{ <{CPT}22512> <{SKG}addOnFor> <{CPT}22510> }}"
CONSTRUCT = f"CONSTRUCT {{ ?a <{SKG}addOnFor> ?p }} WHERE {{ ?a <{SKG}addOnFor> ?p }}"
DESCRIBE = f"DESCRIBE <{CPT}22515> FROM <{ASSERTED_GRAPH}>"

FORM_HEADERS = {"content-type": "application/x-www-form-urlencoded"}
RESULTS_JSON, RESULTS_XML = "application/sparql-results+json", "application/sparql-results+xml"
TEXT_CSV, TEXT_TSV = "text/csv", "text/tab-separated-values"
TEXT_TURTLE, NTRIPLES, LD_JSON, RDF_XML = "text/turtle", "application/n-triples", "application/ld+json", "application/rdf+xml"


def count(response: Any) -> int:
    assert response.status_code == 200, response.text[:300]
    return int(response.json()["results"]["bindings"][0]["n"]["value"])


def error(response: Any, status: int, field: str) -> str:
    assert response.status_code == status, response.text[:300]
    body = response.json()
    assert body["field"] == field and isinstance(body["detail"], str) and body["detail"]
    return str(body["detail"])


def media(response: Any) -> str:
    assert response.status_code == 200, response.text[:300]
    return str(response.headers["content-type"].split(";")[0])


# ---------------------------------------------------------------- the dataset


@pytest.fixture(scope="module")
def sizes(graph: KnowledgeGraph) -> dict[str, int]:
    return {"asserted": graph.count(ASSERTED_GRAPH), "inferred": graph.count(INFERRED_GRAPH), "all": graph.count()}


@pytest.mark.parametrize(
    "dataset,pattern,expected",
    [
        ("", TRIPLE, "all"),
        ("", QUAD, "all"),
        ("FROM <urn:nothing>", TRIPLE, 0),
        (f"FROM <{INFERRED_GRAPH}>", TRIPLE, "inferred"),
        (f"FROM <{ASSERTED_GRAPH}>", TRIPLE, "asserted"),
        (f"FROM <{INFERRED_GRAPH}>", QUAD, 0),
        (f"FROM NAMED <{INFERRED_GRAPH}>", QUAD, "inferred"),
        (f"FROM NAMED <{INFERRED_GRAPH}>", TRIPLE, 0),
        (f"FROM <{ASSERTED_GRAPH}> FROM NAMED <{INFERRED_GRAPH}>", QUAD, "inferred"),
    ],
)
def test_from_and_from_named_are_honoured(
    client: TestClient, sizes: dict[str, int], dataset: str, pattern: str, expected: str | int
) -> None:
    query = COUNT.format(**{"from": dataset, "pattern": pattern})
    want = sizes[expected] if isinstance(expected, str) else expected
    assert count(client.get("/sparql", params={"query": query})) == want


@pytest.mark.parametrize("method", ["get", "form", "body"])
def test_protocol_dataset_parameters_win_over_the_query(client: TestClient, sizes: dict[str, int], method: str) -> None:
    def ask(query: str, params: list[tuple[str, str]]) -> int:
        if method == "get":
            return count(client.get("/sparql", params=[("query", query), *params]))
        if method == "form":
            return count(client.post("/sparql", content=urlencode([("query", query), *params]), headers=FORM_HEADERS))
        return count(client.post("/sparql", params=params, content=query, headers={"content-type": "application/sparql-query"}))

    nothing = COUNT.format(**{"from": "FROM <urn:nothing>", "pattern": TRIPLE})
    plain = COUNT.format(**{"from": "", "pattern": TRIPLE})
    quads = COUNT.format(**{"from": "", "pattern": QUAD})
    assert ask(nothing, [("default-graph-uri", INFERRED_GRAPH)]) == sizes["inferred"]
    assert ask(plain, [("default-graph-uri", ASSERTED_GRAPH)]) == sizes["asserted"]
    # the two graphs hold no triple in common (tests/ontology/test_reasoner.py); "all" has the ICD-10-CM graph too
    both = sizes["asserted"] + sizes["inferred"]
    assert ask(plain, [("default-graph-uri", ASSERTED_GRAPH), ("default-graph-uri", INFERRED_GRAPH)]) == both
    assert ask(plain, [("default-graph-uri", "urn:nothing")]) == 0
    # named-graph-uri alone: GRAPH sees those graphs, the default graph is empty
    assert ask(quads, [("named-graph-uri", INFERRED_GRAPH)]) == sizes["inferred"]
    assert ask(plain, [("named-graph-uri", INFERRED_GRAPH)]) == 0


def test_a_graph_name_must_be_an_iri(client: TestClient) -> None:
    response = client.get("/sparql", params={"query": "ASK {}", "default-graph-uri": "not an iri"})
    assert "not an absolute IRI" in error(response, 400, "default-graph-uri")
    response = client.get("/sparql", params={"query": "ASK {}", "named-graph-uri": "<urn:x>"})
    error(response, 400, "named-graph-uri")


def test_one_query_per_request(client: TestClient) -> None:
    error(client.get("/sparql", params=[("query", "ASK {}"), ("query", "ASK {}")]), 400, "query")


# ---------------------------------------------------------------- content negotiation


@pytest.mark.parametrize(
    "query,accept,expected",
    [
        (SELECT, None, RESULTS_JSON),
        (SELECT, "*/*", RESULTS_JSON),
        (SELECT, f"{RESULTS_JSON};q=0, {TEXT_CSV}", TEXT_CSV),
        (SELECT, f"{RESULTS_JSON};q=0.0, */*", RESULTS_XML),
        (SELECT, f"{TEXT_CSV};q=0.5, {TEXT_TSV}", TEXT_TSV),
        (SELECT, f"*/*;q=0.1, {RESULTS_XML};q=0.9", RESULTS_XML),
        (SELECT, "application/json", "application/json"),
        (SELECT, "text/*", TEXT_CSV),
        (SELECT, "garbage, text/csv", TEXT_CSV),
        (SELECT, "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8", "application/xml"),
        (ASK, TEXT_CSV, TEXT_CSV),
        (ASK, f"{RESULTS_XML}, {RESULTS_JSON};q=0.5", RESULTS_XML),
        (CONSTRUCT, None, TEXT_TURTLE),
        (CONSTRUCT, f"{TEXT_TURTLE};q=0, {NTRIPLES}", NTRIPLES),
        (CONSTRUCT, f"{RDF_XML};q=0.5, {LD_JSON};q=0.9", LD_JSON),
        (CONSTRUCT, "application/*", LD_JSON),
        (DESCRIBE, RDF_XML, RDF_XML),
    ],
)
def test_accept_with_q_values(client: TestClient, query: str, accept: str | None, expected: str) -> None:
    headers = {"accept": accept} if accept else {}
    response = client.post("/sparql", content=query, headers={"content-type": "application/sparql-query", **headers})
    assert media(response) == expected


@pytest.mark.parametrize(
    "query,accept",
    [
        (SELECT, f"{RESULTS_JSON};q=0"),
        (SELECT, f"{TEXT_CSV};q=0, */*;q=0"),
        (SELECT, "image/png"),
        (SELECT, TEXT_TURTLE),
        (CONSTRUCT, f"{TEXT_TURTLE};q=0, */*;q=0"),
        (CONSTRUCT, RESULTS_JSON),
    ],
)
def test_nothing_acceptable_is_406(client: TestClient, query: str, accept: str) -> None:
    response = client.get("/sparql", params={"query": query}, headers={"accept": accept})
    assert "acceptable" in error(response, 406, "Accept")


# ---------------------------------------------------------------- format / output / results parameters

FORMAT_CASES = [
    # SELECT and ASK: SPARQL results
    (SELECT, [("format", "json")], RESULTS_JSON),
    (SELECT, [("format", "xml")], RESULTS_XML),
    (SELECT, [("format", "csv")], TEXT_CSV),
    (SELECT, [("format", "tsv"), ("format", TEXT_TSV)], TEXT_TSV),  # SPARQLWrapper repeats tsv with its media type
    (SELECT, [("output", "csv")], TEXT_CSV),
    (SELECT, [("results", "xml")], RESULTS_XML),
    (SELECT, [("format", RESULTS_XML)], RESULTS_XML),
    (SELECT, [("format", "")], RESULTS_JSON),
    (SELECT, [("format", ""), ("format", "csv")], TEXT_CSV),
    (SELECT, [("format", "csv"), ("format", "json")], TEXT_CSV),  # the first usable one wins, in GET and POST alike
    (SELECT, [("format", "turtle")], RESULTS_JSON),  # a graph format: Accept decides (here none: the default)
    (SELECT, [("format", "json-ld"), ("format", LD_JSON)], RESULTS_JSON),
    (ASK, [("format", "xml")], RESULTS_XML),
    (ASK, [("format", "json"), ("output", "json"), ("results", "json")], RESULTS_JSON),
    (ASK, [("format", "csv")], TEXT_CSV),
    # CONSTRUCT and DESCRIBE: RDF; `xml` is RDF/XML here, `json` JSON-LD
    (CONSTRUCT, [("format", "xml")], RDF_XML),
    (CONSTRUCT, [("format", "rdf")], RDF_XML),
    (CONSTRUCT, [("format", "rdf+xml"), ("format", RDF_XML)], RDF_XML),
    (CONSTRUCT, [("format", "json-ld"), ("format", LD_JSON)], LD_JSON),
    (CONSTRUCT, [("format", "json")], LD_JSON),
    (CONSTRUCT, [("format", "turtle")], TEXT_TURTLE),
    (CONSTRUCT, [("format", "n3")], TEXT_TURTLE),
    (CONSTRUCT, [("format", "nt")], NTRIPLES),
    (CONSTRUCT, [("format", TEXT_TURTLE)], TEXT_TURTLE),
    (CONSTRUCT, [("format", "csv")], TEXT_TURTLE),  # a results format: Accept decides
    (DESCRIBE, [("format", "xml"), ("output", "xml"), ("results", "xml")], RDF_XML),
    (DESCRIBE, [("format", "json-ld")], LD_JSON),
    (DESCRIBE, [("output", "turtle")], TEXT_TURTLE),
]


@pytest.mark.parametrize("query,params,expected", FORMAT_CASES)
def test_format_parameters_for_every_query_form(
    client: TestClient, query: str, params: list[tuple[str, str]], expected: str
) -> None:
    got = client.get("/sparql", params=[("query", query), *params], headers={"accept": "*/*"})
    assert media(got) == expected
    form = client.post("/sparql", content=urlencode([("query", query), *params]), headers=FORM_HEADERS)
    assert media(form) == expected, "GET and POST read the parameters the same way"
    body = client.post("/sparql", params=params, content=query, headers={"content-type": "application/sparql-query"})
    assert media(body) == expected


def test_format_overrides_accept(client: TestClient) -> None:
    response = client.get("/sparql", params={"query": SELECT, "format": "csv"}, headers={"accept": RESULTS_JSON})
    assert media(response) == TEXT_CSV


def test_an_unknown_format_is_406(client: TestClient) -> None:
    response = client.get("/sparql", params={"query": SELECT, "format": "png"})
    assert "not a result format" in error(response, 406, "format")


# ---------------------------------------------------------------- service description


@pytest.mark.parametrize("accept,parser", [(TEXT_TURTLE, "turtle"), (LD_JSON, "json-ld"), (RDF_XML, "xml"), (None, "turtle")])
def test_service_description_in_three_syntaxes(client: TestClient, accept: str | None, parser: str) -> None:
    headers = {"host": "attacker.example"} | ({"accept": accept} if accept else {})
    response = client.get("/sparql", headers=headers)
    assert response.status_code == 200 and response.headers["content-type"].startswith(accept or TEXT_TURTLE)
    assert b"attacker" not in response.content, "the Host header is never echoed"
    here = "https://where.the.client.fetched.it/sparql"
    graph = Graph().parse(data=response.content, format=parser, publicID=here)
    sd = "http://www.w3.org/ns/sparql-service-description#"
    assert (URIRef(here), URIRef(sd + "endpoint"), URIRef(here)) in graph
    assert (URIRef(here), URIRef(sd + "supportedLanguage"), URIRef(sd + "SPARQL11Query")) in graph
    names = set(graph.objects(None, URIRef(sd + "name")))
    assert names == {URIRef(ASSERTED_GRAPH), URIRef(INFERRED_GRAPH)}


def test_service_description_with_a_public_base_url(graph: KnowledgeGraph) -> None:
    settings = Settings(sparql_workers=1, public_base_url="https://kg.example.org/")
    with TestClient(create_app(settings, graph=graph)) as client:
        response = client.get("/sparql", headers={"host": "attacker.example", "accept": TEXT_TURTLE})
    assert response.status_code == 200 and b"attacker" not in response.content
    assert b"<https://kg.example.org/sparql>" in response.content


@pytest.mark.parametrize(
    "params,expected",
    [
        ({"format": "json-ld"}, LD_JSON),
        ({"format": "jsonld"}, LD_JSON),
        ({"format": "json"}, LD_JSON),
        ({"output": "xml"}, RDF_XML),
        ({"format": "rdf"}, RDF_XML),
        ({"format": "turtle"}, TEXT_TURTLE),
        ({"format": "application/ld+json"}, LD_JSON),
        ({"format": "APPLICATION/RDF+XML"}, RDF_XML),
    ],
)
def test_service_description_honours_format(client: TestClient, params: dict[str, str], expected: str) -> None:
    response = client.get("/sparql", params=params, headers={"accept": TEXT_TURTLE})  # format wins over Accept
    assert response.status_code == 200 and media(response) == expected, response.text[:200]
    parser = {LD_JSON: "json-ld", RDF_XML: "xml", TEXT_TURTLE: "turtle"}[expected]
    assert len(Graph().parse(data=response.content, format=parser, publicID="https://x.example/sparql")) > 5


@pytest.mark.parametrize("value", ["csv", "nt", "bogus", "image/png"])
def test_service_description_refuses_a_format_it_has_not(client: TestClient, value: str) -> None:
    assert "service description" in error(client.get("/sparql", params={"format": value}), 406, "format")


def test_service_description_not_acceptable(client: TestClient) -> None:
    error(client.get("/sparql", headers={"accept": "image/png"}), 406, "Accept")
    browser = client.get("/sparql", headers={"accept": "text/html,application/xhtml+xml,*/*;q=0.8"})
    assert media(browser) == TEXT_TURTLE


# ---------------------------------------------------------------- SPARQLWrapper against a live server


def _wrapper(live_server: LiveServer, query: str, fmt: str | None, method: str | None) -> Any:
    client = SPARQLWrapper(live_server.url + "/sparql")
    client.setQuery(query)
    if fmt:
        client.setReturnFormat(fmt)
    if method:
        client.setMethod(method)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        result = client.query()
        converted = result.convert()
    mismatches = [str(w.message) for w in caught if "has been returned by the endpoint" in str(w.message)]
    assert not mismatches, mismatches
    return result, converted


def _xml_values(document: Any, tag: str) -> set[str]:
    return {node.firstChild.data for node in document.getElementsByTagName(tag) if node.firstChild is not None}


@pytest.mark.slow
@pytest.mark.parametrize("method", [None, POST])
def test_sparqlwrapper_defaults_for_every_query_form(live_server: LiveServer, method: str | None) -> None:
    primaries = {CPT + "22510", CPT + "22511"}
    _, document = _wrapper(live_server, SELECT, None, method)  # XML by default
    assert _xml_values(document, "uri") == primaries
    _, document = _wrapper(live_server, ASK, None, method)
    assert _xml_values(document, "boolean") == {"true"}
    result, constructed = _wrapper(live_server, CONSTRUCT, None, method)  # RDF/XML, parsed by rdflib
    assert result.info()["content-type"].startswith(RDF_XML)
    assert (URIRef(CPT + "22515"), URIRef(SKG + "addOnFor"), URIRef(CPT + "22514")) in constructed
    _, described = _wrapper(live_server, DESCRIBE, None, method)
    assert (URIRef(CPT + "22515"), URIRef("http://www.w3.org/2004/02/skos/core#notation"), None) in described


@pytest.mark.slow
@pytest.mark.parametrize("fmt", [JSON, XML, CSV, TSV])
def test_sparqlwrapper_select_and_ask_formats(live_server: LiveServer, fmt: str) -> None:
    result, converted = _wrapper(live_server, SELECT, fmt, None)
    text = converted.decode() if isinstance(converted, bytes) else converted
    if fmt == JSON:
        assert {b["primary"]["value"] for b in text["results"]["bindings"]} == {CPT + "22510", CPT + "22511"}
    elif fmt == XML:
        assert _xml_values(text, "uri") == {CPT + "22510", CPT + "22511"}
    else:
        assert CPT + "22510" in text and CPT + "22511" in text
    _, answer = _wrapper(live_server, ASK, fmt if fmt in (JSON, XML) else JSON, POST)
    assert (answer["boolean"] if isinstance(answer, dict) else _xml_values(answer, "boolean") == {"true"}) is True


@pytest.mark.slow
@pytest.mark.parametrize("fmt", [TURTLE, N3, JSONLD, RDFXML, XML, JSON])
@pytest.mark.parametrize("query", [CONSTRUCT, DESCRIBE], ids=["construct", "describe"])
def test_sparqlwrapper_graph_formats(live_server: LiveServer, fmt: str, query: str) -> None:
    _, converted = _wrapper(live_server, query, fmt, None)
    graph = converted if isinstance(converted, Graph) else Graph().parse(data=converted, format="turtle")
    subject = URIRef(CPT + "22515")
    assert (subject, None, None) in graph


# ---------------------------------------------------------------- spinekg query --endpoint


def _concat_columns(text: str) -> dict[str, str]:
    """GROUP_CONCAT columns of a query and their separators (their order is not defined)."""
    found = {}
    for match in re.finditer(r"GROUP_CONCAT\((?P<body>(?:[^()]|\([^()]*\))*)\)\s+AS\s+\?(?P<name>\w+)", text, re.IGNORECASE):
        separator = re.search(r'separator\s*=\s*"([^"]*)"', match.group("body"), re.IGNORECASE)
        found[match.group("name")] = separator.group(1) if separator else " "
    return found


def _normal(row: dict[str, Any], concat: dict[str, str]) -> tuple[Any, ...]:
    out = []
    for key in sorted(row):
        value = row[key]
        if key in concat and concat[key] and isinstance(value, str):
            value = frozenset(value.split(concat[key]))
        out.append((key, value))
    return tuple(out)


REMOTE_CASES = [
    ("pairs-with", {"code": "22512"}),
    ("codes", {"kind": "add-on", "status": "active"}),
    ("code-facts", {"code": "22513"}),
    ("fee-schedule", {"code": "22511"}),
    ("modifiers-not-allowed", {"code": "22515"}),
    ("vertebra", {"level": "L5"}),
    ("codes-at-vertebra", {"procedure": "augmentation", "level": "S1"}),
]


@pytest.fixture(scope="module")
def remote_rows(live_server: LiveServer, graph: KnowledgeGraph) -> Iterator[dict[str, Any]]:
    out = {}
    for name, params in REMOTE_CASES:
        query = get_query(name)
        columns, rows = run_remote(query, params, live_server.url + "/sparql")
        local = query.run(graph, params)
        out[name] = (query, columns, rows, local.variables, local.values())
    yield out


@pytest.mark.slow
@pytest.mark.parametrize("name", [name for name, _ in REMOTE_CASES])
def test_remote_rows_equal_embedded_rows(remote_rows: dict[str, Any], name: str) -> None:
    query, columns, rows, local_columns, local_rows = remote_rows[name]
    assert columns == local_columns
    assert rows, f"{name} answered no rows"
    concat = _concat_columns(query.text)
    assert sorted(map(repr, (_normal(r, concat) for r in rows))) == sorted(map(repr, (_normal(r, concat) for r in local_rows)))
    for remote, local in zip(sorted(rows, key=repr), sorted(local_rows, key=repr), strict=True):
        for key in columns:  # the same Python types, not just the same text
            assert type(remote[key]) is type(local[key]), (name, key, remote[key], local[key])


@pytest.mark.slow
def test_remote_values_are_typed(remote_rows: dict[str, Any]) -> None:
    facts = remote_rows["code-facts"][2][0]
    assert isinstance(facts["valid_from"], date) and str(facts["valid_from"]) == "2015-01-01"
    fee = remote_rows["fee-schedule"][2][0]
    assert isinstance(fee["year"], int) and isinstance(fee["rvu__work"], Decimal)
    assert isinstance(fee["non_facility_not_applicable"], bool) and isinstance(fee["contractor_priced"], bool)
    vertebra = remote_rows["vertebra"][2][0]
    assert isinstance(vertebra["transitional"], bool) and vertebra["transitional"] is False
    assert isinstance(vertebra["sequence"], int)


# ---------------------------------------------------------------- odd requests: 4xx with a field, never a 500

ODD_REQUESTS = [
    ("get", {"params": {"query": "ASK {}", "format": "\x00"}}, 406, "format"),
    ("get", {"params": {"query": "ASK {}"}, "headers": {"accept": "text/csv/x, */*;q=0"}}, 406, "Accept"),
    ("get", {"params": {"query": "ASK {}", "default-graph-uri": "foo"}}, 400, "default-graph-uri"),
    ("get", {"params": {"query": "SELECT * WHERE { << ?s ?p ?o >> ?q ?r }"}}, 400, "query"),
    ("get", {"params": {"query": "SELECT * WHERE { ?s ?p ?o } LIMIT 99999999999999999999999"}}, 400, "query"),
    ("get", {"params": {"query": "DESCRIBE *"}}, 400, "query"),
    ("get", {"params": {"query": "ASK {}", "update": "CLEAR ALL"}}, 403, "update"),
    ("post", {"content": "", "headers": {"content-type": "application/sparql-query"}}, 422, "query"),
    ("post", {"content": "format=json", "headers": FORM_HEADERS}, 422, "query"),
    ("post", {"content": "ASK {}".encode("utf-16"), "headers": {"content-type": "application/sparql-query"}}, 422, "query"),
    ("post", {"content": "&".join(f"a{i}=1" for i in range(1200)) + "&query=ASK{}", "headers": FORM_HEADERS}, 422, "query"),
    ("post", {"content": "ASK {}", "headers": {"content-type": "text/plain"}}, 415, "Content-Type"),
]


@pytest.mark.parametrize("method,kwargs,status,field", ODD_REQUESTS)
def test_odd_requests_get_a_4xx_naming_the_field(
    client: TestClient, method: str, kwargs: dict[str, Any], status: int, field: str
) -> None:
    error(getattr(client, method)("/sparql", **kwargs), status, field)
