"""HermiT at build time: the ontology is consistent, the inferred triples are kept apart from the
asserted ones, and an inconsistent ontology fails the build with the clashing axioms named."""

from __future__ import annotations

import pytest
from rdflib import URIRef

from spinekg.kg.graph import KnowledgeGraph
from spinekg.kg.load import load_asserted
from spinekg.kg.namespaces import ASSERTED_GRAPH, INFERRED_GRAPH, PREFIXES
from spinekg.kg.reason import InconsistentOntologyError, reason
from tests.conftest import load_cases

SKG, CPT, ANAT = PREFIXES["skg"], PREFIXES["cpt"], PREFIXES["anat"]


def test_build_is_consistent_and_has_inferences(graph: KnowledgeGraph) -> None:
    assert graph.build is not None
    assert graph.count(ASSERTED_GRAPH) == graph.build.asserted_triples > 1000
    assert graph.count(INFERRED_GRAPH) == graph.build.inferred_triples > 500


def test_inferred_triples_are_not_asserted(graph: KnowledgeGraph) -> None:
    asserted = set(graph.triples(ASSERTED_GRAPH))
    overlap = [t for t in graph.triples(INFERRED_GRAPH) if t in asserted]
    assert overlap == []


@pytest.mark.parametrize("case", load_cases("inferences.yaml"), ids=lambda c: c["id"])
def test_inferred_fact(graph: KnowledgeGraph, case: dict) -> None:
    """Each fact is absent from the asserted graph and present in the inferred graph."""
    s, p, o = (URIRef(PREFIXES[t.split(":")[0]] + t.split(":", 1)[1]) for t in case["triple"])
    ask = f"ASK {{ GRAPH <{{g}}> {{ <{s}> <{p}> <{o}> }} }}"
    assert not graph.store.query(ask.replace("{g}", ASSERTED_GRAPH)), "fact should not be asserted"
    assert bool(graph.store.query(ask.replace("{g}", INFERRED_GRAPH))) is case.get("inferred", True)


@pytest.mark.slow
def test_inconsistency_names_the_axioms() -> None:
    asserted = load_asserted()
    asserted.add((URIRef(ANAT + "T7"), URIRef(SKG + "inRegion"), URIRef(ANAT + "LumbarRegion")))
    with pytest.raises(InconsistentOntologyError) as info:
        reason(asserted)
    message = str(info.value)
    assert "anat:T7" in message and "anat:LumbarRegion" in message
    assert "DisjointClasses" in message
