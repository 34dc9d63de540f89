"""Claim validation, driven by the case tables in tests/cases/claims/*.yaml.

Every rule in queries/rules/ must have at least one case where it fires and one where it is
exercised and stays silent; the worked examples E1-E17 of the fact sheet are all here."""

from __future__ import annotations

from datetime import date
from pathlib import Path
from typing import Any

import pytest
import yaml

from spinekg.kg.claims import ClaimValidator
from spinekg.kg.errors import InputError
from spinekg.kg.graph import KnowledgeGraph
from spinekg.kg.queries import discover
from tests.conftest import CASES

TODAY = date(2026, 5, 5)
CASE_FILES = sorted(p for p in (CASES / "claims").glob("*.yaml") if p.name != "bad-input.yaml")


def _load(path: Path) -> list[dict[str, Any]]:
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    assert isinstance(data, list) and data, f"{path.name} holds no cases"
    return data


CLAIM_CASES = [case for path in CASE_FILES for case in _load(path)]
BAD_INPUT = _load(CASES / "claims" / "bad-input.yaml")
# the rules that read CMS's NCCI tables have their cases in tests/cases/claims-ncci.yaml (test_ncci_claims.py)
RULE_IDS = sorted(q.name for q in discover("rule") if not str(q.header.get("rule-kind", "")).startswith("ncci-"))
# ncci-ptp-edit also reads the rows generated into the ontology for our codes, so these tables name it too
ALL_RULE_IDS = sorted(q.name for q in discover("rule"))


@pytest.fixture(scope="session")
def validator(graph: KnowledgeGraph) -> ClaimValidator:
    return ClaimValidator(graph)


def describe_line(line: dict[str, Any]) -> str:
    mods = "".join(f"-{m}" for m in line["modifiers"])
    levels = f" {', '.join(line['levels'])}" if line["levels"] else ""
    return f"{line['code']}{mods} x{line['units']}{levels}"


def test_case_tables_are_not_empty() -> None:
    assert len(CASE_FILES) >= 5 and len(CLAIM_CASES) >= 60
    ids = [c["id"] for c in CLAIM_CASES]
    assert len(ids) == len(set(ids)), "case ids are unique"
    assert {f"E{n}" for n in range(1, 18)} <= {i.split("-")[0] for i in ids}, "every worked example E1-E17"


@pytest.mark.parametrize("case", CLAIM_CASES, ids=[c["id"] for c in CLAIM_CASES])
def test_claim_case(validator: ClaimValidator, case: dict[str, Any]) -> None:
    check_case(validator, case)


def check_case(validator: ClaimValidator, case: dict[str, Any]) -> list[dict[str, Any]]:
    """A case of a claim table against the verdict: rules, validity, severities, message, lines, the
    suggestion (itself valid) and what every finding must hold. Returns the findings."""
    verdict = validator.validate(case["claim"], today=TODAY)
    expect = case["expect"]
    found = verdict["findings"]
    assert {f["rule"] for f in found} == set(expect["rules"]), [(f["rule"], f["message"]) for f in found]
    assert verdict["valid"] is expect["valid"]
    assert verdict["valid"] == (not any(f["severity"] == "error" for f in found))
    if "errors" in expect:
        assert sum(f["severity"] == "error" for f in found) == expect["errors"]
    for rule, severity in (expect.get("severities") or {}).items():
        assert {f["severity"] for f in found if f["rule"] == rule} == {severity}
    if "message" in expect:
        assert any(expect["message"] in f["message"] + " " + f["fix"] for f in found)
    for rule, groups in (expect.get("lines") or {}).items():
        # the lines of each finding of the rule, in verdict order: one finding per group of lines
        assert [f["lines"] for f in found if f["rule"] == rule] == groups, rule
    if "suggestion" in expect:
        suggestion = verdict["suggestion"]
        if expect["suggestion"] is None:
            assert suggestion is None
        else:
            assert suggestion is not None, "a suggestion can be derived"
            assert [describe_line(ln) for ln in suggestion["lines"]] == expect["suggestion"]
            assert suggestion["changes"]
            assert validator.validate({**case["claim"], "lines": suggestion["lines"]}, today=TODAY)["valid"]
    for f in found:
        assert f["message"] and f["fix"], "every finding explains itself and says how to fix it"
        assert f["lines"] and all(1 <= n <= len(case["claim"]["lines"]) for n in f["lines"])
        if f["severity"] != "info" and f["rule"] not in {"unknown-code", "unknown-modifier"}:
            assert f["sources"], f"{f['rule']} cites its sources"
        for src in f["sources"]:
            assert src["title"] and src["tier"] in {"T1", "T2", "T3", "T4"}
    return found


@pytest.mark.parametrize("rule", RULE_IDS)
def test_every_rule_has_a_failing_and_a_passing_case(rule: str) -> None:
    failing = [c["id"] for c in CLAIM_CASES if rule in c["expect"]["rules"]]
    passing = [c["id"] for c in CLAIM_CASES if rule in c.get("tests", []) and rule not in c["expect"]["rules"]]
    assert failing, f"no case in tests/cases/claims shows {rule} firing"
    assert passing, f"no case in tests/cases/claims exercises {rule} and passes (list it under tests:)"


def test_cases_name_only_known_rules() -> None:
    named = {r for c in CLAIM_CASES for r in c["expect"]["rules"] + c.get("tests", [])}
    assert named <= set(ALL_RULE_IDS), named - set(ALL_RULE_IDS)


def test_cases_use_only_the_keys_test_claim_case_reads() -> None:
    """A misspelt key (`sugestion:`, `test:`) would be skipped silently and check nothing."""
    for case in CLAIM_CASES:
        assert set(case) <= {"id", "claim", "expect", "tests", "why"}, case["id"]
        known = {"valid", "rules", "errors", "severities", "message", "lines", "suggestion"}
        assert set(case["expect"]) <= known, f"{case['id']}: {set(case['expect']) - known}"


@pytest.mark.parametrize("case", BAD_INPUT, ids=[c["id"] for c in BAD_INPUT])
def test_unusable_input_names_the_field(validator: ClaimValidator, case: dict[str, Any]) -> None:
    with pytest.raises(InputError) as info:
        validator.validate(case["input"], today=TODAY)
    assert info.value.field == case["field"]
    assert info.value.detail


def test_unverified_basis_never_makes_an_error(validator: ClaimValidator) -> None:
    verdict = validator.validate(
        {"date_of_service": "2026-05-05", "lines": [{"code": "22510", "levels": ["T8"]}, {"code": "20220", "levels": ["T8"]}]},
        today=TODAY,
    )
    (finding,) = verdict["findings"]
    assert finding["evidence"] == "unverified" and finding["severity"] == "warning"
    assert "could not verify" in finding["message"]


def test_default_date_of_service_is_today(validator: ClaimValidator) -> None:
    verdict = validator.validate({"lines": [{"code": "22510", "levels": ["T5"]}]})
    assert verdict["date_of_service"] == date.today().isoformat()


def test_invalid_json_text(validator: ClaimValidator) -> None:
    with pytest.raises(InputError) as info:
        validator.validate_json(b'{"lines": [')
    assert info.value.field == "claim" and "not valid JSON" in info.value.detail


def test_rule_file_is_the_rule_id(validator: ClaimValidator) -> None:
    assert [r.id for r in validator.rules] == sorted(q.name for q in discover("rule"))
    for rule in validator.rules:
        assert rule.query is not None and rule.query.path.stem == rule.id
