"""Relations of a code to other codes: the codes it pairs with, the bundling edits it takes part in,
and the codes it must not be billed with, each with the reason and the evidence."""

from __future__ import annotations

from typing import Any

from spinekg.kg.facts.codes import known_code
from spinekg.kg.facts.table import Facts, Row, about


def _section(facts: Facts, query: str, code: str) -> list[Row]:
    subject = {"code": code}
    return about(facts.rows(query, subject), subject)


def pairs(facts: Facts, code: str) -> list[Row]:
    """An add-on's primaries, or a primary's add-ons, inferred from family membership."""
    return _section(facts, "pairs-with", code)


def bundles(facts: Facts, code: str) -> list[Row]:
    """What the code includes or is included in: scope, bypass modifiers and when they apply, NCCI status."""
    return _section(facts, "bundled-with", code)


def conflicts(facts: Facts, code: str) -> list[Row]:
    """Codes not to bill with this one: the other primaries of its family, and its bundling edits."""
    return _section(facts, "conflicts-with", code)


SECTIONS = {"pairs": pairs, "bundles": bundles, "conflicts": conflicts}


def relation_page(facts: Facts, code: str, section: str) -> dict[str, Any]:
    """``{"code": …, section: [...]}`` for GET /codes/{code}/pairs, /bundles or /conflicts."""
    value = known_code(facts, code)
    return {"code": value, section: SECTIONS[section](facts, value)}
