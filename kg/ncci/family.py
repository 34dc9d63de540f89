"""Our family's PTP edits, generated from an imported NCCI release into an ontology module.

``spinekg ncci family-module`` reads the newest imported PTP release of each setting (or the one named)
and writes every row in which a code of a family marked ``skg:ptpEditsGenerated`` is Column 1 or
Column 2 (the named query ``ncci-generated-codes`` says which codes those are) as an
``skg:NcciPtpEdit``: both codes by notation, the modifier indicator, CMS's rationale, the last day in
force (``skg:deletedOn`` is the day after CMS's deletion date), the release and the table it comes from.
Deleted rows are kept, so a claim of 2014 is judged by the edits of 2014. The module names its release
in its version IRI and cites the table's source (``--source``), so the ontology's edits of our codes are
CMS's, not typed by hand; rerun it for a new quarter and review the diff.

The other code of a pair is written by notation only (as ``skg:AddOnCodeEdit`` lists primaries), so the
module declares no individual for the few hundred codes our codes are edited against.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from pathlib import Path

from spinekg.kg.errors import InputError
from spinekg.kg.ncci.layouts import PTP_KINDS
from spinekg.kg.ncci.store import NcciStore, PtpEdit, ReleaseInfo, _kind, _ptp_edit
from spinekg.kg.ncci.values import code_number

MODULE_IRI = "https://w3id.org/spinekg/ontology/edits/ncci-ptp"
EDIT_BASE = "https://w3id.org/spinekg/edit/ncci-ptp/"
SOURCE_BASE = "https://w3id.org/spinekg/source/"
IMPORTS = ("https://w3id.org/spinekg/ontology/vocab", "https://w3id.org/spinekg/ontology/sources")
_ESCAPES = {"\\": "\\\\", '"': '\\"', "\n": "\\n", "\r": "\\r", "\t": "\\t"}


@dataclass(frozen=True)
class FamilyTable:
    """The rows of one setting's release that touch our codes."""

    info: ReleaseInfo
    setting: str
    edits: list[PtpEdit]


def family_edits(store: NcciStore, codes: Iterable[str], setting: str, release: str | None = None) -> FamilyTable:
    """Every row of the release (newest unless named) with one of ``codes`` in Column 1 or Column 2."""
    kind = _kind(PTP_KINDS, setting, "setting")
    imported = store.releases(kind)
    info = store.release(kind, release=release) if release else (imported[-1] if imported else None)
    if info is None:
        raise InputError("setting", f"no {kind} release is imported: run spinekg import ncci FILE first")
    numbers = {n for n in (code_number(c) for c in codes) if n is not None}
    table = store.table(info)
    keys = table.columns["key"]
    rows: list[int] = []
    for column1 in sorted(numbers):  # rows of a Column 1 code are contiguous: one range each
        start, end = table.span(column1 << 32, (column1 + 1) << 32)
        rows.extend(range(start, end))
    low = 0xFFFFFFFF
    rows.extend(i for i, key in enumerate(keys) if (key & low) in numbers and (key >> 32) not in numbers)
    rows.sort()
    return FamilyTable(info, setting, [_ptp_edit(table, i, setting) for i in rows])


def _text(value: str) -> str:
    return '"' + "".join(_ESCAPES.get(ch, ch) for ch in value) + '"'


def _date_time(day: date) -> str:
    return f'"{day.isoformat()}T00:00:00"^^xsd:dateTime'


def _edit_iri(edit: PtpEdit, n: int) -> str:
    return f"<{EDIT_BASE}{edit.setting}/{edit.column1}-{edit.column2}" + (f"-{n}" if n else "") + ">"


def _statements(table: FamilyTable, source: str) -> Iterator[str]:
    seen: dict[tuple[str, str], int] = {}
    for edit in table.edits:
        n = seen[(edit.column1, edit.column2)] = seen.get((edit.column1, edit.column2), -1) + 1
        until = f"until {edit.deletion.isoformat()}" if edit.deletion else "open"
        label = f"NCCI PTP edit {edit.column1} / {edit.column2} ({edit.setting}, indicator {edit.modifier_indicator}, {until})"
        parts = [
            f"{_edit_iri(edit, n)} a owl:NamedIndividual, skg:NcciPtpEdit ;",
            f"    rdfs:label {_text(label)}@en ;",
            f"    skg:ptpColumn1 {_text(edit.column1)} ; skg:ptpColumn2 {_text(edit.column2)} ;",
            f"    skg:ncciModifierIndicator {_text(str(edit.modifier_indicator))} ; skg:ncciRationale {_text(edit.rationale)} ;",
        ]
        if edit.effective is not None:
            parts.append(f"    skg:validFrom {_date_time(edit.effective)} ;")
        if edit.deletion is not None:
            parts.append(f"    skg:deletedOn {_date_time(edit.deletion + timedelta(days=1))} ;")
        parts += [
            f"    skg:ncciRelease {_text(edit.release)} ; skg:ncciSetting {_text(edit.setting)} ;",
            f"    skg:evidenceStatus skg:Verified ; dcterms:source src:{source} ;",
            f"    skg:effectiveYear {table.info.effective.year} .",
        ]
        yield "\n".join(parts)


def render_module(tables: list[FamilyTable], sources: dict[str, str], codes: Iterable[str], version: str) -> str:
    """The Turtle text of the module (deterministic: the same tables give the same bytes)."""
    releases = ", ".join(f"{t.info.release} ({t.setting}, in force from {t.info.effective.isoformat()})" for t in tables)
    counts = ", ".join(f"{len(t.edits)} {t.setting} rows" for t in tables)
    description = (
        f"CMS's NCCI procedure-to-procedure edits in which one of {', '.join(sorted(codes))} is Column 1 or Column 2, "
        f"generated by spinekg ncci family-module from release {releases}: {counts}, deleted rows included. "
        "Column 2 is not paid with Column 1 on one date of service; modifier indicator 0: never, 1: only with a modifier "
        "that shows a distinct service, 9: not applicable. "
        + (
            "The tables read carry no effective dates, so when an edit began is not known: an edit is taken to apply from the "
            "first date both codes existed until its deletion date. "
            if any(e.effective is None for t in tables for e in t.edits)
            else ""
        )
        + "Do not edit by hand: import a newer release and generate the module again."
    )
    head = [
        "# Generated by `spinekg ncci family-module`; do not edit by hand.",
        "@prefix skg:     <https://w3id.org/spinekg/vocab/> .",
        f"@prefix src:     <{SOURCE_BASE}> .",
        "@prefix owl:     <http://www.w3.org/2002/07/owl#> .",
        "@prefix rdfs:    <http://www.w3.org/2000/01/rdf-schema#> .",
        "@prefix xsd:     <http://www.w3.org/2001/XMLSchema#> .",
        "@prefix dcterms: <http://purl.org/dc/terms/> .",
        "",
        f"<{MODULE_IRI}>",
        "    a owl:Ontology ;",
        f"    owl:versionIRI <{MODULE_IRI}/releases/{version}> ;",
        "    owl:imports " + ", ".join(f"<{iri}>" for iri in IMPORTS) + " ;",
        '    rdfs:label "spinekg NCCI PTP edits of our codes"@en ;',
        f"    dcterms:description {_text(description)}@en ;",
        "    dcterms:source " + ", ".join(f"src:{s}" for s in sorted(set(sources.values()))) + " .",
        "",
    ]
    body = [statement + "\n" for table in tables for statement in _statements(table, sources[table.setting])]
    return "\n".join(head) + "\n" + "\n".join(body)


def write_module(path: Path, text: str) -> None:
    """Write atomically: a failed run never leaves half a module where the build reads it."""
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text, encoding="utf-8")
    tmp.replace(path)


class FamilyPtp:
    """The generated module's PTP rows, read back from the graph (the rows of the ``ncci-ptp-edit`` rule's
    query, or of the ``ncci-edits`` named query), answering as the imported store does for the pairs it
    holds. Used when no PTP release is imported: the module is the table for our codes."""

    def __init__(self, rows: Iterable[dict[str, object]], ours: Iterable[str] = ()) -> None:
        self._pairs: dict[tuple[str, str, str], list[PtpEdit]] = {}
        self.ours = frozenset(ours)  # the codes whose rows are all here (both columns)
        self.codes: set[str] = set()
        self.settings: set[str] = set()
        for r in rows:
            if not r.get("ptp_column1"):
                continue
            until = _as_day(r.get("ptp_until"))
            edit = PtpEdit(
                str(r["ptp_column1"]),
                str(r["ptp_column2"]),
                int(str(r["ptp_indicator"])),
                str(r.get("ptp_rationale") or ""),
                _as_day(r.get("ptp_from")),
                until - timedelta(days=1) if until else None,  # deletedOn is the first day no longer in force
                None,
                str(r.get("ptp_release") or ""),
                str(r["ptp_setting"]),
            )
            self._pairs.setdefault((edit.setting, edit.column1, edit.column2), []).append(edit)
            self.codes.update((edit.column1, edit.column2))
            self.settings.add(edit.setting)

    def __bool__(self) -> bool:
        return bool(self._pairs)

    def has(self, setting: str) -> bool:
        return setting in self.settings

    def in_force(self, setting: str, column1: str, column2: str, on: date) -> PtpEdit | None:
        """The pair's row in force on ``on`` (a withdrawn, indicator 9, row only when no other is)."""
        best: PtpEdit | None = None
        for edit in self._pairs.get((setting, column1, column2), ()):
            if (edit.effective is None or edit.effective <= on) and (edit.deletion is None or on <= edit.deletion):
                rank = (edit.modifier_indicator != 9, edit.effective or date.min)
                if best is None or rank > (best.modifier_indicator != 9, best.effective or date.min):
                    best = edit
        return best

    def column2_of(self, code: str, on: date, setting: str = "practitioner") -> list[PtpEdit]:
        """As NcciStore.column2_of: the edits in force with ``code`` in Column 1."""
        pairs = sorted(k for k in self._pairs if k[0] == setting and k[1] == code)
        return [e for e in (self.in_force(*k, on) for k in pairs) if e is not None]

    def ptp_between(self, code_a: str, code_b: str, on: date, setting: str = "practitioner") -> list[PtpEdit]:
        """As NcciStore.ptp_between: the edits in force between two codes, either column order."""
        found = (self.in_force(setting, code_a, code_b, on), self.in_force(setting, code_b, code_a, on))
        return [e for e in found if e is not None]

    def release(self, setting: str) -> str | None:
        releases = sorted({e.release for (s, *_), edits in self._pairs.items() if s == setting for e in edits})
        return ", ".join(releases) or None

    def ptp_among(self, codes: list[str], on: date | None = None, setting: str = "practitioner") -> list[PtpEdit]:
        """As NcciStore.ptp_among: the edits in force between any two of ``codes``, both column orders."""
        day = on or date.today()
        ours = [c for c in codes if c in self.codes]
        found = []
        for column1 in ours:
            for column2 in ours:
                if column1 != column2:
                    edit = self.in_force(setting, column1, column2, day)
                    if edit is not None:
                        found.append(edit)
        return found


def _as_day(value: object) -> date | None:
    if value is None or value == "":
        return None
    if isinstance(value, datetime):
        return value.date()
    if isinstance(value, date):
        return value
    return date.fromisoformat(str(value)[:10])
