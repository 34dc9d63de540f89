"""What the coverage importer keeps and how it attaches it, read from the graph (the typed modules)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from spinekg.kg.coverage.importer import Scope
from spinekg.kg.facts.codes import as_date

if TYPE_CHECKING:
    from spinekg.kg.graph import KnowledgeGraph


def scope_from_graph(graph: KnowledgeGraph) -> Scope:
    """The watched codes (coverage-watched-codes), and the articles, versions and LCDs the ontology types
    (coverage-documents), as the importer needs them."""
    from spinekg.kg.queries import get_query  # the graph is loaded by then

    codes = frozenset(str(r["code"]) for r in get_query("coverage-watched-codes").run(graph).values())
    articles: dict[int, str] = {}
    lcds: dict[int, str] = {}
    versions = {}
    for row in get_query("coverage-documents").run(graph).values():
        if row.get("imported"):
            continue  # the ontology's own documents, not what an earlier import added
        display = str(row["document"])
        number = int(display[1:])
        if row["type"] == "lcd":
            lcds[number] = display
            continue
        articles[number] = display
        if row.get("version") is not None:
            versions[(number, int(row["version"]))] = (as_date(row.get("version_from")), as_date(row.get("version_until")))
    return Scope(codes=codes, articles=articles, versions=versions, lcds=lcds)
