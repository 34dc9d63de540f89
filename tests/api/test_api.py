"""Every endpoint through FastAPI's TestClient: the case table tests/cases/api.yaml, then the SPARQL
protocol (formats parsed back with rdflib, refusals, limits) and the ontology download."""

from __future__ import annotations

import ast
import io
import re
from collections.abc import Iterable, Iterator
from typing import Any
from urllib.parse import unquote, urlsplit

import pytest
from fastapi import APIRouter, FastAPI
from fastapi.testclient import TestClient
from rdflib import Graph, URIRef
from rdflib.query import Result
from starlette.routing import BaseRoute, Mount, compile_path

from spinekg.api.main import create_app
from spinekg.kg.namespaces import PREFIXES
from tests.api.conftest import TEST_SETTINGS
from tests.conftest import REPO, load_cases

try:
    from fastapi.routing import iter_route_contexts
except ImportError:  # FastAPI before included routers were kept whole: app.routes is already flat

    def iter_route_contexts(routes: Iterable[BaseRoute]) -> Iterator[Any]:  # type: ignore[misc]
        yield from routes


CASES = load_cases("api.yaml")
SKG, CPT = PREFIXES["skg"], PREFIXES["cpt"]
PAIRS_22510 = f"SELECT ?addon WHERE {{ ?addon <{SKG}addOnFor> <{CPT}22510> }}"


def lookup(data: Any, path: list[str]) -> list[Any]:
    """All values at a dotted path; `*` fans out over a list."""
    if not path:
        return [data]
    head, rest = path[0], path[1:]
    if head == "*":
        return [v for item in data for v in lookup(item, rest)] if isinstance(data, list) else []
    if isinstance(data, list):
        return lookup(data[int(head)], rest) if head.isdigit() and int(head) < len(data) else []
    if isinstance(data, dict) and head in data:
        return lookup(data[head], rest)
    return []


def test_api_cases_are_well_formed() -> None:
    """A misspelt key (`hass:`) would check nothing: every case is a GET or a POST with a status, and
    only the keys test_endpoint reads."""
    ids = [c["id"] for c in CASES]
    assert len(ids) == len(set(ids)), "case ids are unique"
    for case in CASES:
        assert set(case) <= {"id", "get", "post", "json", "body", "status", "has"}, case["id"]
        assert ("get" in case) != ("post" in case) and isinstance(case["status"], int), case["id"]
        assert "post" in case or not ({"json", "body"} & set(case)), f"{case['id']}: a GET has no body"
        assert isinstance(case.get("has", {}), dict) and (case.get("has") != {}), case["id"]


@pytest.mark.parametrize("case", CASES, ids=[c["id"] for c in CASES])
def test_endpoint(client: TestClient, case: dict[str, Any]) -> None:
    if "get" in case:
        response = client.get(case["get"])
    elif "json" in case:
        response = client.post(case["post"], json=case["json"])
    else:
        response = client.post(case["post"], content=case["body"], headers={"content-type": "application/json"})
    assert response.status_code == case["status"], response.text[:500]
    assert response.headers["content-type"].startswith("application/json")
    body = response.json()
    if response.status_code >= 400:
        assert isinstance(body["detail"], str) and body["detail"]
        assert "Traceback" not in response.text
    for path, expected in (case.get("has") or {}).items():
        found = lookup(body, path.split("."))
        if expected == []:  # the path holds an empty list (not: every item of no list is there)
            assert found == [[]], f"{path}: {found}"
        elif isinstance(expected, list):
            flat = [x for v in found for x in (v if isinstance(v, list) else [v])]
            assert all(e in flat for e in expected), f"{path}: {found}"
        else:
            assert expected in found, f"{path}: {found}"


# -- every route has a case, or a named test ----------------------------------------------------------

# Routes that no case of tests/cases/api.yaml exercises, each with the test that does and why it is not a
# case: the case table reads JSON bodies, and these answer SPARQL results, RDF, HTML or static files.
ROUTES_TESTED_ELSEWHERE: dict[tuple[str, str], tuple[str, str]] = {
    ("GET", "/sparql"): (
        "tests/api/test_api.py::test_select_formats_parse",
        "SELECT answers in four result formats, each parsed back with rdflib",
    ),
    ("POST", "/sparql"): (
        "tests/api/test_api.py::test_construct_formats_parse",
        "CONSTRUCT answers in four RDF syntaxes, each parsed back with rdflib",
    ),
    ("GET", "/ontology"): ("tests/api/test_api.py::test_ontology_download", "the ontology as Turtle and RDF/XML, not JSON"),
    ("GET", "/openapi.json"): (
        "tests/api/test_api.py::test_openapi_documents_every_endpoint_with_examples",
        "the OpenAPI document: its paths and examples are what that test checks",
    ),
    ("GET", "/codes/{code}/edits"): ("tests/api/test_ncci_api.py::test_ncci_route", "needs NCCI tables imported from fixtures"),
    ("GET", "/codes/{code}/mue"): ("tests/api/test_ncci_api.py::test_ncci_route", "needs NCCI tables imported from fixtures"),
    ("GET", "/codes/{code}/primaries"): (
        "tests/api/test_ncci_api.py::test_ncci_route",
        "needs NCCI tables imported from fixtures",
    ),
    ("GET", "/docs"): ("tests/api/test_http.py::test_docs_load_nothing_from_outside", "Swagger UI, an HTML page"),
    ("GET", "/docs/oauth2-redirect"): ("tests/api/test_http.py::test_docs_load_nothing_from_outside", "an HTML page"),
    ("GET", "/redoc"): ("tests/api/test_http.py::test_docs_load_nothing_from_outside", "ReDoc, an HTML page"),
    ("GET", "/static-offline-docs/{path}"): (
        "tests/api/test_http.py::test_docs_load_nothing_from_outside",
        "the doc pages' scripts and styles, fetched through the links the pages hold",
    ),
}


def app_routes(app: FastAPI) -> list[tuple[str, str, re.Pattern[str]]]:
    """Every (method, path) the app answers, in the order Starlette matches them, with the path's regex:
    the routes of included routers and those left out of the OpenAPI document (the doc pages) too. A
    mount is its GET of any path below it. HEAD is left out where the route answers GET (Starlette adds
    it; test_http.py checks HEAD on every GET route)."""
    out: list[tuple[str, str, re.Pattern[str]]] = []
    for route in iter_route_contexts(app.routes):
        if isinstance(getattr(route, "original_route", route), Mount):
            path = route.path.rstrip("/") + "/{path:path}"
            methods = {"GET"}
        else:
            path, methods = route.path, set(route.methods or ())
            if "GET" in methods:
                methods.discard("HEAD")
        regex, template, _ = compile_path(path)
        out += [(method, template, regex) for method in sorted(methods)]
    return out


def case_route(routes: list[tuple[str, str, re.Pattern[str]]], case: dict[str, Any]) -> tuple[str, str] | None:
    """The route that answers a case of api.yaml: the first whose method and path match, as Starlette picks."""
    method, url = ("GET", case["get"]) if "get" in case else ("POST", case["post"])
    path = unquote(urlsplit(url).path)
    return next(((m, template) for m, template, regex in routes if m == method and regex.match(path)), None)


def covered_by_cases(app: FastAPI, cases: list[dict[str, Any]]) -> set[tuple[str, str]]:
    """The routes some case reaches with a success: a case that only gets a 4xx never ran the route's work."""
    routes = app_routes(app)
    return {route for case in cases if case["status"] < 400 and (route := case_route(routes, case)) is not None}


def uncovered_routes(app: FastAPI, cases: list[dict[str, Any]]) -> list[tuple[str, str]]:
    covered = covered_by_cases(app, cases) | set(ROUTES_TESTED_ELSEWHERE)
    return [(m, template) for m, template, _ in app_routes(app) if (m, template) not in covered]


def test_every_route_has_a_case_or_a_test(client: TestClient) -> None:
    routes = {(m, template) for m, template, _ in app_routes(client.app)}
    # the walk reaches the routers' routes and the pages outside the OpenAPI document
    assert {
        ("GET", "/codes/{code}"),
        ("POST", "/queries/{name}"),
        ("POST", "/claims/validate/batch"),
        ("GET", "/redoc"),
    } <= routes
    documented = {(m.upper(), p) for p, item in client.get("/openapi.json").json()["paths"].items() for m in item}
    assert documented <= routes
    missing = uncovered_routes(client.app, CASES)
    assert not missing, f"routes with no 2xx case in tests/cases/api.yaml and no entry in ROUTES_TESTED_ELSEWHERE: {missing}"
    assert set(ROUTES_TESTED_ELSEWHERE) <= routes, (
        f"entries for routes the app no longer has: {set(ROUTES_TESTED_ELSEWHERE) - routes}"
    )
    both = set(ROUTES_TESTED_ELSEWHERE) & covered_by_cases(client.app, CASES)
    assert not both, f"these routes have a case now: take them off ROUTES_TESTED_ELSEWHERE: {both}"


def test_a_route_without_a_case_is_found() -> None:
    """The check above on an app with two routes more, one of them on an included router: both are named."""
    app = create_app(TEST_SETTINGS)  # never started: the graph is not loaded

    @app.get("/codes/{code}/history")
    def history(code: str) -> dict[str, str]:
        return {"code": code}

    router = APIRouter()

    @router.post("/claims/explain")
    def explain() -> dict[str, str]:
        return {}

    app.include_router(router)
    assert uncovered_routes(app, CASES) == [("GET", "/codes/{code}/history"), ("POST", "/claims/explain")]
    # a case that only gets a 4xx does not count
    refused = [*CASES, {"id": "x", "get": "/codes/22511/history", "status": 404}]
    assert ("GET", "/codes/{code}/history") in uncovered_routes(app, refused)
    answered = [*CASES, {"id": "x", "get": "/codes/22511/history", "status": 200}]
    assert uncovered_routes(app, answered) == [("POST", "/claims/explain")]


def _test_function(node: str) -> ast.FunctionDef | None:
    file, _, name = node.partition("::")
    path = REPO / file
    if not name.startswith("test_") or not path.is_file():
        return None
    tree = ast.parse(path.read_text(encoding="utf-8"))
    return next((n for n in tree.body if isinstance(n, ast.FunctionDef) and n.name == name), None)


@pytest.mark.parametrize("route", sorted(ROUTES_TESTED_ELSEWHERE), ids=" ".join)
def test_a_route_tested_elsewhere_names_a_test_that_exists(route: tuple[str, str]) -> None:
    """Each entry names a test function of a test file, with a reason; the test names the route's path
    (in its body or its parameters), unless the path is a template (the mount's files)."""
    node, why = ROUTES_TESTED_ELSEWHERE[route]
    function = _test_function(node)
    assert function is not None, f"{route}: {node} is not a test function of that file"
    assert len(why) > 10, f"{route}: say why it is not a case"
    path = route[1]
    if "{" not in path:
        strings = {n.value for n in ast.walk(function) if isinstance(n, ast.Constant) and isinstance(n.value, str)}
        assert any(s == path or s.startswith((path + "?", path + "#")) for s in strings), f"{node} never requests {path}"


@pytest.mark.parametrize(
    "accept,parser",
    [
        ("application/sparql-results+json", "json"),
        ("application/sparql-results+xml", "xml"),
        ("text/csv", "csv"),
        ("text/tab-separated-values", "tsv"),
    ],
)
def test_select_formats_parse(client: TestClient, accept: str, parser: str) -> None:
    response = client.get("/sparql", params={"query": PAIRS_22510}, headers={"accept": accept})
    assert response.status_code == 200 and response.headers["content-type"].startswith(accept)
    result = Result.parse(io.BytesIO(response.content), format=parser)
    assert {str(row[0]).strip("<>") for row in result} == {CPT + "22512"}


@pytest.mark.parametrize(
    "accept,parser",
    [
        ("text/turtle", "turtle"),
        ("application/n-triples", "nt"),
        ("application/ld+json", "json-ld"),
        ("application/rdf+xml", "xml"),
    ],
)
def test_construct_formats_parse(client: TestClient, accept: str, parser: str) -> None:
    query = f"CONSTRUCT {{ ?a <{SKG}addOnFor> ?p }} WHERE {{ ?a <{SKG}addOnFor> ?p }}"
    response = client.post("/sparql", content=query, headers={"content-type": "application/sparql-query", "accept": accept})
    assert response.status_code == 200 and response.headers["content-type"].startswith(accept)
    graph = Graph().parse(data=response.content, format=parser)
    assert (URIRef(CPT + "22512"), URIRef(SKG + "addOnFor"), URIRef(CPT + "22511")) in graph


def test_describe_and_ask(client: TestClient) -> None:
    # 22513 has 76 triples (asserted + inferred), more than TEST_SETTINGS' 50 rows, and Oxigraph's triple
    # order varies: the cut answer is checked for its size and subject, never for one particular triple.
    code = URIRef(CPT + "22513")
    response = client.get("/sparql", params={"query": f"DESCRIBE <{code}>"})
    assert response.status_code == 200 and response.headers["x-sparql-maxrows"] == str(TEST_SETTINGS.sparql_max_rows)
    graph = Graph().parse(data=response.content, format="turtle")
    assert len(graph) == TEST_SETTINGS.sparql_max_rows and set(graph.subjects()) == {code}
    # its 16 asserted triples come whole
    asserted = client.get(
        "/sparql", params={"query": f"DESCRIBE <{code}>", "default-graph-uri": "https://w3id.org/spinekg/graph/asserted"}
    )
    assert asserted.status_code == 200 and "x-sparql-maxrows" not in asserted.headers
    graph = Graph().parse(data=asserted.content, format="turtle")
    assert len(graph) == 16
    assert (code, URIRef(SKG + "isPrimaryOf"), URIRef("https://w3id.org/spinekg/family/VertebralAugmentation")) in graph
    inferred = client.post("/sparql", data={"query": f"ASK {{ <{code}> <{SKG}hasAddOn> <{CPT}22515> }}"})
    assert inferred.status_code == 200 and inferred.json() == {"head": {}, "boolean": True}
    ask = client.post("/sparql", data={"query": f"ASK {{ <{CPT}22512> <{SKG}addOnFor> <{CPT}22513> }}"})
    assert ask.status_code == 200 and ask.json() == {"head": {}, "boolean": False}


def test_format_parameter_overrides_accept(client: TestClient) -> None:
    response = client.get(
        "/sparql", params={"query": PAIRS_22510, "format": "csv"}, headers={"accept": "application/sparql-results+json"}
    )
    assert response.headers["content-type"].startswith("text/csv")


def test_service_description(client: TestClient) -> None:
    response = client.get("/sparql")
    graph = Graph().parse(data=response.content, format="turtle")
    sd = "http://www.w3.org/ns/sparql-service-description#"
    assert (None, URIRef(sd + "supportedLanguage"), URIRef(sd + "SPARQL11Query")) in graph


@pytest.mark.parametrize(
    "request_kwargs",
    [
        {"content": "INSERT DATA { <urn:a> <urn:b> <urn:c> }", "headers": {"content-type": "application/sparql-query"}},
        {"content": "DELETE WHERE { ?s ?p ?o }", "headers": {"content-type": "application/sparql-update"}},
        {"data": {"update": "DROP ALL"}},
        {"data": {"query": "PREFIX x: <urn:x#> LOAD <http://example.org/data.ttl>"}},
        {"data": {"query": "SELECT * WHERE { SERVICE <http://example.org/sparql> { ?s ?p ?o } }"}},
    ],
    ids=["insert-as-query", "update-content-type", "update-form", "load", "service"],
)
def test_updates_and_service_are_refused(client: TestClient, request_kwargs: dict[str, Any]) -> None:
    response = client.post("/sparql", **request_kwargs)
    assert response.status_code == 403, response.text
    count = client.get("/sparql", params={"query": "ASK { <urn:a> <urn:b> <urn:c> }"})
    assert count.json()["boolean"] is False, "nothing was written"


def test_get_update_is_refused(client: TestClient) -> None:
    assert client.get("/sparql", params={"query": "CLEAR ALL"}).status_code == 403


def test_syntax_error_is_400(client: TestClient) -> None:
    response = client.get("/sparql", params={"query": "SELEC * WHERE { ?s ?p ?o }"})
    assert response.status_code == 400 and response.json()["field"] == "query"


def test_not_acceptable(client: TestClient) -> None:
    response = client.get("/sparql", params={"query": PAIRS_22510}, headers={"accept": "image/png"})
    assert response.status_code == 406


def test_wrong_content_type(client: TestClient) -> None:
    response = client.post("/sparql", content="SELECT * {}", headers={"content-type": "text/plain"})
    assert response.status_code == 415


def test_result_size_limit(client: TestClient) -> None:
    response = client.get("/sparql", params={"query": "SELECT * WHERE { ?s ?p ?o }"})
    assert response.status_code == 200
    assert len(response.json()["results"]["bindings"]) == TEST_SETTINGS.sparql_max_rows
    assert response.headers["x-sparql-maxrows"] == str(TEST_SETTINGS.sparql_max_rows)


@pytest.mark.slow
def test_runaway_query_is_cut_off_and_the_endpoint_recovers(client: TestClient) -> None:
    # over one graph: over all of them (the ICD-10-CM code set too) it runs out of memory before its time
    runaway = (
        "SELECT (COUNT(*) AS ?n) WHERE { GRAPH <https://w3id.org/spinekg/graph/inferred> { ?a ?b ?c . ?d ?e ?f . ?g ?h ?i } }"
    )
    response = client.get("/sparql", params={"query": runaway})
    assert response.status_code == 503 and "stopped" in response.json()["detail"]
    after = client.get("/sparql", params={"query": PAIRS_22510})
    assert after.status_code == 200, "a fresh worker answers the next query"
    assert client.get("/codes/22512/pairs").status_code == 200


def test_query_length_limit(client: TestClient) -> None:
    long_query = "SELECT * WHERE { ?s ?p ?o } #" + "x" * TEST_SETTINGS.max_query_length
    response = client.post("/sparql", content=long_query, headers={"content-type": "application/sparql-query"})
    assert response.status_code == 422 and response.json()["field"] == "query"


@pytest.mark.parametrize("accept,parser", [("text/turtle", "turtle"), ("application/rdf+xml", "xml")])
def test_ontology_download(client: TestClient, accept: str, parser: str) -> None:
    response = client.get("/ontology", headers={"accept": accept})
    assert response.status_code == 200 and response.headers["content-type"].startswith(accept)
    graph = Graph().parse(data=response.content, format=parser)
    owl = "http://www.w3.org/2002/07/owl#"
    rdf_type = URIRef("http://www.w3.org/1999/02/22-rdf-syntax-ns#type")
    assert (URIRef("https://w3id.org/spinekg/ontology"), rdf_type, URIRef(owl + "Ontology")) in graph
    assert (URIRef(CPT + "22512"), URIRef(SKG + "addOnFor"), URIRef(CPT + "22510")) in graph


def test_ontology_not_acceptable(client: TestClient) -> None:
    assert client.get("/ontology", headers={"accept": "application/pdf"}).status_code == 406


def test_openapi_documents_every_endpoint_with_examples(client: TestClient) -> None:
    spec = client.get("/openapi.json").json()
    assert {"/codes/{code}/pairs", "/claims/validate", "/sparql", "/ontology", "/healthz"} <= set(spec["paths"])
    assert spec["components"]["schemas"]["Claim"]["examples"], "the claim body has an example"
    assert client.get("/docs").status_code == 200


def test_health_counts_the_rules_on_disk(client: TestClient) -> None:
    """/healthz reports every claim rule loaded: the packaged ones (queries/rules/*.rq), no fewer."""
    from spinekg.kg.queries import discover

    assert client.get("/healthz").json()["rules"] == len(discover("rule")) > 20
