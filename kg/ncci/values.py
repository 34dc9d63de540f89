"""The two encodings of the on-disk index: HCPCS/CPT codes as integers and NCCI dates as day numbers.

A HCPCS/CPT code is five characters of ``0-9A-Z``; read as a base-36 number it is below 36**5
(60,466,176 < 2**26), so one code fits a uint32 and a (column 1, column 2) pair one uint64
(``code1 << 32 | code2``). Base-36 order is the files' own ASCII order, so a sorted index lists a
code's edits together and in the order CMS prints them.

A date is the number of days since 1970-01-01 in a uint16 (the last one, 65534, is in 2149).
Two values are reserved: ``OPEN`` (0xFFFF) for a deletion date CMS leaves open (``*``), and
``UNKNOWN`` (0) for an effective date a file does not carry (the shared PTP copies), which makes
"effective on or before the date asked about" true for every date: the store says so on each edit.
"""

from __future__ import annotations

import re
from datetime import date, datetime

from spinekg.kg.errors import InputError

CODE_LENGTH = 5
CODE_RADIX = 36
_CODE = re.compile(r"[0-9A-Z]{5}")
_EPOCH = date(1970, 1, 1).toordinal()
UNKNOWN = 0
OPEN = 0xFFFF
LAST_DAY = 0xFFFE
_DIGITS = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ"


class NcciFileError(InputError):
    """A file that cannot be imported: names the file (and the zip member) and the row."""

    def __init__(self, source: str, row: int | None, message: str) -> None:
        super().__init__(f"{source} row {row}" if row is not None else source, message)
        self.source = source
        self.row = row


def code_number(code: str) -> int | None:
    """The code as a base-36 number, or None when it is not five characters of 0-9A-Z.

    >>> code_number("00001"), code_number("0000A") > code_number("00009"), code_number("0001")
    (1, True, None)
    """
    if not _CODE.fullmatch(code):
        return None
    return int(code, CODE_RADIX)


def code_text(number: int) -> str:
    """The five characters of a code number (the inverse of code_number).

    >>> code_text(code_number("G0500") or 0)
    'G0500'
    """
    chars = []
    for _ in range(CODE_LENGTH):
        number, digit = divmod(number, CODE_RADIX)
        chars.append(_DIGITS[digit])
    return "".join(reversed(chars))


def require_code(code: str, what: str = "code") -> int:
    """A code typed by a user (CLI, API caller): upper-cased, one readable error if it is not one."""
    number = code_number(code.strip().upper())
    if number is None:
        raise InputError(what, f"{code[:20]!r} is not a HCPCS/CPT code (five characters, 0-9 and A-Z)")
    return number


def day_number(value: date) -> int:
    """Days since 1970-01-01."""
    return value.toordinal() - _EPOCH


def day_date(number: int) -> date | None:
    """The date of a day number; None for OPEN and UNKNOWN."""
    if number in (OPEN, UNKNOWN):
        return None
    return date.fromordinal(number + _EPOCH)


def checked_day(value: date) -> int:
    """A date as a storable day number, or ValueError outside 1970-01-02 .. 2149-06-05."""
    number = day_number(value)
    if not UNKNOWN < number <= LAST_DAY:
        raise ValueError(f"{value.isoformat()} is outside the dates the index can hold (1970-2149)")
    return number


def parse_cms_date(text: str) -> int:
    """A CMS date as a day number: YYYYMMDD (PTP), YYYYDDD (AOC, Julian), or YYYY-MM-DD (a spreadsheet date).

    >>> day_date(parse_cms_date("20231231")), day_date(parse_cms_date("2022365")), day_date(parse_cms_date("2015001"))
    (datetime.date(2023, 12, 31), datetime.date(2022, 12, 31), datetime.date(2015, 1, 1))
    """
    if text.isascii() and text.isdigit():
        if len(text) == 8:
            return checked_day(date(int(text[:4]), int(text[4:6]), int(text[6:])))
        if len(text) == 7:
            year, ordinal = int(text[:4]), int(text[4:])
            if not 1 <= ordinal <= (date(year, 12, 31) - date(year, 1, 1)).days + 1:
                raise ValueError(f"day {ordinal} of {year} does not exist")
            return checked_day(date.fromordinal(date(year, 1, 1).toordinal() + ordinal - 1))
    if len(text) == 10 and text[4] == "-" and text[7] == "-":
        return checked_day(date.fromisoformat(text))
    raise ValueError(f"{text[:20]!r} is not a date (YYYYMMDD, YYYYDDD or YYYY-MM-DD)")


def parse_user_date(text: str, what: str = "date") -> date:
    """A date typed by a user: YYYY-MM-DD, one readable error otherwise."""
    try:
        return datetime.strptime(text, "%Y-%m-%d").date()
    except ValueError:
        raise InputError(what, f"{text[:20]!r} is not a date (YYYY-MM-DD)") from None
