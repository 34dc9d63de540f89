"""The coverage store: the imported article versions as N-Triples files, one per version.

On disk (``$SPINEKG_COVERAGE_DIR``, else ``<cache>/coverage``)::

    <root>/current -> .versions/current@<ns>          (a symbolic link, switched by one rename)
    <root>/.versions/current@<ns>/A56573-v19.nt ...    (one file per article version)
    <root>/.versions/current@<ns>/meta.json            (the import: files, hashes, rows, warnings)

The build loads every ``*.nt`` of ``current`` into the store's coverage named graph, beside the typed
modules (kg/build.py; the files' hash is part of the build key, so an import leads to a new build). An
import writes a new folder, carries over the versions of the previous import it does not replace, and
publishes it with kg/ncci's ``publish`` (one rename), so a reader sees the old import or the new one,
never a mixture."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import time
from pathlib import Path
from typing import Any

import pyoxigraph as ox

from spinekg.kg.namespaces import COVERAGE_GRAPH
from spinekg.kg.paths import coverage_dir, writable_dir

CURRENT = "current"


def load_coverage(store: ox.Store, files: list[Path]) -> None:
    """Load imported coverage files into the store's coverage named graph (kg/build.py; tests)."""
    for path in files:
        store.bulk_load(path=str(path), format=ox.RdfFormat.N_TRIPLES, to_graph=ox.NamedNode(COVERAGE_GRAPH))


def version_file(display: str, version: int) -> str:
    """The file of one article version: ``A56573-v19.nt``."""
    return f"{display}-v{version}.nt"


class CoverageStore:
    def __init__(self, root: Path | None = None) -> None:
        self.root = root or coverage_dir()

    @property
    def current(self) -> Path:
        return self.root / CURRENT

    def files(self) -> list[Path]:
        """The N-Triples files of the current import, in name order (none when nothing is imported)."""
        if not self.current.is_dir():
            return []
        return sorted(p for p in self.current.glob("*.nt") if p.is_file())

    def meta(self) -> dict[str, Any] | None:
        try:
            data = json.loads((self.current / "meta.json").read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return None
        return data if isinstance(data, dict) else None

    def fingerprint(self) -> str:
        """A hash of the current import's files (names and contents): what the build depends on."""
        digest = hashlib.sha256()
        for path in self.files():
            digest.update(path.name.encode())
            digest.update(path.read_bytes())
        return digest.hexdigest()[:16]

    def staging(self) -> Path:
        """A new, empty folder beside the published ones, for an import to write into."""
        writable_dir(self.root, "coverage folder")
        folder = self.root / f".tmp-{os.getpid()}-{time.time_ns()}"
        folder.mkdir()
        return folder

    def carry_over(self, folder: Path) -> list[str]:
        """Copy (hard-link where possible) into ``folder`` the current import's versions it does not hold."""
        carried = []
        for path in self.files():
            target = folder / path.name
            if target.exists():
                continue
            try:
                os.link(path, target)
            except OSError:
                shutil.copy2(path, target)
            carried.append(path.stem)
        return carried
