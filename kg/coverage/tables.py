"""The tables of the Medicare Coverage Database (MCD) article download and of the CMS Coverage API, known
by their columns, and the values in them.

The MCD download (``current_article_csv.zip``: one CSV per table, sometimes inside an inner zip) and
the Coverage API (``/v1/data/article/...``: ``{"meta": {...}, "data": [rows]}``) carry the same
fields under the same names (lcd-facts.md section 9; the API spells ``article_rev_end_Date`` with a
capital D, so names are compared in lower case). A table is recognised by its columns, never by its
file name: each layout lists the columns it needs and, where two tables share them, a column it must
not have (a group table has no ``icd10_code_id``).

What the importer reads: ``article`` (versions, titles, dates), ``icd10-covered`` and
``icd10-covered-group`` (the groups, the asterisk flag and note), ``icd10-noncovered`` and its group
table, ``hcpc-code`` (the codes an article governs, which decide which articles are kept),
``related-documents`` (the LCD an article belongs to). Every other article table of the download
(contractors, primary jurisdictions, bill types, revenue codes, modifiers ...) is recognised and skipped.

Dates: the API writes MM/DD/YYYY; copies of the CSVs have been seen with ISO dates, with or without a
time. An article version's ``article_end_date`` (and ``article_rev_end_date``) is taken as the last
day it applies (as the MCD pages word it, "Revision Ending Date"), so the first day it no longer does
is the next day; ``date_retired`` is taken as the first day it no longer applies. Both readings
rest on the MCD pages' wording only (not verified against a retired article)."""

from __future__ import annotations

import html
import re
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from html.parser import HTMLParser

from spinekg.kg.icd10.codes import is_shaped, normalize

HCPCS = re.compile(r"[0-9A-Z]{5}")
# An ICD-10-CM code as articles write it in prose (dot optional); candidates are kept only when the
# article version lists them, so a look-alike word never becomes a diagnosis.
ICD_TOKEN = re.compile(r"\b[A-Z][0-9][0-9A-Z](?:\.?[0-9A-Z]{1,4})?\b")
CODE_TOKEN = re.compile(r"\b[0-9A-Z]{5}\b")
MAX_TEXT = 2000  # characters of a group paragraph kept as the group's rationale
NONE_VALUES = frozenset({"", "n/a", "na", "null", "none"})


@dataclass(frozen=True)
class Layout:
    name: str
    needs: frozenset[str]
    lacks: frozenset[str] = frozenset()
    used: bool = True  # False: recognised (a table of the download) but not read

    def fits(self, columns: frozenset[str]) -> bool:
        return self.needs <= columns and self.lacks.isdisjoint(columns)


def _layout(name: str, needs: str, lacks: str = "", used: bool = True) -> Layout:
    return Layout(name, frozenset(needs.split()), frozenset(lacks.split()), used)


KEY = "article_id article_version "
LAYOUTS: tuple[Layout, ...] = (
    _layout("article", KEY + "title article_eff_date display_id"),
    _layout("icd10-covered", KEY + "icd10_code_id icd10_covered_group"),
    _layout("icd10-covered-group", KEY + "icd10_covered_group paragraph", "icd10_code_id"),
    _layout("icd10-noncovered", KEY + "icd10_code_id icd10_noncovered_group"),
    _layout("icd10-noncovered-group", KEY + "icd10_noncovered_group paragraph", "icd10_code_id"),
    _layout("hcpc-code", KEY + "hcpc_code_id hcpc_code_group"),
    _layout("related-documents", KEY + "related_num r_lcd_id"),
    # recognised and skipped: the other tables of the article download (lcd-facts.md section 9.2)
    _layout("primary-jurisdiction", KEY + "state_id", used=False),
    _layout("state-lookup", "state_id state_abbrev", "article_id", used=False),
    _layout("contractor", KEY + "contractor_id", used=False),
    _layout("other-article-table", "article_id", used=False),
    _layout("lookup-table", "description last_updated", "article_id", used=False),
    _layout("future-retire", "article_id retire_dt", used=False),
)
EXPECTED = (
    "expected a table of the Medicare Coverage Database article download or a Coverage API /v1/data/article/ "
    "response (columns article_id, article_version, ...; e.g. article.csv, article_x_icd10_covered.csv, "
    "article_x_hcpc_code.csv)"
)


def recognise(columns: list[str]) -> Layout | None:
    """The layout of a header (names compared in lower case), or None."""
    names = frozenset(c.strip().lower() for c in columns)
    return next((layout for layout in LAYOUTS if layout.fits(names)), None)


# ---------------------------------------------------------------------------------------------- values


def whole(value: object, name: str) -> int:
    """A whole number column (ids, versions, groups)."""
    text = str(value).strip() if value is not None else ""
    if isinstance(value, bool) or not re.fullmatch(r"\d{1,9}", text):
        raise ValueError(f"{name} {_show(value)} is not a whole number")
    return int(text)


def optional_date(value: object, name: str) -> date | None:
    """A date as MCD writes them (MM/DD/YYYY, YYYY-MM-DD, either with a time), or None when empty or N/A."""
    text = str(value).strip() if value is not None else ""
    if text.lower() in NONE_VALUES:
        return None
    for fmt in ("%m/%d/%Y", "%Y-%m-%d"):
        try:
            return datetime.strptime(text.split(" ")[0].split("T")[0], fmt).date()
        except ValueError:
            continue
    raise ValueError(f"{name} {_show(value)} is not a date (MM/DD/YYYY or YYYY-MM-DD)")


def day_after(value: date | None) -> date | None:
    return value + timedelta(days=1) if value is not None else None


def diagnosis(value: object) -> str:
    """An ICD-10-CM code (with or without its dot), normalised to the dotted form."""
    text = str(value).strip() if value is not None else ""
    if not is_shaped(text):
        raise ValueError(f"icd10_code_id {_show(value)} is not an ICD-10-CM code")
    return normalize(text)


def hcpcs(value: object) -> str:
    text = str(value).strip().upper() if value is not None else ""
    if not HCPCS.fullmatch(text):
        raise ValueError(f"hcpc_code_id {_show(value)} is not a CPT/HCPCS code (five letters or digits)")
    return text


def flag(value: object) -> bool:
    """The asterisk column: Y (or an asterisk) marks a code."""
    return str(value).strip().upper() in {"Y", "YES", "*", "TRUE", "1"}


class _Text(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []

    def handle_data(self, data: str) -> None:
        self.parts.append(data)


def text_of(value: object) -> str:
    """Plain text of an MCD paragraph: HTML escaped once more than needed (``&lt;p&gt;``), with ``&sol;``."""
    raw = str(value or "")
    for _ in range(2):  # the paragraphs are escaped twice; unescaping plain text changes nothing
        raw = html.unescape(raw)
    parser = _Text()
    parser.feed(raw)
    parser.close()
    return " ".join(" ".join(parser.parts).split())[:MAX_TEXT]


def _show(value: object) -> str:
    text = repr(str(value)[:40]) if value is not None else "null"
    return text


# ---------------------------------------------------------------------------------------------- records


@dataclass
class Version:
    """What the import learns of one article version."""

    article: int
    version: int
    display: str = ""
    title: str = ""
    start: date | None = None
    end: date | None = None  # first day no longer in force
    updated: date | None = None
    codes: dict[str, None] = field(default_factory=dict)  # the HCPCS codes it lists, in order
    covered: dict[int, list[tuple[str, bool]]] = field(default_factory=dict)  # group -> (code, asterisk)
    covered_text: dict[int, tuple[str, str]] = field(default_factory=dict)  # group -> (paragraph, asterisk note)
    noncovered: dict[int, list[str]] = field(default_factory=dict)
    noncovered_text: dict[int, str] = field(default_factory=dict)
    lcds: dict[int, None] = field(default_factory=dict)  # related LCD ids (numbers)

    @property
    def key(self) -> tuple[int, int]:
        return (self.article, self.version)
