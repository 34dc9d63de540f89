"""The rule kinds: a handful of generic table appliers, in the way CMS publishes its edits as tables
(pairs, limits, primaries). A rule file (queries/rules/<id>.rq) names its kind in its header; its SELECT
returns a table of the kind's shape; the kind compiles the table into indexes once and applies it to
claims in microseconds. A kind knows no code number, no modifier and no English sentence: the codes,
pairs, limits and preferences come from the table, the wording from the rule header (a template per
case the kind distinguishes), and the correction from the repair the header names.

Each kind declares its columns (required and optional), the template variables it provides, the
cases it words differently, the repairs it can propose and its options; kg/claims/rules.py checks a
rule file against that declaration when the rules are loaded, so a misspelt column, variable, case,
repair or option is an error at build time, not a silent pass.

Output is linear in the claim: a kind emits at most one finding per group of lines (a line, or a
line and one of its levels or modifiers, or the lines one relation between codes ties together),
never one per pair of lines, and no kind compares every line with every other line."""

from __future__ import annotations

from bisect import bisect_right
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date
from functools import partial
from typing import Any, ClassVar, NamedTuple

from spinekg.kg.cache import remember
from spinekg.kg.claims.model import Claim, Finding, Line, Repair
from spinekg.kg.claims.parse import CLAIM_KEYS, LINE_KEYS
from spinekg.kg.claims.rules import Rule
from spinekg.kg.facts.codes import as_date, in_force
from spinekg.kg.icd10.store import CodeSet
from spinekg.kg.ncci.store import NcciStore
from spinekg.kg.nearest import NearValues
from spinekg.kg.sources import source_order
from spinekg.kg.text import either, some_of

Row = dict[str, Any]
MEMO_LIMIT = 65_536  # entries of a memo of NCCI answers per code and date
MAX_HINTS = 5  # difflib takes ~0.1 ms a code: a claim of many distinct unknown codes stays cheap


@dataclass
class Anatomy:
    """The vertebrae as the graph orders them, with their regions (read once by the engine)."""

    index: dict[str, int] = field(default_factory=dict)
    region: dict[str, str] = field(default_factory=dict)

    def ordered(self, levels: Iterable[str]) -> list[str]:
        return sorted(levels, key=lambda lv: self.index.get(lv, 0))


@dataclass(frozen=True, slots=True)
class Shape:
    """What decides which rules can fire on a claim, short of its units and levels: its codes, whether
    a line carries modifiers or names no level, the fields the parser assumed, and the day, any day
    of the same period between two dates at which some rule's table changes (``Kind.dates``)."""

    codes: frozenset[str]
    modifiers: bool
    levelless: bool
    assumed: frozenset[str]
    day: date


class Context:
    """A claim, indexed once for all rules."""

    __slots__ = ("claim", "dos", "lines", "by_code", "units", "codes", "modifiers", "levelless")

    def __init__(self, claim: Claim) -> None:
        self.claim = claim
        self.dos = claim.date_of_service
        self.lines = claim.lines
        by_code: dict[str, list[Line]] = {}
        units: dict[str, int] = {}
        modifiers = levelless = False
        for line in claim.lines:
            lines = by_code.get(line.code)
            if lines is None:
                by_code[line.code] = [line]
                units[line.code] = line.units
            else:
                lines.append(line)
                units[line.code] += line.units
            if line.modifiers:
                modifiers = True
            if not line.levels:
                levelless = True
        self.by_code = by_code
        self.units = units
        self.codes = frozenset(by_code)
        self.modifiers = modifiers
        self.levelless = levelless


def sources_of(rows: Iterable[Row]) -> tuple[str, ...]:
    """The distinct source ids of some rows, in natural order (S2 before S10)."""
    return tuple(sorted({str(r["source"]) for r in rows if r.get("source")}, key=source_order))


def span(levels: Iterable[str]) -> str:
    return ", ".join(levels)


# What the columns, variables, cases, repairs and options of the kinds mean (a kind may say more in its
# own ``glossary``); `spinekg rules --kinds` and GET /claims/rule-kinds show them to rule writers.
GLOSSARY: dict[str, str] = {
    "code": "a CPT/HCPCS code (as a variable: the code the finding is about)",
    "other": "a second code of the pair or relation",
    "group": "a name for a set of codes judged together, such as a procedure family",
    "status": "the evidence status of the row (verified, derived, secondary, unverified; GET /queries/evidence-statuses): "
    "an unverified row turns an error into a warning",
    "rationale": "why the edit or limit exists, in the source's words or ours",
    "fix_hint": "what to do about it, specific to the row",
    "source": "a source id (S1, S37 ...) the row rests on; cited beside the header's sources",
    "valid_from": "the first date of service the row (or the code) applies to",
    "deleted_on": "the first date of service the row (or the code) no longer applies to",
    "line": "the claim line number (1-based)",
    "levels": "the vertebral levels of the line(s), as the claim names them",
    "level": "the level or levels the finding is about",
    "default": "the only case, or the usual one",
    "remove-line": "the suggestion drops the line",
    "value": "a known code or modifier (as a variable: the unknown one on the claim)",
    "field": "which field: code or modifier (known); a claim field such as date_of_service, or a line field such as "
    "levels with the codes that need it (field-missing)",
    "closest": "the known values one keystroke away, e.g. 22512 or 22515 (case closest)",
    "known": "every known value, comma-separated",
}


class Kind:
    """Base of the kinds. ``codes`` are the codes without which a rule of the kind cannot fire: the
    engine runs a rule only on claims that hold one of them (``relevant``), so most rules cost
    nothing on most claims."""

    name: ClassVar[str] = ""
    summary: ClassVar[str] = ""
    columns: ClassVar[tuple[str, ...]] = ()
    optional: ClassVar[tuple[str, ...]] = ()
    variables: ClassVar[tuple[str, ...]] = ()
    cases: ClassVar[tuple[str, ...]] = ("default",)
    repairs: ClassVar[tuple[str, ...]] = ()
    options: ClassVar[dict[str, tuple[str, ...]]] = {}  # option -> allowed values, the first the default
    glossary: ClassVar[dict[str, str]] = {}  # what this kind's own names mean (beside GLOSSARY)
    # True: ``relevant`` reads the shape's codes and day only (the engine then asks once per set of
    # codes and period between the rules' dates); False: it reads the codes and flags, never the day
    by_day: ClassVar[bool] = False
    uses_ncci: ClassVar[bool] = False  # reads the imported NCCI tables (the engine then hands them over)
    # reads the ICD-10-CM code set of the build (kg/icd10): the engine sets ``icd10`` after compiling
    uses_icd10: ClassVar[bool] = False
    icd10: CodeSet | None = None
    # True: ``applies`` says, claim by claim, whether the claim's flags (modifiers, lines without
    # levels, assumed fields) let the rule fire; the engine caches ``relevant`` by codes alone and
    # asks ``applies`` of these rules only
    flagged: ClassVar[bool] = False

    def __init__(self, rule: Rule, rows: list[Row], anatomy: Anatomy, ncci: NcciStore | None = None) -> None:
        self.rule = rule
        self.anatomy = anatomy
        self.ncci = ncci  # the imported NCCI tables, for the kinds that read them
        self.codes: frozenset[str] = frozenset()
        self.compile(rows)

    def option(self, name: str) -> str:
        return str(self.rule.options.get(name, self.options[name][0]))

    def compile(self, rows: list[Row]) -> None:
        raise NotImplementedError

    @property
    def active(self) -> bool:
        """False when what the rule reads is missing (an NCCI table not imported): it never fires."""
        return True

    @property
    def any_code(self) -> bool:
        """True when the rule may fire whatever codes the claim holds; else only on a claim holding one
        of ``codes`` (the engine asks ``relevant`` of such a rule only then)."""
        return not self.codes

    def relevant(self, shape: Shape) -> bool:
        """False when the rule cannot fire on any claim of this shape (the engine then skips it)."""
        return not self.codes.isdisjoint(shape.codes)

    def applies(self, ctx: Context) -> bool:
        """For a ``flagged`` kind: whether this claim's flags let the rule fire (a cheap, exact or
        generous test; ``check`` decides)."""
        return True

    def dates(self) -> Iterable[date]:
        """The dates at which the rule's table changes (a code's start or deletion, a limit's start, a
        new fee-schedule year): between two of them the rule treats every date of service alike."""
        return ()

    def check(self, ctx: Context, out: list[Finding]) -> None:
        raise NotImplementedError

    def repair(self, *repairs: Repair) -> tuple[Repair, ...]:
        """The repairs proposed, when the rule's header asks for them."""
        return repairs if self.rule.repair else ()


class Known(Kind):
    name = "known"
    summary = "Every code (or modifier) of the claim is one the table lists."
    columns = ("value",)
    variables = ("value", "line", "closest", "known")
    cases = ("default", "closest")
    options = {"field": ("code", "modifier")}

    glossary = {"value": "a known value (as a variable: the unknown one on the claim)"}

    def compile(self, rows: list[Row]) -> None:
        self.values = frozenset(str(r["value"]) for r in rows)
        self.sorted_values = sorted(self.values)
        self._near = NearValues(self.values)
        self._closest: dict[str, str] = {}
        self._ncci_known: dict[tuple[str, date], bool] = {}
        self.field = self.option("field")

    flagged = True
    uses_ncci = True  # a code of CMS's tables is a known code

    def relevant(self, shape: Shape) -> bool:
        return not shape.codes <= self.values if self.field == "code" else shape.modifiers

    def applies(self, ctx: Context) -> bool:
        return self.field == "code" or ctx.modifiers

    def _in_ncci(self, code: str, dos: date) -> bool:
        """Whether the imported NCCI tables in force on the date know the code (remembered, bounded)."""
        key = (code, dos)
        known = self._ncci_known.get(key)
        if known is None:
            assert self.ncci is not None
            known = remember(self._ncci_known, key, self.ncci.knows(code, dos), MEMO_LIMIT)
        return known

    def closest(self, value: str) -> str:
        hint = self._closest.get(value)
        if hint is None:
            hint = either(self._near.near(value))
            if len(self._closest) < 10_000:  # bounded: unknown values come from user input
                self._closest[value] = hint
        return hint

    def check(self, ctx: Context, out: list[Finding]) -> None:
        hints: dict[str, str] = {}  # the first MAX_HINTS distinct unknown values of a claim get a "did you mean"
        values = self.values
        ncci = self.ncci if self.field == "code" else None
        for line in ctx.lines:
            found = (line.code,) if self.field == "code" else dict.fromkeys(line.modifiers)
            for value in found:
                if value in values or (ncci is not None and self._in_ncci(value, ctx.dos)):
                    continue  # a code of the imported NCCI tables is known too (its NCCI rules check it)
                closest = hints.get(value)
                if closest is None:
                    closest = hints[value] = self.closest(value) if len(hints) < MAX_HINTS else ""
                variables = {"value": value, "line": line.index, "closest": closest, "known": ", ".join(self.sorted_values)}
                out.append(self.rule.finding((line.index,), variables, case="closest" if closest else "default"))


class DateWindow(Kind):
    name = "date-window"
    by_day = True
    summary = (
        "A code is billed on a date of service outside the dates it is valid (before its start, or on or after its deletion)."
    )
    columns = ("code",)
    optional = ("valid_from", "deleted_on", "alternative", "alternative_covers")
    variables = ("code", "date", "dos", "alternatives", "levels", "line")
    cases = ("alternative", "none", "other-levels")
    repairs = ("replace-or-remove",)

    glossary = {
        "alternative": "a code that took the code's place (or that it replaced), proposed instead (as a case: there is one "
        "for the line's levels)",
        "alternative_covers": "a vertebra the alternative covers: an alternative is proposed only for levels it covers",
        "date": "the date the code took effect or was deleted",
        "dos": "the claim's date of service",
        "alternatives": "the alternatives proposed",
        "none": "no code took its place",
        "other-levels": "codes took its place, but none covers the line's levels",
        "replace-or-remove": "replace the code by its one alternative, or remove the line when there is none",
    }

    def compile(self, rows: list[Row]) -> None:
        self.window: dict[str, tuple[date | None, date | None]] = {}
        alternatives: dict[str, set[str]] = defaultdict(set)
        self.covers: dict[str, set[str]] = defaultdict(set)  # alternative -> the vertebrae it covers
        for r in rows:
            self.window[str(r["code"])] = (as_date(r.get("valid_from")), as_date(r.get("deleted_on")))
            if r.get("alternative"):
                alternatives[str(r["code"])].add(str(r["alternative"]))
                if r.get("alternative_covers"):
                    self.covers[str(r["alternative"])].add(str(r["alternative_covers"]))
        self.alternatives = {code: sorted(alts) for code, alts in alternatives.items()}
        self.codes = frozenset(self.window)

    def relevant(self, shape: Shape) -> bool:
        return any(not in_force(*self.window[c], shape.day) for c in self.codes & shape.codes)

    def dates(self) -> Iterable[date]:
        return (d for window in self.window.values() for d in window if d is not None)

    def check(self, ctx: Context, out: list[Finding]) -> None:
        dos = ctx.dos
        for line in ctx.lines:
            window = self.window.get(line.code)
            if window is None or in_force(*window, dos):
                continue
            start, end = window
            boundary = end if end is not None and dos >= end else start
            replaced_by = self.alternatives.get(line.code, [])
            # of the codes that took its place, those that cover the line's levels (when coverage is known)
            alternatives = [
                a for a in replaced_by if not line.levels or a not in self.covers or self.covers[a].issuperset(line.levels)
            ]
            if alternatives:
                case = "alternative"
                repairs = (Repair("replace-code", line.index, code=alternatives[0]),) if len(alternatives) == 1 else ()
            elif replaced_by:
                case, repairs, alternatives = "other-levels", (), replaced_by
            else:
                case, repairs = "none", (Repair("remove-line", line.index),)
            variables = {
                "code": line.code,
                "date": boundary.isoformat() if boundary else "",
                "dos": dos.isoformat(),
                "alternatives": either(alternatives),
                "levels": span(line.levels),
                "line": line.index,
            }
            out.append(self.rule.finding((line.index,), variables, case=case, repairs=self.repair(*repairs)))


class RequiresPartner(Kind):
    """An add-on (``code``) needs one of its ``partner`` codes on the claim. Rows may be dated. A table
    with ``other`` and ``correct`` columns words the case where a code of another family stands
    where the partner should be, and names the add-on that goes with it."""

    name = "requires-partner"
    by_day = True
    summary = "A code (an add-on) is billed without any of the codes it must be billed with."
    columns = ("code", "partner")
    optional = ("valid_from", "deleted_on", "other", "correct", "partner_covers", "source")
    variables = ("code", "partners", "partner_count", "some_partners", "other", "correct", "line")
    repairs = ("remove-line", "primary-for-first-level", "replace-with-correct")

    glossary = {
        "code": "the code that needs a partner (an add-on)",
        "partner": "a code it may be billed with (one is enough)",
        "other": "a code of another family that stands where a partner should be",
        "correct": "the code that goes with ``other`` instead of ``code``",
        "partner_covers": "a vertebra the partner covers (for the primary-for-first-level repair)",
        "partners": "the partners, as 'A, B or C'",
        "partner_count": "how many partners there are",
        "some_partners": "the first five partners and how many others",
        "primary-for-first-level": "bill the line's first level with the partner that covers it, the rest stay units of the code",
        "replace-with-correct": "replace the code by the one that goes with the other family's code",
    }

    def compile(self, rows: list[Row]) -> None:
        always: dict[str, set[str]] = defaultdict(set)
        dated: dict[str, list[tuple[str, date | None, date | None]]] = defaultdict(list)
        self.covers: dict[str, set[str]] = defaultdict(set)  # partner -> the vertebrae it covers
        self.others: dict[str, dict[str, set[str]]] = defaultdict(lambda: defaultdict(set))
        by_code: dict[str, list[Row]] = defaultdict(list)
        for r in rows:
            by_code[str(r["code"])].append(r)
        self.sources = {code: sources_of(group) for code, group in by_code.items()}  # the code's own sources
        for r in rows:
            code, partner = str(r["code"]), str(r["partner"])
            start, end = as_date(r.get("valid_from")), as_date(r.get("deleted_on"))
            if start is None and end is None:
                always[code].add(partner)
            else:
                dated[code].append((partner, start, end))
            if r.get("partner_covers"):
                self.covers[partner].add(str(r["partner_covers"]))
            if r.get("other"):
                self.others[code][str(r["other"])].add(str(r["correct"]))
        self.always = {k: frozenset(v) for k, v in always.items()}
        self.dated = dict(dated)
        self.codes = frozenset(self.always) | frozenset(self.dated)
        self._dates = sorted(set(self.dates()))
        self._on: dict[tuple[str, int], frozenset[str] | None] = {}  # (code, period) -> partners

    def relevant(self, shape: Shape) -> bool:
        for code in self.codes & shape.codes:
            partners = self.partners_on(code, shape.day)
            if partners is not None and partners.isdisjoint(shape.codes):
                others = self.others.get(code)
                if others is None or not shape.codes.isdisjoint(others):
                    return True
        return False

    def dates(self) -> Iterable[date]:
        return (d for rows in self.dated.values() for _, start, end in rows for d in (start, end) if d is not None)

    def partners_on(self, code: str, dos: date) -> frozenset[str] | None:
        """The partners of a code on a date of service; None when no row of it applies then."""
        rows = self.dated.get(code)
        if rows is None:
            return self.always.get(code)
        key = (code, bisect_right(self._dates, dos))  # the rows in force change only at their dates
        if key in self._on:
            return self._on[key]
        found = {p for p, start, end in rows if in_force(start, end, dos)}
        found |= self.always.get(code, frozenset())
        partners = self._on[key] = frozenset(found) if found else None
        return partners

    def check(self, ctx: Context, out: list[Finding]) -> None:
        for code, lines in ctx.by_code.items():
            partners = self.partners_on(code, ctx.dos)
            if partners is None or not partners.isdisjoint(ctx.codes):
                continue
            others = self.others.get(code)
            if others is not None:
                self._other_family(ctx, code, lines, partners, others, out)
                continue
            sources = self.sources.get(code, ())
            for line in lines:
                words = partial(self._words, code, partners, line.index, "", ())
                out.append(self.rule.finding((line.index,), words, sources=sources, repairs=self._repairs(line, partners)))

    def _words(self, code: str, partners: frozenset[str], line: int, other: str, correct: Iterable[str]) -> dict[str, Any]:
        ordered = sorted(partners)
        return {
            "code": code,
            "partners": either(ordered),
            "partner_count": len(ordered),
            "some_partners": some_of(ordered),
            "line": line,
            "other": other,
            "correct": either(sorted(correct)),
        }

    def _other_family(
        self,
        ctx: Context,
        code: str,
        lines: list[Line],
        partners: frozenset[str],
        others: dict[str, set[str]],
        out: list[Finding],
    ) -> None:
        """One finding per code: its lines, then the first line of the other family's code."""
        for other, other_lines in ctx.by_code.items():
            correct = others.get(other)
            if not correct:
                continue
            fix = next(iter(correct)) if len(correct) == 1 else None
            repairs = tuple(Repair("replace-code", ln.index, code=fix) for ln in lines) if fix else ()
            words = partial(self._words, code, partners, lines[0].index, other, correct)
            sources = self.sources.get(code, ())
            indexes = (*(ln.index for ln in lines), other_lines[0].index)
            out.append(self.rule.finding(indexes, words, sources=sources, repairs=self.repair(*repairs)))
            return

    def _repairs(self, line: Line, partners: frozenset[str]) -> tuple[Repair, ...]:
        if self.rule.repair == "remove-line":
            return (Repair("remove-line", line.index),)
        if self.rule.repair != "primary-for-first-level":
            return ()
        # bill the first named body with the partner that covers it; the rest stay units of the code
        if line.levels:
            fitting = sorted(p for p in partners if line.levels[0] in self.covers.get(p, ()))
        else:
            fitting = sorted(partners) if len(partners) == 1 else []
        if len(fitting) != 1:
            return ()
        primary = Line(line.index, fitting[0], line.modifiers, 1, line.levels[:1])
        rest = () if line.units <= 1 else (Line(line.index, line.code, line.modifiers, line.units - 1, line.levels[1:]),)
        return (Repair("split", line.index, new_lines=(primary, *rest)),)


class ExclusivePair(Kind):
    """``code`` and ``other`` are not billed together (in the same ``group``, such as one family's
    primaries, or CMS's mutually exclusive pairs); ``addon`` is what the later one is billed as
    instead. ``bypass`` lists the modifiers that allow the pair when every line of ``other`` carries
    one (a PTP modifier indicator of 1); a pair without them is never allowed (indicator 0)."""

    name = "exclusive-pair"
    summary = "Two codes that exclude each other in one session are billed together."
    columns = ("code", "other", "group")
    optional = ("addon", "bypass")
    variables = ("code", "other", "group", "addon")
    cases = ("addon", "no-addon")
    repairs = ("later-to-addon",)

    glossary = {
        "addon": "what the later code of the group is billed as instead (the family add-on)",
        "bypass": "a modifier that allows the pair when every line of ``other`` carries one (PTP modifier indicator 1)",
        "no-addon": "the group has no add-on to bill the later code as",
        "later-to-addon": "replace each later code of the group by the group's add-on",
    }

    def compile(self, rows: list[Row]) -> None:
        self.excludes: dict[str, dict[str, tuple[str, str]]] = defaultdict(dict)
        bypass: dict[tuple[str, str], set[str]] = defaultdict(set)
        for r in rows:
            self.excludes[str(r["code"])][str(r["other"])] = (str(r["group"]), str(r.get("addon") or ""))
            if r.get("bypass"):
                bypass[(str(r["code"]), str(r["other"]))].add(str(r["bypass"]))
        self.bypass = {pair: frozenset(mods) for pair, mods in bypass.items()}
        self.codes = frozenset(self.excludes)

    def relevant(self, shape: Shape) -> bool:
        return any(not shape.codes.isdisjoint(self.excludes[c]) for c in self.codes & shape.codes)

    def _conflicts(self, ctx: Context, code: str, other: str) -> bool:
        if other not in ctx.codes:
            return False
        bypass = self.bypass.get((code, other))
        return bypass is None or any(bypass.isdisjoint(ln.modifiers) for ln in ctx.by_code[other])

    def check(self, ctx: Context, out: list[Finding]) -> None:
        """One finding per group: every line of its conflicting codes. Each line whose code is excluded
        by a code on an earlier line gets the repair (bill it as the group's add-on)."""
        excludes = self.excludes
        groups: dict[str, dict[str, None]] = {}  # group -> its conflicting codes
        for code in ctx.by_code:
            for other, (group, _) in excludes.get(code, {}).items():
                if self._conflicts(ctx, code, other):
                    groups.setdefault(group, {}).update({code: None, other: None})
        for group, members in groups.items():
            codes = sorted(members, key=lambda c: ctx.by_code[c][0].index)  # in claim order
            first, others = codes[0], codes[1:]
            seen: list[str] = []
            repairs = []
            addon = ""
            for line in (ln for ln in ctx.lines if ln.code in members):
                pair = next(
                    (p for c in seen if (p := excludes.get(c, {}).get(line.code) or excludes.get(line.code, {}).get(c))), None
                )
                if pair is not None and pair[1]:
                    addon = addon or pair[1]
                    repairs.append(Repair("replace-code", line.index, code=pair[1]))
                if line.code not in seen:
                    seen.append(line.code)
            out.append(
                self.rule.finding(
                    tuple(sorted(ln.index for c in codes for ln in ctx.by_code[c])),
                    {"code": first, "other": either(others), "group": group, "addon": addon},
                    case="addon" if addon else "no-addon",
                    repairs=self.repair(*repairs),
                )
            )


class UnitLimit(Kind):
    """The most units of a code (or of a ``group`` of codes) on a date of service. ``mai`` is CMS's MUE
    adjudication indicator: 1 compares each line, 2 and 3 (the default) the units summed over the
    claim's lines. Of several limits of a code, the tightest one is reported (verified evidence before
    other evidence at the same maximum, then by ``limit_order``)."""

    name = "unit-limit"
    summary = "More units of a code, or of a group of codes, than a limit allows on one date of service."
    columns = ("code", "max_units", "status", "rationale", "fix_hint", "source")
    optional = ("limit_kind", "limit_order", "valid_from", "addon", "group", "mai")
    variables = ("code", "units", "max", "limit_kind", "group", "rationale", "fix_hint", "line")
    repairs = ("split-to-addon",)

    glossary = {
        "max_units": "the most units allowed on a date of service (or a line, MAI 1)",
        "limit_kind": "what kind of limit it is (as a label: medically unlikely edit, descriptor limit ...)",
        "limit_order": "which limit wins at the same maximum, lower first",
        "addon": "the add-on that further units are billed as",
        "mai": "CMS's MUE adjudication indicator: 1 per line, 2 per date (policy), 3 per date (clinical)",
        "units": "the units billed",
        "max": "the limit",
        "split-to-addon": "keep the limit and bill the rest as the add-on; without an add-on, under a policy limit (MAI 2), keep "
        "the limit and drop the rest",
    }

    def compile(self, rows: list[Row]) -> None:
        grouped: dict[tuple[str, str, int, str, int], list[Row]] = defaultdict(list)
        for r in rows:
            key = (
                str(r.get("group") or ""),
                str(r["code"]),
                int(r["max_units"]),
                str(r.get("limit_kind") or ""),
                int(r.get("mai") or 3),
            )
            grouped[key].append(r)
        self.limits: dict[str, list[tuple[int, str, int, Row, tuple[str, ...], date | None]]] = defaultdict(list)
        groups: dict[str, tuple[set[str], int, Row, list[Row]]] = {}
        for (group, code, maximum, kind, mai), rs in grouped.items():
            if group:
                members, _, first, all_rows = groups.setdefault(group, (set(), maximum, rs[0], []))
                members.add(code)
                all_rows.extend(rs)
            else:
                self.limits[code].append((maximum, kind, mai, rs[0], sources_of(rs), as_date(rs[0].get("valid_from"))))
        for kept in self.limits.values():
            kept.sort(key=lambda t: (t[0], str(t[3]["status"]) != "verified", int(t[3].get("limit_order") or 10**6), t[1]))
        self.groups = [(name, frozenset(m), maximum, first, sources_of(rs)) for name, (m, maximum, first, rs) in groups.items()]
        self.codes = frozenset(self.limits) | frozenset(c for _, m, *_ in self.groups for c in m)

    def dates(self) -> Iterable[date]:
        return (start for limits in self.limits.values() for *_, start in limits if start is not None)

    def check(self, ctx: Context, out: list[Finding]) -> None:
        limits = self.limits
        for code, total in ctx.units.items() if limits else ():
            for maximum, kind, mai, row, sources, start in limits.get(code, ()):
                if total <= maximum or (start is not None and ctx.dos < start):
                    continue  # the sum is at least any one line's units
                lines = ctx.by_code[code]
                units = max(ln.units for ln in lines) if mai == 1 else total
                if units <= maximum:
                    continue
                over = [ln for ln in lines if ln.units > maximum] if mai == 1 else lines
                variables = {"code": code, "units": units, "max": maximum, "limit_kind": kind, "group": "", "line": over[0].index}
                out.append(
                    self.rule.finding(
                        tuple(ln.index for ln in over),
                        variables | {"rationale": row["rationale"], "fix_hint": row["fix_hint"]},
                        status=str(row["status"]),
                        sources=sources,
                        repairs=self.repair(*self._split(over, maximum, row.get("addon"), mai)),
                    )
                )
                break
        for name, members, maximum, row, sources in self.groups:
            total = 0
            for code, units in ctx.units.items():
                if code in members:
                    total += units
            if total > maximum:
                present = members.intersection(ctx.units)
                indexes = tuple(ln.index for ln in ctx.lines if ln.code in present)
                variables = {"code": either(sorted(present)), "units": total, "max": maximum, "limit_kind": "", "group": name}
                out.append(
                    self.rule.finding(
                        indexes,
                        variables | {"line": indexes[0], "rationale": row["rationale"], "fix_hint": row["fix_hint"]},
                        status=str(row["status"]),
                        sources=sources,
                    )
                )

    @staticmethod
    def _split(lines: list[Line], maximum: int, addon: Any, mai: int) -> list[Repair]:
        """Keep ``maximum`` units of the code and bill the rest as its add-on. A code without an add-on
        keeps ``maximum`` units (the first lines' levels) and the rest is removed, but only under a
        policy limit (MAI 2: more units cannot be right, such as two sacra); a clinical limit (MAI 3) is
        appealed with documentation, not corrected by dropping services."""
        if not addon and mai != 2:
            return []
        per_line = mai == 1
        repairs = []
        left = maximum
        for line in lines:
            keep = min(maximum if per_line else left, line.units)
            left -= keep
            excess = line.units - keep
            if excess <= 0:
                continue
            parts = [Line(line.index, line.code, line.modifiers, keep, line.levels[:keep])] if keep else []
            if addon:
                parts.append(Line(line.index, str(addon), (), excess, line.levels[keep:]))
            repairs.append(Repair("split", line.index, new_lines=tuple(parts)) if parts else Repair("remove-line", line.index))
        return repairs


class UnitsPerLevel(Kind):
    name = "units-per-level"
    summary = "A code billed one unit per vertebral body names a different number of levels than it has units."
    columns = ("code",)
    variables = ("code", "line", "units", "count", "levels")
    repairs = ("units-from-levels",)

    glossary = {
        "units": "the units on the line",
        "count": "the distinct levels the line names",
        "units-from-levels": "set the units to the number of distinct levels",
    }

    def compile(self, rows: list[Row]) -> None:
        self.codes = frozenset(str(r["code"]) for r in rows)

    def check(self, ctx: Context, out: list[Finding]) -> None:
        codes = self.codes
        for line in ctx.lines:
            if line.levels and line.code in codes and (len(line.levels) != line.units or len(set(line.levels)) != line.units):
                levels = tuple(dict.fromkeys(line.levels))
                if len(levels) != line.units:
                    variables = {
                        "code": line.code,
                        "line": line.index,
                        "units": line.units,
                        "count": len(levels),
                        "levels": span(line.levels),
                    }
                    repair = Repair("set-units", line.index, units=len(levels), levels=levels)
                    out.append(self.rule.finding((line.index,), variables, repairs=self.repair(repair)))


class LevelOnce(Kind):
    name = "level-once"
    summary = "A vertebral level is billed more than once within one group of codes (a family)."
    columns = ("code", "group")
    variables = ("level", "group", "lines", "later_line")
    repairs = ("remove-duplicate-level",)

    glossary = {
        "lines": "the lines that bill the level, comma-separated",
        "later_line": "the last of them",
        "remove-duplicate-level": "drop the level from the later line (and the line if it names no other)",
    }

    def compile(self, rows: list[Row]) -> None:
        self.group = {str(r["code"]): str(r["group"]) for r in rows}
        self.codes = frozenset(self.group)

    def check(self, ctx: Context, out: list[Finding]) -> None:
        first: set[tuple[str, str]] = set()
        repeated = False
        for line in ctx.lines:
            group = self.group.get(line.code)
            if group is not None:
                for level in line.levels:
                    if (group, level) in first:
                        repeated = True
                    first.add((group, level))
        if not repeated:
            return
        seen: dict[tuple[str, str], list[Line]] = {}
        for line in ctx.lines:
            group = self.group.get(line.code)
            if group is not None:
                for level in line.levels:
                    seen.setdefault((group, level), []).append(line)
        for (group, level), lines in seen.items():
            if len(lines) < 2:
                continue
            later = lines[-1]
            remaining = list(later.levels)
            remaining.remove(level)
            repair = (
                Repair("remove-line", later.index)
                if not remaining
                else Repair("set-units", later.index, units=max(1, later.units - 1), levels=tuple(remaining))
            )
            variables = {
                "level": level,
                "group": group,
                "lines": ", ".join(str(ln.index) for ln in lines),
                "later_line": later.index,
            }
            out.append(self.rule.finding(tuple(dict.fromkeys(ln.index for ln in lines)), variables, repairs=self.repair(repair)))


class LevelCoverage(Kind):
    """The table says which ``vertebra`` each ``code`` covers, for which ``procedure``, in which
    ``role`` (codes of the same role are the closest replacements) and on which evidence."""

    name = "level-coverage"
    summary = "A code is billed at a level it does not cover; the codes that do cover it are named."
    columns = ("code", "vertebra", "procedure", "role", "status")
    optional = ("valid_from", "deleted_on")
    variables = ("code", "level", "region", "procedure", "candidates", "line")
    cases = ("candidates", "none")
    repairs = ("replace-code",)

    glossary = {
        "vertebra": "a vertebra the code covers",
        "procedure": "the procedure the code reports there",
        "role": "primary, add-on or stand-alone: candidates of the code's own role come first",
        "region": "the region of the level",
        "candidates": "the codes for the procedure at the level, same role first, then verified first",
        "none": "no code covers the procedure at the level",
        "replace-code": "replace the code by the one same-role code that covers every level of the line",
    }

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
            self.role[code] = str(r["role"])
            self.at[(procedure, vertebra)].append((code, str(r["status"])))
            self.window[code] = (as_date(r.get("valid_from")), as_date(r.get("deleted_on")))
        self.codes = frozenset(self.covers)
        self._ranked: dict[tuple[str, str], list[str]] = {}

    def dates(self) -> Iterable[date]:
        return (d for window in self.window.values() for d in window if d is not None)

    def candidates(self, code: str, level: str, dos: date) -> list[str]:
        """Codes for the same procedure at the level, valid on the date: same role first, then verified
        coverage first, then by code."""
        ranked = self._ranked.get((code, level))
        if ranked is None:
            found: dict[str, int] = {}
            for procedure in self.procedures.get(code, ()):
                for other, status in self.at.get((procedure, level), ()):
                    rank = (0 if self.role.get(other) == self.role.get(code) else 2) + (status != "verified")
                    found[other] = min(rank, found.get(other, 9))
            ranked = self._ranked[(code, level)] = sorted(found, key=lambda c: (found[c], c))
        return [c for c in ranked if in_force(*self.window.get(c, (None, None)), dos)]

    def check(self, ctx: Context, out: list[Finding]) -> None:
        for line in ctx.lines:
            covered = self.covers.get(line.code)
            if covered is None or not line.levels or covered.issuperset(line.levels):
                continue
            wrong = list(dict.fromkeys(lv for lv in line.levels if lv not in covered))
            repairs = self.repair(*self._replacement(line, wrong, ctx.dos))
            # one finding per line and answer: levels of one region with the same candidates share it
            groups: dict[tuple[str, str], list[str]] = {}
            for level in wrong:
                groups.setdefault(
                    (self.anatomy.region.get(level, ""), either(self.candidates(line.code, level, ctx.dos))), []
                ).append(level)
            for (region, candidates), levels in groups.items():
                variables = {
                    "code": line.code,
                    "level": span(levels),
                    "line": line.index,
                    "region": region,
                    "procedure": either(sorted(self.procedures[line.code])),
                    "candidates": candidates,
                }
                out.append(
                    self.rule.finding((line.index,), variables, case="candidates" if candidates else "none", repairs=repairs)
                )

    def _replacement(self, line: Line, wrong: list[str], dos: date) -> list[Repair]:
        if len(wrong) != len(set(line.levels)):
            return []
        same_role = None
        for level in wrong:
            cands = [c for c in self.candidates(line.code, level, dos) if self.role.get(c) == self.role.get(line.code)]
            if len(cands) != 1 or (same_role is not None and cands[0] != same_role):
                return []
            same_role = cands[0]
        return [Repair("replace-code", line.index, code=same_role)] if same_role else []


class LevelNote(Kind):
    """A note about a ``vertebra`` (for one ``code``, or any code when the column is unbound)."""

    name = "level-note"
    summary = "A line names a level about which the graph has a note (a caveat, or a choice the coder should know of)."
    columns = ("vertebra", "note", "status")
    optional = ("code", "fix_hint", "source")
    variables = ("code", "level", "note", "fix_hint", "line")

    glossary = {
        "vertebra": "the level the note is about",
        "note": "the note",
    }

    def compile(self, rows: list[Row]) -> None:
        notes: dict[tuple[str | None, str], list[Row]] = defaultdict(list)
        for r in rows:
            notes[(str(r["code"]) if r.get("code") else None, str(r["vertebra"]))].append(r)
        self.notes = {k: (v[0], sources_of(v)) for k, v in notes.items()}
        self.levels = frozenset(level for _, level in self.notes)
        self.notes_any_code = any(code is None for code, _ in self.notes)
        self.codes = frozenset(code for code, _ in self.notes if code is not None)

    @property
    def any_code(self) -> bool:
        return self.notes_any_code or not self.codes

    def relevant(self, shape: Shape) -> bool:
        return self.notes_any_code or not self.codes.isdisjoint(shape.codes)

    def check(self, ctx: Context, out: list[Finding]) -> None:
        for line in ctx.lines:
            if self.levels.isdisjoint(line.levels):
                continue
            # one finding per line and note: levels that share a note share the finding
            groups: dict[tuple[str, str, str, tuple[str, ...]], list[str]] = {}
            for level in dict.fromkeys(line.levels):
                hit = self.notes.get((line.code, level)) or self.notes.get((None, level))
                if hit is not None:
                    row, sources = hit
                    groups.setdefault((str(row["note"]), str(row.get("fix_hint") or ""), str(row["status"]), sources), []).append(
                        level
                    )
            for (note, fix_hint, status, sources), levels in groups.items():
                variables = {"code": line.code, "level": span(levels), "note": note, "fix_hint": fix_hint, "line": line.index}
                out.append(self.rule.finding((line.index,), variables, status=status, sources=sources))


class FieldMissing(Kind):
    """A claim field (``field`` alone, such as date_of_service, which the parser fills in with
    today's date) or a line field of the listed codes (``field`` with ``code``, such as levels) that
    the claim leaves out."""

    name = "field-missing"
    summary = "The claim, or a line of one of the listed codes, leaves out a field the rules need."
    columns = ("field",)
    optional = ("code",)
    variables = ("field", "value", "code", "line")

    glossary = {"value": "the value the parser assumed (for a claim field)"}

    def compile(self, rows: list[Row]) -> None:
        self.claim_fields = tuple(dict.fromkeys(str(r["field"]) for r in rows if not r.get("code")))
        line_fields: dict[str, set[str]] = defaultdict(set)
        for r in rows:
            if r.get("code"):
                line_fields[str(r["field"])].add(str(r["code"]))
        self.line_fields = {name: frozenset(codes) for name, codes in line_fields.items()}
        unknown = [f for f in self.claim_fields if f not in CLAIM_KEYS] + [f for f in self.line_fields if f not in LINE_KEYS]
        if unknown:
            raise ValueError(
                f"unknown claim or line field {unknown[0]!r}; claim: {', '.join(CLAIM_KEYS)}; line: {', '.join(LINE_KEYS)}"
            )
        self.codes = frozenset().union(*self.line_fields.values()) if self.line_fields else frozenset()

    flagged = True

    @property
    def any_code(self) -> bool:
        return bool(self.claim_fields) or not self.codes  # a claim field may be missing whatever the codes

    def applies(self, ctx: Context) -> bool:
        return bool(ctx.claim.assumed and self.claim_fields) or (ctx.levelless and bool(self.line_fields))

    def relevant(self, shape: Shape) -> bool:
        if not shape.assumed.isdisjoint(self.claim_fields):
            return True
        return any(
            (name != "levels" or shape.levelless) and not codes.isdisjoint(shape.codes)
            for name, codes in self.line_fields.items()
        )

    def check(self, ctx: Context, out: list[Finding]) -> None:
        assumed = ctx.claim.assumed
        if assumed:
            for name in self.claim_fields:
                value = assumed.get(name)
                if value is not None:
                    variables = {"field": name, "value": value, "code": "", "line": ""}
                    out.append(self.rule.finding(tuple(ln.index for ln in ctx.lines), variables))
        for name, codes in self.line_fields.items():
            for line in ctx.lines:
                if line.code in codes and not getattr(line, name):
                    out.append(
                        self.rule.finding((line.index,), {"field": name, "value": "", "code": line.code, "line": line.index})
                    )


class OneCodeForLevels(Kind):
    """Per ``group`` (a family), which ``code`` covers which ``vertebra``; ``addon`` is the group's
    add-on. Fires when the group's levels on a claim are covered by no single code of the table."""

    name = "one-code-for-levels"
    summary = "The levels of one family on a claim span regions that no single primary code covers."
    columns = ("group", "code", "vertebra")
    optional = ("addon",)
    variables = ("group", "levels", "codes", "addon")

    glossary = {
        "vertebra": "a vertebra the code covers",
        "addon": "the group's add-on",
        "codes": "the codes that each cover some of the levels",
    }

    def compile(self, rows: list[Row]) -> None:
        self.covering: dict[str, dict[str, set[str]]] = defaultdict(lambda: defaultdict(set))
        self.members: dict[str, str] = {}
        self.addon: dict[str, str] = {}
        for r in rows:
            group = str(r["group"])
            self.covering[group][str(r["vertebra"])].add(str(r["code"]))
            self.members[str(r["code"])] = group
            if r.get("addon"):
                self.members[str(r["addon"])] = group
                self.addon[group] = str(r["addon"])
        self.codes = frozenset(self.members)

    def check(self, ctx: Context, out: list[Finding]) -> None:
        members = self.members
        groups: dict[str, list[Line]] = {}
        for line in ctx.lines:
            group = members.get(line.code)
            if group is not None and line.levels:
                groups.setdefault(group, []).append(line)
        for group, lines in groups.items():
            covering = self.covering[group]
            common: set[str] | None = None
            sets = []
            for lv in (lv for ln in lines for lv in ln.levels):
                codes = covering.get(lv)
                if not codes:
                    break  # a level no code covers: the coverage rule reports it
                common = codes if common is None else common & codes
                sets.append(codes)
            else:
                if common is None or common:
                    continue  # one code covers every level
                levels = list(dict.fromkeys(lv for ln in lines for lv in ln.levels))
                variables = {
                    "group": group,
                    "levels": span(levels),
                    "codes": either(sorted(set().union(*sets))),
                    "addon": self.addon.get(group, ""),
                }
                out.append(self.rule.finding(tuple(ln.index for ln in lines), variables))


class ModifierAllowed(Kind):
    """Modifiers a code may not carry: by fee-schedule ``year`` (the indicators of that year's
    schedule), or always (``specific`` rows, from a family's or a code's own rules)."""

    name = "modifier-allowed"
    summary = "A line carries a modifier its code may not carry (in the fee schedule year in force, or ever)."
    columns = ("code", "modifier", "status", "rationale", "fix_hint", "source")
    optional = ("year", "specific")
    variables = ("code", "modifier", "rationale", "fix_hint", "line")
    repairs = ("drop-modifier",)

    glossary = {
        "modifier": "a modifier the code may not carry",
        "year": "the fee-schedule year whose indicators forbid it",
        "specific": "true when the row holds in every year (a family's or a code's own rule)",
        "drop-modifier": "remove the modifier from the line",
    }

    def compile(self, rows: list[Row]) -> None:
        grouped: dict[tuple[int | None, str, str, str], list[Row]] = defaultdict(list)
        for r in rows:
            year = None if r.get("specific") or r.get("year") is None else int(r["year"])
            grouped[(year, str(r["code"]), str(r["modifier"]), str(r["rationale"]))].append(r)
        self.always: dict[tuple[str, str], tuple[Row, tuple[str, ...]]] = {}
        self.by_year: dict[int, dict[tuple[str, str], tuple[Row, tuple[str, ...]]]] = defaultdict(dict)
        for (year, code, mod, _), group in sorted(grouped.items(), key=lambda kv: str(kv[0])):
            target = self.always if year is None else self.by_year[year]
            target.setdefault((code, mod), (group[0], sources_of(group)))
        self.years = sorted(self.by_year)
        self.codes = frozenset(c for c, _ in self.always) | frozenset(c for table in self.by_year.values() for c, _ in table)

    flagged = True

    def relevant(self, shape: Shape) -> bool:
        return shape.modifiers and not self.codes.isdisjoint(shape.codes)

    def applies(self, ctx: Context) -> bool:
        return ctx.modifiers

    def dates(self) -> Iterable[date]:
        return (date(year, 1, 1) for year in self.years)

    def year_for(self, dos: date) -> int | None:
        """The fee schedule year in force: the latest year on or before the date, else the earliest."""
        earlier = [y for y in self.years if y <= dos.year]
        return earlier[-1] if earlier else (self.years[0] if self.years else None)

    def check(self, ctx: Context, out: list[Finding]) -> None:
        table = None
        for line in ctx.lines:
            if not line.modifiers or line.code not in self.codes:
                continue
            if table is None:
                table = self.by_year.get(self.year_for(ctx.dos) or -1, {})
            for mod in dict.fromkeys(line.modifiers):
                hit = self.always.get((line.code, mod)) or table.get((line.code, mod))
                if hit is not None:
                    row, sources = hit
                    variables = {
                        "code": line.code,
                        "modifier": mod,
                        "rationale": row["rationale"],
                        "fix_hint": row["fix_hint"],
                        "line": line.index,
                    }
                    repair = Repair("drop-modifier", line.index, modifier=mod)
                    out.append(
                        self.rule.finding(
                            (line.index,), variables, status=str(row["status"]), sources=sources, repairs=self.repair(repair)
                        )
                    )


class BundleEntry(NamedTuple):
    comprehensive: str
    row: Row
    sources: tuple[str, ...]
    bypass: frozenset[str]
    preferred: str  # the bypass modifier of the lowest rank
    rank: int
    start: date | None


class Bundle(Kind):
    """A ``component`` code is included in a ``comprehensive`` code (CMS's column 2 and column 1).
    ``scope`` says when: ``session`` (billed on the same claim, unless a ``bypass`` modifier shows a
    distinct service), ``same-level`` (the component at a level the comprehensive code treats) or
    ``other-level`` (the component at another level: billable, but only with a ``bypass`` modifier;
    ``bypass_rank`` orders the modifiers the fix proposes, lowest first)."""

    name = "bundle"
    by_day = True
    summary = (
        "A component code is billed with the comprehensive code that includes it (in the session, at the same level, "
        "or at another level without a modifier that shows it was distinct)."
    )
    columns = ("comprehensive", "component", "status", "rationale", "source")
    optional = ("fix_hint", "bypass", "bypass_rank", "valid_from", "paired")
    variables = ("component", "comprehensive", "levels", "treated", "bypass", "preferred_bypass", "rationale", "fix_hint")
    cases = ("default", "levels-unnamed")
    repairs = ("remove-line", "remove-shared-levels", "add-preferred-modifier")
    options = {"scope": ("session", "same-level", "other-level")}

    glossary = {
        "comprehensive": "the code that includes the other (CMS's column 1)",
        "component": "the code included (CMS's column 2)",
        "bypass": "a modifier that shows the component was a distinct service",
        "bypass_rank": "the order in which a fix proposes the bypass modifiers, lowest first (from the ontology)",
        "paired": "other-level scope: false when the two codes are billable together at different levels without a modifier "
        "(CMS's table does not pair them); the comprehensive code's levels still count as treated",
        "treated": "the levels the comprehensive code's lines name",
        "preferred_bypass": "the bypass modifier of the lowest rank",
        "levels-unnamed": "the levels are not named on every line, so same or other level cannot be told",
        "remove-shared-levels": "drop the levels the comprehensive code treats from the component line",
        "add-preferred-modifier": "append the preferred bypass modifier to the component line",
        "scope": "session: on the same claim; same-level: at a level the comprehensive code treats; other-level: at another "
        "level, without a bypass modifier",
    }

    def compile(self, rows: list[Row]) -> None:
        grouped: dict[tuple[str, str], list[Row]] = defaultdict(list)
        for r in rows:
            grouped[(str(r["component"]), str(r["comprehensive"]))].append(r)
        self.table: dict[str, list[BundleEntry]] = defaultdict(list)
        for (component, comprehensive), group in sorted(grouped.items()):
            ranked = sorted({(int(r.get("bypass_rank") or 0), str(r["bypass"])) for r in group if r.get("bypass")})
            bypass = frozenset(m for _, m in ranked)
            rank, preferred = ranked[0] if ranked else (0, "")
            entry = BundleEntry(
                comprehensive, group[0], sources_of(group), bypass, preferred, rank, as_date(group[0].get("valid_from"))
            )
            self.table[component].append(entry)
        self.codes = frozenset(self.table)
        self.scope = self.option("scope")
        self.check = {"session": self._session, "same-level": self._same_level, "other-level": self._other_level}[self.scope]  # type: ignore[method-assign]

    def relevant(self, shape: Shape) -> bool:
        return any(
            e.comprehensive in shape.codes and (e.start is None or shape.day >= e.start)
            for component in self.codes & shape.codes
            for e in self.table[component]
        )

    def dates(self) -> Iterable[date]:
        return (e.start for entries in self.table.values() for e in entries if e.start is not None)

    def _variables(self, component: str, comprehensive: str, row: Row, **more: Any) -> dict[str, Any]:
        return {
            "component": component,
            "comprehensive": comprehensive,
            "levels": "",
            "treated": "",
            "bypass": "",
            "preferred_bypass": "",
            "rationale": row["rationale"],
            "fix_hint": row.get("fix_hint") or "",
        } | more

    def _edits(self, ctx: Context, code: str) -> list[BundleEntry]:
        dos, codes = ctx.dos, ctx.codes
        return [e for e in self.table.get(code, ()) if e.comprehensive in codes and (e.start is None or dos >= e.start)]

    def _session(self, ctx: Context, out: list[Finding]) -> None:
        """One finding per component and comprehensive code: the component lines without a bypass
        modifier, then the first line of the comprehensive code."""
        groups: dict[tuple[str, str], tuple[Row, tuple[str, ...], list[int]]] = {}
        for line in ctx.lines:
            for comprehensive, row, sources, bypass, *_ in self._edits(ctx, line.code):
                if not bypass.intersection(line.modifiers):
                    groups.setdefault((line.code, comprehensive), (row, sources, []))[2].append(line.index)
                    break
        for (component, comprehensive), (row, sources, lines) in groups.items():
            out.append(
                self.rule.finding(
                    (*lines, ctx.by_code[comprehensive][0].index),
                    self._variables(component, comprehensive, row),
                    status=str(row["status"]),
                    sources=sources,
                    repairs=self.repair(*(Repair("remove-line", n) for n in lines)),
                )
            )

    def _same_level(self, ctx: Context, out: list[Finding]) -> None:
        """One finding per component and comprehensive code: the component lines at a level the
        comprehensive code treats, then the comprehensive lines at those levels."""
        treated: dict[str, set[str]] = {}  # comprehensive code -> the levels its lines name
        groups: dict[tuple[str, str], tuple[Row, tuple[str, ...], list[int], dict[str, None], list[Repair]]] = {}
        for line in ctx.lines:
            if not line.levels:
                continue
            for comprehensive, row, sources, *_ in self._edits(ctx, line.code):
                levels = treated.get(comprehensive)
                if levels is None:
                    levels = treated[comprehensive] = {lv for other in ctx.by_code[comprehensive] for lv in other.levels}
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
                    self._variables(component, comprehensive, row, levels=span(shared_levels)),
                    status=str(row["status"]),
                    sources=sources,
                    repairs=self.repair(*repairs),
                )
            )

    def _other_level_words(
        self, code: str, edits: list[BundleEntry], lines: list[Line], treated: set[str], bypass: frozenset[str], preferred: str
    ) -> dict[str, Any]:
        return self._variables(
            code,
            either(sorted({e.comprehensive for e in edits})),
            edits[0].row,
            levels=span(dict.fromkeys(lv for ln in lines for lv in ln.levels)),
            treated=span(self.anatomy.ordered(treated)),
            bypass=either(sorted(bypass)),
            preferred_bypass=preferred,
        )

    def _other_level(self, ctx: Context, out: list[Finding]) -> None:
        """One finding per component code (and whether the levels are named): its lines without a
        bypass modifier at a level no comprehensive line treats, then the comprehensive lines."""
        found: dict[str, tuple[list[BundleEntry], list[Line], set[str], frozenset[str]] | None] = {}
        groups: dict[tuple[str, bool], list[Line]] = {}
        for line in ctx.lines:
            if line.code not in self.table:
                continue
            if line.code not in found:
                every = self._edits(ctx, line.code)
                edits = [e for e in every if e.bypass and e.row.get("paired", True) is not False]
                others = [o for e in edits for o in ctx.by_code[e.comprehensive]]
                bypass = frozenset().union(*(e.bypass for e in edits))
                # a level any comprehensive code treats is the same level, paired in CMS's table or not
                treated = {lv for e in every for o in ctx.by_code[e.comprehensive] for lv in o.levels}
                found[line.code] = (edits, others, treated, bypass) if edits else None
            hit = found[line.code]
            if hit is None:
                continue
            _, others, treated, bypass = hit
            if line.levels and not treated.isdisjoint(line.levels):
                continue  # the same level as a comprehensive service: a same-level rule reports it
            if not bypass.isdisjoint(line.modifiers):
                continue
            groups.setdefault((line.code, bool(line.levels) and all(o.levels for o in others)), []).append(line)
        for (code, named), lines in groups.items():
            edits, others, treated, bypass = found[code]  # type: ignore[misc]
            statuses = {str(e.row["status"]) for e in edits}
            preferred = min(((e.rank, e.preferred) for e in edits if e.preferred), default=(0, ""))[1]
            variables = partial(self._other_level_words, code, edits, lines, treated, bypass, preferred)
            repairs = [Repair("add-modifier", ln.index, modifier=preferred) for ln in lines] if named and preferred else []
            out.append(
                self.rule.finding(
                    tuple(dict.fromkeys((*(ln.index for ln in lines), *(o.index for o in others)))),
                    variables,
                    case="default" if named else "levels-unnamed",
                    status="verified" if "verified" in statuses else sorted(statuses)[0],
                    sources=tuple(dict.fromkeys(s for e in edits for s in e.sources)),
                    repairs=self.repair(*repairs),
                )
            )


def kind_names(kind: type[Kind]) -> list[str]:
    """Every name a rule writer meets in a kind: columns, variables, cases, repairs and options."""
    return list(dict.fromkeys((*kind.columns, *kind.optional, *kind.variables, *kind.cases, *kind.repairs, *kind.options)))


KINDS: dict[str, type[Kind]] = {
    cls.name: cls
    for cls in (
        Known,
        DateWindow,
        RequiresPartner,
        ExclusivePair,
        UnitLimit,
        UnitsPerLevel,
        LevelOnce,
        LevelCoverage,
        LevelNote,
        FieldMissing,
        OneCodeForLevels,
        ModifierAllowed,
        Bundle,
    )
}
