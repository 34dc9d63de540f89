"""Reading NCCI files as streams of rows: text (tab- or comma-separated, gzip or not), xlsx, and zip archives.

What a file is comes from its bytes, not its name: gzip and zip by their magic numbers, an xlsx (a zip
with ``xl/workbook.xml``) by its members. A zip CMS ships holds the table (and sometimes the same
table as .csv, .txt and .xlsx, and a PDF): of the members with one stem the text one is read (csv,
then txt, then tsv, then xlsx), and members whose names say they are change reports are skipped.

Text is decoded as UTF-8 when its first 64 KiB are UTF-8, else as Windows-1252 (CMS's Windows
exports); a byte that is neither stops the import with the row. The delimiter is a tab when the first
64 KiB hold one (PTP TXT and the shared .tsv copies), else a bar if there are more bars than commas,
else a comma (MUE CSV, with its quoted, multi-line notice and header cells). Rows are produced one at a time and never kept.
"""

from __future__ import annotations

import codecs
import contextlib
import csv
import gzip
import io
import re
import shutil
import tempfile
import zipfile
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path
from typing import IO, Any

from spinekg.kg.ncci.values import NcciFileError
from spinekg.kg.streams import Prefixed, Readable

SNIFF_BYTES = 1 << 16
GZIP_MAGIC = b"\x1f\x8b"
ZIP_MAGIC = b"PK\x03\x04"
MEMBER_PREFERENCE = {".csv": 0, ".txt": 1, ".tsv": 2, ".xlsx": 3}
SKIPPED_MEMBERS = re.compile(r"change|readme|disclaimer", re.IGNORECASE)
# what a damaged gzip or zip member raises while it is read, and what a text file's rows may raise
READ_ERRORS: tuple[type[Exception], ...] = (EOFError, OSError, zlib.error, zipfile.BadZipFile)
TEXT_ERRORS: tuple[type[Exception], ...] = (csv.Error, UnicodeDecodeError, *READ_ERRORS)


@dataclass(frozen=True)
class Source:
    """One table inside an input: the file itself, or one member of a zip."""

    path: Path
    member: str | None
    xlsx: bool

    @property
    def label(self) -> str:
        return f"{self.path}[{self.member}]" if self.member else str(self.path)

    @property
    def names(self) -> tuple[str, ...]:
        """The names that may tell the release and the setting: the member's first, then the file's."""
        return (Path(self.member).name, self.path.name) if self.member else (self.path.name,)


def sources_of(path: Path) -> list[Source]:
    """The tables an input holds (one, unless it is a zip of several)."""
    try:
        with open(path, "rb") as handle:
            magic = handle.read(4)
    except OSError as exc:
        raise NcciFileError(str(path), None, f"cannot read it: {exc.strerror or exc}") from None
    if magic != ZIP_MAGIC:
        return [Source(path, None, False)]
    try:
        with zipfile.ZipFile(path) as archive:
            names = [i.filename for i in archive.infolist() if not i.is_dir()]
    except (zipfile.BadZipFile, OSError) as exc:
        raise NcciFileError(str(path), None, f"not a readable zip: {exc}") from None
    if "xl/workbook.xml" in names:
        return [Source(path, None, True)]
    chosen: dict[str, str] = {}
    for name in names:
        suffix = Path(name).suffix.lower()
        if suffix not in MEMBER_PREFERENCE or SKIPPED_MEMBERS.search(Path(name).name):
            continue
        stem = Path(name).stem.lower()
        if stem not in chosen or MEMBER_PREFERENCE[suffix] < MEMBER_PREFERENCE[Path(chosen[stem]).suffix.lower()]:
            chosen[stem] = name
    if not chosen:
        raise NcciFileError(str(path), None, "the zip holds no .csv, .txt, .tsv or .xlsx table")
    return [Source(path, name, name.lower().endswith(".xlsx")) for name in sorted(chosen.values())]


@contextlib.contextmanager
def open_rows(source: Source) -> Iterator[Iterator[tuple[int, list[str]]]]:
    """The rows of a table as (row number, cells); the row number is the file's line (text) or sheet row (xlsx)."""
    with contextlib.ExitStack() as stack:
        raw: IO[bytes]
        if source.member is not None:
            archive = stack.enter_context(zipfile.ZipFile(source.path))
            raw = stack.enter_context(archive.open(source.member))
        else:
            raw = stack.enter_context(open(source.path, "rb"))
        if source.xlsx:
            yield _xlsx_rows(source, raw, stack)
            return
        yield _text_rows(source, raw, stack)


def _text_rows(source: Source, raw: Readable, stack: contextlib.ExitStack) -> Iterator[tuple[int, list[str]]]:
    try:
        head = raw.read(SNIFF_BYTES)
        if head[:2] == GZIP_MAGIC:
            unzipped = gzip.GzipFile(fileobj=Prefixed(head, raw), mode="rb")
            stack.callback(unzipped.close)
            raw = unzipped
            head = raw.read(SNIFF_BYTES)
    except READ_ERRORS as exc:
        raise NcciFileError(source.label, 1, f"unreadable: {exc}") from None
    encoding = "utf-8-sig"
    try:
        codecs.getincrementaldecoder("utf-8")().decode(head, final=False)
    except UnicodeDecodeError:
        encoding = "cp1252"
    stream = io.BufferedReader(Prefixed(head, raw), buffer_size=SNIFF_BYTES)
    text = io.TextIOWrapper(stream, encoding=encoding, newline="")
    if b"\t" in head:
        reader = csv.reader(text, delimiter="\t", quoting=csv.QUOTE_NONE)
    else:
        reader = csv.reader(text, delimiter="|" if head.count(b"|") > head.count(b",") else ",")
    return _checked_text(source, reader)


def _checked_text(source: Source, reader: Any) -> Iterator[tuple[int, list[str]]]:
    """The rows, with a damaged stream or a field past csv's limit (128 KiB) reported at its row."""
    while True:
        try:
            cells = next(reader)
        except StopIteration:
            return
        except TEXT_ERRORS as exc:
            raise NcciFileError(source.label, reader.line_num + 1, f"unreadable: {exc}") from None
        yield reader.line_num, cells


def _xlsx_rows(source: Source, raw: IO[bytes], stack: contextlib.ExitStack) -> Iterator[tuple[int, list[str]]]:
    try:
        import openpyxl
    except ImportError:  # pragma: no cover - a dependency of the package
        raise NcciFileError(source.label, None, "reading xlsx needs openpyxl; reinstall spinekg") from None
    handle: IO[bytes] = raw
    if source.member is not None:  # openpyxl seeks; a zip member is spooled to a temporary file first
        spool = stack.enter_context(tempfile.TemporaryFile())  # noqa: SIM115 - closed by the stack
        shutil.copyfileobj(raw, spool)
        spool.seek(0)
        handle = spool
    try:
        book = openpyxl.load_workbook(handle, read_only=True, data_only=True)
    except Exception as exc:  # openpyxl raises many kinds (zipfile, KeyError, XML errors) for a damaged file
        raise NcciFileError(source.label, None, f"not a readable xlsx workbook: {type(exc).__name__}") from None
    stack.callback(book.close)
    return _sheet_rows(source, book.worksheets[0])


def _sheet_rows(source: Source, sheet: Any) -> Iterator[tuple[int, list[str]]]:
    """The sheet's rows as text; a row whose last cells are empty may come shorter than the header, and is
    padded to the widest row so far (an empty cell is a blank one)."""
    width = 0
    try:
        for number, values in enumerate(sheet.iter_rows(values_only=True), start=1):
            cells = [_cell_text(v) for v in values]
            width = max(width, len(cells))
            yield number, cells + [""] * (width - len(cells))
    except (KeyError, ValueError, OSError) as exc:
        raise NcciFileError(source.label, None, f"unreadable sheet: {type(exc).__name__}: {exc}") from None


def _cell_text(value: object) -> str:
    """A spreadsheet cell as the text CMS's TXT would hold."""
    if value is None:
        return ""
    if isinstance(value, datetime):
        return value.date().isoformat()
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)
