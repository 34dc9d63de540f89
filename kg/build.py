"""Build the reasoned graph once and cache it in the cache folder, one sub-folder per hash of its sources
(``<cache>/builds/<key>/``), so that several installed versions never overwrite each other's build."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import time
from dataclasses import asdict, dataclass
from pathlib import Path

from spinekg.kg import paths
from spinekg.kg.load import import_closure, load_asserted
from spinekg.kg.reason import reason

BUILD_FORMAT = 2  # bump when the layout of a build folder changes
KEEP_BUILDS = 3  # older build folders than the newest few are removed after a build


@dataclass
class BuildResult:
    key: str
    cached: bool
    asserted_triples: int
    inferred_triples: int
    modules: int
    reasoning_seconds: float
    total_seconds: float
    asserted_path: Path
    inferred_path: Path

    def summary(self) -> str:
        how = "cached build" if self.cached else f"reasoned with HermiT in {self.reasoning_seconds:.2f} s"
        return (
            f"{self.modules} modules, {self.asserted_triples} asserted + {self.inferred_triples} inferred triples "
            f"({how}; {self.total_seconds:.2f} s in all) -> {self.asserted_path.parent}"
        )


def source_key() -> str:
    """Hash of everything the reasoned graph depends on: the ontology files and the reasoning code."""
    digest = hashlib.sha256(f"format={BUILD_FORMAT}".encode())
    onto = paths.ontology_dir()
    for path in sorted(onto.rglob("*")):
        if path.is_file() and path.suffix in {".ttl", ".xml"}:
            digest.update(str(path.relative_to(onto)).encode())
            digest.update(path.read_bytes())
    for name in ("reason.py", "load.py"):
        digest.update((Path(__file__).parent / name).read_bytes())
    return digest.hexdigest()[:16]


def build_dir(key: str | None = None) -> Path:
    """The folder of the build for ``key`` (the current sources by default)."""
    return paths.builds_dir() / (key or source_key())


def read_manifest(folder: Path) -> dict[str, object] | None:
    try:
        data = json.loads((folder / "manifest.json").read_text())
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def build_graph(force: bool = False) -> BuildResult:
    """Reason over the ontology unless its build folder already holds the result for the current sources."""
    started = time.perf_counter()
    key = source_key()
    out = build_dir(key)
    asserted_path, inferred_path = out / "asserted.nt", out / "inferred.nt"
    manifest = read_manifest(out)
    if not force and manifest is not None and manifest.get("key") == key and asserted_path.is_file() and inferred_path.is_file():
        return BuildResult(
            key=key,
            cached=True,
            asserted_triples=int(str(manifest["asserted_triples"])),
            inferred_triples=int(str(manifest["inferred_triples"])),
            modules=int(str(manifest["modules"])),
            reasoning_seconds=float(str(manifest["reasoning_seconds"])),
            total_seconds=time.perf_counter() - started,
            asserted_path=asserted_path,
            inferred_path=inferred_path,
        )
    paths.writable_dir(out, "build folder")  # before reasoning: an unwritable cache fails at once
    modules = import_closure()
    asserted = load_asserted(modules)
    result = reason(asserted)
    # Write to temporary names and rename, so that a failed or concurrent build never leaves a
    # half-written graph behind a valid manifest.
    for graph, path in ((asserted, asserted_path), (result.inferred, inferred_path)):
        tmp = path.with_suffix(f".tmp{os.getpid()}")
        graph.serialize(tmp, format="nt", encoding="utf-8")
        tmp.replace(path)
    build = BuildResult(
        key=key,
        cached=False,
        asserted_triples=len(asserted),
        inferred_triples=len(result.inferred),
        modules=len(modules),
        reasoning_seconds=result.seconds,
        total_seconds=time.perf_counter() - started,
        asserted_path=asserted_path,
        inferred_path=inferred_path,
    )
    record = {k: (str(v) if isinstance(v, Path) else v) for k, v in asdict(build).items()}
    record.pop("cached")
    tmp = out / f"manifest.json.tmp{os.getpid()}"
    tmp.write_text(json.dumps(record, indent=2) + "\n")
    tmp.replace(out / "manifest.json")
    _prune(out.parent, keep=key)
    return build


def _prune(parent: Path, keep: str) -> None:
    """Remove all but the newest few build folders (never the one just written)."""
    folders = sorted(
        (p for p in parent.iterdir() if p.is_dir() and (p / "manifest.json").is_file() and p.name != keep),
        key=lambda p: p.stat().st_mtime,
        reverse=True,
    )
    for old in folders[KEEP_BUILDS - 1 :]:
        shutil.rmtree(old, ignore_errors=True)
