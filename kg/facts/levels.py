"""Levels: the vertebrae and spinal regions, what applies at a vertebra, and where a code applies."""

from __future__ import annotations

from typing import Any

from spinekg.kg.errors import InputError
from spinekg.kg.facts.table import Facts, Row, about, grouped


class UnknownVertebraError(InputError):
    def __init__(self, level: str, known: list[str]) -> None:
        super().__init__("level", f"{level[:20]!r} is not a vertebra; known: {', '.join(known)}")


def vertebrae(facts: Facts) -> list[Row]:
    """Every vertebra, top to bottom: region, billing regions, neighbours and other names."""
    return facts.rows("vertebra")


def regions(facts: Facts) -> list[Row]:
    """The spinal regions, top to bottom, with the billing regions that include each."""
    return facts.rows("regions")


def spellings(facts: Facts) -> dict[str, str]:
    """Every name a level goes by (its notation and its other names, in upper case) -> its notation."""

    def build() -> dict[str, str]:
        names: dict[str, str] = {}
        for row in vertebrae(facts):
            for name in (row["level"], *row["alt_labels"]):
                names[str(name).strip().upper()] = str(row["level"])
        return names

    return facts.cached("level-spellings", build)


def level_name(facts: Facts, level: str) -> str:
    """The notation of a level named any way the graph knows (T7, t7, coccyx), or UnknownVertebraError."""
    name = spellings(facts).get(level.strip().upper()) if level.isascii() else None
    if name is None:
        raise UnknownVertebraError(level, [str(r["level"]) for r in vertebrae(facts)])
    return name


def vertebra(facts: Facts, level: str) -> dict[str, Any]:
    """One level's page: its anatomy and, per procedure, the codes that report it there."""
    name = level_name(facts, level)

    def build() -> dict[str, Any]:
        subject = {"level": name}
        page = dict(facts.rows("vertebra", subject)[0])
        page["codes"] = grouped(about(facts.rows("codes-at-vertebra", subject), subject), by="procedure")
        return page

    return facts.cached(("vertebra-page", name), build)


def code_levels(facts: Facts, code: str) -> list[Row]:
    """Where a (known, normalised) code applies: per procedure and billing region, the vertebrae and
    the evidence for them."""
    subject = {"code": code}
    return about(facts.rows("code-levels", subject), subject)
