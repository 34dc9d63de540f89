"""The named API queries answer the fact sheet's questions (tests/cases/queries.yaml)."""

from __future__ import annotations

import pytest

from spinekg.kg.graph import KnowledgeGraph
from spinekg.kg.queries import get_query
from tests.conftest import load_cases

CASES = load_cases("queries.yaml")


@pytest.mark.parametrize("case", CASES, ids=lambda c: c["id"])
def test_named_query(graph: KnowledgeGraph, case: dict) -> None:
    rows = get_query(case["query"]).run(graph, case.get("params", {})).values()
    expect = case["expect"]
    checks = {"equals", "includes", "excludes", "rows", "first"}
    assert set(expect) <= checks | {"column", "split"}, f"unknown keys: {set(expect) - checks - {'column', 'split'}}"
    assert checks & set(expect), "the case checks nothing"
    assert "column" in expect or not ({"equals", "includes", "excludes"} & set(expect)), "equals/includes/excludes need a column"
    column = expect.get("column")
    values: set[str] = set()
    for r in rows if column else []:
        if r.get(column) is not None:
            # multi-valued columns (GROUP_CONCAT) come in no fixed order: compare their items
            values |= set(str(r[column]).split(expect["split"])) if "split" in expect else {str(r[column])}
    if "equals" in expect:
        assert values == {str(v) for v in expect["equals"]}
    if "includes" in expect:
        assert {str(v) for v in expect["includes"]} <= values
    if "excludes" in expect:
        assert not ({str(v) for v in expect["excludes"]} & values)
    if "rows" in expect:
        assert len(rows) == expect["rows"]
    for field, value in (expect.get("first") or {}).items():
        assert rows and str(rows[0][field]) == str(value), f"{field}: {rows[0].get(field) if rows else None}"
