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
from typing import Any

import pyoxigraph as ox

from spinekg.kg.errors import InputError, SpinekgError
from spinekg.kg.graph import to_python
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
