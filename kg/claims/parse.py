"""Turn claim JSON into a Claim, or raise InputError naming the offending field."""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import date
from typing import Any

from spinekg.kg.claims.model import Claim, Line
from spinekg.kg.errors import InputError

CODE = re.compile(r"[0-9A-Z]{5}")
MODIFIER = re.compile(r"[0-9A-Z]{2}")
PLACE_OF_SERVICE = re.compile(r"[0-9]{2}")
MAX_UNITS = 999  # X12 SV104 and CMS-1500 24G carry at most three digits in practice
MAX_MODIFIERS = 4  # CMS-1500 item 24D and X12 SV101-3..6


def parse_date(value: Any, field: str) -> date:
    if not isinstance(value, str):
        raise InputError(field, f"{value!r} is not a date; use YYYY-MM-DD")
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise InputError(field, f"{value!r} is not a date; use YYYY-MM-DD") from None


def parse_claim(obj: Any, vertebrae: Mapping[str, str], today: date | None = None) -> Claim:
    """Validate the shape of a claim. ``vertebrae`` maps every accepted spelling (upper case) of a
    level to its notation, as read from the graph."""
    if not isinstance(obj, dict):
        raise InputError("claim", "a claim is a JSON object with a 'lines' list")
    raw_lines = obj.get("lines")
    if not isinstance(raw_lines, list) or not raw_lines:
        raise InputError("lines", "a claim needs a non-empty list of lines")
    dos = obj.get("date_of_service")
    when = (today or date.today()) if dos is None else parse_date(dos, "date_of_service")
    pos = obj.get("place_of_service")
    if pos is not None and (not isinstance(pos, str) or not PLACE_OF_SERVICE.fullmatch(pos)):
        raise InputError("place_of_service", f"{pos!r} is not a two-digit CMS place-of-service code")
    claim_id = obj.get("id")
    if claim_id is not None and not isinstance(claim_id, str | int):
        raise InputError("id", "an id is a string or a number")
    lines = [_parse_line(raw, i, vertebrae) for i, raw in enumerate(raw_lines)]
    return Claim(lines, when, pos, claim_id)


def _parse_line(raw: Any, i: int, vertebrae: Mapping[str, str]) -> Line:
    where = f"lines[{i}]"
    if not isinstance(raw, dict):
        raise InputError(where, "a line is an object with at least a 'code'")
    code = raw.get("code")
    if not isinstance(code, str) or not CODE.fullmatch(code.strip().upper()):
        raise InputError(f"{where}.code", f"{code!r} is not a CPT/HCPCS code (five letters or digits, e.g. 22512)")
    units = raw.get("units", 1)
    if isinstance(units, bool) or not isinstance(units, int):
        raise InputError(f"{where}.units", f"{units!r} is not a whole number of units")
    if units < 1 or units > MAX_UNITS:
        raise InputError(f"{where}.units", f"{units} is outside 1-{MAX_UNITS}")
    mods = raw.get("modifiers", [])
    if mods is None:
        mods = []
    if not isinstance(mods, list):
        raise InputError(f"{where}.modifiers", "modifiers are a list of two-character codes")
    if len(mods) > MAX_MODIFIERS:
        raise InputError(f"{where}.modifiers", f"at most {MAX_MODIFIERS} modifiers fit on a claim line")
    modifiers = []
    for j, m in enumerate(mods):
        if not isinstance(m, str) or not MODIFIER.fullmatch(m.strip().upper()):
            raise InputError(f"{where}.modifiers[{j}]", f"{m!r} is not a two-character modifier")
        modifiers.append(m.strip().upper())
    levels_raw = raw.get("levels", [])
    if levels_raw is None:
        levels_raw = []
    if not isinstance(levels_raw, list):
        raise InputError(f"{where}.levels", 'levels are a list of vertebra names such as ["L3", "L4"]')
    levels = []
    for j, level in enumerate(levels_raw):
        name = vertebrae.get(level.strip().upper()) if isinstance(level, str) else None
        if name is None:
            raise InputError(
                f"{where}.levels[{j}]",
                f"{level!r} is not a vertebra (C1-C7, T1-T12, L1-L6, S1-S5 or Co for the coccyx)",
            )
        levels.append(name)
    return Line(i + 1, code.strip().upper(), tuple(modifiers), units, tuple(levels))
