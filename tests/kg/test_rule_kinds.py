"""The rule kinds as a schema: a rule file that does not fit its kind is refused when the rules are
loaded (tests/cases/rule-headers.yaml), and a new rule of an existing kind needs no Python (a site's
own rule from $SPINEKG_RULES_DIR, tests/fixtures/rules/)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from spinekg.kg.claims import ClaimValidator
from spinekg.kg.claims.engine import KINDS, describe_kinds, rule_queries
from spinekg.kg.claims.model import Finding
from spinekg.kg.claims.sample import random_claims
from spinekg.kg.errors import SpinekgError
from spinekg.kg.graph import KnowledgeGraph
from spinekg.kg.queries import discover, load_query
from tests.conftest import CASES, REPO

HEADER_CASES: list[dict[str, Any]] = yaml.safe_load((CASES / "rule-headers.yaml").read_text(encoding="utf-8"))
SITE_RULES = REPO / "tests" / "fixtures" / "rules"
AUGMENTATION = {
    "date_of_service": "2026-05-05",
    "lines": [{"code": "22513", "levels": ["T8"]}, {"code": "22515", "units": 2, "levels": ["T9", "T10"]}],
}


@pytest.mark.parametrize("case", HEADER_CASES, ids=[c["id"] for c in HEADER_CASES])
def test_a_rule_file_that_does_not_fit_its_kind_is_refused(graph: KnowledgeGraph, tmp_path: Path, case: dict[str, Any]) -> None:
    original = next(q for q in discover("rule") if q.name == case["rule"])
    old, new = case["replace"]
    assert old in original.text, f"the case's text is not in {original.path.name}: the case is stale"
    edited = tmp_path / original.path.name
    edited.write_text(original.text.replace(old, new, 1), encoding="utf-8")
    rules = [q for q in discover("rule") if q.name != case["rule"]] + [load_query(edited, "rule")]
    with pytest.raises(SpinekgError) as info:
        ClaimValidator(graph, rule_files=rules)
    assert case["error"] in str(info.value)
    assert case["rule"] in str(info.value) or "supersedes" in case["error"], "the error names the rule"


def test_the_packaged_rules_fit_their_kinds(graph: KnowledgeGraph) -> None:
    validator = ClaimValidator(graph, rule_files=discover("rule"))
    assert {r.kind for r in validator.rules} == set(KINDS), "every kind is used by a packaged rule"


def test_a_site_rule_needs_no_python(graph: KnowledgeGraph, monkeypatch: pytest.MonkeyPatch) -> None:
    """A unit-limit rule written only as a .rq file fires on a claim the packaged rules accept."""
    packaged = ClaimValidator(graph).validate(AUGMENTATION)
    assert packaged["valid"] and not packaged["findings"]
    monkeypatch.setenv("SPINEKG_RULES_DIR", str(SITE_RULES))
    assert {q.name for q in rule_queries()} >= {"augmentation-bodies-site-limit"}
    verdict = ClaimValidator(graph).validate(AUGMENTATION)
    (finding,) = verdict["findings"]
    assert finding["rule"] == "augmentation-bodies-site-limit" and finding["severity"] == "warning"
    assert finding["lines"] == [1, 2] and "3 bodies" in finding["message"] and "more than 2" in finding["message"]
    two = {**AUGMENTATION, "lines": [AUGMENTATION["lines"][0], {"code": "22515", "levels": ["T9"]}]}
    assert not ClaimValidator(graph).validate(two)["findings"], "two bodies are within the site's limit"


def test_a_site_rule_cannot_shadow_a_packaged_one(graph: KnowledgeGraph, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    packaged = next(q for q in discover("rule") if q.name == "units-levels-mismatch")
    (tmp_path / packaged.path.name).write_text(packaged.text, encoding="utf-8")
    monkeypatch.setenv("SPINEKG_RULES_DIR", str(tmp_path))
    with pytest.raises(SpinekgError, match="already loaded"):
        ClaimValidator(graph)


@pytest.mark.parametrize("mistake_rate", [0.0, 0.5, 1.0])
def test_skipping_the_rules_a_shape_cannot_fire_changes_no_verdict(graph: KnowledgeGraph, mistake_rate: float) -> None:
    """The engine runs only the rules relevant to a claim's shape (kg/claims/kinds.py ``relevant``):
    over thousands of sample claims, dates from 2013 on and every kind of mistake, the findings are
    exactly those of running every rule."""
    validator = ClaimValidator(graph)
    claims = random_claims(validator, 3000, seed=17, mistake_rate=mistake_rate)
    fired = 0
    for raw in claims:
        claim = validator.parse(raw)
        pruned = [_as_seen(f) for f in validator.findings(claim)]
        assert pruned == [_as_seen(f) for f in validator.findings(claim, prune=False)], raw
        fired += bool(pruned)
    assert fired > (0 if mistake_rate == 0 else len(claims) // 3), "the sample claims exercise the rules"


def _as_seen(f: Finding) -> tuple[object, ...]:
    return (f.rule, f.severity, f.lines, f.message, f.fix, f.sources, f.status, f.repairs)


def test_kinds_are_described_and_in_the_readme() -> None:
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    for kind in describe_kinds():
        assert kind["summary"] and kind["columns"], kind["kind"]
        assert f"| `{kind['kind']}` |" in readme, f"README's rule-kind table lacks {kind['kind']}"
