"""Which release a file is, and from which date a release is in force: read from CMS's file names or a flag.

CMS names each quarter's files after the release (NCCI-FORMATS.md):

* PTP: ``ccipra-v301r0-f1.TXT`` (practitioner) and ``ccioph-v301r0-f1.TXT`` (outpatient hospital), inside
  ``medicare-ncci-2024q2-practitioner-ptp-edits-ccipra-v301r0-f1.zip``: version 30.1, revision 0, part 1
  of 4. The version number is the quarter: version N.Q takes effect on the first day of quarter Q+1 of
  year 1994+N (v30.1 is 2024-04-01, reference/ncci-facts.md; v32.1 and v32.2 are CMS's 2026q2 and 2026q3
  downloads).
* MUE: ``MCR_MUE_PractitionerServices_Eff_04-01-2024.csv``: the effective date itself.
* AOC: ``AOC_V2026Q2-MCR.xlsx``: the year and quarter (in force from the quarter's first day);
  ``AOC_V2025Q4_01-MCR.txt`` is a revision of a quarter's file.
* The shared copies: ``ptp-practitioner-v301r0.tsv.gz``, ``ptp-practitioner-2024-07-01.tsv.gz``,
  ``mue-2024-04-01.tsv.gz``: a version or an ISO date.

``--release`` takes the same forms (``v30.1``, ``v301r0``, ``2026Q2``, ``2024-04-01``, ``04-01-2024``);
``--effective`` sets the date a release is in force from when its name does not tell it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date

from spinekg.kg.errors import InputError

NCCI_FIRST_YEAR = 1994  # version N is the year 1994 + N (v30 is 2024)

_VERSION = re.compile(r"(?<![0-9a-z])v?(\d{2})\.?(\d)(?:r(\d+))?(?![0-9])", re.IGNORECASE)
_FILE_VERSION = re.compile(r"(?<![0-9a-z])v(\d{2})(\d)r(\d+)(?![0-9])", re.IGNORECASE)
_QUARTER = re.compile(r"(?<![0-9])(\d{4})q([1-4])(?:_(\d+))?(?![0-9])", re.IGNORECASE)
_US_DATE = re.compile(r"(?<![0-9])(\d{2})-(\d{2})-(\d{4})(?![0-9])")
_ISO_DATE = re.compile(r"(?<![0-9])(\d{4})-(\d{2})-(\d{2})(?![0-9])")
_PART = re.compile(r"-f(\d+)(?![0-9a-z])", re.IGNORECASE)
SAFE_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,39}")


@dataclass(frozen=True, order=True)
class Release:
    """A release: ``id`` names its folder (v30.1, 2024-04-01, 2026Q2); ``effective`` is the first day it is in force."""

    effective: date
    id: str
    origin: str  # "file name" or "--release"


def _version(major: str, minor: str, revision: str | None) -> tuple[str, date | None]:
    name = f"v{int(major)}.{minor}" + (f"r{int(revision)}" if revision and int(revision) else "")
    quarter = int(minor)
    start = date(NCCI_FIRST_YEAR + int(major), 3 * quarter + 1, 1) if quarter <= 3 else None
    return name, start


def _quarter(year: str, quarter: str, revision: str | None) -> tuple[str, date]:
    name = f"{year}Q{quarter}" + (f"-{revision}" if revision else "")
    return name, date(int(year), 3 * int(quarter) - 2, 1)


def _dated(year: str, month: str, day: str) -> tuple[str, date] | None:
    try:
        when = date(int(year), int(month), int(day))
    except ValueError:
        return None
    return when.isoformat(), when


def release_from_name(name: str) -> tuple[str, date | None] | None:
    """The release a CMS file name (or one of the shared copies' names) tells, or None.

    >>> release_from_name("medicare-ncci-2024q2-practitioner-ptp-edits-ccipra-v301r0-f1.zip")
    ('v30.1', datetime.date(2024, 4, 1))
    >>> release_from_name("MCR_MUE_PractitionerServices_Eff_04-01-2024.csv")
    ('2024-04-01', datetime.date(2024, 4, 1))
    >>> release_from_name("AOC_V2026Q2-MCR.xlsx")
    ('2026Q2', datetime.date(2026, 4, 1))
    """
    if m := _FILE_VERSION.search(name):
        return _version(*m.groups())
    for pattern in (_US_DATE, _ISO_DATE):
        if m := pattern.search(name):
            parts = m.groups()
            found = _dated(parts[2], parts[0], parts[1]) if pattern is _US_DATE else _dated(*parts)
            if found:
                return found
    if m := _QUARTER.search(name):
        return _quarter(*m.groups())
    return None


def release_from_flag(text: str, effective: date | None = None) -> Release:
    """The release named by --release (and --effective), or one readable error."""
    value = text.strip()
    found: tuple[str, date | None] | None = None
    if m := _QUARTER.fullmatch(value):
        found = _quarter(*m.groups())
    elif m := _ISO_DATE.fullmatch(value):
        found = _dated(*m.groups())
    elif m := _US_DATE.fullmatch(value):
        found = _dated(m.group(3), m.group(1), m.group(2))
    elif m := _VERSION.fullmatch(value):
        found = _version(*m.groups())
    if found is None:
        raise InputError(
            "--release", f"{value[:40]!r} is not a release: give a version (v30.1), a quarter (2026Q2) or a date (2024-04-01)"
        )
    name, start = found
    return _checked(name, effective or start, "--release")


def _checked(name: str, start: date | None, origin: str) -> Release:
    if start is None:
        raise InputError(
            "--effective", f"release {name} does not tell from which date it is in force: give --effective YYYY-MM-DD"
        )
    if not SAFE_ID.fullmatch(name):
        raise InputError("--release", f"{name!r} cannot name a folder")
    return Release(start, name, origin)


def release_of(name: str, flag: Release | None, effective: date | None) -> Release | None:
    """The release of a file: the flag's if given, else its name's (None when neither tells)."""
    if flag is not None:
        return flag
    found = release_from_name(name)
    if found is None:
        return None
    return _checked(found[0], effective or found[1], "file name")


def part_of(name: str) -> int | None:
    """The part number of a PTP file CMS splits in four (``-f1`` .. ``-f4``), or None."""
    m = _PART.search(name)
    return int(m.group(1)) if m else None
