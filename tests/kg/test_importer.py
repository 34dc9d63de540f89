"""import-pfs reads the CMS PPRRVU layout (our own small fixture in that layout) into fee schedule records."""

from __future__ import annotations

from decimal import Decimal

import pytest
from rdflib import Graph, Literal, URIRef

from spinekg.kg.errors import SpinekgError
from spinekg.kg.importers.pfs import Component, Vocabulary, pfs_to_turtle, read_pprrvu, vocabulary
from spinekg.kg.load import load_asserted
from spinekg.kg.namespaces import PREFIXES
from tests.conftest import FIXTURES

SAMPLE = FIXTURES / "pprrvu-sample.csv"
SKG, PFS, IND = PREFIXES["skg"], PREFIXES["pfs"], PREFIXES["ind"]


@pytest.fixture(scope="module")
def ontology() -> Vocabulary:
    return vocabulary(load_asserted())


def known(ontology: Vocabulary, *codes: str) -> Vocabulary:
    """The ontology's component modifiers, with only ``codes`` known."""
    return Vocabulary(frozenset(codes), ontology.components)


def test_component_modifiers_come_from_the_ontology(ontology: Vocabulary) -> None:
    """The modifiers the PC/TC indicator governs select the component rows, named as modifiers.ttl names them."""
    assert ontology.components == {"26": Component("26", "professional component"), "TC": Component("TC", "technical component")}
    assert {"22512", "77002", "0200T"} <= ontology.codes


def test_reads_header_and_rows() -> None:
    pfs = read_pprrvu(SAMPLE)
    assert pfs.released == "06/30/2026"
    assert [r["hcpcs"] for r in pfs.rows] == ["11111", "22512", "22325", "77002"]
    assert pfs.rows[2]["nf_na"] == "NA" and pfs.rows[2]["f_na"] == ""
    assert "description" not in pfs.rows[0]


def test_only_known_codes_become_records(ontology: Vocabulary) -> None:
    text = pfs_to_turtle(SAMPLE, 2026, "cms-pfs-rvu-2026-jul", known(ontology, "22512", "22325", "77002"))
    graph = Graph().parse(data=text, format="turtle")
    records = set(graph.subjects(URIRef(SKG + "recordFor"), None))
    assert records == {URIRef(PFS + "2026-22512"), URIRef(PFS + "2026-22325"), URIRef(PFS + "2026-77002-26")}
    rec = URIRef(PFS + "2026-22512")
    assert graph.value(rec, URIRef(SKG + "nonFacilityTotalRvu")).toPython() == Decimal("22.15")
    assert (rec, URIRef(SKG + "hasIndicator"), URIRef(IND + "global-ZZZ")) in graph
    assert (URIRef(PFS + "2026-22325"), URIRef(SKG + "nonFacilityNotApplicable"), Literal(True)) in graph
    assert (URIRef(PFS + "2026-22325"), URIRef(SKG + "facilityNotApplicable"), Literal(False)) in graph
    component = URIRef(PFS + "2026-77002-26")
    assert graph.value(component, URIRef(SKG + "componentModifier")) == URIRef(PREFIXES["mod"] + "26")
    assert (
        str(graph.value(component, URIRef(PREFIXES["rdfs"] + "label")))
        == "2026 fee schedule record for 77002 (professional component)"
    )
    release = URIRef(PFS + "release-2026")
    assert graph.value(release, URIRef(SKG + "conversionFactor")).toPython() == Decimal("33.4009")
    assert graph.value(release, URIRef(SKG + "releasedOn")) == Literal(
        "2026-06-30T00:00:00", datatype=URIRef(PREFIXES["xsd"] + "dateTime")
    )


def test_file_without_codes_is_refused(ontology: Vocabulary) -> None:
    with pytest.raises(SpinekgError, match="none of the ontology's codes"):
        pfs_to_turtle(SAMPLE, 2026, "x", known(ontology, "99999"))


def test_a_modifier_row_the_ontology_does_not_call_a_component_is_refused() -> None:
    with pytest.raises(SpinekgError, match="unexpected modifier row '26' \\(component modifiers: none\\)"):
        pfs_to_turtle(SAMPLE, 2026, "x", Vocabulary(frozenset({"77002"}), {}))


def test_not_a_pprrvu_file(tmp_path) -> None:
    bad = tmp_path / "bad.csv"
    bad.write_text("a,b,c\n1,2,3\n")
    with pytest.raises(SpinekgError, match="no 'HCPCS,MOD"):
        read_pprrvu(bad)
