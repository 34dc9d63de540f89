"""ICD-10-CM as data (kg/icd10): the code set the build reads from simple-icd-10-cm, as a SKOS graph in its
own named graph and as the index the claim rules read; cases in tests/cases/icd10.yaml."""

from __future__ import annotations

import sqlite3
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml
from rdflib import Graph, URIRef
from rdflib.namespace import OWL, RDF

from spinekg.kg import build as kg_build
from spinekg.kg import icd10
from spinekg.kg.errors import SpinekgError
from spinekg.kg.graph import KnowledgeGraph
from spinekg.kg.icd10 import build as icd_build
from spinekg.kg.icd10.source import Entry, PackageRelease
from spinekg.kg.load import load_asserted
from spinekg.kg.namespaces import ASSERTED_GRAPH, ICD10CM_GRAPH, INFERRED_GRAPH, PREFIXES
from tests.conftest import CASES

DATA = yaml.safe_load((CASES / "icd10.yaml").read_text(encoding="utf-8"))
SKOS = PREFIXES["skos"]
SKG = PREFIXES["skg"]


@pytest.fixture(scope="module")
def codes(graph: KnowledgeGraph) -> icd10.CodeSet:
    assert graph.build is not None
    return icd10.code_set(graph.build.folder)


@pytest.mark.parametrize("text", list(DATA["shapes"]), ids=repr)
def test_shape_and_normal_form(text: str) -> None:
    expected = DATA["shapes"][text]
    assert icd10.is_shaped(text) is (expected is not None)
    if expected is None:
        with pytest.raises(ValueError):
            icd10.normalize(text)
    else:
        assert icd10.normalize(text) == expected
        assert icd10.iri(text) == PREFIXES["icd10cm"] + expected.replace(".", "")


def test_every_code_of_the_release_has_the_shape(codes: icd10.CodeSet) -> None:
    """The shape regex is no guess: every category and code of the loaded release matches it, and its
    dotted notation is the normal form of its undotted key."""
    db = sqlite3.connect(f"{codes.path.resolve().as_uri()}?mode=ro&immutable=1", uri=True)
    rows = db.execute("SELECT key, notation FROM entry WHERE kind IN ('category', 'code')").fetchall()
    db.close()
    assert len(rows) > 90_000
    assert [n for k, n in rows if not icd10.is_shaped(n) or icd10.normalize(k) != n] == []


def test_counts_and_release(codes: icd10.CodeSet, graph: KnowledgeGraph) -> None:
    assert codes.count() > codes.count(billable=True) > 70_000
    (release,) = codes.releases
    assert release.id == "2026-04" and release.package.startswith("simple-icd-10-cm ")
    # the dates are the ontology's (ontology/icd10cm.ttl), not the code's
    rows = graph.select(
        f"""SELECT ?from ?until WHERE {{ <{release.iri}> a <{SKG}IcdRelease> ;
        <{SKG}validFrom> ?from ; <{SKG}deletedOn> ?until }}"""
    ).values()
    assert len(rows) == 1
    assert release.effective == rows[0]["from"].date()
    assert release.until == rows[0]["until"].date() - timedelta(days=1)
    assert codes.release_on(release.effective) == release and codes.release_on(release.until) == release
    assert codes.release_on(release.effective - timedelta(days=1)) is None
    assert codes.release_on(release.until + timedelta(days=1)) is None


@pytest.mark.parametrize("case", DATA["lookups"], ids=lambda c: f"{c['code']}@{c.get('date', 'latest')}")
def test_lookup(codes: icd10.CodeSet, case: dict[str, Any]) -> None:
    on = date.fromisoformat(case["date"]) if "date" in case else None
    found = codes.lookup(case["code"], on=on)
    if case.get("found", True) is False:
        assert found is None
        return
    assert found is not None
    for key in ("billable", "kind", "children", "title"):
        if key in case:
            assert getattr(found, key) == case[key], key
    if "ancestors" in case:
        assert list(found.ancestors) == case["ancestors"]
    if "first_billable" in case:
        assert list(codes.nearest_billable(case["code"], len(case["first_billable"]))) == case["first_billable"]
    assert found.releases == ("2026-04",)
    assert codes.lookup(case["code"], on=on) is found, "a second lookup is the remembered answer"


@pytest.mark.parametrize("code", list(DATA["placeholders"]))
def test_placeholder_form(codes: icd10.CodeSet, code: str) -> None:
    assert codes.placeholder_form(code) == DATA["placeholders"][code]


def test_children_and_did_you_mean(codes: icd10.CodeSet) -> None:
    children = codes.children("M80.08")
    assert len(children) == codes.lookup("M80.08").children == 6  # type: ignore[union-attr]
    assert all(codes.lookup(c).billable for c in children)  # type: ignore[union-attr]
    assert "M80.08XA" in codes.one_edit_codes("M8O.08XA")
    assert codes.one_edit_codes("not a code") == ()


def test_descendants_by_sparql_are_the_index_s(graph: KnowledgeGraph, codes: icd10.CodeSet) -> None:
    """Every descendant of M80 through skos:broader+ in the union default graph, as the index has them."""
    rows = graph.select(f"SELECT ?n WHERE {{ ?c <{SKOS}broader>+ <{icd10.iri('M80')}> ; <{SKOS}notation> ?n }}").values()
    by_sparql = {r["n"] for r in rows}
    by_index: set[str] = set()
    frontier = ["M80"]
    while frontier:
        kids = codes.children(frontier.pop())
        by_index.update(kids)
        frontier.extend(kids)
    assert by_sparql == by_index and "M80.08XA" in by_sparql and len(by_sparql) > 100


def test_the_code_set_is_a_graph_of_its_own(graph: KnowledgeGraph) -> None:
    """Data beside the ontology: in its own named graph (never reasoned over), sized as the build says."""
    assert graph.build is not None
    assert graph.count(ICD10CM_GRAPH) == graph.build.icd10_triples > 500_000
    for name in (ASSERTED_GRAPH, INFERRED_GRAPH):
        ask = f"ASK {{ GRAPH <{name}> {{ <{icd10.iri('M80.08XA')}> ?p ?o }} }}"
        assert not graph.execute(ask), f"the code set leaked into {name}"
    ask = f"ASK {{ <{icd10.iri('M80.08XA')}> <{SKOS}inScheme> ?r . ?r a <{SKG}IcdRelease> ; <{PREFIXES['dcterms']}source> ?s }}"
    assert graph.execute(ask), "the release is the ontology's, with its source"


ENTRIES = [
    Entry("13", "chapter", None, "Diseases of the musculoskeletal system", 1),
    Entry("M80-M85", "block", 0, 'Disorders of bone "density"', 1),
    Entry("M80", "category", 1, "Osteoporosis with current pathological fracture", 1),
    Entry("M80.08", "code", 2, "Age-related osteoporosis, vertebra(e)", 1),
    Entry("M80.08XA", "code", 3, "Age-related osteoporosis, vertebra(e), initial encounter \\ for fracture", 0),
]


def test_written_graph_uses_only_declared_terms(tmp_path: Path) -> None:
    """The generated graph (here of five entries) parses, and every term of our vocabulary it uses is
    declared (queries/checks/undeclared-term-violation.rq leaves the big graph to this test)."""
    asserted = load_asserted()
    release = icd_build.release_facts(asserted, "2026-04", "test")
    built = icd_build.write(PackageRelease("test", "2026-04", (), ENTRIES), release, tmp_path)
    data = Graph().parse(built.graph_path, format="nt")
    assert len(data) == built.triples
    used = {p for p in data.predicates() if str(p).startswith(SKG)} | {
        o for o in data.objects(None, RDF.type) if str(o).startswith(SKG)
    }
    assert used >= {URIRef(SKG + "billable"), URIRef(SKG + "IcdChapter"), URIRef(SKG + "IcdBlock")}
    declared = {s for t in (OWL.Class, OWL.DatatypeProperty, OWL.ObjectProperty) for s in asserted.subjects(RDF.type, t)}
    assert used <= declared, used - declared
    leaf = URIRef(icd10.iri("M80.08XA"))
    assert str(data.value(leaf, URIRef(SKOS + "prefLabel"))).endswith("\\ for fracture")
    assert str(data.value(leaf, URIRef(SKOS + "broader"))) == icd10.iri("M80.08")
    assert str(data.value(URIRef(icd10.block_iri("M80-M85")), URIRef(SKOS + "prefLabel"))) == 'Disorders of bone "density"'
    assert (URIRef(PREFIXES["dcterms"] + "source"), URIRef(release.source)) in set(data.predicate_objects(leaf))
    for source in set(data.objects(None, URIRef(PREFIXES["dcterms"] + "source"))):
        assert (source, RDF.type, URIRef(SKG + "Source")) in asserted


def test_a_release_the_ontology_does_not_declare_stops_the_build() -> None:
    with pytest.raises(SpinekgError, match="does not declare"):
        icd_build.release_facts(load_asserted(), "2099-04", "9.9")


def test_the_build_key_covers_the_package(monkeypatch: pytest.MonkeyPatch) -> None:
    before = kg_build.source_key()
    monkeypatch.setattr(kg_build, "package_version", lambda: "9.9.9")
    assert kg_build.source_key() != before
