"""Import CMS's NCCI files into the store: recognise, stream, sort within bounded memory, publish atomically.

``import_ncci(paths)`` groups its inputs into releases (the four parts of a PTP release are one import;
the shared MUE copy, which holds three service types, fills three tables), then for each release:

1. streams every row of every input once, checking it, and hands it to the table it belongs to as one
   packed integer (tables.py);
2. sorts them within bounded memory: ``CHUNK_ROWS`` rows at a time are sorted and written to a run
   file, and the runs are merged (so memory does not grow with the table; a table that fits one chunk
   never touches the disk);
3. writes the sorted columns into a temporary folder ``<kind>/.tmp-<pid>-<stamp>-<release>``, with
   meta.json last, and syncs them;
4. publishes it: the folder is renamed to ``<kind>/.versions/<release>@<stamp>`` and the link
   ``<kind>/<release>`` is pointed at it by one rename (``os.replace`` of a symbolic link), so that a
   reader sees the old release or the new one, never a mixture, and an import that fails or is
   interrupted before that rename leaves the old release as it was. The replaced version is removed.
   Where symbolic links cannot be made, the folder itself is renamed into place (the old one moved
   aside first).

A bad row stops the import with one line naming the file and the row; nothing is published then.
"""

from __future__ import annotations

import contextlib
import hashlib
import heapq
import json
import os
import shutil
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

from spinekg.kg.errors import InputError, SpinekgError
from spinekg.kg.ncci.layouts import HEADER_SCAN_ROWS, PTP_KINDS, SETTINGS, Header, ptp_setting_of, recognise
from spinekg.kg.ncci.parse import AocParser, MueParser, Parser, PtpParser
from spinekg.kg.ncci.release import Release, part_of, release_from_flag, release_of
from spinekg.kg.ncci.sources import Source, open_rows, sources_of
from spinekg.kg.ncci.tables import FORMAT_VERSION, MAX_ROW, MAX_SOURCES, PROVENANCE_BITS, ROW_BITS, SCHEMAS, ColumnWriter, Schema
from spinekg.kg.ncci.values import NcciFileError
from spinekg.kg.paths import ncci_dir, writable_dir

CHUNK_ROWS = 1 << 18  # rows sorted in memory at a time (~15 MB of Python integers)
MAX_STRINGS = 0xFFFF
STALE_VERSION_SECONDS = 3600  # an unlinked version older than this is left from a crash, not a running import
PTP_PARTS = frozenset({1, 2, 3, 4})
EXPECTED = (
    "expected the header of a PTP table (Column 1, Column 2, ..., Modifier, PTP Edit Rationale), a MUE table "
    "(HCPCS/CPT Code, ... MUE Values, MUE Adjudication Indicator, MUE Rationale) or an add-on code table "
    "(AOC_Edit_Type, Add-On_Code, ..., Primary_Code, ...)"
)


def store_root(cache: Path | None = None) -> Path:
    """The folder of the NCCI tables: <cache>/ncci for a given cache; else $SPINEKG_NCCI_DIR, else
    <kg.paths.cache_dir()>/ncci."""
    if cache is not None:
        return cache / "ncci"
    return ncci_dir()


@dataclass
class ImportResult:
    """One table of one release, as imported."""

    kind: str
    release: Release
    rows: int
    rows_read: int
    duplicates: int
    seconds: float
    bytes: int
    path: Path
    sources: list[dict[str, Any]]
    warnings: list[str] = field(default_factory=list)

    def line(self) -> str:
        """The CLI's line for this table."""
        dropped = f" ({self.duplicates:,} repeated rows dropped)" if self.duplicates else ""
        return (
            f"{self.kind} {self.release.id} (in force from {self.release.effective.isoformat()}): {self.rows:,} rows"
            f"{dropped} from {len(self.sources)} file(s), {self.bytes / 1e6:.1f} MB, {self.seconds:.1f} s"
        )


@dataclass
class _Item:
    source: Source
    header: Header
    header_row: int
    setting: str | None  # PTP only


@dataclass
class _Job:
    family: str
    release: Release
    items: list[_Item]


def import_ncci(
    paths: Sequence[Path],
    *,
    release: str | None = None,
    effective: date | None = None,
    setting: str | None = None,
    cache: Path | None = None,
    progress: Callable[[ImportResult], None] | None = None,
) -> list[ImportResult]:
    """Import NCCI files (PTP, MUE, AOC; as CMS publishes them or as the shared copies) into the store.

    ``release`` names the release when the file names do not (v30.1, 2026Q2, 2024-04-01), ``effective``
    the date it is in force from; ``setting`` (practitioner|outpatient) that of PTP files whose names
    do not say. ``progress`` is called with each table as it is published."""
    if not paths:
        raise InputError("FILE", "name at least one NCCI file")
    if setting is not None and setting not in SETTINGS:
        raise InputError("--setting", f"{setting!r} is not one of {', '.join(SETTINGS)}")
    flag = release_from_flag(release, effective) if release else None
    hashes = _hash_inputs(paths)
    jobs = _plan(paths, flag, effective, setting)
    _check_twice(jobs, hashes)
    root = writable_dir(store_root(cache), "NCCI store folder")
    results: list[ImportResult] = []
    for job in jobs:
        for result in _run(job, root, hashes):
            results.append(result)
            if progress is not None:
                progress(result)
    return results


def _hash_inputs(paths: Sequence[Path]) -> dict[Path, tuple[str, int]]:
    """The sha256 and size of each input."""
    hashes: dict[Path, tuple[str, int]] = {}
    for path in paths:
        digest = hashlib.sha256()
        size = 0
        try:
            with open(path, "rb") as handle:
                while block := handle.read(1 << 20):
                    digest.update(block)
                    size += len(block)
        except OSError as exc:
            raise NcciFileError(str(path), None, f"cannot read it: {exc.strerror or exc}") from None
        hashes[path] = (digest.hexdigest(), size)
    return hashes


def _check_twice(jobs: list[_Job], hashes: dict[Path, tuple[str, int]]) -> None:
    """The same table given twice for one release is refused: its rows would be counted twice."""
    for job in jobs:
        seen: dict[tuple[str, str | None], Source] = {}
        for item in job.items:
            key = (hashes[item.source.path][0], item.source.member)
            if key in seen:
                raise NcciFileError(item.source.label, None, f"the same table as {seen[key].label}; give each file once")
            seen[key] = item.source


def _plan(paths: Sequence[Path], flag: Release | None, effective: date | None, setting: str | None) -> list[_Job]:
    """Recognise every input by its header and group them into one import per (table, release)."""
    jobs: dict[tuple[str, str], _Job] = {}
    for path in paths:
        sources = sources_of(path)
        found = 0
        for source in sources:
            located = _header(source)
            if located is None:
                if source.member is not None and len(sources) > 1:
                    continue  # a zip's other members (a notice, a change report) are not tables
                raise NcciFileError(source.label, None, f"no NCCI header in its first {HEADER_SCAN_ROWS} rows; {EXPECTED}")
            header, row = located
            found += 1
            rel = next((r for n in source.names if (r := release_of(n, flag, effective)) is not None), None)
            if rel is None:
                raise NcciFileError(
                    source.label, None, "its name does not tell the release: give --release (v30.1, 2026Q2 or 2024-04-01)"
                )
            item_setting = _setting(source, header, setting)
            if header.family == "mue" and not MueParser.tells_service(header):
                raise NcciFileError(
                    source.label, row, "the header does not name the service type (Practitioner Services MUE Values, ...)"
                )
            key = (PTP_KINDS[item_setting] if item_setting else header.family, rel.id)
            job = jobs.setdefault(key, _Job(header.family, rel, []))
            if job.release.effective != rel.effective:
                raise NcciFileError(
                    source.label,
                    None,
                    f"release {rel.id} is dated {rel.effective} here and {job.release.effective} by another file",
                )
            job.items.append(_Item(source, header, row, item_setting))
            if len(job.items) > MAX_SOURCES:
                raise InputError("FILE", f"more than {MAX_SOURCES} files for one release")
        if not found:
            raise NcciFileError(str(path), None, "the zip holds no NCCI table")
    return list(jobs.values())


def _header(source: Source) -> tuple[Header, int] | None:
    with open_rows(source) as rows:
        for count, (number, cells) in enumerate(rows, start=1):
            header = recognise(cells)
            if header is not None:
                return header, number
            if count >= HEADER_SCAN_ROWS:
                break
    return None


def _setting(source: Source, header: Header, flag: str | None) -> str | None:
    if header.family != "ptp":
        return None
    told = next((s for n in source.names if (s := ptp_setting_of(n)) is not None), None)
    if flag is not None and told is not None and flag != told:
        raise NcciFileError(source.label, None, f"its name says {told} PTP edits, but --setting says {flag}")
    chosen = flag or told
    if chosen is None:
        raise NcciFileError(source.label, None, "its name does not tell practitioner or outpatient edits: give --setting")
    return chosen


class RunSorter:
    """Sorts packed rows in bounded memory: sorted runs of ``chunk_rows`` on disk, merged when read."""

    def __init__(self, folder: Path, width: int, chunk_rows: int | None = None) -> None:
        self.folder = folder
        self.width = width
        self.chunk_rows = chunk_rows or CHUNK_ROWS
        self._buffer: list[int] = []
        self._runs: list[Path] = []

    def add(self, record: int) -> None:
        self._buffer.append(record)
        if len(self._buffer) >= self.chunk_rows:
            self._spill()

    def _spill(self) -> None:
        self._buffer.sort()
        self.folder.mkdir(exist_ok=True)
        path = self.folder / f"run-{len(self._runs):05d}"
        width = self.width
        with open(path, "wb") as handle:
            for start in range(0, len(self._buffer), 1 << 14):
                handle.write(b"".join([r.to_bytes(width, "big") for r in self._buffer[start : start + (1 << 14)]]))
        self._runs.append(path)
        self._buffer = []

    def merged(self) -> Iterator[int]:
        if not self._runs:
            self._buffer.sort()
            yield from self._buffer
            return
        if self._buffer:
            self._spill()
        yield from heapq.merge(*(self._read(path) for path in self._runs))

    def _read(self, path: Path) -> Iterator[int]:
        width = self.width
        from_bytes = int.from_bytes
        with open(path, "rb") as handle:
            while block := handle.read(width << 13):
                for start in range(0, len(block), width):
                    yield from_bytes(block[start : start + width], "big")

    def discard(self) -> None:
        self._buffer = []
        shutil.rmtree(self.folder, ignore_errors=True)


class _Builder:
    """One table of one release being imported, in its temporary folder."""

    def __init__(self, kind: str, schema: Schema, folder: Path, sources: int) -> None:
        self.kind = kind
        self.schema = schema
        self.folder = folder
        self.sorter = RunSorter(folder / ".runs", schema.record_bytes)
        self.counts = [0] * sources  # rows read from each input
        self.rows = 0
        self.duplicates = 0
        self.bytes = 0

    @property
    def read(self) -> int:
        return sum(self.counts)

    def add(self, payload: int, source: int, row: int) -> None:
        self.sorter.add((payload << PROVENANCE_BITS) | (source << ROW_BITS) | min(row, MAX_ROW))
        self.counts[source] += 1

    def write(self, labels: list[str], renumber: list[int]) -> None:
        """Merge the sorted rows into the column files: a repeated row is dropped (and counted); two rows
        of one key in a table that allows one (MUE) stop the import, naming both. ``renumber`` maps the
        string ids met while reading to those of the sorted string list."""
        writer = ColumnWriter(self.folder, self.schema, renumber)
        key_shift, unique = self.schema.key_shift, self.schema.unique
        try:
            previous = -1
            previous_record = 0
            for record in self.sorter.merged():
                payload = record >> PROVENANCE_BITS
                if payload == previous:
                    self.duplicates += 1
                    continue
                if unique and previous >= 0 and payload >> key_shift == previous >> key_shift:
                    raise self._conflict(labels, previous_record, record)
                writer.append(payload)
                previous, previous_record = payload, record
        except BaseException:
            writer.abandon()
            raise
        writer.close()
        self.rows = writer.rows
        self.sorter.discard()
        self.bytes = sum((self.folder / c.file).stat().st_size for c in self.schema.columns)

    def _conflict(self, labels: list[str], first: int, second: int) -> NcciFileError:
        def where(record: int) -> tuple[str, int]:
            return labels[(record >> ROW_BITS) & MAX_SOURCES], record & ((1 << ROW_BITS) - 1)

        provenance = (1 << PROVENANCE_BITS) - 1
        first, second = sorted((first, second), key=lambda record: record & provenance)  # in the order of the files
        (label_a, row_a), (label_b, row_b) = where(first), where(second)
        return NcciFileError(label_b, row_b, f"the code is listed again with other values (first at {label_a} row {row_a})")

    def discard(self) -> None:
        self.sorter.discard()
        shutil.rmtree(self.folder, ignore_errors=True)


def _run(job: _Job, root: Path, hashes: dict[Path, tuple[str, int]]) -> list[ImportResult]:
    started = time.perf_counter()
    strings: dict[str, int] = {}

    def intern(text: str) -> int:
        found = strings.get(text)
        if found is None:
            if len(strings) >= MAX_STRINGS:
                raise ValueError(f"more than {MAX_STRINGS:,} distinct texts (rationales, notes) in one release")
            found = strings[text] = len(strings)
        return found

    builders: dict[str, _Builder] = {}
    labels = [item.source.label for item in job.items]
    schema = SCHEMAS[job.family]
    try:
        for index, item in enumerate(job.items):
            parser = _parser(item, schema, intern)
            for number, kind, payload in _data_rows(item, parser):
                builder = builders.get(kind)
                if builder is None:
                    builder = builders[kind] = _Builder(kind, schema, _temporary(root / kind, job.release.id), len(job.items))
                builder.add(payload, index, number)
            if not any(b.counts[index] for b in builders.values()):
                raise NcciFileError(item.source.label, None, f"no data rows after the header (row {item.header_row})")
        ordered = sorted(strings)
        renumber = [0] * len(strings)
        for position, text in enumerate(ordered):
            renumber[strings[text]] = position
        results = []
        for kind, builder in builders.items():
            builder.write(labels, renumber)
            sources = [_source_meta(item, hashes, builder.counts[i]) for i, item in enumerate(job.items) if builder.counts[i]]
            warnings = _warnings(job, sources)
            seconds = time.perf_counter() - started
            meta = _meta(job, builder, sources, ordered, seconds, warnings)
            _write_json(builder.folder / "meta.json", meta)
            results.append(
                ImportResult(
                    kind,
                    job.release,
                    builder.rows,
                    builder.read,
                    builder.duplicates,
                    seconds,
                    builder.bytes,
                    root / kind / job.release.id,
                    sources,
                    warnings,
                )
            )
        for kind, builder in builders.items():
            publish(builder.folder, root / kind, job.release.id)
        return results
    finally:
        for builder in builders.values():
            if builder.folder.exists():
                builder.discard()


def _parser(item: _Item, schema: Schema, intern: Callable[[str], int]) -> Parser:
    if item.header.family == "ptp":
        assert item.setting is not None
        return PtpParser(item.header, schema, item.setting, intern)
    if item.header.family == "mue":
        return MueParser(item.header, schema, intern)
    return AocParser(item.header, schema, intern)


def _data_rows(item: _Item, parser: Parser) -> Iterator[tuple[int, str, int]]:
    """The parsed data rows of one input: after its header; blank rows, the header's continuation lines
    (blank key cell before the first data row) and a repeated header (parts joined into one file) skipped."""
    key_column = item.header.columns[item.header.layout.key_role]
    started = False
    with open_rows(item.source) as rows:
        for number, _ in rows:
            if number >= item.header_row:
                break
        for number, cells in rows:
            try:
                kind, values = parser(cells)
            except ValueError as exc:
                if "".join(cells).strip():
                    if not started and (len(cells) <= key_column or not cells[key_column].strip()):
                        continue
                    if recognise(cells) is None:
                        raise NcciFileError(item.source.label, number, str(exc)) from None
                continue
            started = True
            yield number, kind, values


def _source_meta(item: _Item, hashes: dict[Path, tuple[str, int]], rows: int) -> dict[str, Any]:
    digest, size = hashes[item.source.path]
    return {
        "file": item.source.path.name,
        "member": item.source.member,
        "path": str(item.source.path.resolve()),
        "sha256": digest,
        "bytes": size,
        "layout": item.header.family,
        "columns": sorted(item.header.columns),
        "header_row": item.header_row,
        "part": part_of(item.source.names[0]),
        "rows": rows,
    }


def _warnings(job: _Job, sources: list[dict[str, Any]]) -> list[str]:
    warnings = []
    if job.family == "ptp":
        parts = {s["part"] for s in sources if s["part"] is not None}
        if parts and parts != PTP_PARTS:
            shown = ", ".join(f"f{p}" for p in sorted(parts))
            warnings.append(
                f"release {job.release.id} was imported from part(s) {shown} only; CMS ships f1-f4 as one release: "
                "import them together, or pairs of the missing parts will read as having no edit"
            )
        if not all("effective" in s["columns"] for s in sources):
            warnings.append(
                "these rows carry no effective dates: an edit is taken to be in force on any date up to its deletion "
                "(an edit added in this release also answers for dates before it took effect)"
            )
    return warnings


def _meta(
    job: _Job, builder: _Builder, sources: list[dict[str, Any]], strings: list[str], seconds: float, warnings: list[str]
) -> dict[str, Any]:
    from spinekg.kg import __version__

    meta: dict[str, Any] = {
        "format": FORMAT_VERSION,
        "kind": builder.kind,
        "family": job.family,
        "release": job.release.id,
        "release_effective": job.release.effective.isoformat(),
        "release_origin": job.release.origin,
        "rows": builder.rows,
        "rows_read": builder.read,
        "duplicates_dropped": builder.duplicates,
        "bytes": builder.bytes,
        "imported_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "import_seconds": round(seconds, 3),
        "spinekg_version": __version__,
        "byteorder": sys.byteorder,
        "columns": [{"name": c.name, "file": c.file, "type": c.typecode} for c in builder.schema.columns],
        "sources": sources,
        "warnings": warnings,
        "strings": strings,
    }
    if job.family == "ptp":
        meta["effective_dates"] = all("effective" in s["columns"] for s in sources)
        meta["prior_1996_column"] = all("prior_1996" in s["columns"] for s in sources)
    return meta


def _write_json(path: Path, data: dict[str, Any]) -> None:
    with open(path, "w", encoding="utf-8") as handle:
        json.dump(data, handle, indent=1, ensure_ascii=False)
        handle.flush()
        os.fsync(handle.fileno())


def _temporary(kind_dir: Path, release_id: str) -> Path:
    """A new temporary folder for a table being imported (and a sweep of those left by dead imports)."""
    kind_dir.mkdir(parents=True, exist_ok=True)
    _sweep(kind_dir)
    folder = kind_dir / f".tmp-{os.getpid()}-{time.time_ns()}-{release_id}"
    folder.mkdir()
    return folder


def _sweep(kind_dir: Path) -> None:
    """Remove what crashed imports left: temporary folders and staged links of processes that are gone, and
    versions no link points at (and folders moved aside) older than an hour (a running import links its
    version within moments)."""
    linked = {os.readlink(entry) for entry in kind_dir.iterdir() if entry.is_symlink() and not entry.name.startswith(".")}
    for entry in kind_dir.iterdir():
        if entry.name.startswith((".tmp-", ".link-")) and not _alive(entry.name.split("-")[1]):
            if entry.is_symlink():
                entry.unlink(missing_ok=True)
            else:
                shutil.rmtree(entry, ignore_errors=True)
        elif entry.name.startswith(".old-") and time.time() - entry.lstat().st_mtime > STALE_VERSION_SECONDS:
            shutil.rmtree(entry, ignore_errors=True)
    versions = kind_dir / ".versions"
    if versions.is_dir():
        for entry in versions.iterdir():
            unlinked = os.path.join(".versions", entry.name) not in linked
            if unlinked and time.time() - entry.stat().st_mtime > STALE_VERSION_SECONDS:
                shutil.rmtree(entry, ignore_errors=True)


def _alive(pid_text: str) -> bool:
    if not pid_text.isdigit():
        return False
    try:
        os.kill(int(pid_text), 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OSError):
        return True
    return True


def publish(folder: Path, kind_dir: Path, release_id: str) -> None:
    """Put a complete table folder in place as ``<kind_dir>/<release_id>`` in one atomic step (module docstring)."""
    versions = kind_dir / ".versions"
    versions.mkdir(exist_ok=True)
    final = versions / f"{release_id}@{time.time_ns()}"
    os.rename(folder, final)
    _sync_dir(versions)
    link = kind_dir / release_id
    target = os.path.join(".versions", final.name)
    previous = os.readlink(link) if link.is_symlink() else None
    staged = kind_dir / f".link-{os.getpid()}-{time.time_ns()}"
    try:
        os.symlink(target, staged, target_is_directory=True)
    except (OSError, NotImplementedError):
        _publish_by_rename(final, link)
        return
    try:
        if link.exists() and not link.is_symlink():  # a folder put in place where links could not be made
            aside = kind_dir / f".old-{time.time_ns()}-{release_id}"
            os.rename(link, aside)
            shutil.rmtree(aside, ignore_errors=True)
        os.replace(staged, link)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(staged)
        raise
    _sync_dir(kind_dir)
    if previous is not None and previous != target:
        shutil.rmtree(kind_dir / previous, ignore_errors=True)


def _publish_by_rename(final: Path, link: Path) -> None:
    """Without symbolic links: move the old folder aside, rename the new one into place, remove the old."""
    aside = None
    if link.exists() or link.is_symlink():
        aside = link.with_name(f".old-{time.time_ns()}-{link.name}")
        os.rename(link, aside)
    try:
        os.rename(final, link)
    except OSError as exc:
        if aside is not None:
            os.rename(aside, link)
        raise SpinekgError(f"cannot put the import in place at {link}: {exc.strerror or exc}") from None
    if aside is not None:
        shutil.rmtree(aside, ignore_errors=True)


def _sync_dir(folder: Path) -> None:
    """Make a rename in ``folder`` durable (POSIX; a no-op where folders cannot be opened)."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)
