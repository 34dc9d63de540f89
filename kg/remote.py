"""Run a named query against an external SPARQL 1.1 endpoint (Oxigraph's server, Virtuoso, Fuseki, or
another spinekg serve), for users who outgrow one process. Parameters travel as RDF terms in a VALUES
block at the start of the query's WHERE group, written in N-Triples syntax by pyoxigraph (escaped), so
that the same .rq files answer the same way remotely; the answer (SPARQL JSON, XML or TSV results) is
read back into RDF terms by pyoxigraph and turned into Python values by the same function as the
embedded store's rows (kg.graph.to_python): integers, decimals, booleans, dates, dateTimes, strings."""

from __future__ import annotations

import json
import re
import urllib.error
import urllib.request
from collections.abc import Mapping
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pyoxigraph as ox

from spinekg.kg.errors import InputError, SpinekgError
from spinekg.kg.graph import KnowledgeGraph, to_python
from spinekg.kg.namespaces import ASSERTED_GRAPH, COVERAGE_GRAPH, ICD10CM_GRAPH, INFERRED_GRAPH
from spinekg.kg.queries import NamedQuery

WHERE = re.compile(r"\bWHERE\s*\{", re.IGNORECASE)
ACCEPT = "application/sparql-results+json, application/sparql-results+xml;q=0.9, text/tab-separated-values;q=0.8"
RESULT_FORMATS = {
    "application/sparql-results+json": ox.QueryResultsFormat.JSON,
    "application/json": ox.QueryResultsFormat.JSON,
    "application/sparql-results+xml": ox.QueryResultsFormat.XML,
    "application/xml": ox.QueryResultsFormat.XML,
    "text/tab-separated-values": ox.QueryResultsFormat.TSV,
}


def with_values(query: NamedQuery, values: Mapping[str, str]) -> str:
    bound = query.bindings(values)
    if not bound:
        return query.text
    names = [p.name for p in query.params]
    row = " ".join(str(bound[n]) if n in bound else "UNDEF" for n in names)
    block = f"VALUES ({' '.join('?' + n for n in names)}) {{ ({row}) }}"
    match = WHERE.search(query.text)
    if match is None:
        raise SpinekgError(f"query {query.name} has no WHERE group to bind parameters in")
    return query.text[: match.end()] + "\n  " + block + query.text[match.end() :]


def parse_results(body: bytes, content_type: str) -> tuple[list[str], list[dict[str, Any]]]:
    """Columns and rows of a SPARQL results document, each value as kg.graph.to_python makes it."""
    media = content_type.split(";")[0].strip().lower()
    fmt = RESULT_FORMATS.get(media)
    if fmt is None:
        raise SpinekgError(f"the endpoint answered {media or 'no content type'}, not SPARQL results")
    try:
        results = ox.parse_query_results(body, format=fmt)
    except (SyntaxError, ValueError) as exc:
        raise SpinekgError(f"the endpoint's answer is not valid SPARQL results: {str(exc).splitlines()[0][:200]}") from None
    if not isinstance(results, ox.QuerySolutions):
        raise SpinekgError("the endpoint answered a boolean, not rows")
    variables = [v.value for v in results.variables]
    rows = [{v: to_python(solution[v]) for v in variables} for solution in results]
    return variables, rows


def _reason(exc: urllib.error.HTTPError) -> str:
    """The endpoint's own explanation, when it gives one in a JSON {"detail": ...} body."""
    try:
        detail = json.loads(exc.read(4096)).get("detail")
    except (ValueError, AttributeError, OSError):
        return ""
    return f": {detail}" if isinstance(detail, str) else ""


def run_remote(
    query: NamedQuery, values: Mapping[str, str], endpoint: str, timeout: float = 60
) -> tuple[list[str], list[dict[str, Any]]]:
    if not re.match(r"https?://", endpoint):
        raise InputError("--endpoint", f"{endpoint!r} is not an http(s) URL")
    request = urllib.request.Request(  # noqa: S310 - scheme checked above
        endpoint,
        data=with_values(query, values).encode(),
        method="POST",
        headers={"Content-Type": "application/sparql-query", "Accept": ACCEPT},
    )
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:  # noqa: S310 - user-chosen endpoint
            body = response.read()
            content_type = response.headers.get("Content-Type", "")
    except urllib.error.HTTPError as exc:
        raise SpinekgError(f"the endpoint answered {exc.code} {exc.reason}{_reason(exc)}") from None
    except (urllib.error.URLError, TimeoutError, ValueError, OSError) as exc:
        raise SpinekgError(f"cannot query {endpoint}: {getattr(exc, 'reason', exc)}") from None
    return parse_results(body, content_type)


def _post(endpoint: str, data: bytes, content_type: str, accept: str, timeout: float, method: str = "POST") -> tuple[bytes, str]:
    if not re.match(r"https?://", endpoint):
        raise InputError("SPINEKG_SPARQL_ENDPOINT", f"{endpoint!r} is not an http(s) URL")
    request = urllib.request.Request(  # noqa: S310 - scheme checked above
        endpoint, data=data, method=method, headers={"Content-Type": content_type, "Accept": accept}
    )
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:  # noqa: S310 - the operator's endpoint
            return response.read(), response.headers.get("Content-Type", "")
    except urllib.error.HTTPError as exc:
        raise SpinekgError(f"the SPARQL store at {endpoint} answered {exc.code} {exc.reason}{_reason(exc)}") from None
    except (urllib.error.URLError, TimeoutError, ValueError, OSError) as exc:
        raise SpinekgError(f"cannot reach the SPARQL store at {endpoint}: {getattr(exc, 'reason', exc)}") from None


def bind_values(sparql: str, bindings: Mapping[str, Any]) -> str:
    """The query with its parameters as a VALUES block at the start of its WHERE group (RDF terms in
    N-Triples syntax, escaped by pyoxigraph): how a store that knows no substitutions gets them."""
    if not bindings:
        return sparql
    names = list(bindings)
    block = f"VALUES ({' '.join('?' + n for n in names)}) {{ ({' '.join(str(bindings[n]) for n in names)}) }}"
    match = WHERE.search(sparql)
    if match is None:
        raise SpinekgError("a parameterised query needs a WHERE group to bind its parameters in")
    return sparql[: match.end()] + "\n  " + block + sparql[match.end() :]


class RemoteGraph(KnowledgeGraph):
    """The reasoned graph in an external SPARQL store (SPINEKG_SPARQL_ENDPOINT): named queries and the
    claim rules' tables are asked of it, so that several API processes share one store. It holds the
    graph `spinekg push` sent there, in the store's union default graph (Oxigraph: serve
    --union-default-graph). The local build is kept for what reads files (the /sparql workers, the
    ontology download), and it is the same content."""

    def __init__(self, endpoint: str, build: Any, timeout: float = 60) -> None:
        super().__init__(ox.Store(), build)
        self.endpoint = endpoint
        self.timeout = timeout

    def execute(self, sparql: str, bindings: Mapping[str, Any] | None = None) -> Any:
        body, content_type = _post(
            self.endpoint, bind_values(sparql, bindings or {}).encode(), "application/sparql-query", ACCEPT, self.timeout
        )
        media = content_type.split(";")[0].strip().lower()
        fmt = RESULT_FORMATS.get(media)
        if fmt is None:
            raise SpinekgError(f"the SPARQL store answered {media or 'no content type'}, not SPARQL results (a SELECT or ASK)")
        try:
            return ox.parse_query_results(body, format=fmt)
        except (SyntaxError, ValueError) as exc:
            raise SpinekgError(
                f"the SPARQL store's answer is not valid SPARQL results: {str(exc).splitlines()[0][:200]}"
            ) from None

    def count(self, graph: str | None = None) -> int:
        where = f"GRAPH <{graph}> {{ ?s ?p ?o }}" if graph else "?s ?p ?o"
        result = self.select(f"SELECT (COUNT(*) AS ?n) WHERE {{ {where} }}")
        return int(to_python(result.rows[0]["n"])) if result.rows else 0


def push(
    store_url: str,
    asserted: Path,
    inferred: Path,
    icd10: Path | None = None,
    timeout: float = 300,
    coverage: list[Path] | None = None,
) -> dict[str, int]:
    """Send the build's asserted and inferred triples (and the ICD-10-CM code set, kg/icd10, and the imported
    coverage articles, kg/coverage) to a SPARQL 1.1 Graph Store Protocol endpoint (Oxigraph:
    http://host:port/store), each replacing its named graph (kg.namespaces)."""
    sent = {}
    graphs: list[tuple[str, Path | list[Path], str]] = [
        ("asserted", asserted, ASSERTED_GRAPH),
        ("inferred", inferred, INFERRED_GRAPH),
    ]
    if icd10 is not None:
        graphs.append(("icd10cm", icd10, ICD10CM_GRAPH))
    if coverage:
        graphs.append(("coverage", coverage, COVERAGE_GRAPH))
    for name, path, graph in graphs:
        data = path.read_bytes() if isinstance(path, Path) else b"".join(p.read_bytes() for p in path)
        separator = "&" if "?" in store_url else "?"
        _post(f"{store_url}{separator}graph={quote(graph, safe='')}", data, "application/n-triples", "*/*", timeout, "PUT")
        sent[name] = data.count(b"\n")
    return sent
