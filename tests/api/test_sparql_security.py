"""The SPARQL endpoint against hostile queries: SERVICE in every spelling (a live TCP listener on
loopback must never be contacted), updates, deep nesting, result and memory blow-ups, and a flood of
slow queries that must not starve the other routes. Then the worker's own network filter (seccomp),
proven in a subprocess with the parser bypassed."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import platform
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from spinekg.api.main import create_app
from spinekg.api.settings import Settings
from spinekg.kg.graph import KnowledgeGraph
from spinekg.kg.sparql import (
    EVALUATION_FAILED,
    MAX_ACCEPT_CHARS,
    MAX_MEDIA_RANGES,
    SECCOMP_ARCHES,
    SparqlSyntaxError,
    answer,
    canonical_query,
    cap_accept,
    inspect_query,
    network_filter_program,
)
from tests.api.conftest import LiveServer
from tests.conftest import REPO
from tests.hostile_claims import Listener

SEND = {"content-type": "application/sparql-query"}
SECCOMP = sys.platform.startswith("linux") and platform.machine().lower() in SECCOMP_ARCHES


@pytest.fixture(scope="module")
def listener() -> Iterator[Listener]:
    target = Listener()
    yield target
    target.close()


def assert_error(response: Any, status: int, field: str = "query") -> dict[str, Any]:
    assert response.status_code == status, response.text[:500]
    assert response.headers["content-type"].startswith("application/json")
    body: dict[str, Any] = response.json()
    assert isinstance(body["detail"], str) and body["detail"] and body["field"] == field, body
    assert "Traceback" not in response.text
    return body


# ---------------------------------------------------------------- SERVICE in every spelling

# {T} is the listener's IRI, {P} its port. Every one is a query Oxigraph would run, contacting {T}.
SERVICE_SPELLINGS = {
    "escaped-quote-in-long-single-string": "SELECT * WHERE { BIND('''a\\'''' AS ?x) SERVICE {T} { ?s ?p ?o } BIND('z' AS ?y) }",
    "escaped-quote-in-long-double-string": 'SELECT * WHERE { BIND("""a\\"""" AS ?x) SERVICE {T} { ?s ?p ?o } BIND("z" AS ?y) }',
    "escaped-quote-in-short-string": "SELECT * WHERE { BIND('\\'' AS ?x) SERVICE {T} { ?s ?p ?o } }",
    "comment-before": "# a comment: SELECT * WHERE {}\nSELECT * WHERE { # } \n SERVICE {T} { ?s ?p ?o } }",
    "comment-after": "SELECT * WHERE { SERVICE {T} { ?s ?p ?o } } # SERVICE was here",
    "prefixed-iri": "PREFIX x: <http://127.0.0.1:{P}/> SELECT * WHERE { SERVICE x: { ?s ?p ?o } }",
    "prefixed-iri-local-name": "PREFIX x: <http://127.0.0.1:{P}/> SELECT * WHERE { SERVICE x:sparql { ?s ?p ?o } }",
    "relative-iri-against-base": "BASE <http://127.0.0.1:{P}/> SELECT * WHERE { SERVICE <sparql> { ?s ?p ?o } }",
    "variable-bound-by-bind": "SELECT * WHERE { BIND({T} AS ?g) SERVICE ?g { ?s ?p ?o } }",
    "variable-bound-by-values": "SELECT * WHERE { VALUES ?g { {T} } SERVICE ?g { ?s ?p ?o } }",
    "silent": "SELECT * WHERE { SERVICE SILENT {T} { ?s ?p ?o } }",
    "lower-case": "select * where { service {T} { ?s ?p ?o } }",
    "mixed-case": "SeLeCt * WhErE { sErViCe SiLeNt {T} { ?s ?p ?o } }",
    "odd-whitespace": "SELECT\t*\r\nWHERE\n{\n\tSERVICE\n\n{T}\t{?s ?p ?o}\r}",
    "unicode-escaped-keyword": "SELECT * WHERE { \\u0053ERVICE {T} { ?s ?p ?o } }",
    "in-optional": "SELECT * WHERE { ?s ?p ?o OPTIONAL { SERVICE {T} { ?s ?p ?x } } }",
    "in-union": "SELECT * WHERE { { ?s ?p ?o } UNION { SERVICE {T} { ?s ?p ?o } } }",
    "in-minus": "SELECT * WHERE { ?s ?p ?o MINUS { SERVICE {T} { ?s ?p ?o } } }",
    "in-graph": "SELECT * WHERE { GRAPH ?g { SERVICE {T} { ?s ?p ?o } } }",
    "in-subquery": "SELECT * WHERE { { SELECT ?s WHERE { SERVICE {T} { ?s ?p ?o } } LIMIT 1 } }",
    "in-filter-exists": "SELECT * WHERE { ?s ?p ?o FILTER EXISTS { SERVICE {T} { ?s ?p ?o } } }",
    "in-filter-not-exists": "SELECT * WHERE { ?s ?p ?o FILTER NOT EXISTS { SERVICE {T} { ?a ?b ?c } } }",
    "in-bind-exists": "SELECT * WHERE { BIND(EXISTS { SERVICE {T} { ?s ?p ?o } } AS ?e) }",
    "construct": "CONSTRUCT { ?s ?p ?o } WHERE { SERVICE {T} { ?s ?p ?o } }",
    "construct-where-nested": "CONSTRUCT { ?s ?p ?o } WHERE { ?s ?p ?o FILTER EXISTS { SERVICE {T} { ?s ?p ?o } } }",
    "ask": "ASK { SERVICE {T} { ?s ?p ?o } }",
    "describe": "DESCRIBE ?s WHERE { SERVICE {T} { ?s ?p ?o } }",
    # rdflib and Oxigraph once lexed these differently; both now read one canonical text (canonical_query)
    "comment-ended-by-cr": "SELECT * WHERE { # x\r SERVICE SILENT {T} { ?a ?b ?c } \n }",
    "comment-ended-by-cr-amid-crlf": "SELECT * WHERE {\r\n # x\r SERVICE {T} { ?a ?b ?c }\r\n # y\r\n}",
    "comments-ended-by-cr-then-lf": "SELECT * WHERE { # a\r# b\rSERVICE {T} {?a ?b ?c} # c\n}",
    "comment-ended-by-cr-before-crlf": "SELECT * WHERE { # x\r\r\nSERVICE {T} {?a ?b ?c}\r}",
    "escaped-nul-then-quote": 'SELECT * WHERE { BIND("\\u00000022 AS ?x) # " AS ?y) SERVICE {T} {?a ?b ?c} \n }',
    "escaped-nul-upper-U-then-quote": 'SELECT * WHERE { BIND("\\U0000000022 AS ?x) # " AS ?y) SERVICE {T} {?a ?b ?c} \n }',
    "escaped-hash-in-string": 'SELECT * WHERE { BIND("\\u0023" AS ?x)\n SERVICE {T} {?a ?b ?c} }',
    "escaped-hash-in-string-same-line": 'SELECT * WHERE { BIND("\\u0023" AS ?x) SERVICE {T} {?a ?b ?c} }',
    "escaped-backslash-in-long-string": 'SELECT * WHERE { BIND("""\\u005c\\u005c""" AS ?x) SERVICE {T} {?a ?b ?c} }',
    "unicode-escaped-quotes-outside-strings": "SELECT * WHERE { BIND(\\u0022a\\u0022 AS ?x) SERVICE {T} {?a ?b ?c} }",
    "unicode-escaped-cr-ends-comment": "SELECT * WHERE { # x\\u000D SERVICE {T} {?a ?b ?c} \n }",
    "unicode-escaped-cr-lower-hex-ends-comment": "SELECT * WHERE { # x\\u000d SERVICE {T} {?a ?b ?c} \n }",
    "unicode-upper-U-escaped-keyword": "SELECT * WHERE { \\U00000053ERVICE {T} { ?s ?p ?o } }",
}

# rdflib cannot read a '#' inside a string when more of the query follows on its line (its comment rule is
# an "ignore" pyparsing tries at every token): it fails closed, a 400 that refuses the query all the same.
RDFLIB_FAILS_ON_HASH_IN_STRING = {"escaped-nul-then-quote", "escaped-nul-upper-U-then-quote", "escaped-hash-in-string-same-line"}

# Spellings whose canonical reading holds no SERVICE at all (the escape makes the rest a string or a
# comment, for both parsers alike): answered, and nothing is contacted. Bare Oxigraph, which unescapes only
# inside strings, would have run the SERVICE.
CANONICAL_WITHOUT_SERVICE = {
    "escaped-backslash-before-quote": 'SELECT * WHERE { BIND("\\u005C" AS ?x) SERVICE {T} {?a ?b ?c} BIND(" AS ?x) #" AS ?y)\n}',
    "escaped-backslash-lower-hex": 'SELECT * WHERE { BIND("\\u005c" AS ?x) SERVICE {T} {?a ?b ?c} BIND(" AS ?x) #" AS ?y)\r\n}',
    "escaped-backslash-upper-U": 'SELECT * WHERE { BIND("\\U0000005C" AS ?x) SERVICE {T} {?a ?b ?c} BIND(" AS ?x) #" AS ?y)\r}',
}

# Escapes that expand to another escape (or to no code point): refused as a syntax error, never expanded twice.
ESCAPES_REFUSED = {
    "escape-makes-escape": 'SELECT * WHERE { BIND("\\u005Cu0022 AS ?x) # " AS ?y) SERVICE {T} {?a ?b ?c} \n }',
    "escape-makes-upper-escape": "SELECT * WHERE { \\u005CU00000053ERVICE {T} { ?s ?p ?o } }",
    "rdflib-only-upper-U-4-digits": 'SELECT * WHERE { BIND("\\U0022 AS ?x) # " AS ?y) SERVICE {T} {?a ?b ?c} \n }',
    "surrogate": 'SELECT * WHERE { BIND("\\uD800" AS ?x) SERVICE {T} {?a ?b ?c} }',
    "beyond-unicode": 'SELECT * WHERE { BIND("\\U00110000" AS ?x) SERVICE {T} {?a ?b ?c} }',
}


def spell(template: str, listener: Listener) -> str:
    return template.replace("{T}", f"<http://127.0.0.1:{listener.port}/>").replace("{P}", str(listener.port))


@pytest.mark.parametrize("name", sorted(SERVICE_SPELLINGS))
def test_service_is_refused_in_every_spelling(client: TestClient, listener: Listener, name: str) -> None:
    query = spell(SERVICE_SPELLINGS[name], listener)
    for response in (
        client.post("/sparql", content=query, headers=SEND),
        client.get("/sparql", params={"query": query}),
        client.post("/sparql", data={"query": query}),
    ):
        if name in RDFLIB_FAILS_ON_HASH_IN_STRING and response.status_code == 400:
            assert "does not parse" in assert_error(response, 400)["detail"]
            continue
        body = assert_error(response, 403)
        assert "SERVICE" in body["detail"]
    assert listener.contacts == 0, f"{name}: the listener was contacted"


@pytest.mark.parametrize("name", sorted(CANONICAL_WITHOUT_SERVICE))
def test_escapes_that_hide_service_in_a_string_run_without_it(client: TestClient, listener: Listener, name: str) -> None:
    query = spell(CANONICAL_WITHOUT_SERVICE[name], listener)
    inspect_query(canonical_query(query))  # no SERVICE pattern in the canonical text: not refused
    for response in (
        client.post("/sparql", content=query, headers=SEND),
        client.get("/sparql", params={"query": query}),
        client.post("/sparql", data={"query": query}),
    ):
        assert response.status_code == 200, response.text
        assert response.json()["results"]["bindings"][0]["x"]["value"].startswith('"'), "the SERVICE is inside ?x"
    time.sleep(0.2)
    assert listener.contacts == 0, f"{name}: the listener was contacted"


@pytest.mark.parametrize("name", sorted(ESCAPES_REFUSED))
def test_escapes_that_spell_escapes_are_refused(client: TestClient, listener: Listener, name: str) -> None:
    query = spell(ESCAPES_REFUSED[name], listener)
    for response in (client.post("/sparql", content=query, headers=SEND), client.get("/sparql", params={"query": query})):
        body = assert_error(response, 400)
        assert "escape" in body["detail"] or "code point" in body["detail"], body
    assert listener.contacts == 0, f"{name}: the listener was contacted"


@pytest.mark.parametrize(
    ("query", "canonical"),
    [
        ("a\r\nb\rc\nd", "a\nb\nc\nd"),
        ("a\r\r\nb", "a\n\nb"),
        ("\\u0041\\u00e9\\U0001F600", "A\u00e9\U0001f600"),
        ("\\u000D\\u000a", "\n"),  # an escaped CR LF is a line end like any other
        ("\\u000Da", "\na"),
        ("\\u005C", "\\"),
        ("\\U0041 x", None),  # \U takes 8 digits: rdflib alone would expand this
        ("\\u005Cu0041", None),
        ("\\u005CU00000041", None),
        ("\\uDFFF", None),
        ("'C:\\\\users'", "'C:\\\\users'"),  # a backslash and u, not an escape
        ("\\u12", "\\u12"),
    ],
)
def test_canonical_query(query: str, canonical: str | None) -> None:
    from rdflib.plugins.sparql.parser import expandUnicodeEscapes

    if canonical is None:
        with pytest.raises(SparqlSyntaxError):
            canonical_query(query)
        return
    assert canonical_query(query) == canonical
    assert expandUnicodeEscapes(canonical) == canonical, "rdflib's own escape pass has nothing left to do"


def test_the_corpus_is_real_ssrf_for_bare_oxigraph() -> None:
    """Without the endpoint's defences, Oxigraph itself contacts the target for nearly every spelling
    (not for `SERVICE ?g`, which it evaluates unbound, nor for a \\u-escaped keyword, which it does not
    unescape): the corpus tests something real."""
    import pyoxigraph as ox

    target = Listener()
    store = ox.Store()
    store.add(ox.Quad(ox.NamedNode("urn:s"), ox.NamedNode("urn:p"), ox.NamedNode("urn:o"), ox.NamedNode("urn:g")))
    reached = []
    try:
        for name, template in SERVICE_SPELLINGS.items():
            before = target.contacts
            with contextlib.suppress(Exception):
                result = store.query(spell(template, target), use_default_graph_as_union=True)
                if not isinstance(result, ox.QueryBoolean):
                    list(result)
            deadline = time.monotonic() + 2
            while target.contacts == before and time.monotonic() < deadline and "variable" not in name and "unicode" not in name:
                time.sleep(0.01)
            if target.contacts > before:
                reached.append(name)
    finally:
        target.close()
    assert len(SERVICE_SPELLINGS) >= 15 and len(reached) >= 15, reached


@pytest.mark.parametrize(
    "query",
    [
        "SELECT ?service WHERE { ?service ?p ?o } LIMIT 1",
        "SELECT * WHERE { ?s ?p 'SERVICE <http://127.0.0.1:9/> { ?a ?b ?c }' }",
        'SELECT ?insert ?delete WHERE { BIND("DROP ALL; LOAD <http://x/>" AS ?insert) BIND(1 AS ?delete) }',
        "# SERVICE <http://127.0.0.1:9/> { }\nASK { ?s ?p ?o }",
        "PREFIX service: <https://w3id.org/spinekg/vocab/> SELECT * WHERE { ?s service:addOnFor ?o } LIMIT 1",
    ],
    ids=[
        "variable-named-service",
        "service-in-a-literal",
        "update-words-in-literals",
        "service-in-a-comment",
        "prefix-named-service",
    ],
)
def test_service_and_update_words_elsewhere_are_fine(client: TestClient, query: str) -> None:
    response = client.get("/sparql", params={"query": query})
    assert response.status_code == 200, response.text


@pytest.mark.parametrize(
    "update",
    [
        "INSERT DATA { <urn:a> <urn:b> <urn:c> }",
        "insert data { <urn:a> <urn:b> <urn:c> }",
        "DELETE DATA { <urn:a> <urn:b> <urn:c> }",
        "DELETE WHERE { ?s ?p ?o }",
        "WITH <urn:g> DELETE { ?s ?p ?o } INSERT { ?s ?p 1 } WHERE { ?s ?p ?o }",
        "PREFIX x: <urn:x#> LOAD <http://127.0.0.1:9/data.ttl>",
        "LOAD SILENT <http://127.0.0.1:9/data.ttl> INTO GRAPH <urn:g>",
        "CLEAR ALL",
        "DROP GRAPH <https://w3id.org/spinekg/graph/inferred>",
        "CREATE GRAPH <urn:g>",
        "ADD DEFAULT TO <urn:g>",
        "MOVE <urn:a> TO <urn:b>",
        "COPY <urn:a> TO DEFAULT",
        "# comment\n  clear   default ;  drop all",
    ],
)
def test_every_update_is_refused(client: TestClient, update: str) -> None:
    assert_error(client.post("/sparql", content=update, headers=SEND), 403)
    assert_error(client.get("/sparql", params={"query": update}), 403)
    assert_error(client.post("/sparql", data={"update": update}), 403, field="update")
    assert_error(client.post("/sparql", content=update, headers={"content-type": "application/sparql-update"}), 403, "update")
    count = client.get("/sparql", params={"query": "SELECT (COUNT(*) AS ?n) WHERE { ?s ?p ?o }"})
    assert int(count.json()["results"]["bindings"][0]["n"]["value"]) > 7000, "nothing was dropped"


# ---------------------------------------------------------------- malformed and deep


@pytest.mark.parametrize(
    "query",
    [
        "SELECT * WHERE " + "{" * 5000 + "}" * 5000,
        "SELECT * WHERE { FILTER(" + "(" * 5000 + "1" + ")" * 5000 + ") }",
        "SELECT * WHERE { " + "OPTIONAL { " * 3000 + "}" * 3001,
        "SELECT * WHERE " + "{" * 5000,
        "SELECT * WHERE { ?s ?p ?o } ORDER BY " + "(" * 3000 + "?s" + ")" * 3000,
        "ASK { " + "?s ?p ?o . " + "FILTER EXISTS { " * 2000 + "}" * 2001,
        "SELEC * WHERE { ?s ?p ?o }",
        "SELECT * WHERE { ?s ?p }",
        "SELECT ?x WHERE { ?s ?p ?o } GROUP BY ?s",
        "\x00\x01\x02",
        "PREFIX x: <urn:x#>",
    ],
    ids=[
        "groups",
        "parentheses",
        "optionals",
        "unclosed",
        "order-by",
        "exists",
        "typo",
        "short-triple",
        "bad-projection",
        "binary",
        "prologue-only",
    ],
)
def test_malformed_and_deep_queries_are_400(client: TestClient, query: str) -> None:
    assert_error(client.post("/sparql", content=query, headers=SEND), 400)
    assert client.get("/sparql", params={"query": "ASK {}"}).json()["boolean"] is True, "the worker still answers"


# ---------------------------------------------------------------- unbounded work

CONCAT = (
    "SELECT ?v WHERE { BIND('a' AS ?v0) "
    + " ".join(f"BIND(CONCAT(?v{i}, ?v{i}) AS ?v{i + 1})" for i in range(27))
    + " BIND(?v27 AS ?v) }"
)
CROSS_JOIN = "SELECT ?a ?b ?c WHERE { ?a ?p ?x . ?b ?q ?y . ?c ?r ?z } ORDER BY ?c ?b ?a"


@pytest.fixture(scope="module")
def tight(graph: KnowledgeGraph) -> Iterator[TestClient]:
    """An app whose SPARQL worker may use 400 MiB and answer 4 kB, with time enough to hit those first."""
    settings = Settings(
        sparql_timeout_seconds=60,
        sparql_workers=1,
        sparql_worker_memory_mb=400,
        sparql_max_result_bytes=4096,
        sparql_max_rows=1000,
    )
    with TestClient(create_app(settings, graph=graph)) as test_client:
        yield test_client


def test_a_134_mb_row_is_refused(tight: TestClient) -> None:
    """With time to spare (the tight app's limit is 60 s), the byte or the memory cap stops it, not the clock:
    a busy machine cannot turn this into a timeout."""
    started = time.monotonic()
    response = tight.post("/sparql", content=CONCAT, headers=SEND)
    assert response.status_code in (413, 503), response.status_code
    body = assert_error(response, response.status_code)
    assert "bytes" in body["detail"] or "memory" in body["detail"], body["detail"]
    assert len(response.content) < 1000 and time.monotonic() - started < 60


def test_a_query_that_runs_out_of_memory_gets_503_and_a_new_worker(tight: TestClient) -> None:
    started = time.monotonic()
    body = assert_error(tight.post("/sparql", content=CROSS_JOIN, headers=SEND), 503)
    assert "ran out of memory" in body["detail"] and "narrow it" in body["detail"]
    assert time.monotonic() - started < 30
    after = tight.get("/sparql", params={"query": "ASK { ?s ?p ?o }"})
    assert after.status_code == 200 and after.json()["boolean"] is True, "a fresh worker answers the next query"
    isolation = tight.app.state.service.sparql_isolation()  # type: ignore[attr-defined]
    # the configured 512 MiB, or the worker's own address space at start plus 64 MiB when larger: the build's
    # read-only store (with ICD-10-CM) is memory-mapped and counts against it; bounded either way
    assert 400 * 2**20 <= isolation["memory_limit_bytes"] < 1024 * 2**20


def test_the_byte_cap_refuses_a_large_answer_whatever_its_format(tight: TestClient) -> None:
    for accept in ("application/sparql-results+json", "text/csv", "application/sparql-results+xml"):
        response = tight.get("/sparql", params={"query": "SELECT * WHERE { ?s ?p ?o }"}, headers={"accept": accept})
        body = assert_error(response, 413)
        assert "4,096 bytes" in body["detail"]
    graph = tight.get("/sparql", params={"query": "CONSTRUCT WHERE { ?s ?p ?o }"})
    assert_error(graph, 413)
    small = tight.get("/sparql", params={"query": "SELECT * WHERE { ?s ?p ?o } LIMIT 3"})
    assert small.status_code == 200 and len(small.json()["results"]["bindings"]) == 3


def test_the_row_cap_still_cuts(client: TestClient) -> None:
    response = client.get("/sparql", params={"query": "SELECT ?s WHERE { ?s ?p ?o }"}, headers={"accept": "text/csv"})
    assert response.status_code == 200 and response.headers["x-sparql-maxrows"] == "50"
    assert len(response.text.strip().splitlines()) == 51


def test_isolation_is_reported(client: TestClient) -> None:
    client.get("/sparql", params={"query": "ASK {}"})
    isolation = client.app.state.service.sparql_isolation()  # type: ignore[attr-defined]
    assert isolation["workers"] == 1 and isolation["ready"] >= 0 and "rdflib" in isolation["parser"]
    assert isolation["memory_limit_bytes"] >= 512 * 2**20
    if SECCOMP:
        assert isolation["network"].startswith("seccomp"), isolation


# ---------------------------------------------------------------- a flood of slow queries


def _get(url: str, headers: dict[str, str] | None = None, data: bytes | None = None) -> tuple[int, dict[str, str], bytes]:
    request = urllib.request.Request(url, data=data, headers=headers or {})
    try:
        with urllib.request.urlopen(request, timeout=60) as response:
            return response.status, {k.lower(): v for k, v in response.headers.items()}, response.read()
    except urllib.error.HTTPError as exc:
        return exc.code, {k.lower(): v for k, v in exc.headers.items()}, exc.read()


@pytest.mark.slow
def test_sixty_slow_queries_leave_healthz_fast(live_server: LiveServer) -> None:
    slow = "SELECT (COUNT(*) AS ?n) WHERE { GRAPH <https://w3id.org/spinekg/graph/inferred> { ?a ?b ?c . ?d ?e ?f . ?g ?h ?i } }"
    url = live_server.url + "/sparql"
    _get(url + "?" + urllib.parse.urlencode({"query": "ASK {}"}))  # the workers are up
    latencies: list[float] = []
    lookups: list[float] = []
    with ThreadPoolExecutor(60) as pool:
        futures = [pool.submit(_get, url, SEND, slow.encode()) for _ in range(60)]
        time.sleep(0.5)  # every query is in: one runs, the queue is full, the rest were turned away
        deadline = time.monotonic() + 2.0
        while time.monotonic() < deadline:
            started = time.perf_counter()
            status, _, _ = _get(live_server.url + "/healthz")
            latencies.append(time.perf_counter() - started)
            assert status == 200
            started = time.perf_counter()
            status, _, _ = _get(live_server.url + "/codes/22512/pairs")
            lookups.append(time.perf_counter() - started)
            assert status == 200
            time.sleep(0.05)
        answers = [f.result() for f in futures]
    assert max(latencies) < 0.1, f"/healthz took up to {max(latencies) * 1000:.0f} ms"
    assert max(lookups) < 0.25, f"/codes/22512/pairs took up to {max(lookups) * 1000:.0f} ms"
    statuses = [status for status, _, _ in answers]
    assert set(statuses) == {503}, statuses
    for _, _, body in answers:
        data = json.loads(body)
        assert data["detail"] and data["field"] == "query"
    assert any("retry-after" in headers for _, headers, _ in answers), "a full queue says when to come back"
    # the endpoint recovers
    for _ in range(50):
        status, _, _ = _get(url + "?" + urllib.parse.urlencode({"query": "ASK {}"}))
        if status == 200:
            break
        time.sleep(0.2)
    assert status == 200


# ---------------------------------------------------------------- the worker's network filter

_FILTERED_WORKER = """
import os, socket, sys
import pyoxigraph as ox
from spinekg.kg.sparql import SparqlRequest, execute, install_network_filter
port, apply = int(sys.argv[1]), sys.argv[2] == "filter"
store = ox.Store()
store.add(ox.Quad(ox.NamedNode("urn:s"), ox.NamedNode("urn:p"), ox.NamedNode("urn:o"), ox.NamedNode("urn:g")))
if apply:
    install_network_filter()
    for family in (socket.AF_INET, socket.AF_INET6):
        for kind in (socket.SOCK_STREAM, socket.SOCK_DGRAM):
            try:
                socket.socket(family, kind)
            except PermissionError:
                continue
            print("socket allowed", family, kind)
            sys.exit(3)
    try:
        socket.create_connection(("127.0.0.1", port), timeout=2)
    except PermissionError:
        pass
    else:
        print("connected")
        sys.exit(4)
    for family in (socket.AF_UNIX, socket.AF_NETLINK):  # no family at all: a Unix socket could reach nscd
        try:
            socket.socket(family, socket.SOCK_STREAM if family == socket.AF_UNIX else socket.SOCK_DGRAM)
        except PermissionError:
            continue
        print("socket allowed", family)
        sys.exit(5)
    try:
        socket.socketpair()
    except PermissionError:
        pass
    else:
        print("socketpair allowed")
        sys.exit(6)
    r, w = os.pipe()  # pipes, which the worker talks over, still work
    os.write(w, b"x")
    assert os.read(r, 1) == b"x"
# the parser is bypassed: only the filter stands between this SERVICE and the listener
query = "SELECT * WHERE { SERVICE <http://127.0.0.1:%d/sparql> { ?s ?p ?o } }" % port
try:
    execute(store, SparqlRequest(query), check=False)
    print("answered")
except Exception as exc:
    print("failed:", type(exc).__name__)
"""


@pytest.mark.skipif(not SECCOMP, reason="the seccomp filter is for Linux on x86-64 and AArch64")
def test_the_filtered_worker_cannot_open_any_socket(listener: Listener) -> None:
    def run(mode: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-c", _FILTERED_WORKER, str(listener.port), mode],
            capture_output=True,
            text=True,
            timeout=60,
            cwd=REPO,
            check=False,
        )

    before = listener.contacts
    control = run("open")  # without the filter, the same SERVICE reaches the listener: the test can see it
    assert control.returncode == 0, control.stdout + control.stderr
    deadline = time.monotonic() + 5
    while listener.contacts == before and time.monotonic() < deadline:
        time.sleep(0.05)
    assert listener.contacts > before, "the control run should have contacted the listener"
    contacted = listener.contacts
    filtered = run("filter")
    assert filtered.returncode == 0, filtered.stdout + filtered.stderr
    assert "failed:" in filtered.stdout, filtered.stdout
    time.sleep(0.3)
    assert listener.contacts == contacted, "the filtered worker reached the listener"


@pytest.mark.parametrize("machine", sorted(SECCOMP_ARCHES))
def test_the_filter_program_checks_the_architecture_first(machine: str) -> None:
    audit_arch, socket_nr, socketpair_nr, _ = SECCOMP_ARCHES[machine]
    program = network_filter_program(audit_arch, socket_nr, socketpair_nr)
    assert program[0] == (0x20, 0, 0, 4), "load seccomp_data.arch"
    assert program[1][3] == audit_arch and program[6][3] == socket_nr and program[7][3] == socketpair_nr
    deny = len(program) - 1
    for index in (6, 7):  # socket and socketpair go straight to the refusal, whatever their family
        assert index + 1 + program[index][1] == deny and program[index][2] == 0
    assert program[-2][3] == 0x7FFF0000 and program[-1][3] == 0x00050000 | 1  # allow; ERRNO(EPERM)
    for index, (code, jt, jf, _) in enumerate(program):
        if code & 0x07 == 0x05:  # jumps stay inside the program
            assert index + 1 + max(jt, jf) < len(program)


# ---------------------------------------------------------------- failing closed without the filter

_REFUSE_FILTER = """
import errno

import spinekg.kg.sparql as sparql


def _refused() -> None:
    raise OSError(errno.EPERM, "seccomp refused (simulated by the test)")


sparql.install_network_filter = _refused
"""


@pytest.fixture
def filter_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Workers started from here on are the real worker on a host where installing the filter fails: a
    sitecustomize in their PYTHONPATH replaces install_network_filter before serve() runs."""
    (tmp_path / "sitecustomize.py").write_text(_REFUSE_FILTER)
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join(filter(None, [str(tmp_path), os.environ.get("PYTHONPATH")])))


def test_without_the_network_filter_sparql_is_disabled(graph: KnowledgeGraph, filter_refused: None) -> None:
    with TestClient(create_app(Settings(sparql_workers=1), graph=graph)) as refusing:
        for _ in range(2):
            body = assert_error(refusing.get("/sparql", params={"query": "ASK {}"}), 503)
            assert "cannot be confined" in body["detail"] and "SPINEKG_SPARQL_ALLOW_UNCONFINED=true" in body["detail"], body
            assert "simulated" not in body["detail"]
        body = assert_error(refusing.post("/sparql", content="ASK {}", headers=SEND), 503)
        isolation = refusing.app.state.service.sparql_isolation()  # type: ignore[attr-defined]
        assert isolation["ready"] == 0 and "simulated" in isolation["network_error"], isolation
        assert refusing.get("/healthz").status_code == 200


def test_the_operator_may_allow_unconfined_workers(graph: KnowledgeGraph, filter_refused: None) -> None:
    with TestClient(create_app(Settings(sparql_workers=1, sparql_allow_unconfined=True), graph=graph)) as allowing:
        response = allowing.get("/sparql", params={"query": "ASK {}"})
        assert response.status_code == 200 and response.json()["boolean"] is True
        isolation = allowing.app.state.service.sparql_isolation()  # type: ignore[attr-defined]
        assert isolation["network"] == "parser only" and "simulated" in isolation["network_error"], isolation


# ---------------------------------------------------------------- huge Accept headers


def test_cap_accept() -> None:
    assert cap_accept(None) is None and cap_accept("TEXT/CSV") == "text/csv"
    many = ",".join(f"a/b{i}" for i in range(1000))
    capped = cap_accept(many)
    assert capped is not None and len(capped.split(",")) == MAX_MEDIA_RANGES
    long = "text/csv;q=0.5," + "x" * MAX_ACCEPT_CHARS + ",application/sparql-results+json"
    assert cap_accept(long) == "text/csv;q=0.5", "the range the cut goes through, and all after it, are ignored"


@pytest.mark.parametrize(
    "path",
    [
        "/sparql",
        "/ontology",
        "/sparql?query=ASK%20%7B%7D",
        "/sparql?query=CONSTRUCT%20WHERE%20%7B%3Fs%20%3Fp%20%3Fo%7D%20LIMIT%201",
    ],
)
def test_a_huge_accept_header_is_read_no_further_than_its_cap(client: TestClient, path: str) -> None:
    accept = "text/turtle;q=0.9,application/json;q=0.9," + ",".join(["text/x-junk;q=0.5"] * 400_000) + ",application/rdf+xml"
    client.get(path)  # warm up
    started = time.perf_counter()
    response = client.get(path, headers={"accept": accept})
    elapsed = time.perf_counter() - started
    assert response.status_code == 200, response.text[:300]
    assert "rdf+xml" not in response.headers["content-type"], "what lies beyond the cap is ignored"
    assert elapsed < 1.5, f"{path} took {elapsed:.2f} s with a {len(accept):,}-character Accept"


@pytest.mark.parametrize(
    ("accept", "expected"),
    [
        ("TEXT/CSV", "text/csv"),
        ("Application/SPARQL-Results+XML", "application/sparql-results+xml"),
        ("Text/Tab-Separated-Values", "text/tab-separated-values"),
    ],
)
def test_media_types_match_whatever_their_case(client: TestClient, accept: str, expected: str) -> None:
    response = client.get("/sparql", params={"query": "ASK {}"}, headers={"accept": accept})
    assert response.status_code == 200 and response.headers["content-type"].startswith(expected)
    turtle = client.get("/ontology", headers={"accept": "TEXT/TURTLE"})
    assert turtle.status_code == 200 and turtle.headers["content-type"].startswith("text/turtle")


# ---------------------------------------------------------------- a client gone mid-body


def test_a_client_gone_mid_body_is_no_server_error(client: TestClient, caplog: pytest.LogCaptureFixture) -> None:
    """Content-Length 100, `query=ASK` sent, then the connection closes: no 500, no traceback in the log."""
    messages: list[dict[str, Any]] = [
        {"type": "http.request", "body": b"query=ASK", "more_body": True},
        {"type": "http.disconnect"},
    ]
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return messages.pop(0) if messages else {"type": "http.disconnect"}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": "/sparql",
        "raw_path": b"/sparql",
        "query_string": b"",
        "root_path": "",
        "headers": [
            (b"host", b"testserver"),
            (b"content-type", b"application/x-www-form-urlencoded"),
            (b"content-length", b"100"),
        ],
        "client": ("127.0.0.1", 50000),
        "server": ("testserver", 80),
        "state": {},
    }
    with caplog.at_level(logging.DEBUG):
        asyncio.run(client.app(scope, receive, send))  # type: ignore[arg-type]
    statuses = [m["status"] for m in sent if m["type"] == "http.response.start"]
    assert statuses == [400], statuses
    for record in caplog.records:
        assert record.exc_info is None and "unexpected error" not in record.getMessage(), record.getMessage()
        assert "ClientDisconnect" not in record.getMessage()


# ---------------------------------------------------------------- what errors say


class _FailingStore:
    def query(self, *_: Any, **__: Any) -> Any:
        raise OSError(1, "Operation not permitted (os error 1)")


def test_evaluation_failures_say_nothing_of_the_worker() -> None:
    reply = answer(_FailingStore(), {"query": "SELECT * WHERE { ?s ?p ?o }"})
    assert reply == ("SparqlSyntaxError", EVALUATION_FAILED, "query")


def test_parse_errors_keep_one_short_line(client: TestClient) -> None:
    query = "SELECT * WHERE { ?s ?p ?o . " + "FILTER(?s = <urn:x>) " * 200 + "?s ?p }\n# and more\n"
    body = assert_error(client.post("/sparql", content=query, headers=SEND), 400)
    prefix = "the query does not parse: "
    assert body["detail"].startswith(prefix) and "\n" not in body["detail"], body
    assert len(body["detail"]) <= len(prefix) + 200


# ---------------------------------------------------------------- XML answers are well formed

XML_VALUES = {
    "plain": ('"a"', True),
    "markup": ('"<&>\'\\""', True),
    "tab": ('"a\\tb"', True),
    "carriage-return": ('"a\\rb"', True),
    "newline": ('"a\\nb"', True),
    "non-ascii": ('"\\u00e9\\U0001F600"', True),
    "language": ('"x"@en-GB', True),
    "datatype": ('"1"^^<http://www.w3.org/2001/XMLSchema#integer>', True),
    "u0001": ('"\\u0001"', False),
    "u0000": ('"a\\u0000b"', False),
    "u0008": ('"\\u0008"', False),
    "u000B": ('"\\u000B"', False),
    "u000C": ('"\\u000c"', False),
    "u001F": ('"\\u001F"', False),
    "uFFFE": ('"\\uFFFE"', False),
    "uFFFF": ('"\\uFFFF"', False),
    "raw-control": ('"\x02"', False),
}


@pytest.mark.parametrize("name", sorted(XML_VALUES))
def test_every_xml_answer_parses(client: TestClient, name: str) -> None:
    value, carried = XML_VALUES[name]
    select = client.get("/sparql", params={"query": f"SELECT ?x WHERE {{ BIND({value} AS ?x) }}", "format": "xml"})
    construct = client.get(
        "/sparql", params={"query": f"CONSTRUCT {{ <urn:s> <urn:p> ?x }} WHERE {{ BIND({value} AS ?x) }}", "format": "rdf"}
    )
    for response, other in ((select, "JSON results"), (construct, "JSON-LD")):
        if carried:
            assert response.status_code == 200, response.text
            ET.fromstring(response.content)  # noqa: S314 - our own answer; the test is that it is well formed
        else:
            body = assert_error(response, 406, field="Accept")
            assert "XML 1.0" in body["detail"] and other in body["detail"], body
    json_answer = client.get("/sparql", params={"query": f"SELECT ?x WHERE {{ BIND({value} AS ?x) }}", "format": "json"})
    assert json_answer.status_code == 200, "JSON carries every value"
    if carried:
        document = ET.fromstring(select.content)  # noqa: S314 - our own answer
        literal = document.find(".//{http://www.w3.org/2005/sparql-results#}literal")
        assert literal is not None and literal.text == json_answer.json()["results"]["bindings"][0]["x"]["value"]
