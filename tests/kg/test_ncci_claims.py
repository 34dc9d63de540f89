"""Claims against NCCI tables imported from the fixtures (tests/cases/claims-ncci.yaml): the ncci-*
rule kinds judge codes of any family from CMS's tables, as of the date of service and by claim type,
and stay inactive (silent) while no table is imported."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date
from pathlib import Path
from typing import Any

import pytest
import yaml

from spinekg.kg.claims import ClaimValidator
from spinekg.kg.graph import KnowledgeGraph
from spinekg.kg.ncci import import_ncci
from tests.conftest import CASES, REPO
from tests.kg.test_claims import check_case

FIXTURES = REPO / "tests" / "fixtures" / "ncci"
NCCI_CASES: list[dict[str, Any]] = yaml.safe_load((CASES / "claims-ncci.yaml").read_text(encoding="utf-8"))
TODAY = date(2026, 5, 5)


@pytest.fixture(scope="module")
def ncci_home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    home = tmp_path_factory.mktemp("ncci-home")
    files = [
        *sorted(FIXTURES.glob("ccipra-v321r0-f*.TXT")),
        FIXTURES / "ccioph-v321r0-f1.TXT",
        FIXTURES / "MCR_MUE_PractitionerServices_Eff_04-01-2026.csv",
        FIXTURES / "MCR_MUE_OutpatientHospitalServices_Eff_04-01-2026.csv",
        FIXTURES / "AOC_V2026Q2-MCR.txt",
    ]
    import_ncci(files, cache=home / "cache")
    return home


@pytest.fixture(scope="module")
def validator(graph: KnowledgeGraph, ncci_home: Path) -> Iterator[ClaimValidator]:
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("SPINEKG_NCCI_DIR", str(ncci_home / "cache" / "ncci"))
        yield ClaimValidator(graph)


@pytest.mark.parametrize("case", NCCI_CASES, ids=[c["id"] for c in NCCI_CASES])
def test_claim_against_the_ncci_tables(validator: ClaimValidator, case: dict[str, Any]) -> None:
    found = check_case(validator, case)
    for f in found:
        if f["rule"].startswith("ncci-"):
            assert "release" in f["message"], "an NCCI finding names its release"


def test_every_ncci_rule_has_a_failing_and_a_passing_case(validator: ClaimValidator) -> None:
    for rule in (r.id for r in validator.rules if r.kind.startswith("ncci-")):
        assert any(rule in c["expect"]["rules"] for c in NCCI_CASES), rule
        assert any(rule in c.get("tests", []) and rule not in c["expect"]["rules"] for c in NCCI_CASES), rule


def test_without_imported_tables_the_ontology_rows_judge_our_codes_only(
    graph: KnowledgeGraph, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """No release imported: the PTP rule reads the rows generated into the ontology for our codes (so it
    is active and names their release), the MUE and AOC rules are inactive, and codes outside our family
    are not judged against each other."""
    monkeypatch.setenv("SPINEKG_NCCI_DIR", str(tmp_path))
    validator = ClaimValidator(graph)
    rules = {r["id"]: r for r in validator.describe_rules()}
    assert rules["ncci-ptp-edit"]["active"] is True and rules["ncci-mue-exceeded"]["active"] is False
    verdict = validator.validate({"date_of_service": "2026-05-05", "lines": [{"code": "77012"}, {"code": "76000"}]})
    assert not [f for f in verdict["findings"] if f["rule"].startswith("ncci-")]
    lines = [{"code": "22513", "levels": ["T7"]}, {"code": "99155"}]
    ours = validator.validate({"date_of_service": "2026-05-05", "lines": lines})
    (finding,) = [f for f in ours["findings"] if f["rule"] == "ncci-ptp-edit"]
    assert "modifier indicator 0" in finding["message"] and "release 2024-07-01" in finding["message"]
    # the module holds the practitioner table only: an outpatient claim is not judged by it
    outpatient = validator.validate({**{"date_of_service": "2026-05-05", "claim_type": "outpatient"}, "lines": lines})
    assert not [f for f in outpatient["findings"] if f["rule"] == "ncci-ptp-edit"]


def test_outpatient_claims_read_the_outpatient_table(validator: ClaimValidator) -> None:
    """22510 with 99155: practitioner indicator 0 (never), outpatient-hospital indicator 1 (with a modifier)."""
    claim = {"date_of_service": "2026-05-05", "lines": [{"code": "22510", "levels": ["T8"]}, {"code": "99155"}]}
    professional = validator.validate(claim)
    outpatient = validator.validate(claim | {"claim_type": "outpatient"})
    assert [f["message"] for f in professional["findings"] if f["rule"] == "ncci-ptp-edit"][0].count("indicator 0") == 1
    assert [f["message"] for f in outpatient["findings"] if f["rule"] == "ncci-ptp-edit"][0].count("indicator 1") == 1
