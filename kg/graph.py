"""The reasoned graph, served from an embedded pyoxigraph store.

Asserted and inferred triples live in two named graphs; queries see their union as the
default graph. bench/store_compare.py measured pyoxigraph against rdflib's memory store
(figures in README) and the store choice rests on that."""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import pyoxigraph as ox

from spinekg.kg.build import BuildResult, build_graph
from spinekg.kg.namespaces import ASSERTED_GRAPH, INFERRED_GRAPH

Term = ox.NamedNode | ox.BlankNode | ox.Literal | ox.Triple

XSD = "http://www.w3.org/2001/XMLSchema#"
_INTEGER_TYPES = {XSD + t for t in ("integer", "int", "long", "short", "nonNegativeInteger", "positiveInteger")}


def to_python(term: Term | None) -> Any:
    """A plain Python value for a term: IRIs as strings, typed literals as numbers, dates, booleans."""
    if term is None:
        return None
    if isinstance(term, ox.Literal):
        dt = term.datatype.value
        try:
            if dt in _INTEGER_TYPES:
                return int(term.value)
            if dt == XSD + "decimal":
                return Decimal(term.value)
            if dt in (XSD + "double", XSD + "float"):
                return float(term.value)
            if dt == XSD + "boolean":
                return term.value in ("true", "1")
            if dt == XSD + "date":
                return date.fromisoformat(term.value)
            if dt == XSD + "dateTime":
                return datetime.fromisoformat(term.value.replace("Z", "+00:00"))
        except ValueError:
            return term.value
        return term.value
    if isinstance(term, ox.NamedNode | ox.BlankNode):
        return term.value
    return str(term)


@dataclass
class SelectResult:
    variables: list[str]
    rows: list[dict[str, Term]]

    def values(self) -> list[dict[str, Any]]:
        return [{v: to_python(row.get(v)) for v in self.variables} for row in self.rows]


class KnowledgeGraph:
    """The built graph in an in-memory pyoxigraph store (loaded once per process)."""

    def __init__(self, store: ox.Store, build: BuildResult | None = None) -> None:
        self.store = store
        self.build = build

    @classmethod
    def from_files(cls, asserted: Path, inferred: Path, build: BuildResult | None = None) -> KnowledgeGraph:
        store = ox.Store()
        store.bulk_load(path=str(asserted), format=ox.RdfFormat.N_TRIPLES, to_graph=ox.NamedNode(ASSERTED_GRAPH))
        store.bulk_load(path=str(inferred), format=ox.RdfFormat.N_TRIPLES, to_graph=ox.NamedNode(INFERRED_GRAPH))
        return cls(store, build)

    def count(self, graph: str | None = None) -> int:
        target = ox.NamedNode(graph) if graph else None
        return sum(1 for _ in self.store.quads_for_pattern(None, None, None, target))

    def execute(
        self, sparql: str, bindings: Mapping[str, Term] | None = None
    ) -> ox.QuerySolutions | ox.QueryBoolean | ox.QueryTriples:
        """Run any SPARQL query over the union of asserted and inferred triples."""
        subs = {ox.Variable(k): v for k, v in (bindings or {}).items()}
        return self.store.query(sparql, use_default_graph_as_union=True, substitutions=subs or None)

    def select(self, sparql: str, bindings: Mapping[str, Term] | None = None) -> SelectResult:
        result = self.execute(sparql, bindings)
        if not isinstance(result, ox.QuerySolutions):
            raise TypeError("select() needs a SELECT query")
        variables = [v.value for v in result.variables]
        rows = [{v: sol[v] for v in variables if sol[v] is not None} for sol in result]
        return SelectResult(variables, rows)

    def triples(self, graph: str | None = None) -> Iterator[ox.Triple]:
        target = ox.NamedNode(graph) if graph else None
        for quad in self.store.quads_for_pattern(None, None, None, target):
            yield quad.triple


def load_graph(force_build: bool = False, quiet: bool = False) -> KnowledgeGraph:
    """Build (or reuse the cached build of) the reasoned graph and load it into the store."""
    build = build_graph(force=force_build)
    if not build.cached and not quiet:
        print(f"spinekg: built the reasoned graph: {build.summary()}", file=sys.stderr)
    endpoint = os.environ.get("SPINEKG_SPARQL_ENDPOINT", "").strip()
    if endpoint:  # an external store holds the graph (spinekg push): the queries go there
        from spinekg.kg.remote import RemoteGraph

        return RemoteGraph(endpoint, build)
    return KnowledgeGraph.from_files(build.asserted_path, build.inferred_path, build)
