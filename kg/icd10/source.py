"""Read the ICD-10-CM code set from the ``simple-icd-10-cm`` package, at build time only (importing it
parses a 10 MB XML file: about 1.5 s).

The package bundles one release: the CDC's tabular-list XML and code list (1.5.0: the April 1, 2026
release, files ``icd10c-tabular-April-1-2026.xml`` and ``code-list-April-2026.txt``). The release is
named from the code list's file name (``<Month>-<Year>`` -> ``YYYY-MM``); which dates it is in force
on is a fact of the ontology (ontology/icd10cm.ttl), not of this module."""

from __future__ import annotations

import importlib.util
import re
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import Any

from spinekg.kg.errors import SpinekgError

PACKAGE = "simple_icd_10_cm"
DISTRIBUTION = "simple-icd-10-cm"
CODE_LIST = re.compile(r"code-list-([A-Za-z]+)-(\d{4})\.txt")
MONTHS = {m: i for i, m in enumerate(("january", "february", "march", "april", "may", "june", "july", "august",
                                       "september", "october", "november", "december"), start=1)}  # fmt: skip
Kind = str  # chapter | block | category | code


@dataclass(frozen=True, slots=True)
class Entry:
    """One item of the tabular list, in the list's order."""

    notation: str  # as the tabular list writes it: "13", "M80-M85", "M80", "M80.08XA"
    kind: Kind
    parent: int | None  # index of the parent entry (None for a chapter)
    title: str
    children: int

    @property
    def billable(self) -> bool:
        """A code with no children is valid for submission; headers, blocks and chapters are not."""
        return self.children == 0 and self.kind in ("category", "code")


@dataclass(frozen=True)
class PackageRelease:
    version: str  # of the package
    release: str  # YYYY-MM of the ICD-10-CM release its data holds
    files: tuple[str, ...]  # its data files
    entries: list[Entry]


def package_version() -> str | None:
    """The installed simple-icd-10-cm version (None when it is not installed): the build key covers it."""
    try:
        return metadata.version(DISTRIBUTION)
    except metadata.PackageNotFoundError:
        return None


def data_files() -> tuple[str, ...]:
    """The names of the package's data files, without importing it (its import parses them: 1.5 s)."""
    spec = importlib.util.find_spec(PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        return ()
    folder = Path(next(iter(spec.submodule_search_locations))) / "data"
    try:
        return tuple(sorted(p.name for p in folder.iterdir() if p.name.endswith((".txt", ".xml"))))
    except OSError:
        return ()


def release_of(files: tuple[str, ...]) -> str:
    """``YYYY-MM`` of the release whose code list is among ``files``."""
    found = {f"{m[2]}-{MONTHS[m[1].lower()]:02d}" for f in files if (m := CODE_LIST.fullmatch(f)) and m[1].lower() in MONTHS}
    if len(found) != 1:
        raise SpinekgError(
            f"{DISTRIBUTION}: expected one code-list-<Month>-<Year>.txt among its data files, found {list(files) or 'none'}"
        )
    return found.pop()


def read_package() -> PackageRelease:
    """Every chapter, block, category and code of the packaged release, in tabular order."""
    version = package_version()
    if version is None:
        raise SpinekgError(f"the {DISTRIBUTION} package is not installed; reinstall spinekg (it is a dependency)")
    files = data_files()
    release = release_of(files)
    import warnings

    with warnings.catch_warnings():  # 1.5.0 warns about defects of the CDC data it skips; they are not ours to fix
        warnings.simplefilter("ignore")
        import simple_icd_10_cm as cm

    entries: list[Entry] = []

    def walk(notation: str, kind: Kind, parent: int | None) -> None:
        # a block of one category shares its name with it (B99): prioritize_blocks picks the block
        as_block = kind in ("chapter", "block")
        children = cm.get_children(notation, prioritize_blocks=as_block)
        index = len(entries)
        entries.append(Entry(notation, kind, parent, cm.get_description(notation, prioritize_blocks=as_block), len(children)))
        for child in children:
            walk(child, _child_kind(cm, kind, notation, child), index)

    for notation in cm.get_all_codes():
        if cm.is_chapter(notation):
            walk(notation, "chapter", None)
    if not entries:
        raise SpinekgError(f"{DISTRIBUTION} {version}: no chapters found in its data")
    return PackageRelease(version, release, files, entries)


def _child_kind(cm: Any, kind: Kind, parent: str, child: str) -> Kind:
    """Whether a child of a chapter or block is a block or a category (of a category: a code)."""
    if kind == "chapter":
        return "block"
    if kind == "block":
        is_block = "-" in child or (child != parent and bool(cm.is_block(child)))
        return "block" if is_block else "category"
    return "code"
