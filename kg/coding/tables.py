"""The tables spinekg code works from, read once from the reasoned graph through named queries.

Nothing here knows a code number, a modifier or a phrase: the codes a procedure takes at each vertebra
come from codes-at-vertebra (region coverage, level notes), what a code includes from coding-bundles,
the coding decisions from coding-rules, the documentation elements from coding-documentation, the
coverage guidelines from coding-level-limits and the note reader's words from coding-note-terms."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

from spinekg.kg.errors import SpinekgError
from spinekg.kg.graph import KnowledgeGraph
from spinekg.kg.queries import get_query

# The steps of the engine (kg/coding/engine.py) a coding rule may set or explain; a rule of another step
# is an error when the tables load, not a rule silently ignored.
STEPS = (
    "procedure",
    "route",
    "sacroplasty",
    "laterality",
    "primary",
    "add-on",
    "stand-alone",
    "single-body",
    "access",
    "mixed-procedures",
    "biopsy",
    "imaging",
    "sedation",
    "other-provider",
)
CAVITY_STATES = ("created", "not created", "not stated")


def _split(value: Any) -> tuple[str, ...]:
    """A " | "-joined column as a tuple (empty for no value)."""
    return tuple(v.strip() for v in str(value).split("|") if v.strip()) if value not in (None, "") else ()


@dataclass(frozen=True)
class CodingRule:
    id: str
    step: str
    label: str
    rationale: str
    evidence: str
    sources: tuple[str, ...]
    fact_sheet_rule: str | None = None
    scope_note: str | None = None
    when_cavity: str | None = None
    when_procedures: tuple[str, ...] = ()
    when_levels: frozenset[str] = frozenset()
    when_laterality: str | None = None
    when_family: str | None = None
    codes_as: str | None = None
    selects_code: str | None = None
    selects_add_on: str | None = None
    minimum_minutes: int | None = None
    add_on_from_minutes: int | None = None
    increment_minutes: int | None = None


@dataclass(frozen=True)
class CodeOption:
    """A code that reports a procedure at a vertebra (a row of codes-at-vertebra)."""

    procedure: str
    level: str
    code: str
    role: str  # primary | add-on | stand-alone
    evidence: str
    rationale: str | None


@dataclass(frozen=True)
class CodeFacts:
    code: str
    label: str
    family: str | None
    role: str
    per_body: bool
    sources: tuple[str, ...]


@dataclass(frozen=True)
class Bundle:
    edit: str
    comprehensive: str
    component: str
    same_level: bool
    component_family: str | None
    other_level_modifier: str | None
    rationale: str
    evidence: str
    sources: tuple[str, ...]


@dataclass(frozen=True)
class DocElement:
    id: str
    label: str
    requirement: str
    requirement_text: str
    field: str
    requires_true: bool
    alternative: str | None
    required_when: tuple[str, ...]
    rationale: str
    fix: str
    evidence: str
    sources: tuple[str, ...]
    fact_sheet_rule: str | None = None


@dataclass(frozen=True)
class LevelLimit:
    id: str
    label: str
    max_units: int
    families: tuple[str, ...]
    rationale: str
    fix: str | None
    evidence: str
    sources: tuple[str, ...]


@dataclass(frozen=True)
class LcdCriterion:
    """A documentation or acuity criterion of an LCD for the codes it governs (issue 10's coverage graph)."""

    id: str
    lcd: str
    codes: frozenset[str]
    label: str
    rationale: str | None
    valid_from: date | None
    deleted_on: date | None
    evidence: str
    sources: tuple[str, ...]


@dataclass(frozen=True)
class Term:
    id: str
    label: str
    slot: str
    value: str | None
    creates_cavity: bool | None
    window: int | None


@dataclass
class CodingTables:
    """Everything the coding engine and the note reader read, as plain Python values."""

    rules: list[CodingRule]
    options: dict[tuple[str, str], list[CodeOption]]  # (procedure, level) -> codes, as the graph orders them
    codes: dict[str, CodeFacts]
    bundles: list[Bundle]
    elements: list[DocElement]
    limits: list[LevelLimit]
    criteria: list[LcdCriterion]
    terms: dict[str, Term]
    phrases: list[tuple[str, str]]  # (phrase, term id)
    vertebrae: dict[str, int]  # notation -> sequence index
    regions: dict[str, str]  # notation -> spinal region label
    transitional: frozenset[str]
    spellings: dict[str, str]  # accepted spelling (upper case) -> notation
    written: frozenset[str]  # the spellings as the graph writes them (for names matched only as written)
    by_step: dict[str, list[CodingRule]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        for rule in self.rules:
            if rule.step not in STEPS:
                raise SpinekgError(f"coding rule {rule.id}: step {rule.step!r} is not one of {', '.join(STEPS)}")
            if rule.step == "procedure" and rule.when_cavity not in CAVITY_STATES:
                raise SpinekgError(f"coding rule {rule.id}: whenCavity must be one of {', '.join(CAVITY_STATES)}")
            self.by_step.setdefault(rule.step, []).append(rule)
        missing = [
            s
            for s in ("procedure", "sacroplasty", "primary", "add-on", "stand-alone", "biopsy", "imaging")
            if s not in self.by_step
        ]
        if missing:
            raise SpinekgError(f"the graph has no coding rule for the step(s) {', '.join(missing)} (ontology/coding.ttl)")

    def step(self, name: str) -> list[CodingRule]:
        return self.by_step.get(name, [])

    def one(self, name: str) -> CodingRule:
        return self.by_step[name][0]

    def levels_hint(self) -> str:
        """The vertebrae by region, as the graph names them ("C1-C7, T1-T12, ..."), for error messages."""
        by_region: dict[str, list[str]] = {}
        for name in sorted(self.vertebrae, key=self.vertebrae.__getitem__):
            by_region.setdefault(self.regions[name], []).append(name)
        return ", ".join(names[0] if len(names) == 1 else f"{names[0]}-{names[-1]}" for names in by_region.values())

    def values(self, slot: str) -> tuple[str, ...]:
        """The values the note terms of a slot write (the accepted values of that record field), in order."""
        return tuple(dict.fromkeys(t.value for t in self.terms.values() if t.slot == slot and t.value))


def _day(value: Any) -> date | None:
    if isinstance(value, datetime):
        return value.date()
    return value if isinstance(value, date) else None


def _int(value: Any) -> int | None:
    return None if value is None else int(value)


def load_tables(graph: KnowledgeGraph) -> CodingTables:
    """Read every table once (a few named queries; about a tenth of a second)."""
    rules = [
        CodingRule(
            id=str(r["rule"]),
            step=str(r["step"]),
            label=str(r["label"]),
            rationale=str(r["rationale"]),
            evidence=str(r["evidence"]),
            sources=_split(r["sources"]),
            fact_sheet_rule=r.get("fact_sheet_rule"),
            scope_note=r.get("scope_note"),
            when_cavity=r.get("when_cavity"),
            when_procedures=_split(r.get("when_procedures")),
            when_levels=frozenset(_split(r.get("when_levels"))),
            when_laterality=r.get("when_laterality"),
            when_family=r.get("when_family"),
            codes_as=r.get("codes_as"),
            selects_code=r.get("selects_code"),
            selects_add_on=r.get("selects_add_on"),
            minimum_minutes=_int(r.get("minimum_minutes")),
            add_on_from_minutes=_int(r.get("add_on_from_minutes")),
            increment_minutes=_int(r.get("increment_minutes")),
        )
        for r in get_query("coding-rules").run(graph).values()
    ]
    options: dict[tuple[str, str], list[CodeOption]] = {}
    # The whole table of codes-at-vertebra at once: its parameters only narrow it (the API binds them).
    for r in graph.select(get_query("codes-at-vertebra").text).values():
        option = CodeOption(
            str(r["procedure"]), str(r["level"]), str(r["code"]), str(r["role"]), str(r["evidence"]), r.get("rationale")
        )
        options.setdefault((option.procedure, option.level), []).append(option)
    codes = {
        str(r["code"]): CodeFacts(
            str(r["code"]), str(r["label"]), r.get("family"), str(r["role"]), bool(r["per_body"]), _split(r["sources"])
        )
        for r in get_query("coding-codes").run(graph).values()
    }
    bundles = [
        Bundle(
            edit=str(r["edit"]),
            comprehensive=str(r["comprehensive"]),
            component=str(r["component"]),
            same_level=bool(r["same_level"]),
            component_family=r.get("component_family"),
            other_level_modifier=r.get("other_level_modifier"),
            rationale=str(r["rationale"]),
            evidence=str(r["evidence"]),
            sources=_split(r["sources"]),
        )
        for r in get_query("coding-bundles").run(graph).values()
    ]
    elements = [
        DocElement(
            id=str(r["element"]),
            label=str(r["label"]),
            requirement=str(r["requirement"]),
            requirement_text=str(r["requirement_text"]),
            field=str(r["field"]),
            requires_true=bool(r.get("requires_true")),
            alternative=r.get("alternative"),
            required_when=_split(r["required_when"]),
            rationale=str(r["rationale"]),
            fix=str(r["fix"]),
            evidence=str(r["evidence"]),
            sources=_split(r["sources"]),
            fact_sheet_rule=r.get("fact_sheet_rule"),
        )
        for r in get_query("coding-documentation").run(graph).values()
    ]
    limits = [
        LevelLimit(
            id=str(r["limit"]),
            label=str(r["label"]),
            max_units=int(r["max_units"]),
            families=_split(r["families"]),
            rationale=str(r["rationale"]),
            fix=r.get("fix"),
            evidence=str(r["evidence"]),
            sources=_split(r["sources"]),
        )
        for r in get_query("coding-level-limits").run(graph).values()
    ]
    criteria: dict[str, LcdCriterion] = {}
    for r in get_query("coding-lcd-criteria").run(graph).values():
        key = str(r["criterion"])
        known = criteria.get(key)
        governed = (known.codes if known else frozenset()) | {str(r["code"])}
        criteria[key] = LcdCriterion(
            id=key,
            lcd=str(r["lcd"]),
            codes=governed,
            label=str(r["label"]),
            rationale=r.get("rationale"),
            valid_from=_day(r.get("valid_from")),
            deleted_on=_day(r.get("deleted_on")),
            evidence=str(r["evidence"]),
            sources=_split(r["sources"]),
        )
    terms: dict[str, Term] = {}
    phrases: list[tuple[str, str]] = []
    for r in get_query("coding-note-terms").run(graph).values():
        term_id = str(r["term"])
        window = r.get("window")
        terms.setdefault(
            term_id,
            Term(
                term_id,
                str(r["label"]),
                str(r["slot"]),
                r.get("value"),
                r.get("creates_cavity"),
                None if window is None else int(window),
            ),
        )
        phrases.append((str(r["phrase"]), term_id))
    vertebrae: dict[str, int] = {}
    regions: dict[str, str] = {}
    transitional: set[str] = set()
    spellings: dict[str, str] = {}
    written: set[str] = set()
    for r in get_query("vertebrae").run(graph).values():
        name = str(r["vertebra"])
        vertebrae[name] = int(r["sequence"])
        regions[name] = str(r["region"])
        if r.get("transitional"):
            transitional.add(name)
        spellings[name.upper()] = name
        written.add(name)
        for alt in _split(r.get("altLabels")):
            spellings[alt.upper()] = name
            written.add(alt)
    return CodingTables(
        rules=rules,
        options=options,
        codes=codes,
        bundles=bundles,
        elements=elements,
        limits=limits,
        criteria=list(criteria.values()),
        terms=terms,
        phrases=phrases,
        vertebrae=vertebrae,
        regions=regions,
        transitional=frozenset(transitional),
        spellings=spellings,
        written=frozenset(written),
    )
