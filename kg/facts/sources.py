"""Documentation and sources: what the record must show for a code, why claims for it are denied,
and the documents its facts rest on."""

from __future__ import annotations

from spinekg.kg.facts.table import Facts, Row, about, grouped

# The sections of a code's page that the code-documentation query's rows fall into.
DOCUMENTATION_SECTIONS = ("documentation", "denial_reasons")


def documentation(facts: Facts, code: str) -> dict[str, list[Row]]:
    """For a (known, normalised) code: documentation requirements and denial reasons, in order."""
    subject = {"code": code}
    sections = grouped(about(facts.rows("code-documentation", subject), subject), by="section")
    return {name: sections.get(name, []) for name in DOCUMENTATION_SECTIONS}


def sources(facts: Facts, code: str) -> list[Row]:
    """The documents a (known, normalised) code's facts rest on, with what each is cited for."""
    subject = {"code": code}
    return about(facts.rows("code-sources", subject), subject)
