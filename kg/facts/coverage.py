"""Coverage of a procedure code under the Medicare contractors' LCDs: GET /codes/{code}/coverage and the
``coverage`` section of a code's page (``spinekg code-info``, GET /codes/{code}). Read from the named
queries code-coverage, lcd-for-state, lcd-provisions and diagnoses-supporting (queries/api/), so the typed modules and
what spinekg import coverage added answer alike; the same JSON from the API and the command line.

    {"code": CODE, "state": STATE, "on": "YYYY-MM-DD",
     "lcds": [{"lcd": LCD_ID, "contractor": ..., "jurisdictions": [JURISDICTION], "article": ARTICLE_ID,
               "known_from": "2015-10-01", "in_force": "yes", "governed": ..., "lists": {"status":
               "partial-secondary", "groups": 2, "diagnoses": 10, "imported_versions": []}, ...}],
     "diagnoses": [{"diagnosis": ICD10CM_CODE, "group": 1, "evidence": "unverified", ...}],
     "note": "..."}
"""

from __future__ import annotations

from datetime import date
from typing import Any

from spinekg.kg.errors import InputError
from spinekg.kg.facts.codes import known_code
from spinekg.kg.facts.table import Facts, Row

STATE_SHAPE = 2


def parse_day(value: str | None, field: str = "date") -> date | None:
    """The date of service asked about (YYYY-MM-DD), or None; InputError naming ``field`` otherwise."""
    if value is None or value == "":
        return None
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise InputError(field, f"{value[:20]!r} is not a date; use YYYY-MM-DD") from None


def parse_state(facts: Facts, value: str | None) -> str | None:
    """A USPS state code the graph knows (any case), or None; InputError naming ``state`` otherwise."""
    if value is None or value == "":
        return None
    text = value.strip().upper()
    known = {str(r["state"]) for r in facts.rows("states")}
    if len(text) != STATE_SHAPE or text not in known:
        raise InputError(
            "state",
            f"{value[:20]!r} is not a US state or territory Medicare serves; use its USPS code ({', '.join(sorted(known))})",
        )
    return text


def lcd_summaries(facts: Facts, code: str) -> list[Row]:
    """Each LCD that governs the code (or may), with what is known of its article's lists."""
    out = []
    for row in facts.rows("code-coverage", {"code": code}):
        out.append(
            {
                "lcd": row["lcd"],
                "title": row["title"],
                "contractor": row["contractor"],
                "jurisdictions": row["jurisdictions"],
                "known_from": _day(row["known_from"]),
                "retired": _day(row.get("retired")),
                "article": row["article"],
                "pairing": row.get("pairing"),
                "governed": {"how": row["governed"], "evidence": row["governed_evidence"]},
                "lists": {
                    "status": row.get("list_status") or "unknown",
                    "groups": row.get("groups") or 0,
                    "diagnoses": row.get("diagnoses") or 0,
                    "imported_versions": row.get("imported_versions") or [],
                },
            }
        )
    return out


def code_coverage(facts: Facts, code: str, state: str | None = None, on: date | None = None) -> dict[str, Any]:
    """The LCDs of a code; for a state, only its contractor's, whether it is in force on ``on`` and the
    diagnoses that support the code there. UnknownCodeError for a code the graph does not know,
    InputError naming ``state`` for a state it does not."""
    value = known_code(facts, code)
    where = parse_state(facts, state)
    lcds = lcd_summaries(facts, value)
    answer: dict[str, Any] = {"code": value, "state": where, "on": on.isoformat() if on else None}
    if where is None:
        answer["lcds"] = lcds
        answer["diagnoses"] = None
        answer["note"] = (
            "Each contractor's LCD for the code; give state (and on) for the diagnoses that support it there."
            if lcds
            else "No LCD spinekg knows governs this code (where a contractor's code list is known, it does not list it)."
        )
        return answer
    params = {"state": where} | ({"on": on.isoformat()} if on else {})
    governing = {r["lcd"]: r for r in facts.rows("lcd-for-state", params)}
    chosen = []
    for summary in lcds:
        found = governing.get(summary["lcd"])
        if found is not None:
            provisions = [
                {k: _day(v) if k in ("valid_from", "deleted_on") else v for k, v in p.items() if k != "lcd"}
                for p in facts.rows("lcd-provisions", {"lcd": summary["lcd"]})
            ]
            chosen.append(
                summary
                | {"jurisdiction": found["jurisdiction"], "in_force": found.get("in_force") or None, "provisions": provisions}
            )
    answer["lcds"] = chosen
    rows = facts.rows("diagnoses-supporting", {"code": value} | params) if chosen else []
    answer["diagnoses"] = [
        {k: _day(v) if k in ("valid_from", "deleted_on") else v for k, v in r.items() if k not in ("code", "state", "on")}
        for r in rows
    ]
    answer["note"] = _note(chosen, rows)
    return answer


def _day(value: Any) -> str | None:
    """A date of the graph (ISO date-time text) as YYYY-MM-DD."""
    return str(value)[:10] if value else None


def _note(chosen: list[Row], rows: list[Row]) -> str:
    if not chosen:
        return "No LCD of this state's contractor is known to govern the code."
    if any(c.get("in_force") == "not known" for c in chosen):
        return "The LCD is not known to be in force on that date (before the earliest date known); its lists were not read."
    if not rows:
        return "The article's ICD-10-CM lists for the code are not known to spinekg (spinekg import coverage loads them)."
    statuses = {c["lists"]["status"] for c in chosen}
    if statuses <= {"known-complete"}:
        return "The article's lists are complete and verified."
    return "The lists are known only in part or from secondary sources: a diagnosis missing here is not necessarily non-covered."
