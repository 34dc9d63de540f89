"""The ODK-style quality checks: every queries/checks/*-violation.rq returns zero rows on the built
graph, and each of them does find the defect it is written for (mutation table)."""

from __future__ import annotations

from pathlib import Path

import pyoxigraph as ox
import pytest
import yaml

from spinekg.kg import paths
from spinekg.kg.graph import KnowledgeGraph
from spinekg.kg.namespaces import ASSERTED_GRAPH, INFERRED_GRAPH
from spinekg.kg.queries import discover, load_query
from tests.conftest import FIXTURES

CHECK_FILES = sorted((paths.queries_dir() / "checks").glob("*-violation.rq"))
MUTATIONS = yaml.safe_load((FIXTURES / "check-mutations.yaml").read_text(encoding="utf-8"))


def test_checks_were_found() -> None:
    assert len(CHECK_FILES) >= 10


@pytest.mark.parametrize("path", CHECK_FILES, ids=[p.stem for p in CHECK_FILES])
def test_check_returns_no_rows(graph: KnowledgeGraph, path: Path) -> None:
    rows = load_query(path, "check").run(graph).values()
    assert rows == [], f"{path.stem} found violations:\n" + "\n".join(map(str, rows[:20]))


def test_every_check_has_a_mutation() -> None:
    names = {q.name for q in discover("check")}
    assert names == set(MUTATIONS), "tests/fixtures/check-mutations.yaml must name every check exactly"


@pytest.mark.parametrize("name", sorted(MUTATIONS), ids=sorted(MUTATIONS))
def test_check_finds_its_defect(graph: KnowledgeGraph, name: str) -> None:
    """Apply the mutation to a copy of the graph; the check must now return at least one row."""
    mutation = MUTATIONS[name]
    store = ox.Store()
    for part in (ASSERTED_GRAPH, INFERRED_GRAPH):  # the ontology; the ICD-10-CM code set is no check's subject
        store.extend(graph.store.quads_for_pattern(None, None, None, ox.NamedNode(part)))
    prefixes = "".join(f"PREFIX {p}: <{ns}>\n" for p, ns in __import__("spinekg.kg.namespaces").kg.namespaces.PREFIXES.items())
    store.update(prefixes + mutation)
    mutated = KnowledgeGraph(store)
    query = next(q for q in discover("check") if q.name == name)
    assert query.run(graph).rows == []
    assert query.run(mutated).rows, f"{name} did not notice: {mutation}"
