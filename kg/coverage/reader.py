"""Reading the inputs of ``spinekg import coverage`` as tables of rows, one row at a time.

An input is a CSV file, a Coverage API JSON response, or a zip of them (the MCD download nests a
``*_csv.zip`` inside its zip, which is copied to a temporary file first). What an input is
comes from its bytes (a zip by its magic number, JSON by its first character), and which table it
holds from its header (tables.py). CSV text is UTF-8 when its first 64 KiB decode as UTF-8, else
Windows-1252 (the MCD files are Windows exports); its paragraph fields are large HTML, so a field may
be up to ``MAX_FIELD`` characters. A JSON response is at most ``MAX_JSON_BYTES``: the API answers
per article, so a response is small, and a bigger file is refused rather than read into memory."""

from __future__ import annotations

import codecs
import contextlib
import csv
import io
import json
import shutil
import zipfile
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import IO, Any

from spinekg.kg.coverage.tables import EXPECTED, Layout, recognise
from spinekg.kg.errors import InputError
from spinekg.kg.streams import Prefixed

SNIFF_BYTES = 1 << 16
ZIP_MAGIC = b"PK\x03\x04"
MAX_FIELD = 64 << 20  # the MCD paragraphs are HTML; csv's default limit (128 KiB) is too small for some
MAX_JSON_BYTES = 64 << 20
MAX_NESTING = 2  # a zip inside a zip (the MCD download), no deeper
READ_ERRORS: tuple[type[Exception], ...] = (EOFError, OSError, zlib.error, zipfile.BadZipFile)
TEXT_ERRORS: tuple[type[Exception], ...] = (csv.Error, UnicodeDecodeError, *READ_ERRORS)


class CoverageFileError(InputError):
    """A file that cannot be imported: names the file (and the zip member) and the row."""

    def __init__(self, source: str, row: str | None, message: str) -> None:
        super().__init__(f"{source} {row}" if row else source, message)
        self.source = source
        self.row = row


@dataclass(frozen=True)
class Table:
    """One table of an input: a file, or a member of a zip (``member``). A zip inside a zip is first
    copied to a temporary file (``path``), so that its members are read straight from it."""

    path: Path
    member: str | None
    kind: str  # csv | json
    layout: Layout
    columns: tuple[str, ...]
    label: str


def tables_of(path: Path, spool: Path) -> tuple[list[Table], list[str]]:
    """The tables an input holds, and notes on the members skipped. A file given by name that is no
    table is an error; a zip member that is none is skipped (the download holds PDFs and readmes).
    ``spool`` is a folder for the inner zips, removed by the caller after the import."""
    notes: list[str] = []
    try:
        with open(path, "rb") as handle:
            head = handle.read(SNIFF_BYTES)
    except OSError as exc:
        raise CoverageFileError(str(path), None, f"cannot read it: {exc.strerror or exc}") from None
    if head.startswith(ZIP_MAGIC):
        found = list(_zip_tables(path, str(path), 1, spool, notes))
        if not found:
            raise CoverageFileError(str(path), None, "the zip holds no table of the article download; " + EXPECTED)
        return found, notes
    table = _table(path, None, str(path), head, strict=True)
    assert table is not None  # strict: an unknown header raises
    return [table], notes


def _zip_tables(path: Path, label: str, depth: int, spool: Path, notes: list[str]) -> Iterator[Table]:
    try:
        archive = zipfile.ZipFile(path)
    except (zipfile.BadZipFile, OSError) as exc:
        raise CoverageFileError(label, None, f"not a readable zip: {exc}") from None
    with archive:
        for info in archive.infolist():
            if info.is_dir():
                continue
            name = info.filename
            suffix = PurePosixPath(name).suffix.lower()
            where = f"{label}[{name}]"
            if suffix == ".zip":
                if depth >= MAX_NESTING:
                    notes.append(f"{where}: a zip nested deeper than the MCD download's, skipped")
                    continue
                inner = spool / f"{len(list(spool.iterdir()))}.zip"
                try:
                    with archive.open(name) as member, open(inner, "wb") as out:
                        shutil.copyfileobj(member, out, 1 << 20)
                except READ_ERRORS as exc:
                    raise CoverageFileError(where, None, f"unreadable: {exc}") from None
                yield from _zip_tables(inner, where, depth + 1, spool, notes)
                continue
            if suffix not in (".csv", ".json", ".txt"):
                notes.append(f"{where}: not a table (.csv or .json), skipped")
                continue
            try:
                with archive.open(name) as member:
                    head = member.read(SNIFF_BYTES)
            except READ_ERRORS as exc:
                raise CoverageFileError(where, None, f"unreadable: {exc}") from None
            table = _table(path, name, where, head, strict=False)
            if table is None:
                notes.append(f"{where}: not a table of the article download, skipped")
            else:
                yield table


def _table(path: Path, member: str | None, label: str, head: bytes, strict: bool) -> Table | None:
    """Recognise a table from its first bytes: JSON by its first character, else a CSV header."""
    stripped = head.lstrip(b"\xef\xbb\xbf \t\r\n")
    if stripped[:1] in (b"{", b"["):
        columns = _json_columns(path, member, label)
        kind = "json"
    else:
        text = head.decode(_encoding(head), errors="replace")
        try:
            columns = next(csv.reader(io.StringIO(text)), [])
        except csv.Error as exc:
            raise CoverageFileError(label, "row 1", f"unreadable header: {exc}") from None
        kind = "csv"
    layout = recognise(columns)
    if layout is None:
        if strict:
            shown = ", ".join(c[:30] for c in columns[:6]) or "nothing"
            raise CoverageFileError(label, "row 1", f"unknown header ({shown}); {EXPECTED}")
        return None
    return Table(path, member, kind, layout, tuple(c.strip().lower() for c in columns), label)


def _encoding(head: bytes) -> str:
    try:
        codecs.getincrementaldecoder("utf-8")().decode(head, final=False)
    except UnicodeDecodeError:
        return "cp1252"
    return "utf-8-sig"


@contextlib.contextmanager
def _open(path: Path, member: str | None) -> Iterator[IO[bytes]]:
    with contextlib.ExitStack() as stack:
        if member is None:
            yield stack.enter_context(open(path, "rb"))
        else:
            yield stack.enter_context(stack.enter_context(zipfile.ZipFile(path)).open(member))


def rows(table: Table) -> Iterator[tuple[str, dict[str, Any]]]:
    """The table's rows as (where, {column: value}); ``where`` is ``row N`` (the header is row 1) for a
    CSV and ``data[N]`` for a JSON response, for error messages."""
    if table.kind == "json":
        yield from _json_rows(table)
        return
    csv.field_size_limit(MAX_FIELD)
    with _open(table.path, table.member) as raw:
        try:
            head = raw.read(SNIFF_BYTES)
        except READ_ERRORS as exc:
            raise CoverageFileError(table.label, None, f"unreadable: {exc}") from None
        stream = io.BufferedReader(Prefixed(head, raw), buffer_size=SNIFF_BYTES)
        text = io.TextIOWrapper(stream, encoding=_encoding(head), newline="")
        reader = csv.reader(text)
        number = 0
        columns = table.columns
        while True:
            try:
                cells = next(reader)
            except StopIteration:
                return
            except TEXT_ERRORS as exc:
                raise CoverageFileError(table.label, f"row {number + 1}", f"unreadable: {exc}") from None
            number += 1
            if number == 1 or not cells:
                continue
            if len(cells) != len(columns):
                raise CoverageFileError(table.label, f"row {number}", f"{len(cells)} fields where the header has {len(columns)}")
            yield f"row {number}", dict(zip(columns, cells, strict=True))


def _json_document(path: Path, member: str | None, label: str) -> Any:
    with _open(path, member) as raw:
        try:
            data = raw.read(MAX_JSON_BYTES + 1)
        except READ_ERRORS as exc:
            raise CoverageFileError(label, None, f"unreadable: {exc}") from None
    if len(data) > MAX_JSON_BYTES:
        raise CoverageFileError(
            label, None, f"more than {MAX_JSON_BYTES >> 20} MiB of JSON; a Coverage API response is per article"
        )
    try:
        return json.loads(data.decode("utf-8-sig"))
    except (UnicodeDecodeError, ValueError, RecursionError) as exc:
        raise CoverageFileError(label, None, f"not valid JSON: {str(exc)[:80]}") from None


def _json_rows_of(document: Any, label: str) -> list[dict[str, Any]]:
    """The rows of a Coverage API response: its ``data`` list (a bare list of rows is taken as well)."""
    rows = document.get("data") if isinstance(document, dict) else document
    if not isinstance(rows, list):
        raise CoverageFileError(label, None, 'not a Coverage API response: expected {"meta": ..., "data": [rows]}')
    for i, row in enumerate(rows):
        if not isinstance(row, dict):
            raise CoverageFileError(label, f"data[{i}]", "a row is a JSON object of the table's fields")
    return rows


def _json_columns(path: Path, member: str | None, label: str) -> list[str]:
    document = _json_document(path, member, label)
    meta = document.get("meta") if isinstance(document, dict) else None
    fields = meta.get("fields") if isinstance(meta, dict) else None
    data = _json_rows_of(document, label)
    if isinstance(fields, list) and fields and all(isinstance(f, str) for f in fields):
        return fields
    return list(data[0]) if data else []


def _json_rows(table: Table) -> Iterator[tuple[str, dict[str, Any]]]:
    document = _json_document(table.path, table.member, table.label)
    for i, row in enumerate(_json_rows_of(document, table.label)):
        yield f"data[{i}]", {str(k).lower(): v for k, v in row.items()}
