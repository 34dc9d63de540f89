"""Protégé-readiness: the catalog resolves every import offline, every module is in the closure,
every module has an IRI and a version IRI, and the OWL API sees the closure as OWL 2 DL."""

from __future__ import annotations

import re

import pytest
from rdflib import Graph, URIRef
from rdflib.namespace import OWL, RDF

from spinekg.kg import paths
from spinekg.kg.checks import profile_check
from spinekg.kg.load import import_closure, read_catalog

MODULE_FILES = sorted(p for p in paths.ontology_dir().rglob("*.ttl") if "shapes" not in p.parts)


def test_catalog_maps_every_module_file() -> None:
    catalog = read_catalog(paths.catalog_file())
    assert sorted(catalog.values()) == sorted(p.resolve() for p in MODULE_FILES)


def test_import_closure_reaches_every_module() -> None:
    closure = {m.path for m in import_closure()}
    assert closure == {p.resolve() for p in MODULE_FILES}


@pytest.mark.parametrize("path", MODULE_FILES, ids=lambda p: str(p.relative_to(paths.ontology_dir())))
def test_module_has_iri_version_and_label(path) -> None:
    graph = Graph().parse(path, format="turtle")
    headers = list(graph.subjects(RDF.type, OWL.Ontology))
    assert len(headers) == 1, "one owl:Ontology per file"
    header = headers[0]
    assert str(header).startswith("https://w3id.org/spinekg/ontology")
    version = graph.value(header, OWL.versionIRI)
    assert version is not None and re.search(r"/releases/\d{4}(-\d\d-\d\d)?$", str(version))
    assert graph.value(header, URIRef("http://www.w3.org/2000/01/rdf-schema#label")) is not None


def test_catalog_entries_are_relative() -> None:
    text = paths.catalog_file().read_text()
    assert "file:" not in text and "/work/" not in text


@pytest.mark.slow
def test_owl_api_loads_the_closure_as_owl2_dl() -> None:
    ok, report = profile_check("DL")
    assert ok, report
    assert "IN PROFILE" in report
