"""The claim contract (input) and the finding/verdict shapes (output)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date
from typing import Any


@dataclass(slots=True)
class Line:
    """One claim line. ``index`` is 1-based, as on the claim."""

    index: int
    code: str
    modifiers: tuple[str, ...] = ()
    units: int = 1
    levels: tuple[str, ...] = ()

    def as_json(self) -> dict[str, Any]:
        return {"code": self.code, "modifiers": list(self.modifiers), "units": self.units, "levels": list(self.levels)}


@dataclass(slots=True)
class Claim:
    lines: list[Line]
    date_of_service: date
    place_of_service: str | None = None
    id: Any = None
    assumed: dict[str, str] = field(default_factory=dict)  # fields the claim left out -> the value used


@dataclass(slots=True)
class Repair:
    """A structured correction a rule proposes; applied to build the suggested claim."""

    action: str  # replace-code | remove-line | set-units | drop-modifier | add-modifier | set-levels | split
    line: int
    code: str | None = None
    units: int | None = None
    modifier: str | None = None
    levels: tuple[str, ...] | None = None
    new_lines: tuple[Line, ...] = ()


@dataclass(slots=True)
class Finding:
    rule: str
    severity: str
    lines: tuple[int, ...]
    message: str
    fix: str
    sources: tuple[str, ...]
    status: str = "verified"
    repairs: tuple[Repair, ...] = field(default=())
    priority: int = 50
