"""The rule kinds of medical necessity: what a Medicare contractor's local coverage determination (LCD)
and its billing and coding article require of a claim, judged by the documents in force for the
claim's jurisdiction (its ``state``, or the jurisdiction of its ``contractor`` number) on its date of
service.

Every table of these kinds has one row per jurisdiction, LCD, procedure code and provision entry (a
listed diagnosis, an asterisk code, a covered vertebra ...), with the dates the LCD is known to be in
force (``lcd_from``, ``lcd_until``) and those of the provision (``valid_from``, ``deleted_on``). A kind
knows no code, state or jurisdiction: it takes the rows of the claim's jurisdiction and codes in force
on the date, and where an article's imported rows (``imported``, from spinekg import coverage) are in
force they replace its typed rows. Diagnoses are compared without their dots, and a category
(``exempt``, ``category``) covers every code that begins with it (ICD-10-CM builds a code by adding
characters to its category's: C90.0 -> C90.00, C90.01, C90.02).

Severity follows the evidence: an error whose rows are not all verified (a list known only in part or
from secondary copies) is a warning (issue 10: unverified facts only ever warn), and says so in its
``{basis}``. Each rule gives at most one finding per claim, naming every line it concerns."""

from __future__ import annotations

from bisect import bisect_right
from collections import defaultdict
from collections.abc import Iterable, Iterator
from datetime import date
from typing import Any, ClassVar, NamedTuple

from spinekg.kg.cache import remember
from spinekg.kg.claims.kinds import MEMO_LIMIT, Context, Kind, Row, Shape, span
from spinekg.kg.claims.model import Claim, Finding, Line
from spinekg.kg.facts.codes import as_date, in_force
from spinekg.kg.sources import source_order
from spinekg.kg.text import either, some_of

STATUS_RANK = {"verified": 1, "derived": 2, "secondary": 3, "unverified": 4}
WEAKER_THAN_VERIFIED = ("derived", "secondary", "unverified")
COMPLETE = "known-complete"

COVERAGE_GLOSSARY = {
    "jurisdiction": "the A/B MAC jurisdiction (JF, J15 ...) whose LCD the row belongs to; the claim's state or contractor "
    "number picks it",
    "lcd": "the LCD's display id (L34106)",
    "article": "the billing and coding article's display id (A56573)",
    "contractor": "the contractor that issued the LCD",
    "code": "a procedure code the LCD or article governs (as a variable: the codes of the lines concerned)",
    "lcd_from": "the first date of service the LCD is known to be in force (its original effective date, else its earliest "
    "known version's)",
    "lcd_until": "the first date of service the LCD no longer applies (retired)",
    "valid_from": "the first date of service the provision applies to",
    "deleted_on": "the first date of service the provision no longer applies to",
    "imported": "true for rows of spinekg import coverage: they replace the typed rows of the same article on their dates",
    "lines": "the claim lines concerned, comma-separated",
    "codes": "the procedure codes of those lines",
    "state": "the claim's state (or the contractor number it named)",
    "date": "the date of service",
    "basis": "how well the rows are established, in words (a verified complete list; known only in part ...)",
    "sources": "the source ids of the rows",
}


class Entry(NamedTuple):
    lcd: str
    article: str
    contractor: str
    lcd_from: date | None
    lcd_until: date | None
    start: date | None
    end: date | None
    imported: bool
    status: str
    source: str
    row: Row


def both(items: Iterable[str]) -> str:
    """ "A", "A and B", "A, B and C"."""
    values = list(dict.fromkeys(items))
    if len(values) <= 1:
        return "".join(values)
    return ", ".join(values[:-1]) + " and " + values[-1]


def undotted(code: str) -> str:
    return code.replace(".", "").upper()


def pointed(claim: Claim, line: Line) -> tuple[str, ...]:
    """The diagnoses a line points to (its 1-based ``diagnosis_pointers``), or every diagnosis of the
    claim when it names none (the parser has checked the pointers against the list)."""
    return line.pointed(claim.diagnoses)


def jurisdiction_of(claim: Claim) -> str | None:
    return claim.jurisdiction


def where_of(claim: Claim) -> str:
    """How the claim named its place: its state, or the contractor number it gave."""
    if claim.contractor:
        return f"contract {claim.contractor}" + (f" ({claim.state})" if claim.state else "")
    return claim.state or ""


class _Coverage(Kind):
    """Base: the rows by jurisdiction and code, the rows in force on a date (imported rows first)."""

    by_day = True
    columns: ClassVar[tuple[str, ...]] = ("jurisdiction", "lcd", "code", "lcd_from")
    base_optional: ClassVar[tuple[str, ...]] = (
        "article", "contractor", "lcd_until", "valid_from", "deleted_on", "status", "source", "imported",
    )  # fmt: skip
    glossary: ClassVar[dict[str, str]] = COVERAGE_GLOSSARY

    def compile(self, rows: list[Row]) -> None:
        table: dict[tuple[str, str], list[Entry]] = defaultdict(list)
        dates: set[date] = set()
        self.jurisdictions: set[str] = set()
        for r in rows:
            entry = Entry(
                lcd=str(r["lcd"]),
                article=str(r.get("article") or ""),
                contractor=str(r.get("contractor") or ""),
                lcd_from=as_date(r.get("lcd_from")),
                lcd_until=as_date(r.get("lcd_until")),
                start=as_date(r.get("valid_from")),
                end=as_date(r.get("deleted_on")),
                imported=bool(r.get("imported")),
                status=str(r.get("status") or "verified"),
                source=str(r.get("source") or ""),
                row=r,
            )
            table[(str(r["jurisdiction"]), str(r["code"]))].append(entry)
            self.jurisdictions.add(str(r["jurisdiction"]))
            dates.update(d for d in (entry.lcd_from, entry.lcd_until, entry.start, entry.end) if d is not None)
        self.table = dict(table)
        self.codes = frozenset(code for _, code in self.table)
        self._dates = sorted(dates)
        self._on: dict[tuple[str, str, int], tuple[Entry, ...]] = {}
        self.compile_rest(rows)

    def compile_rest(self, rows: list[Row]) -> None:
        pass

    def dates(self) -> Iterable[date]:
        return self._dates

    def relevant(self, shape: Shape) -> bool:
        return not self.codes.isdisjoint(shape.codes)

    def lcd_known(self, jurisdiction: str, code: str, dos: date) -> bool:
        """Whether an LCD of the jurisdiction that governs the code is known to be in force on the date."""
        return any(
            e.lcd_from is not None and in_force(e.lcd_from, e.lcd_until, dos) for e in self.table.get((jurisdiction, code), ())
        )

    def governed(self, ctx: Context, jurisdiction: str) -> Iterator[tuple[Line, tuple[Entry, ...]]]:
        """The claim's lines of a code the LCD governs, each with its rows in force on the date (none: left out)."""
        for line in ctx.lines:
            if (jurisdiction, line.code) in self.table:
                live = self.entries(jurisdiction, line.code, ctx.dos)
                if live:
                    yield line, live

    def entries(self, jurisdiction: str, code: str, dos: date) -> tuple[Entry, ...]:
        """The rows in force on the date (the LCD's and the provision's dates); where an article has
        imported rows in force, its typed rows are dropped. Remembered per period between the rows' dates."""
        key = (jurisdiction, code, bisect_right(self._dates, dos))
        found = self._on.get(key)
        if found is None:
            live = [
                e
                for e in self.table.get((jurisdiction, code), ())
                if e.lcd_from is not None and in_force(e.lcd_from, e.lcd_until, dos) and in_force(e.start, e.end, dos)
            ]
            imported = {e.article for e in live if e.imported}
            kept = tuple(e for e in live if e.imported or e.article not in imported)
            found = remember(self._on, key, kept, MEMO_LIMIT)
        return found

    def finding(
        self, ctx: Context, lines: Iterable[Line], entries: Iterable[Entry], variables: dict[str, Any], case: str = "default"
    ) -> Finding:
        """One finding naming the lines; its evidence the weakest of the rows', and an error whose rows
        are not all verified is a warning."""
        chosen = list(entries)
        status = max((e.status for e in chosen), key=lambda s: STATUS_RANK.get(s, 4), default="verified")
        sources = tuple(sorted({e.source for e in chosen if e.source}, key=source_order))
        indexes = tuple(sorted({ln.index for ln in lines}))
        first = chosen[0] if chosen else None
        words = {
            "lines": ", ".join(str(i) for i in indexes),
            "codes": both(dict.fromkeys(ln.code for ln in sorted(lines, key=lambda ln: ln.index))),
            "lcd": either(dict.fromkeys(e.lcd for e in chosen)) if chosen else "",
            "article": either(dict.fromkeys(e.article for e in chosen if e.article)) if chosen else "",
            "contractor": first.contractor if first else "",
            "jurisdiction": jurisdiction_of(ctx.claim) or "",
            "state": where_of(ctx.claim),
            "date": ctx.dos.isoformat(),
            "sources": ", ".join(sources),
        } | variables
        found = self.rule.finding(indexes, words, status=status, sources=sources, case=case)
        if found.severity == "error" and status in WEAKER_THAN_VERIFIED:
            found.severity = "warning"  # a list known only in part, or from secondary copies, never makes a claim invalid
            found.repairs = ()
        return found


class LcdNoState(_Coverage):
    """A claim that gives diagnoses but no state (nor contractor) holds a code some LCD governs: its
    medical necessity was not checked. A claim without diagnoses asks only for the coding checks, and
    gets no note (every such claim would otherwise carry it)."""

    name = "lcd-no-state"
    summary = (
        "A claim with diagnoses of a code the LCDs govern names no state (nor contractor): medical necessity was not checked."
    )
    optional = _Coverage.base_optional
    variables = ("lines", "codes", "lcd", "date", "diagnoses")
    glossary = COVERAGE_GLOSSARY | {"diagnoses": "the claim's diagnoses"}

    def check(self, ctx: Context, out: list[Finding]) -> None:
        if jurisdiction_of(ctx.claim) is not None or not ctx.claim.diagnoses:
            return
        lines = [ln for ln in ctx.lines if ln.code in self.codes]
        if lines:
            lcds = sorted({e.lcd for (_, code), es in self.table.items() if code in ctx.codes for e in es})
            out.append(self.finding(ctx, lines, (), {"lcd": some_of(lcds), "diagnoses": ", ".join(ctx.claim.diagnoses)}))


class LcdListsUnknown(_Coverage):
    """For the claim's jurisdiction and date, a governed code's article lists are not known (case
    ``unknown``), or no LCD is known to be in force (``no-lcd``: a date before the earliest known one)."""

    name = "lcd-lists-unknown"
    summary = "The contractor's LCD or its article's ICD-10-CM lists for a code are not known on the date of service."
    optional = (*_Coverage.base_optional, "list_status", "diagnosis", "group")
    variables = ("lines", "codes", "lcd", "article", "contractor", "jurisdiction", "state", "date", "list_status", "known_from")
    cases = ("unknown", "no-lcd")
    glossary = COVERAGE_GLOSSARY | {
        "unknown": "an LCD is in force, but its article's lists for the code are not known on the date",
        "no-lcd": "no LCD of the jurisdiction is known to be in force on the date (before the earliest date known)",
        "known_from": "the earliest date an LCD of the jurisdiction is known to be in force",
        "list_status": "how much of the article's lists is known (known-complete, partial-secondary, unknown)",
        "diagnosis": "a listed ICD-10-CM code, undotted (unbound when none is known)",
        "group": "the number of the covered group",
    }

    def check(self, ctx: Context, out: list[Finding]) -> None:
        jurisdiction = jurisdiction_of(ctx.claim)
        if jurisdiction is None:
            return
        no_lcd: list[Line] = []
        unknown: list[Line] = []
        unknown_entries: list[Entry] = []
        for line in ctx.lines:
            rows = self.table.get((jurisdiction, line.code))
            if rows is None:
                continue
            if not self.lcd_known(jurisdiction, line.code, ctx.dos):
                no_lcd.append(line)
                continue
            live = self.entries(jurisdiction, line.code, ctx.dos)
            if not any(e.row.get("diagnosis") for e in live):
                unknown.append(line)
                unknown_entries += [e for e in rows if e.lcd_from is not None and in_force(e.lcd_from, e.lcd_until, ctx.dos)]
        if no_lcd:
            rows = [e for ln in no_lcd for e in self.table[(jurisdiction, ln.code)]]
            known = min((e.lcd_from for e in rows if e.lcd_from is not None), default=None)
            out.append(
                self.finding(
                    ctx,
                    no_lcd,
                    [],
                    {"known_from": known.isoformat() if known else "", "lcd": either(sorted({e.lcd for e in rows}))},
                    case="no-lcd",
                )
            )
        if unknown:
            statuses = sorted({str(e.row.get("list_status") or "unknown") for e in unknown_entries})
            out.append(
                self.finding(
                    ctx, unknown, unknown_entries[:1], {"list_status": either(statuses), "known_from": ""}, case="unknown"
                )
            )


class LcdDiagnosisListed(_Coverage):
    """A line of a code the article governs needs a diagnosis it points to in one of the article's
    covered groups (``report: unlisted``). ``report: variant`` words the case where a pointed diagnosis
    is an unlisted ``variant`` (another seventh character) of a listed code: the subsequent-encounter
    codes where only the initial encounter and sequela are listed."""

    name = "lcd-diagnosis-listed"
    summary = "A line of an LCD-governed code points to no diagnosis that the article's covered groups list."
    optional = (*_Coverage.base_optional, "list_status", "diagnosis", "group", "variant")
    variables = (
        "lines", "codes", "lcd", "article", "contractor", "jurisdiction", "state", "date", "diagnoses", "listed",
        "example", "basis", "variants", "sources",
    )  # fmt: skip
    cases = ("default", "none")
    options = {"report": ("unlisted", "variant")}
    glossary = COVERAGE_GLOSSARY | {
        "diagnosis": "an ICD-10-CM code a covered group lists, undotted",
        "group": "the number of the covered group",
        "variant": "an ICD-10-CM code (undotted) of the same parent as a listed code that no group lists (the ICD-10-CM graph "
        "gives it; optional)",
        "list_status": "how much of the article's lists is known (known-complete, partial-secondary, unknown)",
        "diagnoses": "the diagnoses the lines point to",
        "listed": "the first listed diagnoses, and how many others",
        "example": "one listed diagnosis",
        "variants": "the pointed diagnoses that are unlisted variants of listed codes, and the listed ones",
        "none": "the lines point to no diagnosis (the claim gives none)",
        "report": "unlisted: no pointed diagnosis is listed; variant: a pointed diagnosis is an unlisted variant of a "
        "listed code",
    }

    def compile_rest(self, rows: list[Row]) -> None:
        self.report = self.option("report")

    def check(self, ctx: Context, out: list[Finding]) -> None:
        jurisdiction = jurisdiction_of(ctx.claim)
        if jurisdiction is None:
            return
        failing: list[Line] = []
        none: list[Line] = []
        used: list[Entry] = []
        listed: dict[str, None] = {}
        variants: dict[str, set[str]] = defaultdict(set)  # unlisted variant -> the listed codes it varies
        pointed_all: dict[str, None] = {}
        complete = True
        for line in ctx.lines:
            if (jurisdiction, line.code) not in self.table:
                continue
            live = [e for e in self.entries(jurisdiction, line.code, ctx.dos) if e.row.get("diagnosis")]
            if not live:
                continue  # the lists are not known: lcd-lists-unknown says so
            codes = {str(e.row["diagnosis"]).upper() for e in live}
            targets = pointed(ctx.claim, line)
            if any(undotted(d) in codes for d in targets):
                continue
            used += live
            listed.update(dict.fromkeys(sorted(codes)))
            complete = complete and all(str(e.row.get("list_status") or "") == COMPLETE for e in live)
            if not targets:
                none.append(line)
                continue
            failing.append(line)
            pointed_all.update(dict.fromkeys(targets))
            for e in live:
                if e.row.get("variant"):
                    variants[str(e.row["variant"]).upper()].add(str(e.row["diagnosis"]).upper())
        if not failing and not none:
            return
        if not complete:  # a partial list cannot show that a diagnosis is missing: at most secondary evidence
            used = [e._replace(status="secondary") if e.status == "verified" else e for e in used]
        basis = _basis(
            used,
            "the article's covered groups are complete and verified",
            "the article's groups are known only in part or from secondary sources",
        )
        shown = [_dotted(c) for c in listed]
        words = {"listed": some_of(shown, 8), "example": shown[0] if shown else "", "basis": basis, "variants": ""}
        if self.report == "variant":
            hits = {d: variants[undotted(d)] for d in pointed_all if undotted(d) in variants}
            lines = [ln for ln in failing if any(undotted(d) in variants for d in pointed(ctx.claim, ln))]
            if not hits:
                return
            words["variants"] = "; ".join(
                f"{d} (listed: {', '.join(_dotted(c) for c in sorted(codes))})" for d, codes in hits.items()
            )
            out.append(self.finding(ctx, lines, used, words | {"diagnoses": ", ".join(hits)}))
            return
        if failing:
            out.append(self.finding(ctx, failing, used, words | {"diagnoses": ", ".join(pointed_all)}))
        if none:
            out.append(self.finding(ctx, none, used, words | {"diagnoses": ""}, case="none"))


class LcdDualDiagnosis(_Coverage):
    """An asterisk diagnosis (``asterisk``) that a governed line points to supports medical necessity
    only when the claim also reports one of its ``companion`` diagnoses."""

    name = "lcd-dual-diagnosis"
    summary = "A line points to an asterisk diagnosis of the article without one of the diagnoses it must be reported with."
    columns = (*_Coverage.columns, "asterisk", "companion")
    optional = _Coverage.base_optional
    variables = ("lines", "codes", "lcd", "article", "contractor", "state", "date", "asterisks", "companions", "basis", "sources")
    glossary = COVERAGE_GLOSSARY | {
        "asterisk": "an ICD-10-CM code (undotted) marked with an asterisk",
        "companion": "an ICD-10-CM code (undotted) the claim must also report with it",
        "asterisks": "the asterisk diagnoses the lines point to",
        "companions": "the diagnoses of which the claim must report one",
    }

    def check(self, ctx: Context, out: list[Finding]) -> None:
        jurisdiction = jurisdiction_of(ctx.claim)
        if jurisdiction is None:
            return
        reported = {undotted(d) for d in ctx.claim.diagnoses}
        lines: list[Line] = []
        used: list[Entry] = []
        asterisks: dict[str, None] = {}
        companions: dict[str, None] = {}
        for line, live in self.governed(ctx, jurisdiction):
            targets = {undotted(d) for d in pointed(ctx.claim, line)}
            hits = [e for e in live if str(e.row["asterisk"]).upper() in targets]
            if not hits:
                continue
            needed = {str(e.row["companion"]).upper() for e in hits}
            if needed & reported:
                continue
            lines.append(line)
            used += hits
            asterisks.update(dict.fromkeys(sorted(_dotted(str(e.row["asterisk"])) for e in hits)))
            companions.update(dict.fromkeys(sorted(_dotted(c) for c in needed)))
        if lines:
            basis = _basis(
                used, "the article's asterisk rule is verified", "the asterisk rule is known only from secondary sources"
            )
            words = {"asterisks": ", ".join(asterisks), "companions": either(companions), "basis": basis}
            out.append(self.finding(ctx, lines, used, words))


class LcdLevelCount(_Coverage):
    """More vertebral levels in one session than the LCD's guideline (``max_levels``) accepts: levels
    named on the governed lines (else their units). A claim diagnosis in an ``exempt`` category lifts
    it (``report: exempt`` says so, ``report: over`` flags the rest)."""

    name = "lcd-level-count"
    summary = "More levels treated in one session than the LCD's relative contraindication allows (unless exempt)."
    columns = (*_Coverage.columns, "max_levels")
    optional = (*_Coverage.base_optional, "exempt", "rationale")
    variables = (
        "lines",
        "codes",
        "lcd",
        "contractor",
        "state",
        "date",
        "count",
        "max",
        "levels",
        "exempt",
        "rationale",
        "sources",
    )
    options = {"report": ("over", "exempt")}
    glossary = COVERAGE_GLOSSARY | {
        "max_levels": "the most levels the guideline accepts in one session",
        "exempt": "an ICD-10-CM category (undotted) whose codes exempt the claim (as a variable: the exempt diagnoses found)",
        "rationale": "the LCD's words, or ours",
        "count": "the levels (or units) counted",
        "max": "the guideline's maximum",
        "levels": "the levels named",
        "report": "over: the count is above the maximum and no exempt diagnosis is reported; exempt: it is, and one is",
    }

    def compile_rest(self, rows: list[Row]) -> None:
        self.report = self.option("report")

    def check(self, ctx: Context, out: list[Finding]) -> None:
        jurisdiction = jurisdiction_of(ctx.claim)
        if jurisdiction is None:
            return
        lines: list[Line] = []
        live_all: list[Entry] = []
        for line in ctx.lines:
            if (jurisdiction, line.code) in self.table:
                live = self.entries(jurisdiction, line.code, ctx.dos)
                if live:
                    lines.append(line)
                    live_all += live
        if not lines:
            return
        levels = list(dict.fromkeys(lv for ln in lines for lv in ln.levels))
        count = len(levels) if all(ln.levels for ln in lines) else sum(ln.units for ln in lines)
        maximum = min(int(e.row["max_levels"]) for e in live_all)
        if count <= maximum:
            return
        categories = {str(e.row["exempt"]).upper() for e in live_all if e.row.get("exempt")}
        diagnoses = dict.fromkeys(d for ln in lines for d in pointed(ctx.claim, ln))
        exempt = [d for d in diagnoses if any(undotted(d).startswith(c) for c in categories)]
        if bool(exempt) != (self.report == "exempt"):
            return
        rationale = " ".join(dict.fromkeys(str(e.row.get("rationale") or "") for e in live_all)).strip()
        words = {
            "count": count,
            "max": maximum,
            "levels": span(self.anatomy.ordered(levels)) if levels else "",
            "exempt": ", ".join(exempt),
            "rationale": rationale,
        }
        out.append(self.finding(ctx, lines, live_all, words))


class LcdCoveredLevels(_Coverage):
    """A governed line names a level outside the ``vertebra`` rows of the LCD in force."""

    name = "lcd-covered-levels"
    summary = "A line names a vertebral level outside the levels the LCD covers on the date of service."
    columns = (*_Coverage.columns, "vertebra")
    optional = _Coverage.base_optional
    variables = ("lines", "codes", "lcd", "contractor", "state", "date", "levels", "covered", "basis", "sources")
    glossary = COVERAGE_GLOSSARY | {
        "vertebra": "a level the LCD covers",
        "levels": "the levels named outside the range",
        "covered": "the covered range",
    }

    def check(self, ctx: Context, out: list[Finding]) -> None:
        jurisdiction = jurisdiction_of(ctx.claim)
        if jurisdiction is None:
            return
        lines: list[Line] = []
        used: list[Entry] = []
        outside: dict[str, None] = {}
        ranges: dict[str, None] = {}  # the covered ranges in force, as "T1 to L5"
        for line, live in self.governed(ctx, jurisdiction):
            if not line.levels:
                continue
            covered = {str(e.row["vertebra"]) for e in live}
            wrong = [lv for lv in line.levels if lv not in covered]
            if wrong:
                lines.append(line)
                used += live
                outside.update(dict.fromkeys(wrong))
                ordered = self.anatomy.ordered(covered)
                ranges[f"{ordered[0]} to {ordered[-1]}" if len(ordered) > 1 else ordered[0]] = None
        if lines:
            basis = _basis(used, "the covered range is verified", "the covered range is known only from secondary sources")
            words = {"levels": span(self.anatomy.ordered(outside)), "covered": either(ranges), "basis": basis}
            out.append(self.finding(ctx, lines, used, words))


class LcdDiagnosisFlag(_Coverage):
    """A governed line points to a diagnosis in a ``category`` the LCD names (a contraindication): for review."""

    name = "lcd-diagnosis-flag"
    summary = "A line points to a diagnosis the LCD names as a contraindication (flagged for review)."
    columns = (*_Coverage.columns, "category")
    optional = (*_Coverage.base_optional, "note")
    variables = ("lines", "codes", "lcd", "contractor", "state", "date", "diagnoses", "note", "sources")
    glossary = COVERAGE_GLOSSARY | {
        "category": "an ICD-10-CM category (undotted) the LCD names; every code under it matches",
        "note": "why the category is flagged",
        "diagnoses": "the pointed diagnoses that match",
    }

    def check(self, ctx: Context, out: list[Finding]) -> None:
        jurisdiction = jurisdiction_of(ctx.claim)
        if jurisdiction is None:
            return
        lines: list[Line] = []
        used: list[Entry] = []
        found: dict[str, None] = {}
        for line, live in self.governed(ctx, jurisdiction):
            hits = [
                (d, e) for d in pointed(ctx.claim, line) for e in live if undotted(d).startswith(str(e.row["category"]).upper())
            ]
            if hits:
                lines.append(line)
                used += [e for _, e in hits]
                found.update(dict.fromkeys(d for d, _ in hits))
        if lines:
            note = " ".join(dict.fromkeys(str(e.row.get("note") or "") for e in used)).strip()
            out.append(self.finding(ctx, lines, used, {"diagnoses": ", ".join(found), "note": note}))


def _basis(entries: list[Entry], verified: str, weaker: str) -> str:
    """How well the rows are established, in words; an unverified basis gets the engine's own note."""
    statuses = {e.status for e in entries}
    if statuses <= {"verified"}:
        return verified
    return weaker if "unverified" in statuses else weaker + ", so this is a warning, not an error"


def _dotted(code: str) -> str:
    """An undotted ICD-10-CM code with its dot after the third character (M8008XA -> M80.08XA)."""
    code = code.upper()
    return f"{code[:3]}.{code[3:]}" if len(code) > 3 else code


COVERAGE_KINDS: dict[str, type[Kind]] = {
    cls.name: cls
    for cls in (
        LcdNoState,
        LcdListsUnknown,
        LcdDiagnosisListed,
        LcdDualDiagnosis,
        LcdLevelCount,
        LcdCoveredLevels,
        LcdDiagnosisFlag,
    )
}
