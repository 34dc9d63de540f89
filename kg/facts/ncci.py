"""CMS's NCCI edits of a code, from the imported tables (kg/ncci), as the CLI (`spinekg ncci edits|mue|
primaries`) and the API (GET /codes/{code}/edits, /mue, /primaries) answer them: the PTP edits of a
code in Column 1 (or between two codes), its MUE for a service type, the primaries of an add-on, each
as of a date and naming its release. Any well-formed code may be asked, not only the graph's."""

from __future__ import annotations

from datetime import date
from typing import Any

from spinekg.kg.errors import InputError
from spinekg.kg.facts.codes import normalise_code
from spinekg.kg.facts.table import Facts
from spinekg.kg.ncci.family import FamilyPtp
from spinekg.kg.ncci.layouts import SERVICE_TYPES, SETTINGS
from spinekg.kg.ncci.store import NcciStore, PtpEdit

INDICATOR_MEANING = {
    0: "never paid together",
    1: "paid together only with a modifier that shows distinct services",
    9: "not applicable",
}


class NoNcciTables(InputError):
    """The NCCI table asked for is not imported (a 404 for the API, exit 2 for the CLI)."""


def parse_on(value: str | None) -> date:
    """The date of a question (YYYY-MM-DD), today when not given; InputError naming ``on``."""
    if value is None:
        return date.today()
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise InputError("on", f"{value[:20]!r} is not a date; use YYYY-MM-DD") from None


def _check(value: str, allowed: tuple[str, ...], field: str) -> None:
    if value not in allowed:
        raise InputError(field, f"{value[:20]!r} is not one of {', '.join(allowed)}")


def _require(store: NcciStore | None, kind: str, what: str) -> NcciStore:
    if store is None or not store.has(kind):
        raise NoNcciTables(what, f"no {kind} table is imported; import CMS's files with: spinekg import ncci FILE...")
    return store


def _edit(edit: PtpEdit) -> dict[str, Any]:
    return {
        "column1": edit.column1,
        "column2": edit.column2,
        "modifier_indicator": edit.modifier_indicator,
        "meaning": INDICATOR_MEANING.get(edit.modifier_indicator, ""),
        "rationale": edit.rationale,
        "effective": edit.effective.isoformat() if edit.effective else None,
        "deletion": edit.deletion.isoformat() if edit.deletion else None,
        "release": edit.release,
    }


def code_edits(
    store: NcciStore | None,
    code: str,
    on: date,
    setting: str = "practitioner",
    other: str | None = None,
    family: FamilyPtp | None = None,
) -> dict[str, Any]:
    """The PTP edits in force on ``on`` with ``code`` in Column 1 (every Column 2 code), or, with
    ``other``, the edits between the two codes in either column order. Without an imported release,
    the rows the ontology holds for our codes (``family``, edits/ncci-ptp.ttl) answer for those codes."""
    value = normalise_code(code)
    _check(setting, SETTINGS, "setting")
    second = normalise_code(other) if other is not None else None
    table: NcciStore | FamilyPtp
    if (
        (store is None or not store.has(f"ptp-{setting}"))
        and family is not None
        and family.has(setting)
        and (value in family.ours or (second is not None and second in family.ours))
    ):
        table, release, origin = family, family.release(setting), "ontology"
    else:
        table = _require(store, f"ptp-{setting}", "setting")
        info = table.release(f"ptp-{setting}", on)
        release, origin = (info.release if info else None), "imported"
    edits = table.ptp_between(value, second, on, setting) if second is not None else table.column2_of(value, on, setting)
    return {
        "code": value,
        "date": on.isoformat(),
        "setting": setting,
        "release": release,
        "origin": origin,
        "edits": [_edit(e) for e in edits if e.modifier_indicator != 9],
    }


def family_ptp(facts: Facts) -> FamilyPtp:
    """The ontology's PTP rows of our codes (named query ncci-family-edits), read once per Facts."""

    def read() -> FamilyPtp:
        ours = (str(r["code"]) for r in facts.table("ncci-generated-codes")[1])
        return FamilyPtp(facts.table("ncci-family-edits")[1], ours)

    return facts.cached(("family-ptp",), read)


def code_mue(store: NcciStore | None, code: str, on: date, service_type: str = "practitioner") -> dict[str, Any]:
    """The MUE of a code for a service type in the release in force on ``on`` (``mue`` null when CMS gives none)."""
    value = normalise_code(code)
    _check(service_type, SERVICE_TYPES, "service_type")
    ncci = _require(store, f"mue-{service_type}", "service_type")
    found = ncci.mue(value, on, service_type)
    return {
        "code": value,
        "date": on.isoformat(),
        "service_type": service_type,
        "mue": None
        if found is None
        else {
            "value": found.value,
            "mai": found.mai,
            "mai_text": found.mai_text,
            "rationale": found.rationale,
            "release": found.release,
            "in_force_from": found.release_effective.isoformat(),
        },
    }


def addon_primaries(store: NcciStore | None, code: str, on: date) -> dict[str, Any]:
    """The add-on code edits of a code in force on ``on``: its primaries and edit types (``add_on`` false
    when it is not an add-on then)."""
    value = normalise_code(code)
    ncci = _require(store, "aoc", "code")
    found = ncci.aoc_primaries(value, on)
    return {
        "code": value,
        "date": on.isoformat(),
        "add_on": found is not None,
        "release": found.release if found else None,
        "edit_types": list(found.edit_types) if found else [],
        "primaries": list(found.primaries) if found else [],
        "contractor_defined": found is not None and not found.closed_list,
    }
