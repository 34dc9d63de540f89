"""Codes: the code format, the codes the graph knows (and the closest ones to an unknown code), the
dates a code is valid on, and the code list with its filters."""

from __future__ import annotations

import re
from datetime import date, datetime
from typing import Any

from spinekg.kg.errors import InputError
from spinekg.kg.facts.table import Facts, Row
from spinekg.kg.nearest import NearValues

CODE_FORMAT = "[0-9A-Za-z]{5}"
"""A CPT or HCPCS code as typed: five digits or letters (22512, 0200T; 0200t is 0200T). The one
definition of the code format: ``normalise_code`` checks it, the API's path and claim schemas use it."""
_CODE = re.compile(CODE_FORMAT)

# Where the values a GET /codes filter accepts come from: (named query, column).
FILTER_VALUES = {
    "family": ("codes", "family"),
    "kind": ("codes", "kind"),
    "region": ("regions", "region"),
    "status": ("codes", "status"),
}


class UnknownCodeError(InputError):
    """A well-formed code the graph does not know; ``closest`` are the known codes most like it."""

    def __init__(self, code: str, closest: list[str]) -> None:
        hint = f"; closest known codes: {', '.join(closest)}" if closest else ""
        super().__init__("code", f"{code!r} is not a code the graph knows{hint}")
        self.code = code
        self.closest = closest


def normalise_code(code: str) -> str:
    """A code as the graph writes it (upper case), or InputError naming ``code``.

    >>> normalise_code(" x001t ")
    'X001T'
    """
    value = code.strip().upper() if code.isascii() else code
    if not _CODE.fullmatch(value):
        raise InputError("code", f"{code[:20]!r} is not a CPT/HCPCS code (five letters or digits, e.g. 22512)")
    return value


def closest_codes(code: str, known: NearValues, n: int = 3) -> list[str]:
    """The known codes one keystroke from ``code`` (kg/nearest.py, as the claim check's "did you mean").

    >>> closest_codes("X0509", NearValues(["X0809", "X1234", "Y1234"]))
    ['X0809']
    """
    return known.near(code, n)


def known_codes(facts: Facts) -> list[str]:
    return [str(r["code"]) for r in facts.rows("codes")]


def known_code(facts: Facts, code: str) -> str:
    """``code`` normalised, or UnknownCodeError (with the closest known codes) when the graph lacks it."""
    value = normalise_code(code)
    known = facts.cached("known-codes", lambda: frozenset(known_codes(facts)))
    if value not in known:
        raise UnknownCodeError(value, closest_codes(value, facts.cached("near-codes", lambda: NearValues(known))))
    return value


def as_date(value: Any) -> date | None:
    """A date from a date, a datetime or ISO text (its first ten characters); None stays None.

    >>> as_date("2015-01-01T00:00:00")
    datetime.date(2015, 1, 1)
    """
    if value is None:
        return None
    if isinstance(value, datetime):
        return value.date()
    if isinstance(value, date):
        return value
    return date.fromisoformat(str(value)[:10])


def in_force(start: date | None, end: date | None, day: date) -> bool:
    """Whether something valid from ``start`` (inclusive) until ``end`` (exclusive) holds on ``day``; a
    missing bound does not limit it. The one definition of "valid on this date" (dates: ``as_date``).

    >>> in_force(None, as_date("2015-01-01"), date(2014, 12, 31)), in_force(date(2015, 1, 1), None, date(2015, 1, 1))
    (True, True)
    >>> in_force(None, date(2015, 1, 1), date(2015, 1, 1))
    False
    """
    return (start is None or day >= start) and (end is None or day < end)


def filter_values(facts: Facts, field: str) -> list[str]:
    """The values the graph holds for a GET /codes filter (what ``code_list`` accepts)."""
    name, column = FILTER_VALUES[field]
    return facts.cached(("filter-values", field), lambda: sorted({str(r[column]) for r in facts.rows(name) if r[column]}))


def code_list(
    facts: Facts, family: str | None = None, kind: str | None = None, region: str | None = None, status: str | None = None
) -> list[Row]:
    """The codes (code, label, family, kind, status, and the region asked for), filtered by the values
    given; a value the graph does not hold is an InputError naming the filter and listing its values."""
    given = {k: v for k, v in {"family": family, "kind": kind, "region": region, "status": status}.items() if v is not None}
    for field, value in given.items():
        known = filter_values(facts, field)
        if value not in known:
            raise InputError(field, f"{value[:40]!r} is not a {field} the graph knows; known: {', '.join(known)}")
    return facts.rows("codes", given)
