"""The reasoned graph, served from an embedded pyoxigraph store.

Asserted and inferred triples live in two named graphs, and the ICD-10-CM code set (kg/icd10) in a
third; queries see their union as the default graph. bench/store_compare.py measured pyoxigraph
against rdflib's memory store (figures in README) and the store choice rests on that. A build
folder holds the three graphs in an on-disk store that each process opens read-only (milliseconds,
shared through the page cache), since loading the 690,000 ICD-10-CM triples into memory at every start
took 1.6 s (bench/icd10_bench.py); ``from_files`` still loads N-Triples files into memory."""

from __future__ import annotations

import hashlib
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
from spinekg.kg.namespaces import ASSERTED_GRAPH, ICD10CM_GRAPH, INFERRED_GRAPH

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
    """The built graph in a pyoxigraph store: a build's read-only on-disk store, or one in memory."""

    def __init__(
        self, store: ox.Store, build: BuildResult | None = None, answers: Path | None = None, held: object = None
    ) -> None:
        self.store = store
        self.build = build
        self.answers = answers  # where select_fixed keeps answers: only for a store that never changes
        self._held = held  # the lock that keeps builds from removing the store while this graph reads it

    @classmethod
    def from_files(
        cls, asserted: Path, inferred: Path, build: BuildResult | None = None, icd10: Path | None = None
    ) -> KnowledgeGraph:
        """A store in memory, from the build's N-Triples files (the ICD-10-CM graph only when asked: 1.6 s)."""
        store = ox.Store()
        store.bulk_load(path=str(asserted), format=ox.RdfFormat.N_TRIPLES, to_graph=ox.NamedNode(ASSERTED_GRAPH))
        store.bulk_load(path=str(inferred), format=ox.RdfFormat.N_TRIPLES, to_graph=ox.NamedNode(INFERRED_GRAPH))
        if icd10 is not None:
            store.bulk_load(path=str(icd10), format=ox.RdfFormat.N_TRIPLES, to_graph=ox.NamedNode(ICD10CM_GRAPH))
        return cls(store, build)

    @classmethod
    def open(cls, build: BuildResult) -> KnowledgeGraph:
        """The build's on-disk store, read-only (every graph), with its kept answers."""
        from spinekg.kg.build import ANSWERS

        if build.store_path is None:
            return cls.from_files(build.asserted_path, build.inferred_path, build)
        store, held = open_store(build.store_path)
        return cls(store, build, answers=build.store_path.with_name(build.store_path.name + ANSWERS), held=held)

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
        return _rows(result)

    def select_fixed(self, sparql: str) -> SelectResult:
        """A SELECT without parameters (a rule's table, the vertebrae): from the build folder's kept answer
        when there is one, else asked and kept. A build's store never changes, so neither can the answer;
        reading it back costs about a millisecond, where the on-disk store takes up to 0.3 s for some rule
        tables (the start-up of every process compiles them: bench/icd10_bench.py)."""
        if self.answers is None:
            return self.select(sparql)
        path = self.answers / f"{hashlib.sha256(sparql.encode()).hexdigest()[:32]}.srj"
        try:
            data = path.read_bytes()
        except OSError:
            result = self.execute(sparql)
            if not isinstance(result, ox.QuerySolutions):
                raise TypeError("select() needs a SELECT query") from None
            serialized = result.serialize(format=ox.QueryResultsFormat.JSON)
            assert serialized is not None  # without an output, serialize returns the bytes
            data = serialized
            try:  # a temporary name, then renamed: a concurrent reader never sees half an answer
                self.answers.mkdir(exist_ok=True)
                tmp = path.with_suffix(f".tmp{os.getpid()}")
                tmp.write_bytes(data)
                tmp.replace(path)
            except OSError:  # a read-only build folder: the answer is not kept
                pass
        kept = ox.parse_query_results(data, format=ox.QueryResultsFormat.JSON)
        if not isinstance(kept, ox.QuerySolutions):
            raise TypeError("select() needs a SELECT query")
        return _rows(kept)

    def triples(self, graph: str | None = None) -> Iterator[ox.Triple]:
        target = ox.NamedNode(graph) if graph else None
        for quad in self.store.quads_for_pattern(None, None, None, target):
            yield quad.triple


def _rows(result: ox.QuerySolutions) -> SelectResult:
    variables = [v.value for v in result.variables]
    return SelectResult(variables, [{v: sol[v] for v in variables if sol[v] is not None} for sol in result])


def load_graph(force_build: bool = False, quiet: bool = False) -> KnowledgeGraph:
    """Build (or reuse the cached build of) the reasoned graph and load it into the store."""
    build = build_graph(force=force_build)
    if not build.cached and not quiet:
        print(f"spinekg: built the reasoned graph: {build.summary()}", file=sys.stderr)
    endpoint = os.environ.get("SPINEKG_SPARQL_ENDPOINT", "").strip()
    if endpoint:  # an external store holds the graph (spinekg push): the queries go there
        from spinekg.kg.remote import RemoteGraph

        return RemoteGraph(endpoint, build)
    return KnowledgeGraph.open(build)


_held_stores: list[object] = []  # the locks of the stores build_store opened: held for the process's life


def build_store(asserted: Path, inferred: Path) -> ox.Store:
    """The store of the build whose files these are (a SPARQL worker's): the build's on-disk store,
    read-only, with every graph, when its manifest names one; else the two files loaded into memory."""
    from spinekg.kg.build import read_manifest

    manifest = read_manifest(asserted.parent) if asserted.parent == inferred.parent else None
    name = manifest.get("store") if manifest else None
    if name and (asserted.parent / str(name)).is_dir():
        store, held = open_store(asserted.parent / str(name))
        _held_stores.append(held)
        return store
    return KnowledgeGraph.from_files(asserted, inferred).store


def open_store(path: Path) -> tuple[ox.Store, object]:
    """A build's store (kg/build.py writes it), read-only, and the lock that keeps builds from removing
    it while it is read (taken first, so that no prune slips in between)."""
    from spinekg.kg.build import hold
    from spinekg.kg.errors import SpinekgError

    held = hold(path)
    try:
        return ox.Store.read_only(str(path)), held
    except OSError as exc:
        raise SpinekgError(f"cannot open the graph store {path}: {exc}; run spinekg build --force") from None
