"""The rule kinds that judge a claim's diagnoses: against the ICD-10-CM code set of the release in
force on the date of service (kg/icd10, read from the build's index, never from Python), against the
dates the code system applies to, and the lines that name no diagnosis pointer.

Their table is the code system's row in the ontology (``system``, ``valid_from``, ``deleted_on``,
``predecessor``, ``source``: ontology/icd10cm.ttl), so the date ICD-10-CM took effect is data; the
releases and their dates come with the code set (a build reads them from the same module). A kind knows
no diagnosis code: what is billable, what a header's children are and which spelling holds the
placeholder X are answers of the code set.

Output is linear in the claim: one finding per distinct diagnosis at most (at most 12 of them), or one
per claim; the "did you mean" probes of an unknown code are bounded (kg/icd10/store.py)."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import date, timedelta
from typing import Any

from spinekg.kg.claims.kinds import Context, Kind, Row, Shape, sources_of
from spinekg.kg.claims.model import Claim, Finding
from spinekg.kg.claims.parse import CLAIM_KEYS, LINE_KEYS
from spinekg.kg.facts.codes import as_date, in_force
from spinekg.kg.text import either

MAX_EXAMPLES = 3  # billable codes under a header named in a finding
MAX_UNKNOWN_HINTS = 4  # distinct unknown diagnoses of a claim that get a "did you mean" (each up to 252 index probes)

DIAGNOSIS_GLOSSARY = {
    "system": "a diagnosis code system by its notation (ICD-10-CM); as a variable, the one the claim's diagnoses are judged in",
    "valid_from": "the first date of service the code system applies to (ICD-10-CM: 2015-10-01)",
    "deleted_on": "the first date of service it no longer applies to (none while it is current)",
    "predecessor": "the code system reported before it (ICD-9-CM)",
    "diagnosis": "a diagnosis of the claim, dotted (M80.08XA)",
    "position": "its 1-based position in the claim's diagnoses (what a line's diagnosis_pointers name)",
    "lines": "the claim lines the finding is about, as 'line 1' or 'lines 1 and 2'",
    "release": "the ICD-10-CM release in force on the date of service (as a variable: its label)",
    "releases": "the loaded releases and the dates each is in force",
    "dos": "the claim's date of service",
    "date": "the date the code system took effect (or ceased to apply)",
    "codes": "the claim's diagnoses",
}


def all_of(items: Iterable[str]) -> str:
    """ "A", "A and B", "A, B and C" (duplicates dropped, order kept)."""
    values = list(dict.fromkeys(items))
    return values[0] if len(values) == 1 else ", ".join(values[:-1]) + " and " + values[-1] if values else ""


def line_words(indexes: Iterable[int]) -> str:
    """ "line 2", "lines 1 and 2": at most 50 lines (a claim's limit) are named."""
    found = [str(i) for i in indexes]
    return f"line {found[0]}" if len(found) == 1 else f"lines {all_of(found)}"


def listed(values: Iterable[str], shown: int = 5) -> str:
    """The claim's diagnoses as "A, B and C" (the first ``shown`` and how many others)."""
    ordered = list(dict.fromkeys(values))
    if len(ordered) > shown + 1:
        return f"{', '.join(ordered[:shown])} and {len(ordered) - shown} others"
    return all_of(ordered)


def pointing_lines(claim: Claim, position: int) -> tuple[int, ...]:
    """The lines that point to the diagnosis at a 1-based position (a line without pointers points to
    all); every line when none does, so that a finding always names lines."""
    found = tuple(ln.index for ln in claim.lines if not ln.diagnosis_pointers or position in ln.diagnosis_pointers)
    return found or tuple(ln.index for ln in claim.lines)


class _CodeSystem(Kind):
    """Base: the table is the row of the code system the loaded code set belongs to."""

    by_day = True
    uses_icd10 = True
    columns = ("system", "valid_from")
    optional = ("deleted_on", "predecessor", "source")
    glossary = DIAGNOSIS_GLOSSARY

    def compile(self, rows: list[Row]) -> None:
        systems = {str(r["system"]) for r in rows}
        if len(systems) != 1:
            raise ValueError(f"the table names {len(systems)} code systems; it names the one whose code set is loaded")
        row = rows[0]
        self.system = str(row["system"])
        self.valid_from = as_date(row["valid_from"])
        self.deleted_on = as_date(row.get("deleted_on"))
        self.predecessor = str(row.get("predecessor") or "")
        self.sources = sources_of(rows)

    def applies_on(self, day: date) -> bool:
        """Whether the code system applies to a date of service."""
        return in_force(self.valid_from, self.deleted_on, day)

    def dates(self) -> Iterable[date]:
        found = [d for d in (self.valid_from, self.deleted_on) if d is not None]
        for release in self.icd10.releases if self.icd10 is not None else ():
            found.append(release.effective)
            if release.until is not None:
                found.append(release.until + timedelta(days=1))
        return found

    def released(self) -> str:
        if self.icd10 is None:
            return "none"
        return either(
            f"{r.label} ({r.effective.isoformat()} to {r.until.isoformat() if r.until else 'now'})" for r in self.icd10.releases
        )


class DiagnosisCodeSet(_CodeSystem):
    """Each diagnosis of the claim must be a code valid for submission in the release in force on the
    date of service: not a header that has subdivisions, not a seventh character without its placeholder
    X, not a code the release does not hold."""

    name = "diagnosis-code-set"
    summary = "A diagnosis of the claim is not a code valid for submission in the release in force on the date of service."
    variables = (
        "diagnosis",
        "position",
        "lines",
        "title",
        "children",
        "examples",
        "suggestion",
        "closest",
        "release",
        "dos",
        "system",
    )
    cases = ("header", "placeholder", "closest", "unknown")
    glossary = DIAGNOSIS_GLOSSARY | {
        "title": "the official title of the code (header)",
        "children": "how many subdivisions the header has",
        "examples": "the first billable codes under the header, as 'A, B or C'",
        "suggestion": "the code the claim most likely means: the header's first billable code, or the spelling with the "
        "placeholder X",
        "closest": "codes of the release one character away from an unknown code",
        "header": "the code is a header (a category or subcategory with subdivisions), not valid for submission",
        "placeholder": "a seventh character written without its placeholder X (M8008A for M80.08XA)",
        "unknown": "the release holds no such code",
    }

    @property
    def active(self) -> bool:
        return self.icd10 is not None

    @property
    def any_code(self) -> bool:
        return True  # the diagnoses, not the line codes, decide

    def relevant(self, shape: Shape) -> bool:
        return self.icd10 is not None and self.applies_on(shape.day) and self.icd10.release_on(shape.day) is not None

    def check(self, ctx: Context, out: list[Finding]) -> None:
        claim = ctx.claim
        if not claim.diagnoses or self.icd10 is None:
            return
        release = self.icd10.release_on(ctx.dos)
        if release is None or not self.applies_on(ctx.dos):
            return
        hints = 0
        seen: set[str] = set()
        for position, code in enumerate(claim.diagnoses, start=1):
            if code in seen:
                continue
            seen.add(code)
            found = self.icd10.lookup(code, on=ctx.dos)
            if found is not None and found.billable:
                continue
            variables: dict[str, Any] = {
                "diagnosis": code,
                "position": position,
                "title": "",
                "children": 0,
                "examples": "",
                "suggestion": "",
                "closest": "",
                "release": release.label,
                "dos": ctx.dos.isoformat(),
                "system": self.system,
            }
            if found is not None:  # a header
                examples = self.icd10.nearest_billable(code, MAX_EXAMPLES)
                variables |= {
                    "title": found.title,
                    "children": found.children,
                    "examples": either(examples),
                    "suggestion": examples[0] if examples else "",
                }
                case = "header"
            elif (padded := self.icd10.placeholder_form(code)) is not None:
                variables["suggestion"] = padded
                case = "placeholder"
            else:
                close = self.icd10.one_edit_codes(code) if hints < MAX_UNKNOWN_HINTS else ()
                hints += 1
                variables |= {"closest": either(close), "suggestion": close[0] if len(close) == 1 else ""}
                case = "closest" if close else "unknown"
            lines = pointing_lines(claim, position)
            variables["lines"] = line_words(lines)
            out.append(self.rule.finding(lines, variables, case=case, sources=self.sources))


class DiagnosisReleaseMissing(_CodeSystem):
    """The code system applies on the date of service, but the release in force then is not loaded: the
    diagnoses were checked for their shape only. Never a silent pass."""

    name = "diagnosis-release-missing"
    summary = "The claim's diagnoses cannot be judged: the code-set release in force on the date of service is not loaded."
    variables = ("codes", "lines", "dos", "releases", "system")

    def relevant(self, shape: Shape) -> bool:
        return self.applies_on(shape.day) and (self.icd10 is None or self.icd10.release_on(shape.day) is None)

    @property
    def any_code(self) -> bool:
        return True

    def check(self, ctx: Context, out: list[Finding]) -> None:
        claim = ctx.claim
        if not claim.diagnoses or not self.applies_on(ctx.dos):
            return
        if self.icd10 is not None and self.icd10.release_on(ctx.dos) is not None:
            return
        lines = tuple(ln.index for ln in claim.lines)
        variables = {
            "codes": listed(claim.diagnoses),
            "lines": line_words(lines),
            "dos": ctx.dos.isoformat(),
            "releases": self.released(),
            "system": self.system,
        }
        out.append(self.rule.finding(lines, variables, sources=self.sources))


class DiagnosisSystemWindow(_CodeSystem):
    """The claim reports diagnoses for a date of service the code system does not apply to (before
    ICD-10-CM took effect, its predecessor applied)."""

    name = "diagnosis-system-window"
    summary = "The claim reports diagnoses in a code system that does not apply on its date of service."
    variables = ("codes", "lines", "dos", "date", "system", "predecessor")
    cases = ("before", "after")
    glossary = DIAGNOSIS_GLOSSARY | {
        "before": "the date of service is before the code system took effect",
        "after": "the date of service is on or after the code system ceased to apply",
    }

    def relevant(self, shape: Shape) -> bool:
        return not self.applies_on(shape.day)

    @property
    def any_code(self) -> bool:
        return True

    def check(self, ctx: Context, out: list[Finding]) -> None:
        claim = ctx.claim
        if not claim.diagnoses or self.applies_on(ctx.dos):
            return
        before = self.valid_from is not None and ctx.dos < self.valid_from
        boundary = self.valid_from if before else self.deleted_on
        lines = tuple(ln.index for ln in claim.lines)
        variables = {
            "codes": listed(claim.diagnoses),
            "lines": line_words(lines),
            "dos": ctx.dos.isoformat(),
            "date": boundary.isoformat() if boundary else "",
            "system": self.system,
            "predecessor": self.predecessor or "the code system then in force",
        }
        out.append(self.rule.finding(lines, variables, case="before" if before else "after", sources=self.sources))


class LineFieldDefaulted(Kind):
    """A line leaves out a field (``field``, such as diagnosis_pointers) whose default is every item of a
    claim field (``default_from``, such as diagnoses): say what the line was taken to mean."""

    name = "line-field-defaulted"
    summary = (
        "A line leaves out a field that then defaults to every item of a claim field "
        "(a line without pointers points to every diagnosis)."
    )
    columns = ("field", "default_from")
    variables = ("field", "default_from", "values", "lines", "line")
    glossary = {
        "field": "a line field (diagnosis_pointers)",
        "default_from": "the claim field whose items the line field then names: all of them (diagnoses)",
        "values": "the claim field's items",
        "lines": "the lines that leave the field out, as 'line 1' or 'lines 1 and 2'",
    }

    def compile(self, rows: list[Row]) -> None:
        self.pairs = tuple(dict.fromkeys((str(r["field"]), str(r["default_from"])) for r in rows))
        for line_field, claim_field in self.pairs:
            if line_field not in LINE_KEYS or claim_field not in CLAIM_KEYS:
                raise ValueError(
                    f"{line_field!r} must be a line field ({', '.join(LINE_KEYS)}) and {claim_field!r} "
                    f"a claim field ({', '.join(CLAIM_KEYS)})"
                )

    @property
    def any_code(self) -> bool:
        return True

    def relevant(self, shape: Shape) -> bool:
        return bool(self.pairs)

    def check(self, ctx: Context, out: list[Finding]) -> None:
        claim = ctx.claim
        for line_field, claim_field in self.pairs:
            values = getattr(claim, claim_field, ())
            if not values:
                continue
            lines = tuple(ln.index for ln in claim.lines if not getattr(ln, line_field))
            if not lines:
                continue
            variables = {
                "field": line_field,
                "default_from": claim_field,
                "values": listed(str(v) for v in values),
                "lines": line_words(lines),
                "line": lines[0],
            }
            out.append(self.rule.finding(lines, variables))


DIAGNOSIS_KINDS: dict[str, type[Kind]] = {
    cls.name: cls for cls in (DiagnosisCodeSet, DiagnosisReleaseMissing, DiagnosisSystemWindow, LineFieldDefaulted)
}
