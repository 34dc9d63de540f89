"""One data row of each layout into the packed values of its table (tables.py), or a ValueError saying why not.

Each parser is made for one file's header (the column of each role) and returns ``(kind, payload)``:
the table the row belongs to (a PTP file's setting, a MUE row's service type) and its column values
as one integer laid out by the table's schema (strings interned as ids). Codes and dates repeat across
millions of rows, so each parser keeps what it has converted (bounded: it stops remembering after
``CACHE_LIMIT`` entries).
"""

from __future__ import annotations

from collections.abc import Callable

from spinekg.kg.ncci.layouts import AOC_KIND, MUE_KINDS, PTP_KINDS, Header, mue_service_of
from spinekg.kg.ncci.tables import PRIOR_1996, Schema, pair_key
from spinekg.kg.ncci.values import OPEN, UNKNOWN, code_number, parse_cms_date

CACHE_LIMIT = 1 << 17
MODIFIER_INDICATORS = {"0": 0, "1": 1, "9": 9}
MUE_ADJUDICATION = {"1": 1, "2": 2, "3": 3}  # MAI text begins with its number: "3 Date of Service Edit: Clinical"
AOC_TYPES = {"1": 1, "2": 2, "3": 3}
MAX_MUE = (1 << 32) - 1

Intern = Callable[[str], int]
Parser = Callable[[list[str]], tuple[str, int]]


class _Converter:
    def __init__(self, header: Header, schema: Schema) -> None:
        self.shift = dict(zip((c.name for c in schema.columns), schema.shifts, strict=True))
        self.columns = header.columns
        self.width = max(header.columns.values()) + 1
        self._codes: dict[str, int] = {}
        self._days: dict[str, int] = {}

    def cells(self, row: list[str]) -> None:
        if len(row) < self.width:
            raise ValueError(f"{len(row)} column(s); the header has {self.width}")

    def code(self, text: str, what: str) -> int:
        found = self._codes.get(text)
        if found is not None:
            return found
        stripped = text.strip()
        number = code_number(stripped)
        if number is None:
            raise ValueError(f"{what} {stripped[:20]!r} is not a HCPCS/CPT code (five characters, 0-9 and A-Z)")
        if len(self._codes) < CACHE_LIMIT:
            self._codes[text] = number
        return number

    def day(self, text: str, what: str, *, blank: int | None = None) -> int:
        found = self._days.get(text)
        if found is not None:
            return found
        stripped = text.strip()
        if stripped in ("", "*"):  # CMS's "*=no data"; a spreadsheet leaves the cell empty
            if blank is None:
                raise ValueError(f"{what} is missing")
            return blank
        try:
            number = parse_cms_date(stripped)
        except ValueError as exc:
            raise ValueError(f"{what}: {exc}") from None
        if len(self._days) < CACHE_LIMIT:
            self._days[text] = number
        return number


class PtpParser(_Converter):
    """Column 1, Column 2, [prior to 1996], [effective], deletion (or *), modifier indicator, rationale.

    A row whose deletion date is before its effective date is kept as CMS wrote it (it is never in
    force, like the rows CMS withdraws by giving them one day); refusing it would refuse the release."""

    def __init__(self, header: Header, schema: Schema, setting: str, intern: Intern) -> None:
        super().__init__(header, schema)
        self.kind = PTP_KINDS[setting]
        self.intern = intern
        c = header.columns
        self.c1, self.c2, self.dele, self.mod, self.rat = c["column1"], c["column2"], c["deletion"], c["modifier"], c["rationale"]
        self.eff = c.get("effective")
        self.prior = c.get("prior_1996")

    def __call__(self, row: list[str]) -> tuple[str, int]:
        self.cells(row)
        key = pair_key(self.code(row[self.c1], "Column 1"), self.code(row[self.c2], "Column 2"))
        effective = UNKNOWN if self.eff is None else self.day(row[self.eff], "the effective date")
        deletion = self.day(row[self.dele], "the deletion date", blank=OPEN)
        indicator = MODIFIER_INDICATORS.get(row[self.mod].strip())
        if indicator is None:
            raise ValueError(f"modifier indicator {row[self.mod].strip()[:10]!r} is not 0, 1 or 9")
        flags = indicator
        if self.prior is not None:
            star = row[self.prior].strip()
            if star not in ("", "*"):
                raise ValueError(f"'in existence prior to 1996' is {star[:10]!r}, not * or blank")
            flags |= PRIOR_1996 if star else 0
        s = self.shift
        return self.kind, (
            key << s["key"]
            | effective << s["effective"]
            | deletion << s["deletion"]
            | flags << s["flags"]
            | self.intern(row[self.rat].strip()) << s["rationale"]
        )


class MueParser(_Converter):
    """HCPCS/CPT code, MUE value, MAI (text beginning 1, 2 or 3), rationale; the service type from the
    header (CMS's "<service> Services MUE Values") or the row (the copies' service_type)."""

    def __init__(self, header: Header, schema: Schema, intern: Intern) -> None:
        super().__init__(header, schema)
        self.intern = intern
        c = header.columns
        self.code_col, self.value, self.mai, self.rat = c["code"], c["value"], c["mai"], c["rationale"]
        self.service_col = c.get("service_type")
        told = mue_service_of(header.cells[self.value])
        self.kind = MUE_KINDS[told] if told else None
        self._services: dict[str, str] = {}

    @staticmethod
    def tells_service(header: Header) -> bool:
        return "service_type" in header.columns or mue_service_of(header.cells[header.columns["value"]]) is not None

    def __call__(self, row: list[str]) -> tuple[str, int]:
        self.cells(row)
        kind = self.kind if self.service_col is None else self._service(row[self.service_col])
        if kind is None:
            raise ValueError("no service type")
        code = self.code(row[self.code_col], "the HCPCS/CPT code")
        text = row[self.value].strip()
        if not (text.isascii() and text.isdigit()) or int(text) > MAX_MUE:
            raise ValueError(f"MUE value {text[:12]!r} is not a whole number of units")
        mai_text = " ".join(row[self.mai].split())
        mai = MUE_ADJUDICATION.get(mai_text[:1])
        if mai is None or (len(mai_text) > 1 and mai_text[1].isdigit()):
            raise ValueError(f"MUE adjudication indicator {mai_text[:30]!r} does not begin with 1, 2 or 3")
        s = self.shift
        return kind, (
            code << s["code"]
            | int(text) << s["value"]
            | mai << s["mai"]
            | self.intern(mai_text) << s["mai_text"]
            | self.intern(row[self.rat].strip()) << s["rationale"]
        )

    def _service(self, text: str) -> str:
        kind = self._services.get(text)
        if kind is None:
            service = mue_service_of(text)
            if service is None:
                raise ValueError(f"service type {text.strip()[:30]!r} is not Practitioner, Outpatient Hospital or DME Supplier")
            kind = self._services[text] = MUE_KINDS[service]
        return kind


class AocParser(_Converter):
    """Edit type, add-on code, its deletion, primary code (CCCCC: contractor-defined), its deletion,
    edit effective and deletion dates (Julian YYYYDDD), special instruction notes."""

    def __init__(self, header: Header, schema: Schema, intern: Intern) -> None:
        super().__init__(header, schema)
        self.intern = intern
        c = header.columns
        self.type, self.addon, self.primary, self.eff = c["type"], c["addon"], c["primary"], c["effective"]
        self.dele, self.addon_del, self.primary_del, self.note = (
            c.get("deletion"),
            c.get("addon_deletion"),
            c.get("primary_deletion"),
            c.get("note"),
        )

    def _optional_day(self, row: list[str], column: int | None, what: str) -> int:
        return OPEN if column is None else self.day(row[column], what, blank=OPEN)

    def __call__(self, row: list[str]) -> tuple[str, int]:
        self.cells(row)
        edit_type = AOC_TYPES.get(row[self.type].strip())
        if edit_type is None:
            raise ValueError(f"AOC edit type {row[self.type].strip()[:10]!r} is not 1, 2 or 3")
        key = pair_key(self.code(row[self.addon], "the add-on code"), self.code(row[self.primary], "the primary code"))
        effective = self.day(row[self.eff], "the edit's effective date")
        deletion = self._optional_day(row, self.dele, "the edit's deletion date")
        note = self.intern(" ".join(row[self.note].split())) if self.note is not None else self.intern("")
        s = self.shift
        return AOC_KIND, (
            key << s["key"]
            | effective << s["effective"]
            | deletion << s["deletion"]
            | self._optional_day(row, self.addon_del, "the add-on code's deletion date") << s["addon_deletion"]
            | self._optional_day(row, self.primary_del, "the primary code's deletion date") << s["primary_deletion"]
            | edit_type << s["type"]
            | note << s["note"]
        )
