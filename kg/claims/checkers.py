"""The generic checker kinds. Each one compiles a rule's table (rows from the reasoned graph) into
indexes once, then applies it to claims in microseconds. No checker knows a code number: every code,
pair, limit and modifier comes from its rule's table.

A checker kind documents the columns it reads and the template variables it provides.

Output is linear in the claim: a checker emits at most one finding per group of lines, where a group is
one line (or one line and one of its levels or modifiers) for a rule about a line, or all the lines
one relation ties together (the primaries of one family, an add-on and the primary of another family,
a component and its comprehensive code) for a rule about codes billed together; never one finding
per pair of lines. Work is linear too: no checker compares every line with every other line."""

from __future__ import annotations

import difflib
import re
from collections import defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any, ClassVar

from spinekg.kg.claims.model import Claim, Finding, Line, Repair
from spinekg.kg.claims.rules import Rule

Row = dict[str, Any]


@dataclass
class Shared:
    """Facts several checkers and repairs use: vertebra order and regions, and code coverage."""

    vertebra_index: dict[str, int] = field(default_factory=dict)
    vertebra_region: dict[str, str] = field(default_factory=dict)
    coverage: dict[str, set[str]] = field(default_factory=dict)  # code -> vertebrae (any status)


class Context:
    """A claim, indexed once for all checkers."""

    __slots__ = ("claim", "dos", "lines", "by_code", "units")

    def __init__(self, claim: Claim) -> None:
        self.claim = claim
        self.dos = claim.date_of_service
        self.lines = claim.lines
        by_code: dict[str, list[Line]] = {}
        units: dict[str, int] = {}
        for line in claim.lines:
            by_code.setdefault(line.code, []).append(line)
            units[line.code] = units.get(line.code, 0) + line.units
        self.by_code = by_code
        self.units = units


def _as_date(value: Any) -> date | None:
    if value is None:
        return None
    if isinstance(value, datetime):
        return value.date()
    if isinstance(value, date):
        return value
    return date.fromisoformat(str(value)[:10])


def either(items: Iterable[str]) -> str:
    values = list(dict.fromkeys(items))
    if len(values) <= 1:
        return "".join(values)
    return ", ".join(values[:-1]) + " or " + values[-1]


def level_span(levels: Iterable[str]) -> str:
    return ", ".join(levels)


class Checker:
    """Base class: ``compile`` builds indexes from the table rows, ``check`` appends findings."""

    kind: ClassVar[str] = ""
    variables: ClassVar[tuple[str, ...]] = ()

    def __init__(self, rule: Rule, rows: list[Row], shared: Shared) -> None:
        self.rule = rule
        self.shared = shared
        self.compile(rows)

    def compile(self, rows: list[Row]) -> None:
        raise NotImplementedError

    def check(self, ctx: Context, out: list[Finding]) -> None:
        raise NotImplementedError


def source_order(source_id: str) -> tuple[int, str]:
    """Natural order of source ids: S2 before S10."""
    number = re.match(r"S(\d+)", source_id)
    return (int(number.group(1)) if number else 10**6, source_id)


def _sources(rows: Iterable[Row]) -> tuple[str, ...]:
    """The distinct source ids of some rows, in natural order (S2 before S10)."""
    return tuple(sorted({str(r["source"]) for r in rows if r.get("source")}, key=source_order))


MAX_HINTS = 5  # difflib takes ~0.1 ms a code: a claim of many distinct unknown codes stays cheap


class KnownCodes(Checker):
    kind = "known-codes"
    variables = ("code", "line", "closest")

    def compile(self, rows: list[Row]) -> None:
        self.codes = frozenset(str(r["code"]) for r in rows)
        self.sorted_codes = sorted(self.codes)
        self._closest: dict[str, str] = {}

    def closest(self, code: str) -> str:
        hint = self._closest.get(code)
        if hint is None:
            near = difflib.get_close_matches(code, self.sorted_codes, n=3, cutoff=0.6)
            hint = f" (did you mean {either(near)}?)" if near else ""
            if len(self._closest) < 10_000:  # bounded: unknown codes come from user input
                self._closest[code] = hint
        return hint

    def check(self, ctx: Context, out: list[Finding]) -> None:
        hints: dict[str, str] = {}  # the first MAX_HINTS distinct unknown codes of a claim get a "did you mean"
        for line in ctx.lines:
            if line.code not in self.codes:
                closest = hints.get(line.code)
                if closest is None:
                    closest = hints[line.code] = self.closest(line.code) if len(hints) < MAX_HINTS else ""
                out.append(self.rule.finding((line.index,), {"code": line.code, "line": line.index, "closest": closest}))


class DateWindow(Checker):
    """Columns: code, validFrom or deletedOn, alternative (optional, repeated)."""

    kind = "date-window"
    variables = ("code", "date", "dos", "alternative_fix", "line")

    def compile(self, rows: list[Row]) -> None:
        self.window: dict[str, tuple[date | None, date | None]] = {}
        self.alternatives: dict[str, list[str]] = defaultdict(list)
        for r in rows:
            self.window[str(r["code"])] = (_as_date(r.get("validFrom")), _as_date(r.get("deletedOn")))
            if r.get("alternative"):
                self.alternatives[str(r["code"])].append(str(r["alternative"]))

    def check(self, ctx: Context, out: list[Finding]) -> None:
        for line in ctx.lines:
            window = self.window.get(line.code)
            if window is None:
                continue
            start, end = window
            boundary = end if end is not None and ctx.dos >= end else start if start is not None and ctx.dos < start else None
            if boundary is None:
                continue
            alternatives = sorted(set(self.alternatives.get(line.code, ())))
            if alternatives:
                alt = f"Bill {either(alternatives)} instead of {line.code} for services on {ctx.dos.isoformat()}."
                repairs = (Repair("replace-code", line.index, code=alternatives[0]),) if len(alternatives) == 1 else ()
            else:
                alt = f"Remove the {line.code} line: no code took its place for this date of service."
                repairs = (Repair("remove-line", line.index),)
            out.append(
                self.rule.finding(
                    (line.index,),
                    {
                        "code": line.code,
                        "date": boundary.isoformat(),
                        "dos": ctx.dos.isoformat(),
                        "alternative_fix": alt,
                        "line": line.index,
                    },
                    repairs=repairs,
                )
            )


class RequiresAny(Checker):
    """Columns: code (the add-on), partner (a code it needs on the claim), validFrom and deletedOn
    (optional: the dates of service on which the row applies). An add-on none of whose rows applies on
    the date of service is not checked. The repair bills the first body as the primary that covers it,
    or, when the rule's header says ``repair: remove-line``, removes the add-on line."""

    kind = "requires-any"
    variables = ("code", "partners", "partner_count", "some_partners", "line")
    SOME = 5  # partners named in ``some_partners`` before "and N others"

    def compile(self, rows: list[Row]) -> None:
        grouped: dict[str, set[str]] = defaultdict(set)
        dated: dict[str, list[tuple[str, date | None, date | None]]] = defaultdict(list)
        for r in rows:
            code, partner = str(r["code"]), str(r["partner"])
            start, end = _as_date(r.get("validFrom")), _as_date(r.get("deletedOn"))
            if start is None and end is None:
                grouped[code].add(partner)
            else:
                dated[code].append((partner, start, end))
        self.partners: dict[str, frozenset[str]] = {k: frozenset(v) for k, v in grouped.items()}
        self.dated = dict(dated)

    def partners_on(self, code: str, dos: date) -> frozenset[str] | None:
        """The partners of an add-on on a date of service; None when no row of it applies then."""
        always = self.partners.get(code)
        rows = self.dated.get(code)
        if rows is None:
            return always
        found = {p for p, start, end in rows if (start is None or dos >= start) and (end is None or dos < end)}
        if always:
            found |= always
        return frozenset(found) if found else None

    def check(self, ctx: Context, out: list[Finding]) -> None:
        for code, lines in ctx.by_code.items():
            partners = self.partners_on(code, ctx.dos)
            if partners is None or not partners.isdisjoint(ctx.by_code):
                continue
            ordered = sorted(partners)
            some = either(ordered)
            if len(ordered) > self.SOME + 1:
                some = f"{', '.join(ordered[: self.SOME])} and {len(ordered) - self.SOME} others"
            remove = self.rule.repair == "remove-line"
            for line in lines:
                out.append(
                    self.rule.finding(
                        (line.index,),
                        {
                            "code": code,
                            "partners": either(ordered),
                            "partner_count": len(ordered),
                            "some_partners": some,
                            "line": line.index,
                        },
                        repairs=(Repair("remove-line", line.index),) if remove else self._repair(line, partners),
                    )
                )

    def _repair(self, line: Line, partners: frozenset[str]) -> tuple[Repair, ...]:
        """Bill the first named body with the primary that covers it; the rest stay add-on units."""
        if line.levels:
            first = line.levels[0]
            fitting = sorted(p for p in partners if first in self.shared.coverage.get(p, ()))
        else:
            fitting = sorted(partners) if len(partners) == 1 else []
        if len(fitting) != 1:
            return ()
        primary = Line(line.index, fitting[0], line.modifiers, 1, line.levels[:1])
        rest = () if line.units <= 1 else (Line(line.index, line.code, line.modifiers, line.units - 1, line.levels[1:]),)
        return (Repair("split", line.index, new_lines=(primary, *rest)),)


class WrongPartner(Checker):
    """Columns: code (the add-on), partner (its own primaries), other (a primary of another family),
    correct (the add-on that goes with ``other``)."""

    kind = "wrong-partner"
    variables = ("code", "partners", "other", "correct", "line")

    def compile(self, rows: list[Row]) -> None:
        self.partners: dict[str, set[str]] = defaultdict(set)
        self.correct: dict[tuple[str, str], set[str]] = defaultdict(set)
        for r in rows:
            self.partners[str(r["code"])].add(str(r["partner"]))
            self.correct[(str(r["code"]), str(r["other"]))].add(str(r["correct"]))

    def check(self, ctx: Context, out: list[Finding]) -> None:
        """One finding per add-on code: every line of it, then the first line of the other primary."""
        for code, lines in ctx.by_code.items():
            partners = self.partners.get(code)
            if not partners or not partners.isdisjoint(ctx.by_code):
                continue
            for other, other_lines in ctx.by_code.items():
                correct = self.correct.get((code, other))
                if not correct:
                    continue
                fix = next(iter(correct)) if len(correct) == 1 else None
                out.append(
                    self.rule.finding(
                        (*(ln.index for ln in lines), other_lines[0].index),
                        {
                            "code": code,
                            "partners": either(sorted(partners)),
                            "other": other,
                            "correct": either(sorted(correct)),
                            "line": lines[0].index,
                        },
                        repairs=tuple(Repair("replace-code", ln.index, code=fix) for ln in lines) if fix else (),
                    )
                )
                break


class ExclusivePair(Checker):
    """Columns: code, other (a primary it excludes in one session), family, addon."""

    kind = "exclusive-pair"
    variables = ("code", "other", "family", "addon")

    def compile(self, rows: list[Row]) -> None:
        self.excludes: dict[str, dict[str, tuple[str, str]]] = defaultdict(dict)
        for r in rows:
            self.excludes[str(r["code"])][str(r["other"])] = (str(r["family"]), str(r.get("addon") or ""))

    def check(self, ctx: Context, out: list[Finding]) -> None:
        """One finding per family: every line of its conflicting primaries. Each line whose code is
        excluded by a code on an earlier line gets the repair (bill it as the family add-on)."""
        excludes = self.excludes
        present = [code for code in ctx.by_code if code in excludes]
        if len(present) < 2:
            return
        families: dict[str, list[str]] = {}  # family -> its conflicting codes, in claim order
        for code in present:
            for other, (family, _) in excludes[code].items():
                if other in ctx.by_code:
                    families.setdefault(family, []).append(code)
                    break
        for family, codes in families.items():
            first, others = codes[0], codes[1:]
            addon = next((excludes[first][o][1] for o in others if o in excludes[first]), "")
            seen: dict[str, None] = {}
            repairs = []
            for line in (ln for ln in ctx.lines if ln.code in codes):
                earlier = next((excludes[line.code][c] for c in seen if c in excludes[line.code]), None)
                if earlier is not None and earlier[1]:
                    repairs.append(Repair("replace-code", line.index, code=earlier[1]))
                seen[line.code] = None
            out.append(
                self.rule.finding(
                    tuple(sorted(ln.index for c in codes for ln in ctx.by_code[c])),
                    {"code": first, "other": either(others), "family": family, "addon": addon or "the family add-on"},
                    repairs=tuple(repairs),
                )
            )


class MaxUnits(Checker):
    """Columns: code, maxUnits, kind, status, rationale, fixHint, source, addon (optional), kindOrder
    (optional: the precedence of the limit's kind at the same maximum, lower first), validFrom
    (optional: the first date of service the limit applies to)."""

    kind = "max-units"
    variables = ("code", "units", "max", "limit_kind", "rationale", "fix_hint")

    def compile(self, rows: list[Row]) -> None:
        limits: dict[tuple[str, int, str], list[Row]] = defaultdict(list)
        for r in rows:
            limits[(str(r["code"]), int(r["maxUnits"]), str(r["kind"]))].append(r)
        self.limits: dict[str, list[tuple[int, str, Row, tuple[str, ...]]]] = defaultdict(list)
        for (code, maximum, kind), group in limits.items():
            self.limits[code].append((maximum, kind, group[0], _sources(group)))
        # the most restrictive limit first (verified before other evidence at the same maximum, then by
        # the precedence of its kind): a code over several limits gets one finding, for the tightest one
        for kept in self.limits.values():
            kept.sort(key=lambda t: (t[0], str(t[2]["status"]) != "verified", int(t[2].get("kindOrder") or 10**6), t[1]))

    def check(self, ctx: Context, out: list[Finding]) -> None:
        for code, total in ctx.units.items():
            for maximum, kind, row, sources in self.limits.get(code, ()):
                if total <= maximum or not _in_force(row, ctx.dos):
                    continue
                lines = ctx.by_code[code]
                out.append(
                    self.rule.finding(
                        tuple(ln.index for ln in lines),
                        {
                            "code": code,
                            "units": total,
                            "max": maximum,
                            "limit_kind": f"the {kind}",
                            "rationale": row["rationale"],
                            "fix_hint": row["fixHint"],
                        },
                        status=str(row["status"]),
                        sources=sources,
                        repairs=self._repair(lines, maximum, row.get("addon")),
                    )
                )
                break

    @staticmethod
    def _repair(lines: list[Line], maximum: int, addon: Any) -> tuple[Repair, ...]:
        if not addon:
            return ()
        repairs = []
        left = maximum
        for line in lines:
            keep = min(left, line.units)
            left -= keep
            excess = line.units - keep
            if excess <= 0:
                continue
            parts = []
            if keep:
                parts.append(Line(line.index, line.code, line.modifiers, keep, line.levels[:keep]))
            parts.append(Line(line.index, str(addon), (), excess, line.levels[keep:]))
            repairs.append(Repair("split", line.index, new_lines=tuple(parts)))
        return tuple(repairs)


class GroupMaxUnits(Checker):
    """Columns: group, code (counted towards the group), maxUnits, status, rationale, fixHint, source."""

    kind = "group-max-units"
    variables = ("units", "max", "group", "rationale", "fix_hint")

    def compile(self, rows: list[Row]) -> None:
        groups: dict[str, list[Row]] = defaultdict(list)
        for r in rows:
            groups[str(r["group"])].append(r)
        self.groups = [
            (name, frozenset(str(r["code"]) for r in g), int(g[0]["maxUnits"]), g[0], _sources(g)) for name, g in groups.items()
        ]

    def check(self, ctx: Context, out: list[Finding]) -> None:
        for name, codes, maximum, row, sources in self.groups:
            present = codes.intersection(ctx.units)
            total = sum(ctx.units[c] for c in present)
            if total > maximum:
                lines = tuple(ln.index for ln in ctx.lines if ln.code in present)
                out.append(
                    self.rule.finding(
                        lines,
                        {
                            "units": total,
                            "max": maximum,
                            "group": name,
                            "rationale": row["rationale"],
                            "fix_hint": row["fixHint"],
                        },
                        status=str(row["status"]),
                        sources=sources,
                    )
                )


class UnitsMatchLevels(Checker):
    """Columns: code (billed one unit per vertebral body)."""

    kind = "units-match-levels"
    variables = ("code", "line", "units", "count", "levels")

    def compile(self, rows: list[Row]) -> None:
        self.codes = frozenset(str(r["code"]) for r in rows)

    def check(self, ctx: Context, out: list[Finding]) -> None:
        for line in ctx.lines:
            if line.levels and line.code in self.codes:
                count = len(set(line.levels))
                if count != line.units:
                    out.append(
                        self.rule.finding(
                            (line.index,),
                            {
                                "code": line.code,
                                "line": line.index,
                                "units": line.units,
                                "count": count,
                                "levels": level_span(line.levels),
                            },
                            repairs=(Repair("set-units", line.index, units=count, levels=tuple(dict.fromkeys(line.levels))),),
                        )
                    )


class LevelOnce(Checker):
    """Columns: code (per-body), family (a label; a level is billed once per family)."""

    kind = "level-once"
    variables = ("level", "family", "lines", "later_line")

    def compile(self, rows: list[Row]) -> None:
        self.family = {str(r["code"]): str(r["family"]) for r in rows}

    def check(self, ctx: Context, out: list[Finding]) -> None:
        seen: dict[tuple[str, str], list[Line]] = {}
        for line in ctx.lines:
            family = self.family.get(line.code)
            if family is None:
                continue
            for level in line.levels:
                seen.setdefault((family, level), []).append(line)
        for (family, level), lines in seen.items():
            if len(lines) < 2:
                continue
            later = lines[-1]
            remaining = list(later.levels)
            remaining.remove(level)
            repairs = (
                (Repair("remove-line", later.index),)
                if not remaining
                else (Repair("set-units", later.index, units=max(1, later.units - 1), levels=tuple(remaining)),)
            )
            out.append(
                self.rule.finding(
                    tuple(dict.fromkeys(ln.index for ln in lines)),
                    {
                        "level": level,
                        "family": family,
                        "lines": ", ".join(str(ln.index) for ln in lines),
                        "later_line": later.index,
                    },
                    repairs=repairs,
                )
            )


class LevelCoverage(Checker):
    """Columns: code, vertebra, procedure, candidateRole, status (the region coverage table)."""

    kind = "level-coverage"
    variables = ("code", "level", "region", "procedure", "candidates", "line")

    def compile(self, rows: list[Row]) -> None:
        self.covers: dict[str, set[str]] = defaultdict(set)
        self.procedures: dict[str, set[str]] = defaultdict(set)
        self.role: dict[str, str] = {}
        self.at: dict[tuple[str, str], list[tuple[str, str]]] = defaultdict(list)
        self.window: dict[str, tuple[date | None, date | None]] = {}
        for r in rows:
            code, vertebra, procedure = str(r["code"]), str(r["vertebra"]), str(r["procedure"])
            self.covers[code].add(vertebra)
            self.procedures[code].add(procedure)
            self.role[code] = str(r["candidateRole"])
            self.at[(procedure, vertebra)].append((code, str(r["status"])))
            self.window[code] = (_as_date(r.get("validFrom")), _as_date(r.get("deletedOn")))
        self.shared.coverage = dict(self.covers)
        self._ranked: dict[tuple[str, str], list[str]] = {}

    def _valid_on(self, code: str, dos: date) -> bool:
        start, end = self.window.get(code, (None, None))
        return (start is None or dos >= start) and (end is None or dos < end)

    def candidates(self, code: str, level: str, dos: date) -> list[str]:
        """Codes for the same procedure at the level, valid on the date: same role first, verified first."""
        ranked = self._ranked.get((code, level))
        if ranked is None:
            found: dict[str, int] = {}
            for procedure in self.procedures.get(code, ()):
                for other, status in self.at.get((procedure, level), ()):
                    rank = (0 if self.role.get(other) == self.role.get(code) else 2) + (status != "verified")
                    found[other] = min(rank, found.get(other, 9))
            ranked = sorted(found, key=lambda c: (found[c], c))
            self._ranked[(code, level)] = ranked
        return [c for c in ranked if self._valid_on(c, dos)]

    def check(self, ctx: Context, out: list[Finding]) -> None:
        for line in ctx.lines:
            covered = self.covers.get(line.code)
            if covered is None or not line.levels:
                continue
            wrong = [lv for lv in line.levels if lv not in covered]
            if not wrong:
                continue
            if len(wrong) > 1:
                wrong = list(dict.fromkeys(wrong))
            replacement = self._replacement(line, wrong, ctx.dos)
            # one finding per line and answer: levels of one region with the same candidates share it
            groups: dict[tuple[str, str], list[str]] = {}
            for level in wrong:
                cands = self.candidates(line.code, level, ctx.dos)
                region = self.shared.vertebra_region.get(level, "another region")
                groups.setdefault((region, either(cands) if cands else "no specific code"), []).append(level)
            for (region, candidates), levels in groups.items():
                out.append(
                    self.rule.finding(
                        (line.index,),
                        {
                            "code": line.code,
                            "level": level_span(levels),
                            "line": line.index,
                            "region": region,
                            "procedure": either(sorted(self.procedures[line.code])),
                            "candidates": candidates,
                        },
                        repairs=replacement,
                    )
                )

    def _replacement(self, line: Line, wrong: list[str], dos: date) -> tuple[Repair, ...]:
        if len(wrong) != len(line.levels):
            return ()
        same_role = None
        for level in wrong:
            cands = [c for c in self.candidates(line.code, level, dos) if self.role.get(c) == self.role.get(line.code)]
            if len(cands) != 1 or (same_role is not None and cands[0] != same_role):
                return ()
            same_role = cands[0]
        return (Repair("replace-code", line.index, code=same_role),) if same_role else ()


class LevelNote(Checker):
    """Columns: vertebra, note, status, source, code (optional: any code when absent), fixHint (optional)."""

    kind = "level-note"
    variables = ("code", "level", "note", "fix_hint", "line")

    def compile(self, rows: list[Row]) -> None:
        notes: dict[tuple[str | None, str], list[Row]] = defaultdict(list)
        for r in rows:
            notes[(r.get("code") and str(r["code"]), str(r["vertebra"]))].append(r)
        self.notes = {k: (v[0], _sources(v)) for k, v in notes.items()}
        self.levels = frozenset(level for _, level in self.notes)

    def check(self, ctx: Context, out: list[Finding]) -> None:
        for line in ctx.lines:
            if self.levels.isdisjoint(line.levels):
                continue
            # one finding per line and note: levels that share a note share the finding
            groups: dict[tuple[str, str, str, tuple[str, ...]], list[str]] = {}
            for level in dict.fromkeys(line.levels):
                if level not in self.levels:
                    continue
                hit = self.notes.get((line.code, level)) or self.notes.get((None, level))
                if hit is None:
                    continue
                row, sources = hit
                key = (str(row["note"]), str(row.get("fixHint") or ""), str(row["status"]), sources)
                groups.setdefault(key, []).append(level)
            for (note, fix_hint, status, sources), levels in groups.items():
                out.append(
                    self.rule.finding(
                        (line.index,),
                        {"code": line.code, "level": level_span(levels), "note": note, "fix_hint": fix_hint, "line": line.index},
                        status=status,
                        sources=sources,
                    )
                )


class ForbiddenModifier(Checker):
    """Columns: code, modifier, year (fee schedule year, or unbound for family-level rows), specific,
    status, rationale, fixHint, source."""

    kind = "forbidden-modifier"
    variables = ("code", "modifier", "rationale", "fix_hint", "line")

    def compile(self, rows: list[Row]) -> None:
        grouped: dict[tuple[int | None, str, str, str], list[Row]] = defaultdict(list)
        for r in rows:
            year = None if r.get("specific") else int(r["year"])
            grouped[(year, str(r["code"]), str(r["modifier"]), str(r["rationale"]))].append(r)
        self.specific: dict[tuple[str, str], tuple[Row, tuple[str, ...]]] = {}
        self.by_year: dict[int, dict[tuple[str, str], tuple[Row, tuple[str, ...]]]] = defaultdict(dict)
        for (year, code, mod, _), group in sorted(grouped.items(), key=lambda kv: str(kv[0])):
            target = self.specific if year is None else self.by_year[year]
            target.setdefault((code, mod), (group[0], _sources(group)))
        self.years = sorted(self.by_year)
        self.codes = frozenset(c for c, _ in self.specific) | frozenset(c for table in self.by_year.values() for c, _ in table)

    def year_for(self, dos: date) -> int | None:
        """The fee schedule year in force: the latest year on or before the date, else the earliest."""
        earlier = [y for y in self.years if y <= dos.year]
        return earlier[-1] if earlier else (self.years[0] if self.years else None)

    def check(self, ctx: Context, out: list[Finding]) -> None:
        table = self.by_year.get(self.year_for(ctx.dos) or -1, {})
        for line in ctx.lines:
            if not line.modifiers or line.code not in self.codes:
                continue
            for mod in dict.fromkeys(line.modifiers) if len(line.modifiers) > 1 else line.modifiers:
                hit = self.specific.get((line.code, mod)) or table.get((line.code, mod))
                if hit is None:
                    continue
                row, sources = hit
                out.append(
                    self.rule.finding(
                        (line.index,),
                        {
                            "code": line.code,
                            "modifier": mod,
                            "rationale": row["rationale"],
                            "fix_hint": row["fixHint"],
                            "line": line.index,
                        },
                        status=str(row["status"]),
                        sources=sources,
                        repairs=(Repair("drop-modifier", line.index, modifier=mod),),
                    )
                )


def _bundle_table(rows: list[Row]) -> dict[str, list[tuple[str, Row, tuple[str, ...], frozenset[str]]]]:
    """component -> [(comprehensive, first row, sources, bypass modifiers)]"""
    grouped: dict[tuple[str, str], list[Row]] = defaultdict(list)
    for r in rows:
        grouped[(str(r["component"]), str(r["comprehensive"]))].append(r)
    table: dict[str, list[tuple[str, Row, tuple[str, ...], frozenset[str]]]] = defaultdict(list)
    for (component, comprehensive), group in sorted(grouped.items()):
        bypass = frozenset(str(r["bypass"]) for r in group if r.get("bypass"))
        table[component].append((comprehensive, group[0], _sources(group), bypass))
    return table


def _in_force(row: Row, dos: date) -> bool:
    start = _as_date(row.get("validFrom"))
    return start is None or dos >= start


class BundleChecker(Checker):
    """Base of the checkers that read bundling edits: component -> comprehensive codes."""

    def compile(self, rows: list[Row]) -> None:
        self.table = _bundle_table(rows)


class SameLevelBundle(BundleChecker):
    """Columns: comprehensive, component, status, rationale, fixHint, source, validFrom (optional)."""

    kind = "same-level-bundle"
    variables = ("component", "comprehensive", "levels", "rationale", "fix_hint")

    def check(self, ctx: Context, out: list[Finding]) -> None:
        """One finding per component code and comprehensive code: the component lines at a level the
        comprehensive code treats, then the comprehensive lines at those levels."""
        table = self.table
        treated: dict[str, set[str]] = {}  # comprehensive code -> the levels its lines name
        groups: dict[tuple[str, str], tuple[Row, tuple[str, ...], list[int], dict[str, None], list[Repair]]] = {}
        for line in ctx.lines:
            if not line.levels or line.code not in table:
                continue
            for comprehensive, row, sources, _ in self.table[line.code]:
                others = ctx.by_code.get(comprehensive)
                if not others or not _in_force(row, ctx.dos):
                    continue
                levels = treated.get(comprehensive)
                if levels is None:
                    levels = treated[comprehensive] = {lv for other in others for lv in other.levels}
                shared = [lv for lv in line.levels if lv in levels]
                if not shared:
                    continue
                remaining = tuple(lv for lv in line.levels if lv not in levels)
                repair = (
                    Repair("remove-line", line.index)
                    if not remaining
                    else Repair("set-units", line.index, units=max(1, line.units - len(shared)), levels=remaining)
                )
                group = groups.setdefault((line.code, comprehensive), (row, sources, [], {}, []))
                group[2].append(line.index)
                group[3].update(dict.fromkeys(shared))
                group[4].append(repair)
        for (component, comprehensive), (row, sources, lines, shared_levels, repairs) in groups.items():
            at = [o.index for o in ctx.by_code[comprehensive] if not shared_levels.keys().isdisjoint(o.levels)]
            out.append(
                self.rule.finding(
                    (*lines, *at),
                    {
                        "component": component,
                        "comprehensive": comprehensive,
                        "levels": level_span(shared_levels),
                        "rationale": row["rationale"],
                        "fix_hint": row["fixHint"],
                    },
                    status=str(row["status"]),
                    sources=sources,
                    repairs=tuple(repairs),
                )
            )


_Edits = tuple[list[tuple[str, Row, tuple[str, ...], frozenset[str]]], list[Line], set[str], frozenset[str]]


class DistinctLevelModifier(BundleChecker):
    """Columns: comprehensive, component, bypass, status (of the NCCI pair), rationale, source, validFrom."""

    kind = "distinct-level-modifier"
    variables = ("component", "comprehensive", "bypass", "first_bypass", "where")

    def check(self, ctx: Context, out: list[Finding]) -> None:
        """One finding per component code (and whether the levels are named): its lines without a
        bypass modifier, then the lines of the comprehensive codes."""
        table = self.table
        # per component code on the claim, once: its edits in force, the comprehensive lines, their levels
        # and the modifiers that bypass the edits
        edits_of: dict[str, _Edits | None] = {}
        groups: dict[tuple[str, bool], list[Line]] = {}
        for line in ctx.lines:
            if line.code not in table:
                continue
            if line.code in edits_of:
                found = edits_of[line.code]
            else:
                edits = [
                    (c, row, sources, bypass)
                    for c, row, sources, bypass in table[line.code]
                    if c in ctx.by_code and bypass and _in_force(row, ctx.dos)
                ]
                others = [o for c, *_ in edits for o in ctx.by_code[c]]
                found = edits_of[line.code] = (
                    (edits, others, {lv for o in others for lv in o.levels}, frozenset().union(*(e[3] for e in edits)))
                    if edits
                    else None
                )
            if found is None:
                continue
            _, others, treated, bypass = found
            if line.levels and not treated.isdisjoint(line.levels):
                continue  # the same level as a comprehensive service: the same-level rule reports it
            if line.modifiers and not bypass.isdisjoint(line.modifiers):
                continue
            named = bool(line.levels) and all(o.levels for o in others)
            groups.setdefault((line.code, named), []).append(line)
        for (code, named), lines in groups.items():
            edits, others, treated, bypass = edits_of[code]  # type: ignore[misc]
            statuses = {str(e[1]["status"]) for e in edits}
            status = "verified" if "verified" in statuses else sorted(statuses)[0]
            comprehensive = either(sorted({e[0] for e in edits}))
            if named:
                levels = dict.fromkeys(lv for ln in lines for lv in ln.levels)
                where = (
                    f"{code} is at {level_span(levels)} and {comprehensive} at "
                    f"{level_span(sorted(treated, key=self._order))}: different levels, which an NCCI edit pairing "
                    "the codes accepts only with a distinct-service modifier."
                )
                repairs: tuple[Repair, ...] = tuple(
                    Repair("add-modifier", ln.index, modifier=self._preferred(bypass)) for ln in lines
                )
            else:
                where = (
                    "the levels are not named on both lines, so it cannot be told whether it was the same level "
                    "(included) or another level (billable with a modifier)."
                )
                repairs = ()
            sources = tuple(dict.fromkeys(s for e in edits for s in e[2]))
            out.append(
                self.rule.finding(
                    tuple(dict.fromkeys((*(ln.index for ln in lines), *(o.index for o in others)))),
                    {
                        "component": code,
                        "comprehensive": comprehensive,
                        "bypass": either(sorted(bypass)),
                        "first_bypass": self._preferred(bypass),
                        "where": where,
                    },
                    status=status,
                    sources=sources,
                    repairs=repairs,
                )
            )

    def _order(self, level: str) -> int:
        return self.shared.vertebra_index.get(level, 0)

    @staticmethod
    def _preferred(bypass: frozenset[str]) -> str:
        # X{EPSU} are preferred to 59 where one describes the reason (CMS MLN1783722); XS = separate structure
        return "XS" if "XS" in bypass else sorted(bypass)[0]


class SessionBundle(BundleChecker):
    """Columns: comprehensive, component, bypass (optional), status, rationale, fixHint, source, validFrom."""

    kind = "session-bundle"
    variables = ("component", "comprehensive", "rationale", "fix_hint")

    def check(self, ctx: Context, out: list[Finding]) -> None:
        """One finding per component code and comprehensive code: the component lines (each without a
        modifier the edit accepts), then the first line of the comprehensive code."""
        table = self.table
        groups: dict[tuple[str, str], tuple[Row, tuple[str, ...], list[int]]] = {}
        for line in ctx.lines:
            for comprehensive, row, sources, bypass in table.get(line.code, ()):
                others = ctx.by_code.get(comprehensive)
                if not others or not _in_force(row, ctx.dos) or bypass.intersection(line.modifiers):
                    continue
                groups.setdefault((line.code, comprehensive), (row, sources, []))[2].append(line.index)
                break
        for (component, comprehensive), (row, sources, lines) in groups.items():
            out.append(
                self.rule.finding(
                    (*lines, ctx.by_code[comprehensive][0].index),
                    {
                        "component": component,
                        "comprehensive": comprehensive,
                        "rationale": row["rationale"],
                        "fix_hint": row["fixHint"],
                    },
                    status=str(row["status"]),
                    sources=sources,
                    repairs=tuple(Repair("remove-line", n) for n in lines),
                )
            )


class KnownModifiers(Checker):
    kind = "known-modifiers"
    variables = ("modifier", "line", "known")

    def compile(self, rows: list[Row]) -> None:
        self.modifiers = frozenset(str(r["modifier"]) for r in rows)

    def check(self, ctx: Context, out: list[Finding]) -> None:
        for line in ctx.lines:
            for mod in dict.fromkeys(line.modifiers) if len(line.modifiers) > 1 else line.modifiers:
                if mod not in self.modifiers:
                    out.append(
                        self.rule.finding(
                            (line.index,),
                            {"modifier": mod, "line": line.index, "known": ", ".join(sorted(self.modifiers))},
                        )
                    )


class LevelsRequired(Checker):
    kind = "levels-required"
    variables = ("code", "line")

    def compile(self, rows: list[Row]) -> None:
        self.codes = frozenset(str(r["code"]) for r in rows)

    def check(self, ctx: Context, out: list[Finding]) -> None:
        for line in ctx.lines:
            if not line.levels and line.code in self.codes:
                out.append(self.rule.finding((line.index,), {"code": line.code, "line": line.index}))


class CrossRegionNote(Checker):
    """Columns: family, primary, vertebra (a vertebra the primary covers), addon."""

    kind = "cross-region-note"
    variables = ("family", "levels", "primaries", "addon")

    def compile(self, rows: list[Row]) -> None:
        self.covering: dict[str, dict[str, set[str]]] = defaultdict(lambda: defaultdict(set))
        self.members: dict[str, str] = {}
        self.addon: dict[str, str] = {}
        for r in rows:
            family = str(r["family"])
            self.covering[family][str(r["vertebra"])].add(str(r["primary"]))
            self.members[str(r["primary"])] = family
            self.members[str(r["addon"])] = family
            self.addon[family] = str(r["addon"])

    def check(self, ctx: Context, out: list[Finding]) -> None:
        families: dict[str, list[Line]] = {}
        for line in ctx.lines:
            family = self.members.get(line.code)
            if family is not None and line.levels:
                families.setdefault(family, []).append(line)
        for family, lines in families.items():
            levels = list(dict.fromkeys(lv for ln in lines for lv in ln.levels))
            sets = [self.covering[family].get(lv, set()) for lv in levels]
            if not all(sets) or set.intersection(*sets):
                continue  # one primary covers every level (or a level no primary covers: the region rule reports it)
            primaries = sorted(set().union(*sets))
            out.append(
                self.rule.finding(
                    tuple(ln.index for ln in lines),
                    {
                        "family": family,
                        "levels": level_span(levels),
                        "primaries": either(primaries),
                        "addon": self.addon[family],
                    },
                )
            )


class ClaimFieldMissing(Checker):
    """Columns: field (a claim field that the parser fills in when the claim leaves it out, such as
    date_of_service, which defaults to today's date). One finding per claim and field, naming every line."""

    kind = "claim-field-missing"
    variables = ("field", "value")

    def compile(self, rows: list[Row]) -> None:
        self.fields = tuple(dict.fromkeys(str(r["field"]) for r in rows))

    def check(self, ctx: Context, out: list[Finding]) -> None:
        assumed = ctx.claim.assumed
        if not assumed:
            return
        for name in self.fields:
            value = assumed.get(name)
            if value is not None:
                out.append(self.rule.finding(tuple(ln.index for ln in ctx.lines), {"field": name, "value": value}))


CHECKERS: dict[str, type[Checker]] = {
    cls.kind: cls
    for cls in (
        KnownCodes,
        DateWindow,
        RequiresAny,
        WrongPartner,
        ExclusivePair,
        MaxUnits,
        GroupMaxUnits,
        UnitsMatchLevels,
        LevelOnce,
        LevelCoverage,
        LevelNote,
        ForbiddenModifier,
        SameLevelBundle,
        DistinctLevelModifier,
        SessionBundle,
        KnownModifiers,
        LevelsRequired,
        CrossRegionNote,
        ClaimFieldMissing,
    )
}

CheckFn = Callable[[Context, list[Finding]], None]
