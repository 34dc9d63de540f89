"""import-pfs reads the CMS PPRRVU layout (our own small fixture in that layout) into fee schedule records."""

from __future__ import annotations

from decimal import Decimal

import pytest
from rdflib import Graph, Literal, URIRef

from spinekg.kg.errors import SpinekgError
from spinekg.kg.importers.pfs import pfs_to_turtle, read_pprrvu
from spinekg.kg.namespaces import PREFIXES
from tests.conftest import FIXTURES

SAMPLE = FIXTURES / "pprrvu-sample.csv"
SKG, PFS, IND = PREFIXES["skg"], PREFIXES["pfs"], PREFIXES["ind"]


def test_reads_header_and_rows() -> None:
    pfs = read_pprrvu(SAMPLE)
    assert pfs.released == "06/30/2026"
    assert [r["hcpcs"] for r in pfs.rows] == ["11111", "22512", "22325", "77002"]
    assert pfs.rows[2]["nf_na"] == "NA" and pfs.rows[2]["f_na"] == ""
    assert "description" not in pfs.rows[0]


def test_only_known_codes_become_records() -> None:
    graph = Graph().parse(data=pfs_to_turtle(SAMPLE, 2026, "cms-pfs-rvu-2026-jul", {"22512", "22325", "77002"}), format="turtle")
    records = set(graph.subjects(URIRef(SKG + "recordFor"), None))
    assert records == {URIRef(PFS + "2026-22512"), URIRef(PFS + "2026-22325"), URIRef(PFS + "2026-77002-26")}
    rec = URIRef(PFS + "2026-22512")
    assert graph.value(rec, URIRef(SKG + "nonFacilityTotalRvu")).toPython() == Decimal("22.15")
    assert (rec, URIRef(SKG + "hasIndicator"), URIRef(IND + "global-ZZZ")) in graph
    assert (URIRef(PFS + "2026-22325"), URIRef(SKG + "nonFacilityNotApplicable"), Literal(True)) in graph
    release = URIRef(PFS + "release-2026")
    assert graph.value(release, URIRef(SKG + "conversionFactor")).toPython() == Decimal("33.4009")
    assert graph.value(release, URIRef(SKG + "releasedOn")) == Literal(
        "2026-06-30T00:00:00", datatype=URIRef(PREFIXES["xsd"] + "dateTime")
    )


def test_file_without_codes_is_refused() -> None:
    with pytest.raises(SpinekgError, match="none of the ontology's codes"):
        pfs_to_turtle(SAMPLE, 2026, "x", {"99999"})


def test_not_a_pprrvu_file(tmp_path) -> None:
    bad = tmp_path / "bad.csv"
    bad.write_text("a,b,c\n1,2,3\n")
    with pytest.raises(SpinekgError, match="no 'HCPCS,MOD"):
        read_pprrvu(bad)
