"""One merged file of the reasoned graph (asserted + inferred) for tools that cannot follow imports."""

from __future__ import annotations

from rdflib import Graph, Literal, URIRef
from rdflib.namespace import OWL, RDF

from spinekg.kg.build import BuildResult
from spinekg.kg.graph import KnowledgeGraph
from spinekg.kg.namespaces import ONTOLOGY_IRI, PREFIXES

FORMATS = {"ttl": "turtle", "owl": "xml"}


def merged_graph(graph: KnowledgeGraph) -> Graph:
    """Asserted and inferred triples under a single ontology header, with no owl:imports."""
    build = graph.build
    if build is None:
        raise ValueError("the graph was not loaded from a build")
    merged = _parse(build)
    headers = set(merged.subjects(RDF.type, OWL.Ontology))
    root = URIRef(ONTOLOGY_IRI)
    for header in headers - {root}:
        for triple in list(merged.triples((header, None, None))):
            merged.remove(triple)
    merged.remove((root, OWL.imports, None))
    merged.add(
        (
            root,
            URIRef(PREFIXES["rdfs"] + "comment"),
            Literal(
                "Merged release: every module of the import closure plus the triples inferred by HermiT, in one file.",
                lang="en",
            ),
        )
    )
    for prefix, ns in PREFIXES.items():
        merged.bind(prefix, ns, override=True)
    return merged


def _parse(build: BuildResult) -> Graph:
    merged = Graph()
    merged.parse(build.asserted_path, format="nt")
    merged.parse(build.inferred_path, format="nt")
    return merged


def export_graph(graph: KnowledgeGraph, fmt: str = "ttl") -> bytes:
    if fmt not in FORMATS:
        raise ValueError(f"unknown export format {fmt!r}; use ttl or owl")
    data = merged_graph(graph).serialize(format=FORMATS[fmt], encoding="utf-8")
    return data if isinstance(data, bytes) else data.encode()
