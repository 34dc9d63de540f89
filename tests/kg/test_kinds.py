"""Each rule kind over a hand-made table (tests/cases/kinds.yaml): the behaviours a kind owns, pinned
independently of the ontology's current facts."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from spinekg.kg.claims.engine import ClaimValidator
from spinekg.kg.claims.kinds import KINDS, Anatomy, Context
from spinekg.kg.claims.model import Repair
from spinekg.kg.claims.rules import Rule
from spinekg.kg.queries import NamedQuery
from tests.conftest import CASES

KIND_CASES: list[dict[str, Any]] = yaml.safe_load((CASES / "kinds.yaml").read_text(encoding="utf-8"))


def _repair(r: Repair) -> str:
    detail = r.code or r.modifier or (str(r.units) if r.units else "")
    return f"{r.action} {r.line} {detail}".strip()


@pytest.fixture(scope="module")
def anatomy(validator: ClaimValidator) -> Anatomy:
    return validator.anatomy


@pytest.fixture(scope="module")
def validator(graph: Any) -> ClaimValidator:
    return ClaimValidator(graph)


@pytest.mark.parametrize("case", KIND_CASES, ids=[c["id"] for c in KIND_CASES])
def test_kind_over_a_hand_made_table(case: dict[str, Any], validator: ClaimValidator, anatomy: Anatomy) -> None:
    header = {
        "summary": case["id"],
        "kind": "rule",
        "rule-kind": case["kind"],
        "severity": "error",
        "message": case["message"],
        "fix": "fix",
        "source": ["S1"],
        **(case.get("options") or {}),
        **({"repair": case["repair"]} if case.get("repair") else {}),
    }
    rule = Rule.from_query(NamedQuery(case["id"].replace("/", "-"), "rule", Path(f"{case['kind']}.rq"), header, ""), KINDS)
    kind = KINDS[case["kind"]]
    rows = [{**{c: None for c in (*kind.columns, *kind.optional)}, **row} for row in case["rows"]]
    rule.check_columns(list(rows[0]), kind)
    checker = kind(rule, rows, anatomy)
    for item in case["claims"]:
        out: list[Any] = []
        checker.check(Context(validator.parse(item["claim"])), out)
        got = [{"lines": list(f.lines), "message": f.message, "repairs": [_repair(r) for r in f.repairs]} for f in out]
        want = item["expect"]
        assert len(got) == len(want), (item.get("why"), got)
        for g, w in zip(got, want, strict=True):
            assert g["lines"] == w["lines"] and g["message"] == w["message"], (item.get("why"), g)
            if "repairs" in w:
                assert g["repairs"] == w["repairs"], g
