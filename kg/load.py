"""Parse the ontology's import closure through catalog-v001.xml, offline, as Protégé does."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from dataclasses import dataclass
from pathlib import Path

from rdflib import Graph, URIRef
from rdflib.namespace import OWL, RDF

from spinekg.kg import paths
from spinekg.kg.errors import SpinekgError


@dataclass(frozen=True)
class Module:
    iri: str
    path: Path


def read_catalog(catalog: Path) -> dict[str, Path]:
    """Map each ontology IRI of an OASIS XML catalog (Protégé's catalog-v001.xml) to its local file."""
    try:
        root = ET.parse(catalog).getroot()  # noqa: S314 - the project's own catalog file
    except (OSError, ET.ParseError) as exc:
        raise SpinekgError(f"cannot read {catalog}: {exc}") from exc
    entries: dict[str, Path] = {}
    for el in root.iter():
        if el.tag.rsplit("}", 1)[-1] == "uri":
            name, uri = el.get("name"), el.get("uri")
            if name and uri:
                entries[name] = (catalog.parent / uri).resolve()
    return entries


def _parse(path: Path) -> Graph:
    graph = Graph()
    try:
        graph.parse(path, format="turtle")
    except Exception as exc:  # rdflib raises several unrelated types for bad Turtle
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise SpinekgError(f"{path.name}: not valid Turtle: {first}") from exc
    return graph


def import_closure(root: Path | None = None, catalog: Path | None = None) -> list[Module]:
    """The root ontology and every module it imports, directly or not, resolved through the catalog."""
    root = (root or paths.root_ontology()).resolve()
    entries = read_catalog(catalog or paths.catalog_file())
    by_path = {p: iri for iri, p in entries.items()}
    if root not in by_path:
        raise SpinekgError(f"{root.name} is not listed in the catalog")
    modules: list[Module] = []
    seen: set[str] = set()
    queue = [by_path[root]]
    while queue:
        iri = queue.pop(0)
        if iri in seen:
            continue
        seen.add(iri)
        path = entries.get(iri)
        if path is None:
            raise SpinekgError(f"import {iri} is not mapped to a file in catalog-v001.xml")
        if not path.is_file():
            raise SpinekgError(f"catalog maps {iri} to {path}, which does not exist")
        modules.append(Module(iri, path))
        graph = _parse(path)
        declared = set(graph.subjects(RDF.type, OWL.Ontology))
        if URIRef(iri) not in declared:
            raise SpinekgError(f"{path.name} does not declare the ontology {iri} the catalog maps to it")
        queue.extend(str(o) for o in graph.objects(URIRef(iri), OWL.imports))
    return modules


def load_asserted(modules: list[Module] | None = None) -> Graph:
    """One rdflib graph holding every asserted triple of the import closure."""
    merged = Graph()
    for module in modules or import_closure():
        merged += _parse(module.path)
    return merged
