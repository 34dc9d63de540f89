"""Fees: the Medicare physician fee schedule rows of a code, by year and component, with the meaning
of every indicator value and national amounts (none for a contractor-priced record: the ontology's
skg:contractorPriced indicator values say which)."""

from __future__ import annotations

from spinekg.kg.facts.table import Facts, Row, about


def fee_schedule(facts: Facts, code: str) -> list[Row]:
    """The fee schedule rows of a (known, normalised) code, latest year first."""
    subject = {"code": code}
    return about(facts.rows("fee-schedule", subject), subject)
