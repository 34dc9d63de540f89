"""Turn claim JSON into a Claim, or raise InputError naming the offending field.

Everything a verdict echoes (the id, codes, modifiers, levels) is checked here, so that a verdict can
always be written back as JSON; error messages quote at most a short, escaped prefix of a bad value."""

from __future__ import annotations

import difflib
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date
from typing import Any

import orjson

from spinekg.kg.cache import remember
from spinekg.kg.claims.limits import (
    INT64_MAX,
    INT64_MIN,
    MAX_CLAIM_LINES,
    MAX_DIAGNOSES,
    MAX_DIAGNOSIS_POINTERS,
    MAX_ID_LENGTH,
)
from spinekg.kg.claims.model import Claim, Line
from spinekg.kg.errors import InputError
from spinekg.kg.facts.codes import CODE_FORMAT
from spinekg.kg.icd10.codes import normalize as normalize_diagnosis

CODE = re.compile(CODE_FORMAT)  # checked after upper-casing
MODIFIER = re.compile(r"[0-9A-Z]{2}")
PLACE_OF_SERVICE = re.compile(r"[0-9]{2}")
# control characters and unpaired surrogates (which no UTF-8 JSON writer can emit) are refused in ids
ID_TEXT = re.compile(r"[^\x00-\x1f\x7f-\x9f\ud800-\udfff]*")
MAX_UNITS = 999  # X12 SV104 and CMS-1500 24G carry at most three digits in practice
MAX_MODIFIERS = 4  # CMS-1500 item 24D and X12 SV101-3..6
SHOWN = 40  # characters of a bad value quoted in an error message
# The claim contract: a key outside it is refused (a misspelt "levles" would otherwise drop the levels
# silently and turn a wrong claim into a valid one).
CLAIM_KEYS = ("id", "date_of_service", "place_of_service", "claim_type", "state", "contractor", "diagnoses", "lines")
# professional: a practitioner's claim (837P, CMS-1500); outpatient: a hospital outpatient claim (837I,
# UB-04). The claim type picks CMS's practitioner or outpatient-hospital NCCI tables.
CLAIM_TYPES = ("professional", "outpatient")
LINE_KEYS = ("code", "modifiers", "units", "levels", "diagnosis_pointers")
_CLAIM_KEY_SET = frozenset(CLAIM_KEYS)
_LINE_KEY_SET = frozenset(LINE_KEYS)
# Well-formed spellings already seen -> their normal form (codes, modifiers, dates): most claims repeat a
# few of them, and a dictionary lookup is cheaper than the checks. Bounded: the spellings come from input.
_SEEN_LIMIT = 4096
_codes: dict[str, str] = {}
_modifiers: dict[str, str] = {}
_dates: dict[str, date] = {}
_diagnoses: dict[str, str] = {}
DIAGNOSIS_SHAPE = "a letter, two letters or digits, then up to four letters or digits after an optional dot, e.g. M80.08XA"


@dataclass(frozen=True)
class Places:
    """Where a claim may say the service was rendered, as read from the graph (kg/claims/engine.py):
    the states and territories (USPS code -> MAC jurisdiction) and the contract numbers (-> jurisdiction)."""

    states: Mapping[str, str]
    contracts: Mapping[str, str]

    def resolve(self, state: Any, contractor: Any) -> tuple[str | None, str | None, str | None]:
        """(state, contractor, jurisdiction) of a claim; InputError naming the field for one the graph does not know."""
        code = None
        if state is not None:
            text = state.strip().upper() if isinstance(state, str) and len(state) <= 8 and state.isascii() else ""
            if text not in self.states:
                raise InputError(
                    "state",
                    f"{show(state)} is not a US state or territory Medicare serves; "
                    f"use its USPS code ({', '.join(sorted(self.states))})",
                )
            code = text
        number = None
        if contractor is not None:
            text = contractor.strip() if isinstance(contractor, str) and len(contractor) <= 8 and contractor.isascii() else ""
            if text not in self.contracts:
                known = ", ".join(sorted(self.contracts)) or "none"
                raise InputError("contractor", f"{show(contractor)} is not a MAC contract number spinekg knows (known: {known})")
            number = text
        jurisdiction = self.contracts[number] if number else (self.states[code] if code else None)
        return code, number, jurisdiction


NO_PLACES = Places({}, {})  # a parser given no places refuses every state and contractor


def show(value: Any) -> str:
    """A short, printable rendering of a bad input value for an error message (never the whole value)."""
    if isinstance(value, str):
        text = repr(value[:SHOWN])
        return text if len(value) <= SHOWN else text[:-1] + "…" + text[-1]
    if isinstance(value, bool) or value is None:
        return "true" if value is True else "false" if value is False else "null"
    if isinstance(value, int):
        return str(value) if -(10**18) < value < 10**18 else "a number too large to be a count"
    if isinstance(value, float):
        return repr(value) if abs(value) < 1e18 or value != value else "a number too large to be a count"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, dict):
        return "an object"
    return type(value).__name__


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON number")


def load_json(data: bytes | str, field: str = "claim") -> Any:
    """Parse JSON text. orjson first (fast); what it refuses but the JSON grammar allows (an unpaired
    surrogate escape such as "\\ud800", an integer beyond 64 bits, a number beyond a double) is read
    with the standard library so that the field holding it can be named; anything else is an
    InputError on ``field``. Nesting is bounded by both readers (orjson at 1024 levels)."""
    try:
        return orjson.loads(data)
    except orjson.JSONDecodeError as exc:
        reason = str(exc.args[0]).split(":")[0] if exc.args else "unreadable"
    try:
        return json.loads(data, parse_constant=_reject_constant)
    except (ValueError, RecursionError):
        raise InputError(field, f"not valid JSON ({reason})") from None


def refuse_unknown_keys(obj: dict[str, Any], known: tuple[str, ...], where: str) -> None:
    """InputError naming the first key of ``obj`` that the contract does not know, with a guess."""
    for key in obj:
        if key not in known:
            name = key if isinstance(key, str) and 0 < len(key) <= SHOWN and key.isprintable() else show(key)
            near = difflib.get_close_matches(str(key)[:SHOWN], known, n=1)
            hint = f"did you mean {near[0]!r}? " if near else ""
            raise InputError(
                f"{where}{name}", f"not a field of a claim{' line' if where else ''}; {hint}known: {', '.join(known)}"
            )


def parse_date(value: Any, field: str) -> date:
    if not isinstance(value, str) or len(value) > 10:
        raise InputError(field, f"{show(value)} is not a date; use YYYY-MM-DD")
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise InputError(field, f"{show(value)} is not a date; use YYYY-MM-DD") from None


def parse_id(value: Any) -> str | int | None:
    """The claim id, echoed in the verdict: text of at most MAX_ID_LENGTH characters without control
    characters or unpaired surrogates, or a whole number within signed 64 bits."""
    if value is None:
        return None
    if type(value) is str and len(value) <= MAX_ID_LENGTH and value.isascii() and value.isprintable():
        return value  # the usual id, without the regular expression
    if isinstance(value, bool):
        raise InputError("id", "an id is a string or a whole number, not true or false")
    if isinstance(value, int) or (isinstance(value, float) and not -(2.0**63) <= value < 2.0**63):
        if not INT64_MIN <= value <= INT64_MAX:  # beyond 64 bits (a reader may hand such a number over as a float)
            raise InputError("id", f"a numeric id must lie between {INT64_MIN} and {INT64_MAX} (signed 64 bits); use a string")
        return value  # type: ignore[return-value]
    if isinstance(value, str):
        if len(value) > MAX_ID_LENGTH:
            raise InputError("id", f"an id has at most {MAX_ID_LENGTH} characters; this one has {len(value)}")
        if not ID_TEXT.fullmatch(value):
            raise InputError("id", f"{show(value)} holds a control character or an unpaired surrogate")
        return value
    raise InputError("id", f"an id is a string (at most {MAX_ID_LENGTH} characters) or a whole number, not {show(value)}")


def parse_claim(
    obj: Any,
    vertebrae: Mapping[str, str],
    today: date | None = None,
    max_lines: int = MAX_CLAIM_LINES,
    max_levels: int | None = None,
    levels_hint: str = "",
    places: Places | None = None,
) -> Claim:
    """Validate the shape of a claim. ``vertebrae`` maps every accepted spelling (upper case) of a
    level to its notation, as read from the graph. A claim holds at most ``max_lines`` lines, and a line
    at most as many levels as there are vertebrae (``max_levels``, counted from ``vertebrae`` unless
    given), so that checking it is bounded work. ``levels_hint`` names the vertebrae in an error
    message (the engine words it from the graph). ``places`` are the states and contract numbers the
    graph knows: a claim's ``state`` or ``contractor`` outside them is unusable input, and the one it
    names picks the claim's MAC jurisdiction (the contractor's over the state's)."""
    if not isinstance(obj, dict):
        raise InputError("claim", "a claim is a JSON object with a 'lines' list")
    if not obj.keys() <= _CLAIM_KEY_SET:
        refuse_unknown_keys(obj, CLAIM_KEYS, "")
    raw_lines = obj.get("lines")
    if not isinstance(raw_lines, list) or not raw_lines:
        raise InputError("lines", "a claim needs a non-empty list of lines")
    if len(raw_lines) > max_lines:
        raise InputError(
            "lines",
            f"{len(raw_lines)} lines; a claim holds at most {max_lines} (SPINEKG_MAX_CLAIM_LINES; the 837P allows 50): split it",
        )
    claim_id = parse_id(obj.get("id"))
    dos = obj.get("date_of_service")
    if dos is None:
        when = today or date.today()
    else:
        when = _dates.get(dos) if type(dos) is str else None  # type: ignore[assignment]
        if when is None:
            when = parse_date(dos, "date_of_service")
            remember(_dates, dos, when, _SEEN_LIMIT)
    pos = obj.get("place_of_service")
    if pos is not None and (not isinstance(pos, str) or not PLACE_OF_SERVICE.fullmatch(pos)):
        raise InputError("place_of_service", f"{show(pos)} is not a two-digit CMS place-of-service code")
    if max_levels is None:
        max_levels = len(set(vertebrae.values()))
    diagnoses = parse_diagnoses(obj.get("diagnoses"))
    lines = [_parse_line(raw, i, vertebrae, max_levels, levels_hint, len(diagnoses)) for i, raw in enumerate(raw_lines)]
    claim_type = obj.get("claim_type", CLAIM_TYPES[0])
    if claim_type not in CLAIM_TYPES:
        raise InputError("claim_type", f"{show(claim_type)} is not a claim type; use {' or '.join(CLAIM_TYPES)}")
    assumed = {"date_of_service": when.isoformat()} if dos is None else {}
    state, contractor, jurisdiction = (places or NO_PLACES).resolve(obj.get("state"), obj.get("contractor"))
    return Claim(
        lines, when, pos, claim_id, claim_type=claim_type, assumed=assumed, diagnoses=diagnoses,
        state=state, contractor=contractor, jurisdiction=jurisdiction,
    )  # fmt: skip


def parse_diagnoses(raw: Any) -> tuple[str, ...]:
    """The claim's diagnoses, dotted and upper-case: ICD-10-CM codes with or without the dot, at most
    MAX_DIAGNOSES. A string not shaped like a code is unusable input; a shaped one that no release holds
    is a finding of the diagnosis rules."""
    if raw is None:
        return ()
    if not isinstance(raw, list):
        raise InputError("diagnoses", 'diagnoses are a list of ICD-10-CM codes, such as ["M80.08XA", "C79.51"]')
    if len(raw) > MAX_DIAGNOSES:
        raise InputError(
            "diagnoses",
            f"{len(raw)} diagnoses; a claim holds at most {MAX_DIAGNOSES} (CMS-1500 item 21 A-L, the 837P's HI segment)",
        )
    found: list[str] = []
    for j, value in enumerate(raw):
        code = _diagnoses.get(value) if type(value) is str else None
        if code is None:
            try:
                code = normalize_diagnosis(value) if isinstance(value, str) else None
            except ValueError:
                code = None
            if code is None:
                raise InputError(f"diagnoses[{j}]", f"{show(value)} is not shaped like an ICD-10-CM code ({DIAGNOSIS_SHAPE})")
            remember(_diagnoses, value, code, _SEEN_LIMIT)
        found.append(code)
    return tuple(found)


def _parse_pointers(raw: Any, i: int, count: int) -> tuple[int, ...]:
    """A line's diagnosis pointers: 1-based positions in the claim's diagnoses, at most MAX_DIAGNOSIS_POINTERS."""
    field = f"lines[{i}].diagnosis_pointers"
    if raw is None:
        return ()
    if not isinstance(raw, list):
        raise InputError(field, "diagnosis pointers are a list of 1-based positions in the claim's diagnoses, such as [1, 2]")
    if len(raw) > MAX_DIAGNOSIS_POINTERS:
        raise InputError(
            field, f"{len(raw)} pointers; a claim line points to at most {MAX_DIAGNOSIS_POINTERS} diagnoses (837P SV107)"
        )
    for j, p in enumerate(raw):
        if type(p) is not int:
            raise InputError(f"{field}[{j}]", f"{show(p)} is not a whole number: a pointer is a 1-based position in diagnoses")
        if p < 1:
            raise InputError(f"{field}[{j}]", f"{show(p)} is not a position in diagnoses: pointers count from 1")
        if p > count:
            listed = f"only {count} diagnos{'is' if count == 1 else 'es'}" if count else "no diagnoses"
            raise InputError(f"{field}[{j}]", f"{p} points past the claim's diagnoses: it lists {listed}")
        if p in raw[:j]:
            raise InputError(f"{field}[{j}]", f"{p} is listed twice: point to each diagnosis once")
    return tuple(raw)


def _parse_line(raw: Any, i: int, vertebrae: Mapping[str, str], max_levels: int, levels_hint: str, diagnoses: int = 0) -> Line:
    if not isinstance(raw, dict):
        raise InputError(f"lines[{i}]", "a line is an object with at least a 'code'")
    if not raw.keys() <= _LINE_KEY_SET:
        refuse_unknown_keys(raw, LINE_KEYS, f"lines[{i}].")
    raw_code = raw.get("code")
    code = _codes.get(raw_code) if type(raw_code) is str else None
    if code is None:
        code = _parse_code(raw_code, f"lines[{i}].code")
        remember(_codes, str(raw_code), code, _SEEN_LIMIT)  # a str: _parse_code refuses anything else
    units = raw.get("units", 1)
    if type(units) is not int or units < 1 or units > MAX_UNITS:
        if isinstance(units, bool) or not isinstance(units, int):
            raise InputError(f"lines[{i}].units", f"{show(units)} is not a whole number of units")
        raise InputError(f"lines[{i}].units", f"{show(units)} is outside 1-{MAX_UNITS}")
    mods = raw.get("modifiers")
    modifiers: tuple[str, ...] = ()
    if mods:
        if not isinstance(mods, list):
            raise InputError(f"lines[{i}].modifiers", "modifiers are a list of two-character codes")
        if len(mods) > MAX_MODIFIERS:
            raise InputError(f"lines[{i}].modifiers", f"at most {MAX_MODIFIERS} modifiers fit on a claim line")
        found: list[str] = []
        for j, m in enumerate(mods):
            seen = _modifiers.get(m) if type(m) is str else None
            if seen is None:
                mod = m.strip().upper() if isinstance(m, str) and len(m) <= 8 and m.isascii() else ""
                if not MODIFIER.fullmatch(mod):
                    raise InputError(f"lines[{i}].modifiers[{j}]", f"{show(m)} is not a two-character modifier")
                remember(_modifiers, m, mod, _SEEN_LIMIT)
                seen = mod
            found.append(seen)
        modifiers = tuple(found)
    elif mods is not None and not isinstance(mods, list):
        raise InputError(f"lines[{i}].modifiers", "modifiers are a list of two-character codes")
    levels_raw = raw.get("levels")
    if not levels_raw:
        if levels_raw is not None and not isinstance(levels_raw, list):
            raise InputError(f"lines[{i}].levels", 'levels are a list of vertebra names such as ["L3", "L4"]')
        return Line(i + 1, code, modifiers, units, (), _parse_pointers(raw.get("diagnosis_pointers"), i, diagnoses))
    if not isinstance(levels_raw, list):
        raise InputError(f"lines[{i}].levels", 'levels are a list of vertebra names such as ["L3", "L4"]')
    if len(levels_raw) > max_levels:
        raise InputError(f"lines[{i}].levels", f"{len(levels_raw)} levels; a line names at most {max_levels} (one per vertebra)")
    levels = []
    for j, level in enumerate(levels_raw):
        name = vertebrae.get(level) if type(level) is str else None  # the usual spelling, as the graph writes it
        if name is None:
            name = (
                vertebrae.get(level.strip().upper()) if isinstance(level, str) and len(level) <= 16 and level.isascii() else None
            )
        if name is None:
            raise InputError(
                f"lines[{i}].levels[{j}]", f"{show(level)} is not a vertebra" + (f" ({levels_hint})" if levels_hint else "")
            )
        levels.append(name)
    return Line(i + 1, code, modifiers, units, tuple(levels), _parse_pointers(raw.get("diagnosis_pointers"), i, diagnoses))


def _parse_code(raw: Any, field: str) -> str:
    # ASCII first: str.upper() would turn the long s "ſ" into "S" and pass a code nobody wrote
    if not isinstance(raw, str) or len(raw) > 16 or not raw.isascii() or not CODE.fullmatch(code := raw.strip().upper()):
        raise InputError(field, f"{show(raw)} is not a CPT/HCPCS code (five letters or digits, e.g. 22512)")
    return code
