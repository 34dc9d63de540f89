"""The claim contract (input) and the finding/verdict shapes (output)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date
from typing import Any, Protocol


@dataclass(slots=True)
class Line:
    """One claim line. ``index`` is 1-based, as on the claim."""

    index: int
    code: str
    modifiers: tuple[str, ...] = ()
    units: int = 1
    levels: tuple[str, ...] = ()
    diagnosis_pointers: tuple[int, ...] = ()  # 1-based indexes into Claim.diagnoses (837P SV107); () points to all

    def as_json(self) -> dict[str, Any]:
        out = {"code": self.code, "modifiers": list(self.modifiers), "units": self.units, "levels": list(self.levels)}
        if self.diagnosis_pointers:
            out["diagnosis_pointers"] = list(self.diagnosis_pointers)
        return out

    def pointed(self, diagnoses: tuple[str, ...]) -> tuple[str, ...]:
        """The diagnoses this line points to: all of them when it names no pointer."""
        if not self.diagnosis_pointers:
            return diagnoses
        return tuple(diagnoses[p - 1] for p in self.diagnosis_pointers)


@dataclass(slots=True)
class Claim:
    lines: list[Line]
    date_of_service: date
    place_of_service: str | None = None
    id: Any = None
    claim_type: str = "professional"  # professional (837P, CMS-1500) or outpatient (837I, UB-04): which NCCI tables apply
    assumed: dict[str, str] = field(default_factory=dict)  # fields the claim left out -> the value used
    diagnoses: tuple[str, ...] = ()  # ICD-10-CM codes, dotted and upper-case (kg/icd10.normalize), at most 12
    state: str | None = None  # USPS code of where the service was rendered (a state the graph knows)
    contractor: str | None = None  # a MAC contract number the graph knows; its jurisdiction overrides the state's
    jurisdiction: str | None = None  # the MAC jurisdiction (JF ...) the state or contractor picks: whose LCD applies


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


class Wording(Protocol):
    def words(self, variables: dict[str, Any], case: str, unverified: bool) -> tuple[str, str]: ...


@dataclass(slots=True)
class Finding:
    """A rule's finding. Its message and fix are worded when first read (a verdict reads them; the
    re-checks of a suggestion do not), from the rule's templates, the variables and the case."""

    rule: str
    severity: str
    lines: tuple[int, ...]
    variables: dict[str, Any] | Callable[[], dict[str, Any]] = field(compare=False, repr=False)  # or how to compute them
    case: str
    wording: Wording = field(compare=False, repr=False)
    sources: tuple[str, ...]
    status: str = "verified"
    repairs: tuple[Repair, ...] = field(default=())
    priority: int = 50
    _words: tuple[str, str] | None = field(default=None, compare=False, repr=False)

    def _worded(self) -> tuple[str, str]:
        if self._words is None:
            variables = self.variables() if callable(self.variables) else self.variables
            self._words = self.wording.words(variables, self.case, self.status == "unverified" and self.severity == "warning")
        return self._words

    @property
    def message(self) -> str:
        return self._worded()[0]

    @property
    def fix(self) -> str:
        return self._worded()[1]
