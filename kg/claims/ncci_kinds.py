"""The rule kinds that read CMS's NCCI tables from the imported store (kg/ncci) rather than from the
graph: procedure-to-procedure pairs (PTP), medically unlikely edits (MUE) and add-on code edits (AOC),
for every code of a claim, as of its date of service and in the table of its claim type. They are the
exclusive-pair, unit-limit and requires-partner edits of kinds.py, with CMS's millions of rows looked
up per claim (a binary search each) instead of compiled into memory.

The rule file's own (small) table says what the NCCI tables do not: which store table a claim type
reads (``claim_type`` -> ``setting``), which modifiers bypass a PTP edit of indicator 1 (``bypass``),
which add-on edit types a rule judges (``edit_type``). A store without the table a rule reads leaves the
rule inactive (it is listed so; spinekg import ncci imports the tables). Our family's level-aware rules
supersede these where they say more (same level, another level, one primary per family)."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from datetime import date
from functools import partial
from typing import Any

from spinekg.kg.cache import remember
from spinekg.kg.claims.kinds import MEMO_LIMIT, Context, Kind, Row, Shape, UnitLimit, sources_of, span
from spinekg.kg.claims.model import Finding, Line, Repair
from spinekg.kg.ncci.family import FamilyPtp
from spinekg.kg.ncci.store import Mue, NcciStore, PtpEdit
from spinekg.kg.text import either, some_of

NCCI_GLOSSARY = {
    "claim_type": "a claim type (professional, outpatient): the claim's claim_type field",
    "setting": "the table that claim type reads: practitioner or outpatient (PTP), practitioner, outpatient or dme (MUE)",
    "release": "the NCCI release the row comes from",
    "rationale": "CMS's rationale for the edit",
}


class _Ncci(Kind):
    """Base: the claim type -> store table mapping, and the store kinds a rule needs."""

    store_prefix = ""  # "ptp-" or "mue-": the store kinds are <prefix><setting>
    uses_ncci = True

    def compile(self, rows: list[Row]) -> None:
        self.setting = {str(r["claim_type"]): str(r["setting"]) for r in rows if r.get("claim_type")}
        self.sources = sources_of(rows)
        self.compile_rest(rows)

    def compile_rest(self, rows: list[Row]) -> None:
        pass

    @property
    def active(self) -> bool:
        return self.ncci is not None and any(self.ncci.has(self.store_prefix + s) for s in set(self.setting.values()))

    def setting_of(self, ctx: Context) -> str | None:
        setting = self.setting.get(ctx.claim.claim_type)
        if setting is None or self.ncci is None or not self.ncci.has(self.store_prefix + setting):
            return None
        return setting


class NcciPair(_Ncci):
    """CMS's PTP edits between the claim's codes: Column 2 is not paid with Column 1 on the same date of
    service; with modifier indicator 1 it is, when each of its lines carries a ``bypass`` modifier."""

    name = "ncci-pair"
    summary = "Two codes of the claim form an NCCI procedure-to-procedure edit in force on the date of service."
    columns = ("claim_type", "setting")
    optional = (
        "bypass",
        "source",
        "ptp_column1",
        "ptp_column2",
        "ptp_indicator",
        "ptp_rationale",
        "ptp_release",
        "ptp_setting",
        "ptp_from",
        "ptp_until",
    )
    variables = ("column2", "column1", "rationale", "release", "bypass", "line")
    cases = ("never", "modifier")
    repairs = ("remove-column2",)
    store_prefix = "ptp-"
    glossary = NCCI_GLOSSARY | {
        "bypass": "an NCCI-associated modifier: on every line of the Column 2 code it allows an edit of indicator 1",
        "column2": "the code not paid (CMS's Column 2)",
        "column1": "the codes it is edited against (Column 1)",
        "never": "modifier indicator 0: never paid together",
        "modifier": "modifier indicator 1: paid together only with a modifier that shows distinct services",
        "remove-column2": "remove the Column 2 lines (indicator 0 only: with indicator 1 only the note can tell)",
        "ptp_column1": "a PTP row of the graph (the module generated from CMS's table for our codes): its Column 1 code",
        "ptp_column2": "that row's Column 2 code",
        "ptp_indicator": "that row's modifier indicator",
        "ptp_rationale": "that row's rationale",
        "ptp_release": "the release that row was generated from",
        "ptp_setting": "that row's table: practitioner or outpatient",
        "ptp_from": "the first day that row is in force, when the table gives it",
        "ptp_until": "the first day that row is no longer in force (the day after CMS's deletion date)",
    }

    def compile_rest(self, rows: list[Row]) -> None:
        self.bypass = frozenset(str(r["bypass"]) for r in rows if r.get("bypass"))
        # The graph's PTP rows (our codes, generated from CMS's table): the table when none is imported.
        self.family = FamilyPtp(rows)

    @property
    def active(self) -> bool:
        return bool(self.family) or super().active

    def table_of(self, ctx: Context) -> tuple[str, NcciStore | FamilyPtp] | None:
        """The claim type's table: the imported release, else the graph's rows for our codes."""
        setting = self.setting.get(ctx.claim.claim_type)
        if setting is None:
            return None
        if self.ncci is not None and self.ncci.has(self.store_prefix + setting):
            return setting, self.ncci
        return (setting, self.family) if self.family.has(setting) else None

    def relevant(self, shape: Shape) -> bool:
        if len(shape.codes) < 2:
            return False
        if self.ncci is not None and any(self.ncci.has(self.store_prefix + s) for s in set(self.setting.values())):
            return True
        return len(shape.codes & self.family.codes) > 1

    def check(self, ctx: Context, out: list[Finding]) -> None:
        found_table = self.table_of(ctx)
        if found_table is None or len(ctx.by_code) < 2:
            return
        setting, table = found_table
        edits: dict[str, list[PtpEdit]] = defaultdict(list)  # Column 2 code -> its edits with the claim's codes
        for edit in table.ptp_among(list(ctx.by_code), ctx.dos, setting):
            if edit.modifier_indicator in (0, 1):
                edits[edit.column2].append(edit)
        for column2, found in edits.items():
            never = [e for e in found if e.modifier_indicator == 0]
            lines = ctx.by_code[column2]
            if not never:
                lines = [ln for ln in lines if self.bypass.isdisjoint(ln.modifiers)]
                if not lines:
                    continue  # every line shows a distinct service
            chosen = never or found
            firsts = [ctx.by_code[e.column1][0].index for e in chosen]
            repairs = tuple(Repair("remove-line", ln.index) for ln in lines) if never else ()
            out.append(
                self.rule.finding(
                    tuple(dict.fromkeys((*(ln.index for ln in lines), *firsts))),
                    partial(self._words, column2, chosen, lines[0].index),
                    case="never" if never else "modifier",
                    sources=self.sources,
                    repairs=self.repair(*repairs),
                )
            )

    def _words(self, column2: str, edits: list[PtpEdit], line: int) -> dict[str, Any]:
        return {
            "column2": column2,
            "column1": either(sorted({e.column1 for e in edits})),
            "rationale": "; ".join(dict.fromkeys(e.rationale for e in edits)),
            "release": either(sorted({e.release for e in edits})),
            "bypass": either(sorted(self.bypass)),
            "line": line,
        }


class NcciUnits(_Ncci):
    """CMS's MUEs for every code of the claim: MAI 1 compares each line, MAI 2 and 3 the units summed
    over the date of service; more units than the value are an error for all three."""

    name = "ncci-units"
    summary = "More units of a code than CMS's medically unlikely edit allows (per line for MAI 1, per date for MAI 2 and 3)."
    columns = ("claim_type", "setting")
    optional = ("source",)
    variables = ("code", "units", "max", "mai", "mai_text", "rationale", "release", "line")
    cases = ("per-line", "policy", "clinical")
    repairs = ("keep-the-limit",)
    store_prefix = "mue-"
    glossary = NCCI_GLOSSARY | {
        "units": "the units billed (on the line for MAI 1, on the date for 2 and 3)",
        "max": "the MUE value",
        "mai": "the MUE adjudication indicator: 1 per line, 2 per date (policy), 3 per date (clinical)",
        "mai_text": "CMS's wording of the indicator",
        "per-line": "MAI 1: a claim line edit",
        "policy": "MAI 2: a date-of-service edit based on policy (more units cannot be right)",
        "clinical": "MAI 3: a date-of-service edit based on clinical data (appealable with documentation)",
        "keep-the-limit": "under a policy limit (MAI 2), keep the MUE's units and drop the rest",
    }

    def compile_rest(self, rows: list[Row]) -> None:
        self._seen: dict[tuple[str, date, str], Mue | None] = {}  # claims repeat codes and dates (bounded)

    def relevant(self, shape: Shape) -> bool:
        return self.active

    def _mue(self, code: str, on: date, setting: str) -> Mue | None:
        key = (code, on, setting)
        if key in self._seen:
            return self._seen[key]
        assert self.ncci is not None
        return remember(self._seen, key, self.ncci.mue(code, on, setting), MEMO_LIMIT)

    def check(self, ctx: Context, out: list[Finding]) -> None:
        setting = self.setting_of(ctx)
        if setting is None or self.ncci is None:
            return
        for code, total in ctx.units.items():
            limit = self._mue(code, ctx.dos, setting)
            if limit is None or total <= limit.value:
                continue  # the date's units are at least any one line's
            lines = ctx.by_code[code]
            over = [ln for ln in lines if ln.units > limit.value] if limit.mai == 1 else lines
            if not over:
                continue
            units = max(ln.units for ln in over) if limit.mai == 1 else total
            case = {1: "per-line", 2: "policy"}.get(limit.mai, "clinical")
            repairs = UnitLimit._split(over, limit.value, None, limit.mai)
            out.append(
                self.rule.finding(
                    tuple(ln.index for ln in over),
                    partial(self._words, limit, units, over[0]),
                    case=case,
                    sources=self.sources,
                    repairs=self.repair(*repairs),
                )
            )

    @staticmethod
    def _words(limit: Mue, units: int, line: Line) -> dict[str, Any]:
        return {
            "code": limit.code,
            "units": units,
            "max": limit.value,
            "mai": limit.mai,
            "mai_text": limit.mai_text,
            "rationale": limit.rationale,
            "release": limit.release,
            "line": line.index,
        }


class NcciAddon(_Ncci):
    """CMS's add-on code edits for every add-on of the claim: the rule judges the edit types its table
    lists (``edit_type``: 1, only the listed primaries; 2, the contractor defines them; 3, listed, and
    the contractor may allow others). It fires when none of the add-on's listed primaries is on the claim."""

    name = "ncci-addon"
    summary = "An add-on code of CMS's add-on code edits is billed without any of its listed primary codes."
    columns = ("edit_type",)
    optional = ("source",)
    variables = ("code", "primaries", "primary_count", "some_primaries", "edit_types", "release", "line")
    repairs = ("remove-line",)
    glossary = NCCI_GLOSSARY | {
        "edit_type": "an AOC edit type the rule judges: 1 only the listed primaries, 2 contractor-defined, 3 listed and others",
        "primaries": "the listed primaries, as 'A, B or C'",
        "primary_count": "how many primaries are listed",
        "some_primaries": "the first five primaries and how many others",
        "edit_types": "the edit types of the add-on's edits",
    }

    def compile(self, rows: list[Row]) -> None:
        self.edit_types = frozenset(int(r["edit_type"]) for r in rows)
        self.sources = sources_of(rows)
        # (add-on, date) -> (its primaries, edit types, release), or None: claims repeat codes and dates,
        # and an add-on with many primaries is many rows to read (bounded: codes and dates come from input)
        self._seen: dict[tuple[str, date], tuple[frozenset[str], tuple[int, ...], str] | None] = {}

    def _edits(self, code: str, on: date) -> tuple[frozenset[str], tuple[int, ...], str] | None:
        key = (code, on)
        if key in self._seen:
            return self._seen[key]
        assert self.ncci is not None
        found = self.ncci.aoc_primaries(code, on)
        answer = None if found is None else (frozenset(found.primaries), found.edit_types, found.release)
        return remember(self._seen, key, answer, MEMO_LIMIT)

    @property
    def active(self) -> bool:
        return self.ncci is not None and self.ncci.has("aoc")

    def relevant(self, shape: Shape) -> bool:
        return self.ncci is not None and self.ncci.has("aoc")

    def check(self, ctx: Context, out: list[Finding]) -> None:
        if self.ncci is None or not self.ncci.has("aoc"):
            return
        for code, lines in ctx.by_code.items():
            found = self._edits(code, ctx.dos)
            if found is None or not self.edit_types.issuperset(found[1]):
                continue  # not an add-on on that date, or one this rule does not judge
            primaries, edit_types, release = found
            if not ctx.codes.isdisjoint(primaries):
                continue
            words = partial(self._words, code, primaries, edit_types, release)
            for line in lines:
                repair = Repair("remove-line", line.index)
                out.append(
                    self.rule.finding(
                        (line.index,), partial(_with_line, words, line.index), sources=self.sources, repairs=self.repair(repair)
                    )
                )

    def _words(self, code: str, primaries: Iterable[str], edit_types: Iterable[int], release: str) -> dict[str, Any]:
        ordered = sorted(set(primaries))
        return {
            "code": code,
            "primaries": either(ordered),
            "primary_count": len(ordered),
            "some_primaries": some_of(ordered) or "none listed",
            "edit_types": span(str(t) for t in edit_types),
            "release": release,
        }


def _with_line(words: partial[dict[str, Any]], line: int) -> dict[str, Any]:
    return words() | {"line": line}


NCCI_KINDS: dict[str, type[Kind]] = {cls.name: cls for cls in (NcciPair, NcciUnits, NcciAddon)}
