"""From a documented procedure to claim lines: a generic engine over the tables of kg/coding/tables.py.

The steps are fixed (they are the shape of the problem); every decision in them is a row of the graph:

1. the procedure of each treated body, from what the record says of the cavity (coding rules of step
   ``procedure``), coded as another procedure in some regions (step ``route``); a documented sacroplasty
   is coded as the procedure of step ``sacroplasty``;
2. a body named twice is one body; two procedures at one body keep the one whose code includes the
   other at the same level (the bundling edits);
3. for each procedure, the codes at each body (codes-at-vertebra): the primary for the first body
   treated, one unit of its family's add-on for each further body, a stand-alone code once for the
   session, chosen by the side of the injections where there are several (step ``laterality``);
4. a biopsy is included where a coded line includes the biopsy code at its level; elsewhere it is a
   line of its own, with the other-level modifier of the edit that would otherwise include it;
5. imaging is never coded (the edits that include the imaging family say why); sedation is coded by
   its documented time;
6. the documentation elements whose record field is empty, and the coverage guidelines a session
   passes, are the documentation gaps;
7. the lines, as a claim, go through the claim rules: the errors they can repair by adding a modifier
   are applied (and explained); the warnings they report are passed on.

Work is bounded by the record: its lists are bounded (kg/coding/record.py) and every step is linear in
them or in the graph's tables."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date
from typing import Any

from spinekg.kg.claims import ClaimValidator
from spinekg.kg.claims.parse import CLAIM_KEYS
from spinekg.kg.coding.note import NoteReader
from spinekg.kg.coding.record import ProcedureRecord, RecordParser
from spinekg.kg.coding.tables import Bundle, CodeOption, CodingRule, CodingTables, load_tables
from spinekg.kg.errors import InputError
from spinekg.kg.graph import KnowledgeGraph
from spinekg.kg.queries import get_query

MAX_CHECK_ROUNDS = 2  # the claim rules' modifier repairs are applied at most this often


@dataclass
class _Line:
    code: str
    units: int
    levels: list[str]
    modifiers: list[str] = field(default_factory=list)
    why: list[str] = field(default_factory=list)
    rules: list[str] = field(default_factory=list)
    fact_sheet_rules: list[str] = field(default_factory=list)
    statuses: list[str] = field(default_factory=list)
    sources: list[str] = field(default_factory=list)

    def cite(
        self,
        rule: CodingRule | None = None,
        *,
        text: str | None = None,
        rule_id: str | None = None,
        status: str | None = None,
        sources: Iterable[str] = (),
    ) -> None:
        if rule is not None:
            self.why.append(rule.rationale)
            self.rules.append(rule.id)
            if rule.fact_sheet_rule:
                self.fact_sheet_rules.append(rule.fact_sheet_rule)
            self.statuses.append(rule.evidence)
            self.sources.extend(rule.sources)
        if text:
            self.why.append(text)
        if rule_id:
            self.rules.append(rule_id)
        if status:
            self.statuses.append(status)
        self.sources.extend(sources)


@dataclass
class _Item:
    """One treated body (or a level-less treatment) on its way to a code."""

    level: str | None
    procedure: str
    basis: list[CodingRule]
    laterality: str | None
    what: str  # how the record names it, for messages: "treatments[2]" or "sacroplasty"


class Coder:
    """Codes procedure records. Built once per process from the reasoned graph (about 0.2 s)."""

    def __init__(self, graph: KnowledgeGraph, validator: ClaimValidator | None = None) -> None:
        self.graph = graph
        self.tables: CodingTables = load_tables(graph)
        self._validator = validator  # built on first use: unusable input is refused without it
        self.parser = RecordParser(self.tables, self.tables.levels_hint())
        self.ranks = {str(r["status"]): i for i, r in enumerate(get_query("evidence-statuses").run(graph).values())}
        self.sources = {
            str(r["sourceId"]): {
                "id": str(r["sourceId"]),
                "title": r["title"],
                "url": r.get("url"),
                "year": r.get("year"),
                "tier": r["tier"],
            }
            for r in get_query("sources").run(graph).values()
        }
        t = self.tables
        self.by_cavity = {r.when_cavity: r for r in t.step("procedure")}
        self.bundles: dict[tuple[str, str], list[Bundle]] = {}
        for b in t.bundles:
            self.bundles.setdefault((b.comprehensive, b.component), []).append(b)
        self.by_procedure: dict[str, list[CodeOption]] = {}
        for (procedure, _level), opts in t.options.items():
            known = self.by_procedure.setdefault(procedure, [])
            known.extend(o for o in opts if all(o.code != k.code for k in known))
        self.reader = NoteReader(t, self.parser)

    @property
    def validator(self) -> ClaimValidator:
        if self._validator is None:
            self._validator = ClaimValidator(self.graph)
        return self._validator

    # ------------------------------------------------------------------ entry points

    def code_json(self, obj: Any) -> dict[str, Any]:
        """Code a structured record (parsed JSON); InputError names a bad field."""
        record = self.parser.parse(obj)
        return self.code(record, {"source": "record", "record": record.as_json(), "evidence": [], "not_used": []})

    def code_note(self, text: Any, overrides: dict[str, Any] | None = None) -> dict[str, Any]:
        """Code an operative note; ``overrides`` (date_of_service, state, diagnoses, ...) are record fields
        given beside the text, which win over what the note says."""
        record, evidence, not_used = self.reader.read(text)
        if overrides:
            merged = record.as_json() | {k: v for k, v in overrides.items() if v is not None}
            record = self.parser.parse(merged)
        extracted = {"source": "note", "record": record.as_json(), "evidence": evidence, "not_used": not_used}
        return self.code(record, extracted)

    # ------------------------------------------------------------------ the steps

    def code(self, record: ProcedureRecord, extracted: dict[str, Any]) -> dict[str, Any]:
        t = self.tables
        notes: list[dict[str, Any]] = []  # explanations of what is not a line
        warnings: list[dict[str, Any]] = []
        items = self._items(record, warnings)
        items = self._one_procedure_per_body(items, notes)
        lines: list[_Line] = []
        coded_procedures: list[str] = []
        groups: dict[str, list[_Item]] = {}
        for item in items:
            groups.setdefault(item.procedure, []).append(item)
        for procedure, group in groups.items():
            made = self._code_procedure(procedure, group, warnings)
            if made:
                coded_procedures.append(procedure)
                lines.extend(made)
        for rule in t.step("mixed-procedures"):
            if rule.when_procedures and set(rule.when_procedures) <= set(coded_procedures):
                warnings.append(self._warning(rule.id, rule.rationale, rule.evidence, rule.sources))
        if any(tr.approach for tr in record.treatments):
            for rule in t.step("access"):
                sides = sorted({f"{tr.approach} at {tr.level or 'an unnamed level'}" for tr in record.treatments if tr.approach})
                notes.append(self._note(f"access: {', '.join(sides)}", [rule]))
        lines.extend(self._biopsies(record, lines, notes, warnings))
        self._imaging(record, lines, notes, warnings)
        lines.extend(self._sedation(record, notes, warnings))
        claim = self._check_claim(record, lines, warnings)
        gaps = self._gaps(record, lines) + self._lcd_gaps(record, lines)
        explanations = [self._explain(i + 1, ln) for i, ln in enumerate(lines)] + notes
        if not lines:
            warnings.insert(
                0, {"rule": "nothing-codable", "message": self._why_nothing(record, warnings), "evidence": None, "sources": []}
            )
        return {
            "lines": [{"code": ln.code, "units": ln.units, "levels": ln.levels, "modifiers": ln.modifiers} for ln in lines],
            "explanations": explanations,
            "documentation_gaps": gaps,
            "warnings": warnings,
            "extracted": extracted,
            "claim": claim,
        }

    def _items(self, record: ProcedureRecord, warnings: list[dict[str, Any]]) -> list[_Item]:
        t = self.tables
        items: list[_Item] = []
        for i, tr in enumerate(record.treatments):
            state = "created" if tr.cavity_created else "not created" if tr.cavity_created is False else "not stated"
            basis = [self.by_cavity[state]]
            if tr.cavity_created is False and self.parser.device_creates_cavity(tr.device):
                warnings.append(
                    self._warning(
                        "cavity-device-conflict",
                        f"treatments[{i}] names the device {tr.device!r}, which makes a cavity, but says no cavity was created; "
                        "it is coded as the record says (vertebroplasty): check the note.",
                        None,
                        basis[0].sources,
                    )
                )
            procedure = basis[0].codes_as or ""
            if tr.level is not None:
                for rule in t.step("route"):
                    if procedure in rule.when_procedures and tr.level in rule.when_levels and rule.codes_as:
                        procedure = rule.codes_as
                        basis.append(rule)
                        if rule.evidence == "unverified":
                            warnings.append(self._warning(rule.id, f"{tr.level}: {rule.rationale}", rule.evidence, rule.sources))
                        break
            items.append(_Item(tr.level, procedure, basis, tr.approach, f"treatments[{i}]"))
        if record.sacroplasty is not None:
            rule = t.one("sacroplasty")
            levels: list[str | None] = [*record.sacroplasty.levels] or [None]
            for level in levels:
                items.append(_Item(level, rule.codes_as or "", [rule], record.sacroplasty.injections, "sacroplasty"))
        return items

    def _one_procedure_per_body(self, items: list[_Item], notes: list[dict[str, Any]]) -> list[_Item]:
        """A body named twice is one body; of two procedures at one body, the one that includes the other."""
        t = self.tables
        by_level: dict[str, list[_Item]] = {}
        for item in items:
            if item.level is not None:
                by_level.setdefault(item.level, []).append(item)
        dropped: set[int] = set()
        for level, at in by_level.items():
            procedures = list(dict.fromkeys(i.procedure for i in at))
            for first in at:
                for other in at:
                    if other is first or id(other) in dropped or id(first) in dropped:
                        continue
                    if other.procedure == first.procedure:
                        dropped.add(id(other))
                        rule = t.step("single-body")
                        notes.append(self._note(f"{level} named more than once", rule))
                        if other.laterality and not first.laterality:
                            first.laterality = other.laterality
            for keep in procedures:
                for drop in procedures:
                    if keep == drop:
                        continue
                    bundle = self._includes(keep, drop, level)
                    if bundle is None:
                        continue
                    for item in at:
                        if item.procedure == drop and id(item) not in dropped:
                            dropped.add(id(item))
                            notes.append(
                                self._note(
                                    f"{drop} of {level}: included in {keep} of {level}",
                                    [],
                                    text=bundle.rationale,
                                    rule_id=bundle.edit,
                                    status=bundle.evidence,
                                    sources=bundle.sources,
                                )
                            )
        return [i for i in items if id(i) not in dropped]

    def _includes(self, keep: str, drop: str, level: str) -> Bundle | None:
        """A same-level edit by which a code of ``keep`` at ``level`` includes a code of ``drop`` there."""
        for a in self.tables.options.get((keep, level), []):
            for b in self.tables.options.get((drop, level), []):
                for bundle in self.bundles.get((a.code, b.code), []):
                    if bundle.same_level:
                        return bundle
        return None

    def _code_procedure(self, procedure: str, group: list[_Item], warnings: list[dict[str, Any]]) -> list[_Line]:
        t = self.tables
        levels = [i.level for i in group if i.level is not None]
        unnamed = [i for i in group if i.level is None]
        per_body: list[str] = []
        stand_alone: list[str] = []
        for level in levels:
            opts = t.options.get((procedure, level), [])
            if not opts:
                warnings.append(
                    self._warning(
                        "no-code-at-level", f"no code in the graph reports {procedure} at {level}; it is not coded.", None, []
                    )
                )
            elif any(o.role in ("primary", "add-on") and self._per_body(o.code) for o in opts):
                per_body.append(level)
            else:
                stand_alone.append(level)
        out: list[_Line] = []
        basis = {r.id: r for item in group for r in item.basis}
        if per_body:
            out.extend(self._per_body_lines(procedure, per_body, list(basis.values()), warnings))
        options = self.by_procedure.get(procedure, [])
        if unnamed and options and all(not self._per_body(o.code) for o in options) and not stand_alone:
            stand_alone_unnamed = True  # a stand-alone procedure (sacroplasty) needs no level to be coded
        else:
            stand_alone_unnamed = False
            for item in unnamed:
                warnings.append(
                    self._warning(
                        "element-treated-level",
                        f"{item.what}: {procedure} without a level is not coded: "
                        "the level decides the region, the code and the units.",
                        None,
                        [],
                    )
                )
        if stand_alone or stand_alone_unnamed:
            line = self._stand_alone_line(procedure, stand_alone, group, list(basis.values()), warnings)
            if line is not None:
                out.append(line)
        return out

    def _per_body(self, code: str) -> bool:
        facts = self.tables.codes.get(code)
        return bool(facts and facts.per_body)

    def _per_body_lines(
        self, procedure: str, levels: list[str], basis: list[CodingRule], warnings: list[dict[str, Any]]
    ) -> list[_Line]:
        t = self.tables
        first = next((lv for lv in levels if any(o.role == "primary" for o in t.options[(procedure, lv)])), None)
        if first is None:
            warnings.append(
                self._warning("no-primary", f"no primary code reports {procedure} at {', '.join(levels)}; not coded.", None, [])
            )
            return []
        primary = next(o for o in t.options[(procedure, first)] if o.role == "primary")
        family = t.codes[primary.code].family
        line = _Line(primary.code, 1, [first])
        line.cite(
            text=f"{first} is the first body of this procedure treated in the session; {primary.code} "
            f"({t.codes[primary.code].label}) reports it."
        )
        for rule in basis:
            line.cite(rule)
        line.cite(t.one("primary"))
        self._cite_option(line, primary, warnings)
        out = [line]
        add_ons: dict[str, _Line] = {}
        for level in levels:
            if level == first:
                continue
            option = next(
                (o for o in t.options[(procedure, level)] if o.role == "add-on" and t.codes[o.code].family == family), None
            )
            if option is None:
                warnings.append(
                    self._warning(
                        "no-add-on", f"no add-on of {primary.code}'s family reports {procedure} at {level}; not coded.", None, []
                    )
                )
                continue
            add_on = add_ons.get(option.code)
            if add_on is None:
                add_on = add_ons[option.code] = _Line(option.code, 0, [])
                add_on.cite(t.one("add-on"))
                for rule in basis:
                    add_on.cite(rule)
            add_on.units += 1
            add_on.levels.append(level)
            self._cite_option(add_on, option, warnings)
        for add_on in add_ons.values():
            add_on.why.insert(
                0,
                f"{', '.join(add_on.levels)}: {add_on.units} further bod{'y' if add_on.units == 1 else 'ies'} "
                f"after {first}; {add_on.code} ({t.codes[add_on.code].label}), one unit each.",
            )
            out.append(add_on)
        return out

    def _cite_option(self, line: _Line, option: CodeOption, warnings: list[dict[str, Any]]) -> None:
        facts = self.tables.codes[option.code]
        line.cite(status=option.evidence, sources=facts.sources)
        if option.rationale and option.rationale not in line.why:
            line.why.append(option.rationale)
        if option.evidence == "unverified":
            warnings.append(
                self._warning(
                    "code-at-level-unverified",
                    f"{option.code} at {option.level}: "
                    + (option.rationale or "the code at this level rests on an unverified statement."),
                    option.evidence,
                    facts.sources,
                )
            )

    def _stand_alone_line(
        self, procedure: str, levels: list[str], group: list[_Item], basis: list[CodingRule], warnings: list[dict[str, Any]]
    ) -> _Line | None:
        t = self.tables
        if levels:
            options = [o for lv in levels for o in t.options[(procedure, lv)] if not self._per_body(o.code)]
        else:
            options = [o for o in self.by_procedure.get(procedure, []) if not self._per_body(o.code)]
        candidates = list(dict.fromkeys(o.code for o in options))
        sides = {i.laterality for i in group if i.laterality}
        chosen: str | None = None
        side_rule: CodingRule | None = None
        if len(candidates) == 1:
            chosen = candidates[0]
        else:
            matching = [
                r
                for r in t.step("laterality")
                if procedure in r.when_procedures and r.selects_code in candidates and r.when_laterality in sides
            ]
            for rule in matching:
                # sides documented differently: the code that includes the other (a bundling edit) wins
                if chosen is None or self.bundles.get((rule.selects_code or "", chosen)):
                    chosen, side_rule = rule.selects_code, rule
            if chosen is None:
                rules = [r for r in t.step("laterality") if procedure in r.when_procedures]
                warnings.append(
                    self._warning(
                        "element-sacroplasty-sides" if rules else "no-code-chosen",
                        f"{procedure}{' of ' + ', '.join(levels) if levels else ''}: "
                        "the side of the injections is not documented, "
                        f"so the code ({' or '.join(candidates)}) cannot be chosen; it is not coded."
                        if rules
                        else f"{procedure} at {', '.join(levels)}: several codes fit ({', '.join(candidates)}); not coded.",
                        None,
                        [s for r in rules for s in r.sources],
                    )
                )
                return None
        line = _Line(chosen, 1, list(levels))
        line.cite(text=f"{procedure}{' of ' + ', '.join(levels) if levels else ''}: {chosen} ({t.codes[chosen].label}).")
        for rule in basis:
            line.cite(rule)
        if side_rule is not None:
            line.cite(side_rule)
        line.cite(t.one("stand-alone"))
        for option in options:
            if option.code == chosen:
                self._cite_option(line, option, warnings)
        if not levels:
            line.cite(sources=t.codes[chosen].sources)
        return line

    def _biopsies(
        self, record: ProcedureRecord, lines: list[_Line], notes: list[dict[str, Any]], warnings: list[dict[str, Any]]
    ) -> list[_Line]:
        if not record.biopsies:
            return []
        rule = self.tables.one("biopsy")
        code = rule.selects_code or ""
        treated = {lv for ln in lines for lv in ln.levels}
        out: list[_Line] = []
        seen: set[tuple[str | None, bool | None]] = set()
        for i, biopsy in enumerate(record.biopsies):
            key = (biopsy.level, biopsy.same_access)
            if key in seen:
                continue
            seen.add(key)
            including = self._including(code, lines, biopsy.level, biopsy.same_access)
            if including is not None:
                line, bundle = including
                at = biopsy.level or "the treated body (through the same access)"
                notes.append(
                    self._note(
                        f"biopsy of {at}: included in {line.code}",
                        [rule],
                        text=bundle.rationale,
                        rule_id=bundle.edit,
                        status=bundle.evidence,
                        sources=bundle.sources,
                    )
                )
                continue
            if biopsy.level is None and biopsy.same_access is not False:
                warnings.append(
                    self._warning(
                        "element-biopsy-level",
                        f"biopsies[{i}]: a biopsy without its level is not coded: of a treated body it is included, of another "
                        "level it is billed separately; name the level.",
                        None,
                        rule.sources,
                    )
                )
                continue
            if biopsy.same_access and biopsy.level not in treated:
                warnings.append(
                    self._warning(
                        "biopsy-access-conflict",
                        f"biopsies[{i}] is said to be through the same access as a treated body, but {biopsy.level} is not a "
                        "treated level; it is coded as a biopsy of a separate site: check the note.",
                        None,
                        rule.sources,
                    )
                )
            line = _Line(code, 1, [biopsy.level] if biopsy.level else [])
            where = biopsy.level or "a separate site whose level the record does not name"
            line.cite(text=f"biopsy of {where}, which no coded line treats: {code} ({self._label(code)}).")
            line.cite(rule)
            modifier = self._other_level_modifier(code, lines)
            if modifier is not None:
                mod, bundle = modifier
                line.modifiers.append(mod)
                line.cite(
                    text=f"{mod}: the biopsy is of another level than {bundle.comprehensive}, which would include "
                    f"a biopsy of its own level. {bundle.rationale}",
                    rule_id=bundle.edit,
                    status=bundle.evidence,
                    sources=bundle.sources,
                )
            out.append(line)
        return out

    def _including(
        self, code: str, lines: list[_Line], level: str | None, same_access: bool | None
    ) -> tuple[_Line, Bundle] | None:
        for line in lines:
            for bundle in self.bundles.get((line.code, code), []):
                if bundle.same_level and ((level is not None and level in line.levels) or (level is None and same_access)):
                    return line, bundle
        return None

    def _other_level_modifier(self, code: str, lines: list[_Line]) -> tuple[str, Bundle] | None:
        for line in lines:
            for bundle in self.bundles.get((line.code, code), []):
                if bundle.same_level and bundle.other_level_modifier:
                    return bundle.other_level_modifier, bundle
        return None

    def _imaging(
        self, record: ProcedureRecord, lines: list[_Line], notes: list[dict[str, Any]], warnings: list[dict[str, Any]]
    ) -> None:
        if not record.imaging:
            return
        rule = self.tables.one("imaging")
        found = next(
            (
                b
                for ln in lines
                for (comp, _), bs in self.bundles.items()
                if comp == ln.code
                for b in bs
                if b.component_family == rule.when_family and not b.same_level
            ),
            None,
        )
        subject = f"imaging: {', '.join(record.imaging)}"
        if found is not None:
            notes.append(
                self._note(
                    f"{subject}: not coded, included in {found.comprehensive}",
                    [rule],
                    text=found.rationale,
                    rule_id=found.edit,
                    status=found.evidence,
                    sources=found.sources,
                )
            )
        else:
            notes.append(self._note(f"{subject}: not coded", [rule]))
            warnings.append(self._warning(rule.id, rule.scope_note or rule.rationale, rule.evidence, rule.sources))

    def _sedation(self, record: ProcedureRecord, notes: list[dict[str, Any]], warnings: list[dict[str, Any]]) -> list[_Line]:
        t = self.tables
        if record.anesthesia_by_other_provider:
            notes.append(self._note("sedation or anesthesia by an anesthesia provider: not coded", t.step("other-provider")))
            return []
        sedation = record.sedation
        rules = t.step("sedation")
        if sedation is None or not rules:
            return []
        rule = rules[0]
        minutes = sedation.minutes
        if minutes is None:
            notes.append(self._note("moderate sedation without its time: not coded", [rule]))
            return []
        if sedation.independent_observer is False:
            notes.append(self._note("moderate sedation without an independent trained observer: not coded", [rule]))
            return []
        if rule.minimum_minutes is not None and minutes < rule.minimum_minutes:
            notes.append(self._note(f"moderate sedation of {minutes} minutes: under {rule.minimum_minutes}, not coded", [rule]))
            return []
        first = _Line(rule.selects_code or "", 1, [])
        first.cite(
            text=f"moderate sedation by the operating physician, {minutes} minutes: {first.code} ({self._label(first.code)})."
        )
        first.cite(rule)
        out = [first]
        start, step = rule.add_on_from_minutes, rule.increment_minutes
        if rule.selects_add_on and start is not None and step and minutes >= start:
            units = 1 + (minutes - start) // step
            add_on = _Line(rule.selects_add_on, units, [])
            add_on.cite(
                text=f"{minutes} minutes: {units} further unit{'s' if units > 1 else ''} of {add_on.code} "
                f"(from {start} minutes, one per {step})."
            )
            add_on.cite(rule)
            out.append(add_on)
        if rule.evidence == "unverified":
            warnings.append(self._warning(rule.id, rule.rationale, rule.evidence, rule.sources))
        return out

    # ------------------------------------------------------------------ the claim rules and the gaps

    def _check_claim(self, record: ProcedureRecord, lines: list[_Line], warnings: list[dict[str, Any]]) -> dict[str, Any]:
        """The lines as a claim, checked by the claim rules: an error whose repairs only add modifiers is
        repaired (and the line explains it); the other findings that are not info notes become warnings."""
        claim: dict[str, Any] = {}
        if record.date_of_service is not None:
            claim["date_of_service"] = record.date_of_service.isoformat()
        if record.place_of_service is not None:
            claim["place_of_service"] = record.place_of_service
        # issue 10's fields, passed through once the claim contract has them
        for name in ("state", "contractor"):
            if name in CLAIM_KEYS and getattr(record, name) is not None:
                claim[name] = getattr(record, name)
        if "diagnoses" in CLAIM_KEYS and record.diagnoses:
            claim["diagnoses"] = list(record.diagnoses)
        claim["lines"] = [{"code": ln.code, "units": ln.units, "levels": ln.levels, "modifiers": ln.modifiers} for ln in lines]
        if not lines:
            return claim
        findings = []
        for _ in range(MAX_CHECK_ROUNDS):
            findings = self.validator.findings(self.validator.parse(claim))
            repaired = False
            for f in findings:
                if f.severity != "error" or not f.repairs or any(r.action != "add-modifier" or not r.modifier for r in f.repairs):
                    continue
                for repair in f.repairs:
                    line = lines[repair.line - 1]
                    if repair.modifier and repair.modifier not in line.modifiers:
                        line.modifiers.append(repair.modifier)
                        line.cite(text=f"{repair.modifier}: {f.message}", rule_id=f.rule, status=f.status, sources=f.sources)
                        repaired = True
            if not repaired:
                break
            claim["lines"] = [
                {"code": ln.code, "units": ln.units, "levels": ln.levels, "modifiers": ln.modifiers} for ln in lines
            ]
        for f in findings:
            if f.severity == "info":
                continue
            prefix = "the claim rules still report an error: " if f.severity == "error" else ""
            lines_named = ", ".join(str(n) for n in f.lines)
            warnings.append(
                self._warning(f.rule, f"{prefix}line {lines_named}: {f.message} {f.fix}".strip(), f.status, f.sources)
            )
        return claim

    def _gaps(self, record: ProcedureRecord, lines: list[_Line]) -> list[dict[str, Any]]:
        parts = {
            "treatments": bool(record.treatments),
            "sacroplasty": record.sacroplasty is not None,
            "biopsies": bool(record.biopsies),
            "sedation": record.sedation is not None and not record.anesthesia_by_other_provider,
        }
        gaps: list[dict[str, Any]] = []
        for element in self.tables.elements:
            if not any(parts.get(p) for p in element.required_when):
                continue
            missing = _missing(record, element.field, element.requires_true, element.alternative)
            if missing is None:
                continue
            gaps.append(
                {
                    "element": element.id,
                    "missing": element.label + (f" ({missing})" if missing else ""),
                    "requirement": element.requirement_text,
                    "why": element.rationale,
                    "fix": element.fix,
                    "fact_sheet_rule": element.fact_sheet_rule,
                    "evidence": element.evidence,
                    "sources": self._sources(element.sources),
                }
            )
        for limit in self.tables.limits:
            bodies = sum(
                ln.units for ln in lines if self._per_body(ln.code) and self.tables.codes[ln.code].family in limit.families
            )
            if bodies > limit.max_units:
                gaps.append(
                    {
                        "element": limit.id,
                        "missing": f"documented medical necessity for {bodies} bodies in one session "
                        f"(more than {limit.max_units})",
                        "requirement": limit.label,
                        "why": limit.rationale,
                        "fix": limit.fix,
                        "fact_sheet_rule": None,
                        "evidence": limit.evidence,
                        "sources": self._sources(limit.sources),
                    }
                )
        return gaps

    def _lcd_gaps(self, record: ProcedureRecord, lines: list[_Line]) -> list[dict[str, Any]]:
        """With a state: the criteria of the LCD in force there that govern a coded line, to be confirmed
        in the note (the LCD's words; no field of the record shows them). Nothing without a state, or
        when the coverage graph has no such query or criteria."""
        if record.state is None or not lines or not self.tables.criteria:
            return []
        on = record.date_of_service or date.today()
        try:
            rows = get_query("lcd-for-state").run(self.graph, {"state": record.state, "on": on.isoformat()}).values()
        except InputError:  # a state the query cannot take, or no such query: the claim rules say so
            return []
        # in force on the date, or not known not to be (lcd-for-state's in_force: yes, not known, or retired)
        lcds = {str(r["lcd"]): r for r in rows if r.get("in_force") in ("yes", "not known", "", None)}
        coded = {ln.code for ln in lines}
        gaps: list[dict[str, Any]] = []
        for criterion in self.tables.criteria:
            row = lcds.get(criterion.lcd)
            if row is None or not criterion.codes & coded:
                continue
            if (criterion.valid_from and on < criterion.valid_from) or (criterion.deleted_on and on >= criterion.deleted_on):
                continue
            gaps.append(
                {
                    "element": criterion.id,
                    "missing": f"to confirm in the note: {criterion.label}",
                    "requirement": f"{row.get('lcd_title') or criterion.lcd} ({row.get('contractor')}, {record.state})",
                    "why": criterion.rationale
                    or f"{criterion.lcd} requires it for {', '.join(sorted(criterion.codes & coded))}.",
                    "fix": "Document it in the note, or check that the record shows it elsewhere.",
                    "fact_sheet_rule": None,
                    "evidence": criterion.evidence,
                    "sources": self._sources(criterion.sources),
                }
            )
        return gaps

    # ------------------------------------------------------------------ wording

    def _explain(self, number: int, line: _Line) -> dict[str, Any]:
        return {
            "line": number,
            "code": line.code,
            "why": " ".join(dict.fromkeys(line.why)),
            "rules": list(dict.fromkeys(line.rules)),
            "fact_sheet_rules": list(dict.fromkeys(line.fact_sheet_rules)),
            "evidence": self._weakest(line.statuses),
            "sources": self._sources(line.sources),
        }

    def _note(
        self,
        subject: str,
        rules: Iterable[CodingRule],
        *,
        text: str | None = None,
        rule_id: str | None = None,
        status: str | None = None,
        sources: Iterable[str] = (),
    ) -> dict[str, Any]:
        line = _Line("", 0, [])
        for rule in rules:
            line.cite(rule)
        line.cite(text=text, rule_id=rule_id, status=status, sources=sources)
        out = self._explain(0, line)
        out["line"] = None
        out["code"] = None
        out["subject"] = subject
        return out

    def _warning(self, rule: str, message: str, evidence: str | None, sources: Iterable[str]) -> dict[str, Any]:
        return {"rule": rule, "message": message, "evidence": evidence, "sources": self._sources(sources)}

    def _weakest(self, statuses: list[str]) -> str | None:
        known = [s for s in statuses if s in self.ranks]
        return max(known, key=self.ranks.__getitem__) if known else None

    def _sources(self, ids: Iterable[str]) -> list[dict[str, Any]]:
        """The sources by id, trusted tiers first and ids in natural order (S2 before S10)."""
        known = self.sources
        found = [known[s] for s in dict.fromkeys(ids) if s in known]
        return sorted(found, key=lambda s: (str(s["tier"]), len(str(s["id"])), str(s["id"])))

    def _label(self, code: str) -> str:
        facts = self.tables.codes.get(code)
        return facts.label if facts else code

    @staticmethod
    def _why_nothing(record: ProcedureRecord, warnings: list[dict[str, Any]]) -> str:
        documented = record.treatments or record.sacroplasty or record.biopsies or record.sedation
        if not documented:
            return (
                "nothing to code: the record documents no vertebroplasty, augmentation, sacroplasty, biopsy or sedation "
                "that was performed"
            )
        reasons = "; ".join(w["message"] for w in warnings[:3])
        return f"nothing to code: what is documented cannot be coded ({reasons or 'see the documentation gaps'})"


def _missing(record: ProcedureRecord, path: str, requires_true: bool = False, alternative: str | None = None) -> str | None:
    """None when the field is documented; else '' or which items lack it (treatments[1] at L3, ...). An
    item whose ``alternative`` field (of the same item) is true shows the element too."""
    other = alternative.partition(".")[2] if alternative else None

    def lacks(value: Any) -> bool:
        return value is None or value == [] or value == "" or (requires_true and value is False)

    head, _, rest = path.partition(".")
    value = getattr(record, head, None)
    if not rest:
        return "" if lacks(value) else None
    if isinstance(value, list):
        lacking = [
            f"{head}[{i}]" + (f" at {item.level}" if getattr(item, "level", None) and rest != "level" else "")
            for i, item in enumerate(value)
            if lacks(getattr(item, rest, None)) and not (other and getattr(item, other, None) is True)
        ]
        return ", ".join(lacking) if lacking else None
    return "" if lacks(getattr(value, rest, None) if value is not None else None) else None
