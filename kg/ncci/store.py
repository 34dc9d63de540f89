"""Answer NCCI lookups from the imported tables: one binary search in a memory-mapped array per question.

    store = NcciStore.open()                       # <cache>/ncci; reads each release's meta.json, maps nothing yet
    store.ptp(COLUMN1, COLUMN2, on=date(2024, 5, 1))   # the edit in force, or None
    store.column2_of(CODE, on=...)                   # every edit in force with CODE in Column 1
    store.mue(CODE, on=..., service_type="practitioner")
    store.aoc_primaries(ADDON, on=...)               # the add-on's edits in force: type, primaries
    store.releases()

**Which release answers.** Each kind (``ptp-practitioner``, ``ptp-outpatient``, ``mue-practitioner``,
``mue-outpatient``, ``mue-dme``, ``aoc``) may hold several releases. A lookup on date D uses the
release in force on D: the one with the latest effective date (release.py: v30.1 is 2024-04-01)
on or before D; for a date before every imported release, the earliest one. ``release=`` picks one
instead. PTP and AOC rows carry their own dates, so the earliest release also answers for older dates
as CMS recorded them then; MUE rows carry none, so a MUE before its release's date is that release's
value, which may not have been in force then: ``Mue.release_effective`` says which it is.

**Which edit of a release is in force on D.** A pair (and an add-on/primary pair) can have several
rows: an edit deleted and later added again. A row is in force when its effective date is on or
before D and its deletion date on or after D (CMS's deletion date is the last day an edit applies:
deletions fall on quarter ends, and re-added add-on edits start the day after, 2022365 then 2023001).
If several rows are, the one that applies (modifier indicator 0 or 1) wins over one CMS withdrew (9),
then the latest effective date, then the earliest deletion date.

**The shared PTP copies have no effective dates** (``ReleaseInfo.effective_dates`` is False and
``PtpEdit.effective`` None). An edit is then taken to be in force on every date up to its deletion,
and of a pair's rows the one with the earliest deletion date on or after D answers. What that leaves
uncertain: (1) an edit that began after D reads as in force on D (an edit added in 2023 answers for a
2019 claim); (2) for a pair deleted and re-added, the dates between the deletion and the re-addition
read as covered by the re-added edit; (3) the prior-to-1996 flag is missing from the 2024-07-01 copy.
Dates of service on or after the release's own date are not affected, which is what a claim checker
asks about.
"""

from __future__ import annotations

import array
import bisect
import json
import mmap
import sys
import threading
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any, Literal, NamedTuple, cast

from spinekg.kg.errors import InputError, SpinekgError
from spinekg.kg.ncci.importer import store_root
from spinekg.kg.ncci.layouts import AOC_KIND, CONTRACTOR_DEFINED, KINDS, MUE_KINDS, PTP_KINDS
from spinekg.kg.ncci.tables import FORMAT_VERSION, INDICATOR_MASK, PRIOR_1996
from spinekg.kg.ncci.values import OPEN, code_text, day_date, day_number, require_code

NOT_APPLICABLE = 9  # modifier indicator of an edit CMS withdrew retroactively
CODE_CACHE_LIMIT = 1 << 16


class PtpEdit(NamedTuple):
    """A procedure-to-procedure edit: Column 2 is not paid with Column 1 on one date of service unless
    the modifier indicator is 1 and an NCCI-associated modifier shows the services were distinct."""

    column1: str
    column2: str
    modifier_indicator: int  # 0 not allowed, 1 allowed, 9 not applicable (withdrawn)
    rationale: str
    effective: date | None  # None: the file carried no effective date (the shared copies)
    deletion: date | None  # the last day in force; None: open ('*')
    prior_to_1996: bool | None  # None: the file has no such column
    release: str
    setting: str


class Mue(NamedTuple):
    """A medically unlikely edit: at most ``value`` units of the code; MAI 1 per claim line, 2 and 3 per date of service."""

    code: str
    service_type: str
    value: int
    mai: int
    mai_text: str
    rationale: str
    release: str
    release_effective: date


class AocEdit(NamedTuple):
    """One add-on/primary row of the add-on code edits."""

    addon: str
    primary: str | None  # None: the contractor defines the primaries (CCCCC, type 2)
    edit_type: int  # 1 only the listed primaries; 2 contractor-defined; 3 listed, and the contractor may allow others
    effective: date
    deletion: date | None
    addon_deletion: date | None
    primary_deletion: date | None
    note: str
    release: str


class AddOnEdits(NamedTuple):
    """An add-on's edits in force on a date."""

    addon: str
    release: str
    edits: tuple[AocEdit, ...]

    @property
    def primaries(self) -> tuple[str, ...]:
        return tuple(e.primary for e in self.edits if e.primary is not None)

    @property
    def edit_types(self) -> tuple[int, ...]:
        return tuple(sorted({e.edit_type for e in self.edits}))

    @property
    def closed_list(self) -> bool:
        """True when only the listed primaries are accepted (every edit is type 1)."""
        return all(e.edit_type == 1 for e in self.edits)


@dataclass(frozen=True)
class ReleaseInfo:
    """What meta.json records of one imported release of one kind."""

    kind: str
    release: str
    effective: date
    origin: str
    rows: int
    rows_read: int
    duplicates: int
    bytes: int
    imported_at: str
    import_seconds: float
    sources: tuple[dict[str, Any], ...]
    warnings: tuple[str, ...]
    effective_dates: bool | None  # PTP: whether the rows carry effective dates
    path: Path  # the folder of this version (the link resolved)
    meta: dict[str, Any]

    @classmethod
    def read(cls, folder: Path) -> ReleaseInfo:
        real = folder.resolve()
        try:
            meta = json.loads((real / "meta.json").read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise SpinekgError(f"the NCCI table {folder} is unreadable ({exc}); import it again") from None
        if meta.get("format") != FORMAT_VERSION:
            raise SpinekgError(f"the NCCI table {folder} has format {meta.get('format')}, not {FORMAT_VERSION}; import it again")
        return cls(
            kind=meta["kind"],
            release=meta["release"],
            effective=date.fromisoformat(meta["release_effective"]),
            origin=meta["release_origin"],
            rows=meta["rows"],
            rows_read=meta["rows_read"],
            duplicates=meta["duplicates_dropped"],
            bytes=meta["bytes"],
            imported_at=meta["imported_at"],
            import_seconds=meta["import_seconds"],
            sources=tuple(meta["sources"]),
            warnings=tuple(meta["warnings"]),
            effective_dates=meta.get("effective_dates"),
            path=real,
            meta=meta,
        )

    def summary(self) -> dict[str, Any]:
        """A row for `spinekg ncci releases` (and JSON)."""
        return {
            "kind": self.kind,
            "release": self.release,
            "in_force_from": self.effective.isoformat(),
            "rows": self.rows,
            "bytes": self.bytes,
            "files": ", ".join(s["file"] + (f"[{s['member']}]" if s["member"] else "") for s in self.sources),
            "imported_at": self.imported_at,
            "import_seconds": self.import_seconds,
            "effective_dates": self.effective_dates,
            "sha256": ", ".join(s["sha256"][:12] for s in self.sources),
        }


class MappedTable:
    """The column files of one release, memory-mapped; ``columns[name]`` is a typed memoryview."""

    def __init__(self, info: ReleaseInfo) -> None:
        meta = info.meta
        if meta["byteorder"] != sys.byteorder:
            raise SpinekgError(
                f"the NCCI table {info.path} was written on a {meta['byteorder']}-endian machine; import it again here"
            )
        self.info = info
        self.rows: int = meta["rows"]
        self.strings: list[str] = meta["strings"]
        self.prior_1996_column: bool = bool(meta.get("prior_1996_column"))
        self.columns: dict[str, memoryview] = {}
        self._maps: list[mmap.mmap] = []
        try:
            for column in meta["columns"]:
                self.columns[column["name"]] = self._map(info.path / column["file"], column["type"])
        except BaseException:
            self.close()
            raise

    def _map(self, path: Path, typecode: str) -> memoryview:
        expected = self.rows * array.array(typecode).itemsize
        with open(path, "rb") as handle:
            size = handle.seek(0, 2)
            if size != expected:
                raise SpinekgError(f"the NCCI table file {path} holds {size} bytes, not {expected}; import the release again")
            if size == 0:
                return _typed(memoryview(b""), typecode)
            mapped = mmap.mmap(handle.fileno(), 0, access=mmap.ACCESS_READ)
        self._maps.append(mapped)
        return _typed(memoryview(mapped), typecode)

    def span(self, low: int, high: int) -> tuple[int, int]:
        """The rows whose key is in [low, high)."""
        keys = self.columns["key"]
        start = bisect.bisect_left(keys, low)
        return start, bisect.bisect_left(keys, high, start)

    def rows_of(self, key: int) -> tuple[int, int]:
        """The rows of one key: one binary search, then the few neighbours with the same key."""
        keys = self.columns["key"]
        start = end = bisect.bisect_left(keys, key)
        rows = self.rows
        while end < rows and keys[end] == key:
            end += 1
        return start, end

    def string(self, index: int) -> str:
        return self.strings[index]

    def close(self) -> None:
        for view in self.columns.values():
            view.release()
        self.columns = {}
        for mapped in self._maps:
            mapped.close()
        self._maps = []


class NcciStore:
    """The imported NCCI tables (see the module docstring for which release and which row answer)."""

    def __init__(self, root: Path, infos: list[ReleaseInfo]) -> None:
        self.root = root
        self._infos: dict[str, list[ReleaseInfo]] = {}
        for info in sorted(infos, key=lambda i: (i.effective, i.release)):
            self._infos.setdefault(info.kind, []).append(info)
        self._starts = {kind: [day_number(i.effective) for i in found] for kind, found in self._infos.items()}
        self._tables: dict[tuple[str, str], MappedTable] = {}
        self._lock = threading.Lock()  # a table is mapped once, whichever thread asks first
        self._codes: dict[str, tuple[int, str]] = {}  # as typed -> (number, the code as CMS writes it)
        self._texts: dict[int, str] = {}  # number -> the code (Column 2 codes of column2_of)

    @classmethod
    def open(cls, cache: Path | None = None) -> NcciStore:
        """The store under ``<cache>/ncci`` (cache: kg.paths.cache_dir() unless given); empty if nothing was imported."""
        root = store_root(cache)
        return cls(root, [ReleaseInfo.read(entry) for entry in _entries(root)])

    def is_current(self) -> bool:
        """Whether the store on disk is still the one opened (no release imported, replaced or removed since):
        a long-running process may open a new store when it is not."""
        opened = {info.path for infos in self._infos.values() for info in infos}
        return {entry.resolve() for entry in _entries(self.root)} == opened

    def __enter__(self) -> NcciStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        for table in self._tables.values():
            table.close()
        self._tables = {}

    # --- releases -------------------------------------------------------------------------------------

    def releases(self, kind: str | None = None) -> list[ReleaseInfo]:
        """The imported releases (of one kind), oldest first."""
        if kind is not None:
            return list(self._infos.get(kind, []))
        return [info for k in KINDS for info in self._infos.get(k, [])]

    def release(self, kind: str, on: date | None = None, release: str | None = None) -> ReleaseInfo | None:
        """The release of ``kind`` that answers for ``on`` (module docstring), or the one named; None if none is imported."""
        infos = self._infos.get(kind)
        if release is not None:
            for info in infos or []:
                if info.release == release:
                    return info
            known = ", ".join(i.release for i in infos or []) or "none"
            raise InputError("release", f"no {kind} release {release!r} is imported (imported: {known})")
        if not infos:
            return None
        index = bisect.bisect_right(self._starts[kind], day_number(on or date.today())) - 1
        return infos[max(index, 0)]

    def table(self, info: ReleaseInfo) -> MappedTable:
        """The mapped columns of a release (mapped on first use, kept until close())."""
        key = (info.kind, info.release)
        table = self._tables.get(key)
        if table is None:
            with self._lock:
                table = self._tables.get(key)
                if table is None:
                    table = self._tables[key] = MappedTable(info)
        return table

    def has(self, kind: str) -> bool:
        """Whether a release of ``kind`` (ptp-practitioner, mue-practitioner, aoc ...) is imported."""
        return bool(self._infos.get(kind))

    def knows(self, code: str, on: date | None = None) -> bool:
        """Whether a code is in an imported table in force on ``on``: a Column 1 or Column 2 code is
        found as Column 1 of its own edits or by its MUE, an add-on by its add-on edits. (A code only
        ever in Column 2 and without an MUE is not found: CMS gives nearly every code an MUE.)"""
        try:
            number, _ = self._code(code)
        except InputError:
            return False
        for kind in (*PTP_KINDS.values(), "aoc"):
            info = self.release(kind, on) if self.has(kind) else None
            if info is not None:
                start, end = self.table(info).span(number << 32, (number + 1) << 32)
                if start < end:
                    return True
        for kind in MUE_KINDS.values():
            info = self.release(kind, on) if self.has(kind) else None
            if info is not None:
                codes = self.table(info).columns["code"]
                index = bisect.bisect_left(codes, number)
                if index < len(codes) and codes[index] == number:
                    return True
        return False

    # --- lookups --------------------------------------------------------------------------------------

    def ptp(
        self, column1: str, column2: str, on: date | None = None, setting: str = "practitioner", release: str | None = None
    ) -> PtpEdit | None:
        """The edit of the pair (Column 1, Column 2) in force on ``on`` (default today), or None."""
        info = self.release(_kind(PTP_KINDS, setting, "setting"), on, release)
        if info is None:
            return None
        table = self.table(info)
        number1, text1 = self._code(column1)
        number2, text2 = self._code(column2)
        start, end = table.rows_of((number1 << 32) | number2)
        if start == end:
            return None
        index = _ptp_in_force(table, start, end, day_number(on or date.today()))
        return None if index is None else _ptp_edit(table, index, setting, text1, text2)

    def ptp_among(self, codes: list[str], on: date | None = None, setting: str = "practitioner") -> list[PtpEdit]:
        """The edits in force on ``on`` between any two of ``codes`` (both column orders), for one claim:
        the release, its table and the codes' numbers are resolved once, then one binary search per
        ordered pair, and an edit is built only for the pairs that have one."""
        info = self.release(_kind(PTP_KINDS, setting, "setting"), on)
        if info is None or len(codes) < 2:
            return []
        table = self.table(info)
        keys = table.columns["key"]
        rows = table.rows
        numbers = [self._code(code) for code in codes]
        day = day_number(on or date.today())
        found = []
        for number1, text1 in numbers:
            high = number1 << 32
            for number2, text2 in numbers:
                if number1 == number2:
                    continue
                key = high | number2
                start = bisect.bisect_left(keys, key)
                if start == rows or keys[start] != key:
                    continue
                end = start + 1
                while end < rows and keys[end] == key:
                    end += 1
                index = _ptp_in_force(table, start, end, day)
                if index is not None:
                    found.append(_ptp_edit(table, index, setting, text1, text2))
        return found

    def ptp_between(self, code_a: str, code_b: str, on: date | None = None, setting: str = "practitioner") -> list[PtpEdit]:
        """The edits between two codes in either column order, in force on ``on``."""
        found = [self.ptp(code_a, code_b, on, setting), self.ptp(code_b, code_a, on, setting)]
        return [edit for edit in found if edit is not None]

    def ptp_history(self, column1: str, column2: str, setting: str = "practitioner", release: str | None = None) -> list[PtpEdit]:
        """Every row of the pair in a release (the newest unless named): its edits over time."""
        kind = _kind(PTP_KINDS, setting, "setting")
        infos = self._infos.get(kind)
        if not infos:
            return []
        info = self.release(kind, release=release) if release else infos[-1]
        assert info is not None  # release() names what is missing
        table = self.table(info)
        number1, text1 = self._code(column1)
        number2, text2 = self._code(column2)
        start, end = table.rows_of((number1 << 32) | number2)
        return [_ptp_edit(table, i, setting, text1, text2) for i in range(start, end)]

    def column2_of(
        self, code: str, on: date | None = None, setting: str = "practitioner", release: str | None = None
    ) -> list[PtpEdit]:
        """Every edit in force on ``on`` with ``code`` in Column 1, by Column 2 code (indicator 9 ones included)."""
        info = self.release(_kind(PTP_KINDS, setting, "setting"), on, release)
        if info is None:
            return []
        table = self.table(info)
        number, text = self._code(code)
        start, end = table.span(number << 32, (number + 1) << 32)
        keys = table.columns["key"]
        day = day_number(on or date.today())
        found = []
        while start < end:
            stop = start + 1
            while stop < end and keys[stop] == keys[start]:
                stop += 1
            index = _ptp_in_force(table, start, stop, day)
            if index is not None:
                found.append(_ptp_edit(table, index, setting, text, self._text(keys[index] & 0xFFFFFFFF)))
            start = stop
        return found

    def mue(
        self, code: str, on: date | None = None, service_type: str = "practitioner", release: str | None = None
    ) -> Mue | None:
        """The MUE of a code for a service type (practitioner, outpatient, dme) in the release in force on ``on``."""
        info = self.release(_kind(MUE_KINDS, service_type, "service_type"), on, release)
        if info is None:
            return None
        table = self.table(info)
        codes = table.columns["code"]
        number, text = self._code(code)
        index = bisect.bisect_left(codes, number)
        if index == len(codes) or codes[index] != number:
            return None
        c = table.columns
        return Mue(
            text,
            service_type,
            c["value"][index],
            c["mai"][index],
            table.strings[c["mai_text"][index]],
            table.strings[c["rationale"][index]],
            info.release,
            info.effective,
        )

    def aoc_primaries(self, addon: str, on: date | None = None, release: str | None = None) -> AddOnEdits | None:
        """The add-on code edits of ``addon`` in force on ``on`` (its primaries and types), or None if it has none."""
        info = self.release(AOC_KIND, on, release)
        if info is None:
            return None
        table = self.table(info)
        number, text = self._code(addon)
        start, end = table.span(number << 32, (number + 1) << 32)
        day = day_number(on or date.today())
        c = table.columns
        edits = []
        for i in range(start, end):
            last = min(c["deletion"][i], c["addon_deletion"][i], c["primary_deletion"][i])
            if c["effective"][i] <= day <= last:
                edits.append(_aoc_edit(table, i))
        return AddOnEdits(text, info.release, tuple(edits)) if edits else None

    def _code(self, typed: str) -> tuple[int, str]:
        """A code as typed: its number and its canonical text (remembered: claims repeat codes)."""
        found = self._codes.get(typed)
        if found is None:
            number = require_code(typed)
            if len(self._codes) >= CODE_CACHE_LIMIT:
                self._codes.clear()
            found = self._codes[typed] = (number, code_text(number))
        return found

    def _text(self, number: int) -> str:
        text = self._texts.get(number)
        if text is None:
            if len(self._texts) >= CODE_CACHE_LIMIT:
                self._texts.clear()
            text = self._texts[number] = code_text(number)
        return text


def _entries(root: Path) -> list[Path]:
    """The published releases under the store root: ``<kind>/<release>`` (links to complete folders)."""
    found = []
    for kind in KINDS:
        folder = root / kind
        if folder.is_dir():
            found += [e for e in sorted(folder.iterdir()) if not e.name.startswith(".") and (e / "meta.json").is_file()]
    return found


def _typed(view: memoryview, typecode: str) -> memoryview:
    """A byte view as an array of ``typecode`` (one of tables.py's: Q, I, H, B)."""
    if typecode not in ("Q", "I", "H", "B"):
        raise SpinekgError(f"unknown column type {typecode!r} in an NCCI table; import it again")
    return view.cast(cast(Literal["Q", "I", "H", "B"], typecode))


def _kind(kinds: dict[str, str], name: str, what: str) -> str:
    kind = kinds.get(name)
    if kind is None:
        raise InputError(what, f"{name!r} is not one of {', '.join(kinds)}")
    return kind


def _ptp_in_force(table: MappedTable, start: int, end: int, day: int) -> int | None:
    """Of a pair's rows [start, end), the one in force on ``day`` (module docstring), or None."""
    c = table.columns
    effective, deletion, flags = c["effective"], c["deletion"], c["flags"]
    best: int | None = None
    best_rank = (False, -1)
    for i in range(start, end):
        if effective[i] <= day <= deletion[i]:
            rank = ((flags[i] & INDICATOR_MASK) != NOT_APPLICABLE, effective[i])
            if best is None or rank > best_rank:
                best, best_rank = i, rank
    return best


def _ptp_edit(table: MappedTable, index: int, setting: str, column1: str | None = None, column2: str | None = None) -> PtpEdit:
    """The edit of a row; the caller may pass the codes it already has as text."""
    c = table.columns
    if column1 is None or column2 is None:
        key = c["key"][index]
        column1, column2 = code_text(key >> 32), code_text(key & 0xFFFFFFFF)
    flags = c["flags"][index]
    return PtpEdit(
        column1,
        column2,
        flags & INDICATOR_MASK,
        table.strings[c["rationale"][index]],
        day_date(c["effective"][index]),
        day_date(c["deletion"][index]),
        bool(flags & PRIOR_1996) if table.prior_1996_column else None,
        table.info.release,
        setting,
    )


def _aoc_edit(table: MappedTable, index: int) -> AocEdit:
    c = table.columns
    key = c["key"][index]
    primary = code_text(key & 0xFFFFFFFF)
    effective = day_date(c["effective"][index])
    assert effective is not None
    return AocEdit(
        code_text(key >> 32),
        None if primary == CONTRACTOR_DEFINED else primary,
        c["type"][index],
        effective,
        _open(c["deletion"][index]),
        _open(c["addon_deletion"][index]),
        _open(c["primary_deletion"][index]),
        table.strings[c["note"][index]],
        table.info.release,
    )


def _open(day: int) -> date | None:
    return None if day == OPEN else day_date(day)
