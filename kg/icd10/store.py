"""Answer ICD-10-CM lookups from the index a build wrote (icd10cm.sqlite beside the reasoned graph):
opened read-only on first use, one indexed row read per new code, the answers remembered (bounded).

Why an index beside the graph: the claim rules ask about every diagnosis of every claim; a SPARQL
query per diagnosis costs ~0.1 ms and the store would have to be loaded first, while a remembered
answer costs a dictionary probe and a first answer ~20 µs (bench/icd10_bench.py)."""

from __future__ import annotations

import sqlite3
import threading
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import NamedTuple

from spinekg.kg.cache import remember
from spinekg.kg.errors import SpinekgError
from spinekg.kg.icd10.codes import SHAPE, normalize, undotted

INDEX_FILE = "icd10cm.sqlite"
INDEX_FORMAT = 1  # bump when the index tables change (kg/icd10/build.py writes them)
CACHE_LIMIT = 1 << 16  # remembered answers (the codes come from user input)
MAX_CHILDREN = 400  # children listed by children(); the largest family of the tabular list is smaller
MAX_VISITS = 64  # headers nearest_billable walks through at most (bounded work for any code)
ALPHABET = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ"


class _Row(NamedTuple):
    """A row of the index's entry table (kg/icd10/build.py writes it)."""

    id: int
    key: str
    notation: str
    kind: str
    parent: int | None
    title: str
    children: int
    billable: int
    iri: str
    releases: str


@dataclass(frozen=True, slots=True)
class Release:
    """A loaded ICD-10-CM release and the dates of service it is in force on (``until`` the last one)."""

    id: str  # "2026-04"
    label: str
    effective: date
    until: date | None  # the last day in force (the day before the ontology's skg:deletedOn)
    iri: str
    source: str  # the source id (S49)
    package: str  # where the data came from: "simple-icd-10-cm 1.5.0"

    def in_force(self, on: date) -> bool:
        return self.effective <= on and (self.until is None or on <= self.until)


@dataclass(frozen=True, slots=True)
class Diagnosis:
    """One item of the tabular list as a release has it."""

    code: str  # dotted notation ("M80.08XA"), or a block ("M80-M85") or chapter ("13")
    iri: str
    title: str
    billable: bool  # valid for submission: a category or code without children
    kind: str  # chapter | block | category | code
    ancestors: tuple[str, ...]  # nearest first, up to the block(s) and the chapter
    children: int  # how many children it has (0 for a billable code)
    releases: tuple[str, ...]  # the ids of the loaded releases that hold it

    def as_json(self) -> dict[str, object]:
        return {
            "code": self.code,
            "iri": self.iri,
            "title": self.title,
            "billable": self.billable,
            "kind": self.kind,
            "ancestors": list(self.ancestors),
            "children": self.children,
            "releases": list(self.releases),
        }


class CodeSet:
    """The ICD-10-CM code set of one build folder."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._lock = threading.Lock()  # one connection, shared by the threads of a server
        try:
            # immutable: a build never changes a written index (a new build is a new folder), so
            # sqlite needs no locks and readers in many processes never wait
            self._db = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro&immutable=1", uri=True, check_same_thread=False)
            fmt = self._db.execute("SELECT value FROM meta WHERE key = 'format'").fetchone()
            rows = self._db.execute("SELECT id, label, valid_from, deleted_on, iri, source, package FROM release").fetchall()
        except sqlite3.Error as exc:
            raise SpinekgError(f"cannot read the ICD-10-CM index {path}: {exc}; run spinekg build --force") from None
        if fmt is None or fmt[0] != str(INDEX_FORMAT):
            raise SpinekgError(f"{path} was written by another spinekg version; run spinekg build --force")
        releases = []
        for rid, label, start, end, iri, source, package in rows:
            until = date.fromordinal(date.fromisoformat(end).toordinal() - 1) if end else None
            releases.append(Release(rid, label, date.fromisoformat(start), until, iri, source, package))
        self.releases: tuple[Release, ...] = tuple(sorted(releases, key=lambda r: r.effective))
        self._ids = {r.id for r in self.releases}
        self._rows: dict[str, tuple[int, ...]] = {}  # key -> row ids (a block and its one category share a key)
        self._answers: dict[tuple[str, str | None], Diagnosis | None] = {}
        self._near: dict[tuple[str, int], tuple[str, ...]] = {}

    @classmethod
    def open(cls, folder: Path) -> CodeSet:
        """The code set of a build folder (the one ``KnowledgeGraph.build`` names)."""
        path = folder / INDEX_FILE
        if not path.is_file():
            raise SpinekgError(f"no ICD-10-CM index in {folder}; run spinekg build --force")
        return cls(path)

    def close(self) -> None:
        self._db.close()

    # ------------------------------------------------------------------ releases

    def release_on(self, on: date) -> Release | None:
        """The loaded release in force on a date of service; None when the release in force then is not loaded."""
        for release in reversed(self.releases):
            if release.in_force(on):
                return release
        return None

    @property
    def latest(self) -> Release:
        return self.releases[-1]

    # ------------------------------------------------------------------ lookups

    def lookup(self, code: str, on: date | None = None) -> Diagnosis | None:
        """The item a code names (with or without the dot, any case; or a block or chapter notation), as
        the release in force on ``on`` has it (any loaded release when ``on`` is None); None when that
        release does not hold it or no loaded release is in force then (``release_on`` tells which)."""
        release = None
        if on is not None:
            found = self.release_on(on)
            if found is None:
                return None
            release = found.id
        key = (code, release)
        if key in self._answers:
            return self._answers[key]
        return remember(self._answers, key, self._lookup(code, release), CACHE_LIMIT)

    def _lookup(self, code: str, release: str | None) -> Diagnosis | None:
        row = self._item(code)
        if row is None:
            return None
        releases = tuple(r for r in row.releases.split() if r in self._ids)
        if release is not None and release not in releases:
            return None
        ancestors: list[str] = []
        parent = row.parent
        with self._lock:
            while parent is not None and len(ancestors) < 16:  # the tabular list is at most 9 deep
                notation, parent = self._db.execute("SELECT notation, parent FROM entry WHERE id = ?", (parent,)).fetchone()
                ancestors.append(str(notation))
        return Diagnosis(
            code=row.notation,
            iri=row.iri,
            title=row.title,
            billable=bool(row.billable),
            kind=row.kind,
            ancestors=tuple(ancestors),
            children=row.children,
            releases=releases,
        )

    def _find(self, key: str | None) -> list[_Row]:
        if key is None:
            return []
        with self._lock:
            return [_Row(*r) for r in self._db.execute("SELECT * FROM entry WHERE key = ?", (key,))]

    def _item(self, code: str) -> _Row | None:
        """The row a notation names; a block and its only category share one (B99): the category is what a claim means."""
        rows = self._find(_key(code))
        return min(rows, key=lambda r: r.kind in ("block", "chapter")) if rows else None

    def children(self, code: str) -> tuple[str, ...]:
        """The children of an item (dotted notations, in the tabular list's order; at most MAX_CHILDREN)."""
        row = self._item(code)
        if row is None:
            return ()
        with self._lock:
            found = self._db.execute(
                "SELECT notation FROM entry WHERE parent = ? ORDER BY id LIMIT ?", (row.id, MAX_CHILDREN)
            ).fetchall()
        return tuple(str(n) for (n,) in found)

    def nearest_billable(self, code: str, limit: int = 5) -> tuple[str, ...]:
        """The first billable codes under an item, in the tabular list's order (at most ``limit``): what a
        coder reports instead of a header such as M80.08 (M80.08XA, M80.08XD, ...)."""
        row = self._item(code)
        if row is None:
            return ()
        found: list[str] = []
        frontier = [row.id]
        visits = 0
        with self._lock:
            while frontier and len(found) < limit and visits < MAX_VISITS:
                visits += 1
                parent = frontier.pop(0)
                for rid, notation, billable in self._db.execute(
                    "SELECT id, notation, billable FROM entry WHERE parent = ? ORDER BY id LIMIT ?", (parent, MAX_CHILDREN)
                ):
                    if billable:
                        found.append(notation)
                    else:
                        frontier.append(rid)
        return tuple(found[:limit])

    def count(self, billable: bool | None = None) -> int:
        """How many items (or billable codes, or headers) the index holds."""
        with self._lock:
            if billable is None:
                return int(self._db.execute("SELECT count(*) FROM entry").fetchone()[0])
            return int(self._db.execute("SELECT count(*) FROM entry WHERE billable = ?", (int(billable),)).fetchone()[0])

    def placeholder_form(self, code: str) -> str | None:
        """For a code of seven characters written without its placeholder X (M8008A: six characters whose
        last is a 7th-character value), the code with the X that the release holds (M80.08XA); else None."""
        key = _key(code)
        if key is None or len(key) >= 7:
            return None
        for padded in (key[:-1] + "X" * n + key[-1] for n in range(1, 7 - len(key) + 1)):
            if len(padded) == 7 and self._find(padded):
                return normalize(padded)
        return None

    def one_edit_codes(self, code: str, limit: int = 3) -> tuple[str, ...]:
        """Codes of the release one replaced character away (M8O.08XA -> M80.08XA): the "did you mean" of
        a code the release does not hold. One indexed query for the at most 7 x 35 spellings; remembered."""
        key = _key(code)
        if key is None or not SHAPE.fullmatch(key):
            return ()
        memo = self._near.get((key, limit))
        if memo is not None:
            return memo
        probes = [
            probe
            for i, ch in enumerate(key)
            for other in ALPHABET
            if other != ch and SHAPE.fullmatch(probe := key[:i] + other + key[i + 1 :])
        ]
        marks = ",".join("?" * len(probes))  # placeholders only: the probes are bound, never spliced
        query = f"SELECT notation FROM entry WHERE key IN ({marks}) AND kind IN ('category', 'code') ORDER BY id LIMIT ?"  # noqa: S608
        with self._lock:
            rows = self._db.execute(query, (*probes, limit)).fetchall()
        return remember(self._near, (key, limit), tuple(str(n) for (n,) in rows), CACHE_LIMIT)


def _key(code: str) -> str | None:
    """The index key of a notation: an undotted code, or a block or chapter notation as written."""
    if not isinstance(code, str) or len(code) > 16:
        return None
    text = code.strip().upper()
    if SHAPE.fullmatch(text):
        return undotted(normalize(text))
    return text if text and all(c.isalnum() or c == "-" for c in text) else None


_current: dict[Path, CodeSet] = {}
_current_lock = threading.Lock()


def code_set(folder: Path | None = None) -> CodeSet:
    """The code set of a build folder (by default the current build's, built if needed), opened once per process."""
    if folder is None:
        from spinekg.kg.build import build_graph

        folder = build_graph().asserted_path.parent
    with _current_lock:
        found = _current.get(folder)
        if found is None:
            found = _current[folder] = CodeSet.open(folder)
        return found


def lookup(code: str, on: date | None = None) -> Diagnosis | None:
    """``code_set().lookup(code, on)``: the current build's answer."""
    return code_set().lookup(code, on)
