"""A code's page: everything the graph knows about one code, assembled from the fact families. The
HTTP API (GET /codes/{code}) and the command line (spinekg code-info) both answer with it."""

from __future__ import annotations

from typing import Any

from spinekg.kg.facts import coverage, fees, levels, modifiers, relations, sources
from spinekg.kg.facts.codes import known_code
from spinekg.kg.facts.table import Facts


def code_page(facts: Facts, code: str) -> dict[str, Any]:
    """The page of a code (any case); UnknownCodeError for a code the graph does not know."""
    value = known_code(facts, code)
    return facts.cached(("code-page", value), lambda: _assemble(facts, value))


def _assemble(facts: Facts, code: str) -> dict[str, Any]:
    page = dict(facts.rows("code-facts", {"code": code})[0])
    page["levels"] = levels.code_levels(facts, code)
    page["pairs"] = relations.pairs(facts, code)
    page["bundles"] = relations.bundles(facts, code)
    page["conflicts"] = relations.conflicts(facts, code)
    page["fee_schedule"] = fees.fee_schedule(facts, code)
    page["modifiers"] = modifiers.modifiers(facts, code)
    page["coverage"] = coverage.lcd_summaries(facts, code)  # each contractor's LCD and what is known of its lists
    page.update(sources.documentation(facts, code))
    page["sources"] = sources.sources(facts, code)
    return page
