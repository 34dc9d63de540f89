"""Modifiers: which may and which may not be appended to a code, with the reason and the sources."""

from __future__ import annotations

from typing import Any

from spinekg.kg.facts.table import Facts, about


def modifiers(facts: Facts, code: str) -> dict[str, Any]:
    """For a (known, normalised) code: the modifiers not allowed (each restriction with its years, an
    empty list for every year), the modifiers allowed, and the fee schedule year the allowed list is
    for (the latest with a record of the code; null without records)."""
    subject = {"code": code}
    allowed = facts.rows("modifiers-allowed", subject)
    return {
        "not_allowed": about(facts.rows("modifiers-not-allowed", subject), subject),
        "allowed": [row["modifier"] for row in allowed],
        "year": allowed[0]["year"] if allowed else None,
    }
