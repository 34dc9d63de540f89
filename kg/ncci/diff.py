"""What changed between two imported PTP releases: edits added, deleted, changed, removed.

The two tables are walked together, one Column 1 code at a time; a code whose rows are byte-for-byte
the same in both (nearly all of them between two quarters) is passed over without reading its rows.
The rows of a pair are matched between the releases by effective date when both releases carry
effective dates (CMS's TXT files), else in order (a pair's rows are sorted by effective, then deletion
date: the shared copies have no effective dates, so a re-added edit is the later row). A matched row is

* ``deleted`` when it was open (``*``) and has a deletion date now;
* ``changed`` when anything else differs: the modifier indicator (9: CMS withdrew it), the rationale,
  a deletion date moved, the prior-to-1996 flag (compared only when both files have that column);

a row only the new release has is ``added`` (a new edit, or an edit added again after its deletion),
and one only the old release has is ``removed`` (CMS dropped it from the file: unusual, since deleted
edits stay listed with their deletion dates).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from spinekg.kg.ncci.layouts import PTP_KINDS
from spinekg.kg.ncci.store import MappedTable, NcciStore, PtpEdit, ReleaseInfo, _kind, _ptp_edit
from spinekg.kg.ncci.tables import PRIOR_1996
from spinekg.kg.ncci.values import OPEN, require_code

STATUSES = ("added", "deleted", "changed", "removed")
COLUMNS = [
    "status",
    "column1",
    "column2",
    *(f"{side}_{name}" for side in ("old", "new") for name in ("indicator", "effective", "deletion", "rationale")),
]
_END = 1 << 64


@dataclass
class DiffRow:
    status: str
    old: PtpEdit | None
    new: PtpEdit | None

    def flat(self) -> dict[str, Any]:
        """One row for a table or CSV: the pair, then the old and the new edit's indicator, dates and rationale."""
        edit = self.new or self.old
        assert edit is not None
        row: dict[str, Any] = {"status": self.status, "column1": edit.column1, "column2": edit.column2}
        for side, value in (("old", self.old), ("new", self.new)):
            row[f"{side}_indicator"] = None if value is None else value.modifier_indicator
            row[f"{side}_effective"] = None if value is None or value.effective is None else value.effective.isoformat()
            row[f"{side}_deletion"] = None if value is None else (value.deletion.isoformat() if value.deletion else "*")
            row[f"{side}_rationale"] = None if value is None else value.rationale
        return row


@dataclass
class PtpDiff:
    setting: str
    old: ReleaseInfo
    new: ReleaseInfo
    code: str | None
    matched_by: str  # "effective date" or "order"
    counts: dict[str, int] = field(default_factory=lambda: dict.fromkeys((*STATUSES, "unchanged"), 0))
    rows: list[DiffRow] = field(default_factory=list)

    def summary(self) -> dict[str, Any]:
        return {
            "setting": self.setting,
            "old": self.old.release,
            "new": self.new.release,
            "code": self.code,
            "matched_by": self.matched_by,
            **self.counts,
        }


def diff_ptp(
    store: NcciStore, old: str, new: str, setting: str = "practitioner", code: str | None = None, keep_rows: bool | None = None
) -> PtpDiff:
    """The differences between two imported PTP releases (all pairs, or the pairs with ``code`` in either column).

    Rows are kept when ``keep_rows`` (default: only with a code, since a whole table's changes run to
    thousands); the counts are always complete. With a code, ``unchanged`` counts only the code's rows."""
    kind = _kind(PTP_KINDS, setting, "setting")
    old_info, new_info = store.release(kind, release=old), store.release(kind, release=new)
    assert old_info is not None and new_info is not None
    number = require_code(code, "--code") if code is not None else None
    by_effective = bool(old_info.effective_dates and new_info.effective_dates)
    result = PtpDiff(
        setting, old_info, new_info, code.strip().upper() if code else None, "effective date" if by_effective else "order"
    )
    keep = keep_rows if keep_rows is not None else number is not None
    _walk(store.table(old_info), store.table(new_info), result, number, keep, by_effective)
    return result


def _walk(old: MappedTable, new: MappedTable, result: PtpDiff, code: int | None, keep: bool, by_effective: bool) -> None:
    old_keys, new_keys = old.columns["key"], new.columns["key"]
    same_strings = old.strings == new.strings
    i = j = 0
    while i < old.rows or j < new.rows:
        first = min(old_keys[i] >> 32 if i < old.rows else _END, new_keys[j] >> 32 if j < new.rows else _END)
        i2 = old.span(first << 32, (first + 1) << 32)[1] if i < old.rows and old_keys[i] >> 32 == first else i
        j2 = new.span(first << 32, (first + 1) << 32)[1] if j < new.rows and new_keys[j] >> 32 == first else j
        if same_strings and _same_rows(old, new, i, i2, j, j2):
            if code is None or first == code:
                result.counts["unchanged"] += i2 - i
            else:
                result.counts["unchanged"] += sum(1 for k in range(i, i2) if old_keys[k] & 0xFFFFFFFF == code)
        else:
            _compare(old, new, (i, i2), (j, j2), result, code, keep, by_effective)
        i, j = i2, j2


def _same_rows(old: MappedTable, new: MappedTable, i: int, i2: int, j: int, j2: int) -> bool:
    if i2 - i != j2 - j:
        return False
    for name, view in old.columns.items():
        other = new.columns[name]
        if view[i:i2] != other[j:j2]:
            return False
    return True


def _rows(table: MappedTable, start: int, end: int) -> dict[int, list[int]]:
    keys = table.columns["key"]
    pairs: dict[int, list[int]] = {}
    for index in range(start, end):
        pairs.setdefault(keys[index], []).append(index)
    return pairs


def _compare(
    old: MappedTable,
    new: MappedTable,
    old_span: tuple[int, int],
    new_span: tuple[int, int],
    result: PtpDiff,
    code: int | None,
    keep: bool,
    by_effective: bool,
) -> None:
    old_pairs, new_pairs = _rows(old, *old_span), _rows(new, *new_span)
    setting = result.setting
    for key in sorted(old_pairs.keys() | new_pairs.keys()):
        if code is not None and key >> 32 != code and key & 0xFFFFFFFF != code:
            continue
        for old_index, new_index in _match(old, new, old_pairs.get(key, []), new_pairs.get(key, []), by_effective):
            status = _status(old, new, old_index, new_index, by_effective)
            result.counts[status] += 1
            if keep and status != "unchanged":
                result.rows.append(
                    DiffRow(
                        status,
                        None if old_index is None else _ptp_edit(old, old_index, setting),
                        None if new_index is None else _ptp_edit(new, new_index, setting),
                    )
                )


def _match(
    old: MappedTable, new: MappedTable, old_rows: list[int], new_rows: list[int], by_effective: bool
) -> list[tuple[int | None, int | None]]:
    if not by_effective:
        pairs: list[tuple[int | None, int | None]] = []
        for n in range(max(len(old_rows), len(new_rows))):
            pairs.append((old_rows[n] if n < len(old_rows) else None, new_rows[n] if n < len(new_rows) else None))
        return pairs
    old_by = {old.columns["effective"][i]: i for i in old_rows}
    new_by = {new.columns["effective"][i]: i for i in new_rows}
    return [(old_by.get(day), new_by.get(day)) for day in sorted(old_by.keys() | new_by.keys())]


def _status(old: MappedTable, new: MappedTable, old_index: int | None, new_index: int | None, by_effective: bool) -> str:
    if old_index is None:
        return "added"
    if new_index is None:
        return "removed"
    a, b = old.columns, new.columns
    before, after = a["deletion"][old_index], b["deletion"][new_index]
    flags_a, flags_b = a["flags"][old_index], b["flags"][new_index]
    if not (old.info.meta.get("prior_1996_column") and new.info.meta.get("prior_1996_column")):
        flags_a, flags_b = flags_a & ~PRIOR_1996, flags_b & ~PRIOR_1996
    same_rationale = old.strings[a["rationale"][old_index]] == new.strings[b["rationale"][new_index]]
    same_effective = not by_effective or a["effective"][old_index] == b["effective"][new_index]
    if before == after and flags_a == flags_b and same_rationale and same_effective:
        return "unchanged"
    if before == OPEN and after != OPEN and flags_a == flags_b and same_rationale and same_effective:
        return "deleted"
    return "changed"
