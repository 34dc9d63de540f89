"""Every .rq file is a documented query (grlc style): it parses, carries the mandatory #+ header
keys for its kind, projects each declared parameter (bound as an RDF term), and declares its prefixes."""

from __future__ import annotations

import re

import pyoxigraph as ox
import pytest

from spinekg.kg.queries import REQUIRED_HEADER_KEYS, discover

QUERIES = discover()


def test_queries_were_found() -> None:
    kinds = {q.kind for q in QUERIES}
    assert {"api", "check"} <= kinds
    assert len(QUERIES) >= 20


@pytest.mark.parametrize("query", QUERIES, ids=lambda q: f"{q.kind}/{q.name}")
def test_query_header_and_syntax(query) -> None:
    missing = set(REQUIRED_HEADER_KEYS[query.kind]) - set(query.header)
    assert not missing, f"{query.path.name} lacks header keys {sorted(missing)}"
    assert query.header["kind"] == query.kind, "the header's kind matches the folder"
    assert len(query.summary) > 10
    ox.Store().query(query.text)  # raises SyntaxError when the SPARQL does not parse
    if query.kind == "check":
        assert query.name.endswith("-violation")


@pytest.mark.parametrize("query", [q for q in QUERIES if q.params], ids=lambda q: q.name)
def test_parameters_are_projected_and_typed(query) -> None:
    select = re.search(r"SELECT(.*?)WHERE", query.text, re.S | re.I)
    assert select, "parameterised queries are SELECT queries"
    for param in query.params:
        assert param.type in {"literal", "integer", "iri", "icd10cm"}
        assert re.search(rf"\?{param.name}\b", select.group(1)), (
            f"{param.name} must be projected: pyoxigraph binds parameters by substitution of projected variables"
        )
        assert param.example, f"{param.name} needs an example value for the docs"
