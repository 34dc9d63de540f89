"""The on-disk tables: one folder per release of a kind, one file per column, sorted by the key.

Each table is a set of parallel fixed-width arrays (``<column>.<u64|u32|u16|u8>``, native byte order,
which meta.json records) sorted by the key column, so that a lookup is one binary search in the
memory-mapped key file, and a code's rows (a pair's edits over time, an add-on's primaries) are
neighbours. Strings (rationales, MAI texts, notes) are ids into the ``strings`` list of meta.json.

While importing, a row travels as one integer whose bits are the columns in this order, most
significant first, followed by the input's number (8 bits) and row (32 bits): sorting the integers
sorts the rows by key, then by the other columns (a pair's edits by effective then deletion date),
and the input and row are there to name a conflicting row in an error. Strings are numbered as they
are met while reading and renumbered in sorted order as the table is written, so that the same rows
give the same files whatever order they came in.
"""

from __future__ import annotations

import array
import os
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import BinaryIO

SOURCE_BITS, ROW_BITS = 8, 32
PROVENANCE_BITS = SOURCE_BITS + ROW_BITS
MAX_SOURCES = (1 << SOURCE_BITS) - 1
MAX_ROW = (1 << ROW_BITS) - 1
_SUFFIX = {"Q": "u64", "I": "u32", "H": "u16", "B": "u8"}
_BITS = {"Q": 64, "I": 32, "H": 16, "B": 8}
FORMAT_VERSION = 1


@dataclass(frozen=True)
class Column:
    name: str
    typecode: str  # array/memoryview format: Q, I, H or B
    text: bool = False  # an id into meta.json's sorted ``strings``

    @property
    def file(self) -> str:
        return f"{self.name}.{_SUFFIX[self.typecode]}"

    @property
    def bits(self) -> int:
        return _BITS[self.typecode]


@dataclass(frozen=True)
class Schema:
    """The columns of a table kind, the key first; ``unique`` tables allow one row per key (MUE)."""

    family: str
    columns: tuple[Column, ...]
    unique: bool

    @property
    def record_bytes(self) -> int:
        return (sum(c.bits for c in self.columns) + PROVENANCE_BITS + 7) // 8

    @cached_property
    def shifts(self) -> tuple[int, ...]:
        """Where each column's bits start in a payload (the record shifted right by PROVENANCE_BITS)."""
        shifts, offset = [], 0
        for column in reversed(self.columns):
            shifts.append(offset)
            offset += column.bits
        return tuple(reversed(shifts))

    @property
    def key_shift(self) -> int:
        return self.shifts[0]

    def pack(self, values: tuple[int, ...], source: int, row: int) -> int:
        record = 0
        for value, shift in zip(values, self.shifts, strict=True):
            record |= value << shift
        return (record << PROVENANCE_BITS) | (source << ROW_BITS) | min(row, MAX_ROW)

    def unpack(self, payload: int) -> list[int]:
        """The column values of a payload."""
        return [(payload >> shift) & ((1 << c.bits) - 1) for shift, c in zip(self.shifts, self.columns, strict=True)]


PTP = Schema(
    "ptp",
    (
        Column("key", "Q"),
        Column("effective", "H"),
        Column("deletion", "H"),
        Column("flags", "B"),
        Column("rationale", "H", text=True),
    ),
    unique=False,
)
MUE = Schema(
    "mue",
    (
        Column("code", "I"),
        Column("value", "I"),
        Column("mai", "B"),
        Column("mai_text", "H", text=True),
        Column("rationale", "H", text=True),
    ),
    unique=True,
)
AOC = Schema(
    "aoc",
    (
        Column("key", "Q"),
        Column("effective", "H"),
        Column("deletion", "H"),
        Column("addon_deletion", "H"),
        Column("primary_deletion", "H"),
        Column("type", "B"),
        Column("note", "H", text=True),
    ),
    unique=False,
)
SCHEMAS = {"ptp": PTP, "mue": MUE, "aoc": AOC}

# the flags byte of a PTP row: the modifier indicator (0, 1 or 9) and the "in existence prior to 1996" star
INDICATOR_MASK = 0x0F
PRIOR_1996 = 0x10


def pair_key(column1: int, column2: int) -> int:
    return (column1 << 32) | column2


class ColumnWriter:
    """Appends rows (as payloads) to the column files of a folder, a block at a time (bounded memory),
    one column at a time; string ids are renumbered on the way (``renumber``)."""

    BLOCK = 1 << 16

    def __init__(self, folder: Path, schema: Schema, renumber: list[int]) -> None:
        self.schema = schema
        self.folder = folder
        self.renumber = renumber
        self._files: list[BinaryIO] = [open(folder / c.file, "wb") for c in schema.columns]  # noqa: SIM115 - closed in close()
        self._payloads: list[int] = []
        self.rows = 0

    def append(self, payload: int) -> None:
        self._payloads.append(payload)
        if len(self._payloads) >= self.BLOCK:
            self._flush()

    def _flush(self) -> None:
        payloads = self._payloads
        for column, shift, handle in zip(self.schema.columns, self.schema.shifts, self._files, strict=True):
            mask = (1 << column.bits) - 1
            if column.text:
                renumber = self.renumber
                values = [renumber[(p >> shift) & mask] for p in payloads]
            else:
                values = [(p >> shift) & mask for p in payloads]
            array.array(column.typecode, values).tofile(handle)
        self.rows += len(payloads)
        self._payloads = []

    def close(self) -> None:
        """Write what is left and make it durable before the folder is renamed into place."""
        try:
            self._flush()
            for handle in self._files:
                handle.flush()
                os.fsync(handle.fileno())
        finally:
            for handle in self._files:
                handle.close()

    def abandon(self) -> None:
        for handle in self._files:
            handle.close()
