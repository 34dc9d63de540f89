"""Build the reasoned graph once and cache it in the cache folder, one sub-folder per hash of its sources
(``<cache>/builds/<key>/``), so that several installed versions never overwrite each other's build."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import IO

from spinekg.kg import paths
from spinekg.kg.coverage.store import CoverageStore, load_coverage
from spinekg.kg.icd10 import build as icd10_build
from spinekg.kg.icd10.source import data_files, package_version, release_of
from spinekg.kg.icd10.store import INDEX_FILE
from spinekg.kg.load import import_closure, load_asserted
from spinekg.kg.reason import reason

# The graphs in an Oxigraph (RocksDB) store that processes open read-only: each build writes one of its own
# name (store-<hex>, named in the manifest), so a forced rebuild never pulls files from under a reader;
# a reader holds a shared lock on <store>.in-use, and a store or build folder in use is never removed.
STORE_PREFIX = "store-"
IN_USE = ".in-use"
ANSWERS = ".answers"  # beside a store: the answers of fixed SELECTs kept for it (kg/graph.py)
BUILD_FORMAT = 3  # bump when the layout of a build folder changes (3: the ICD-10-CM graph and index)
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
    icd10_triples: int = 0  # the ICD-10-CM code set, a named graph of its own (kg/icd10)
    icd10_path: Path | None = None
    store_path: Path | None = None  # the read-only store of every graph (None: not written)

    @property
    def folder(self) -> Path:
        """The build folder (it also holds the ICD-10-CM index, kg/icd10)."""
        return self.asserted_path.parent

    def summary(self) -> str:
        how = "cached build" if self.cached else f"reasoned with HermiT in {self.reasoning_seconds:.2f} s"
        return (
            f"{self.modules} modules, {self.asserted_triples} asserted + {self.inferred_triples} inferred triples, "
            f"{self.icd10_triples} ICD-10-CM triples ({how}; {self.total_seconds:.2f} s in all) -> {self.asserted_path.parent}"
        )


def source_key() -> str:
    """Hash of everything the build depends on: the ontology files, the reasoning code, and the
    ICD-10-CM package (its version and data files) with the code that turns it into a graph."""
    digest = hashlib.sha256(f"format={BUILD_FORMAT}".encode())
    digest.update(f"simple-icd-10-cm={package_version()};{','.join(data_files())}".encode())
    onto = paths.ontology_dir()
    for path in sorted(onto.rglob("*")):
        if path.is_file() and path.suffix in {".ttl", ".xml"}:
            digest.update(str(path.relative_to(onto)).encode())
            digest.update(path.read_bytes())
    for name in ("reason.py", "load.py", "icd10/build.py", "icd10/source.py", "icd10/codes.py"):
        digest.update((Path(__file__).parent / name).read_bytes())
    # the imported coverage articles (spinekg import coverage): the store loads them beside the ontology
    digest.update(f"coverage={CoverageStore().fingerprint()}".encode())
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
    icd10_path = out / icd10_build.GRAPH_FILE
    built = all(p.is_file() for p in (asserted_path, inferred_path, icd10_path, out / INDEX_FILE))
    store_path = out / str(manifest.get("store", "")) if manifest is not None and manifest.get("store") else None
    if not force and manifest is not None and manifest.get("key") == key and built and store_path and store_path.is_dir():
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
            icd10_triples=int(str(manifest.get("icd10_triples", 0))),
            icd10_path=icd10_path,
            store_path=store_path,
        )
    paths.writable_dir(out, "build folder")  # before reasoning: an unwritable cache fails at once
    modules = import_closure()
    reasoned = {m.iri for m in modules}
    data_modules = [m for m in import_closure(paths.full_ontology()) if m.iri not in reasoned]
    asserted = load_asserted(modules)
    declared = icd10_build.declared_releases(asserted)
    icd10_build.release_facts(declared, release_of(data_files()), str(package_version()))  # a release not declared: fail now
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="spinekg-icd10") as pool:
        # the ICD-10-CM code set, data beside the ontology (read from its package, or its cache), made
        # while HermiT reasons in its JVM: on a cold cache it costs about as long as the reasoning
        pending = pool.submit(icd10_build.prepare, declared, out.parent)
        result = reason(asserted)
        icd = pending.result()
    if data_modules:  # generated tables beside the ontology: asserted, not reasoned over (spinekg-full.ttl)
        asserted += load_asserted(data_modules)
        modules += data_modules
    # Write to temporary names and rename, so that a failed or concurrent build never leaves a
    # half-written graph behind a valid manifest.
    for graph, path in ((asserted, asserted_path), (result.inferred, inferred_path)):
        tmp = path.with_suffix(f".tmp{os.getpid()}")
        graph.serialize(tmp, format="nt", encoding="utf-8")
        tmp.replace(path)
    icd10_build.link_into(icd, out)
    store_path = write_store(out, asserted_path, inferred_path, icd.store_path)
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
        icd10_triples=icd.triples,
        icd10_path=icd10_path,
        store_path=store_path,
    )
    record = {k: (str(v) if isinstance(v, Path) else v) for k, v in asdict(build).items()}
    record.pop("cached")
    record["store"] = store_path.name
    record["icd10"] = {
        "release": icd.release,
        "package_version": icd.package_version,
        "entries": icd.entries,
        "billable": icd.billable,
    }
    tmp = out / f"manifest.json.tmp{os.getpid()}"
    tmp.write_text(json.dumps(record, indent=2) + "\n")
    tmp.replace(out / "manifest.json")
    for old in out.glob(f"{STORE_PREFIX}*"):  # the stores of earlier builds of this folder, unless in use
        if old.is_dir() and old != store_path and not in_use(old):
            shutil.rmtree(old, ignore_errors=True)
            shutil.rmtree(old.with_name(old.name + ANSWERS), ignore_errors=True)
    _prune(out.parent, keep=key)
    return build


def write_store(out: Path, asserted: Path, inferred: Path, icd10_store: Path) -> Path:
    """The build's store: a checkpoint of the ICD-10-CM store (hard links, instant) with the asserted and
    inferred graphs loaded on top (0.3 s). Opening it read-only takes milliseconds, where loading 690,000
    ICD triples into memory at every start took 1.6 s and 440 MB (bench/icd10_bench.py)."""
    import pyoxigraph as ox

    from spinekg.kg.namespaces import ASSERTED_GRAPH, INFERRED_GRAPH

    target = out / f"{STORE_PREFIX}{uuid.uuid4().hex[:12]}"
    tmp = out / f"{target.name}.tmp{os.getpid()}"
    ox.Store.read_only(str(icd10_store)).backup(str(tmp))
    store = ox.Store(str(tmp))
    for path, graph in ((asserted, ASSERTED_GRAPH), (inferred, INFERRED_GRAPH)):
        store.bulk_load(path=str(path), format=ox.RdfFormat.N_TRIPLES, to_graph=ox.NamedNode(graph))
    load_coverage(store, CoverageStore().files())  # imported coverage articles, in their own named graph
    store.flush()
    del store  # closes the database before it is renamed
    tmp.rename(target)  # a name of its own: no reader of an earlier store loses a file
    return target


def hold(store: Path) -> IO[bytes] | None:
    """A shared lock on a store's in-use file, held as long as the returned file is open (a process that
    reads the store keeps it): builds and prunes leave the store alone meanwhile. None where there are no
    file locks (Windows) or the folder cannot be written (nothing prunes it then either)."""
    try:
        import fcntl
    except ImportError:  # pragma: no cover - not POSIX
        return None
    try:
        handle = open(store.with_name(store.name + IN_USE), "ab")  # noqa: SIM115 - held for the process's life
    except OSError:
        return None
    fcntl.flock(handle, fcntl.LOCK_SH)
    return handle


def in_use(store: Path) -> bool:
    """Whether some process holds the store (a shared lock on its in-use file)."""
    lock = store.with_name(store.name + IN_USE)
    try:
        import fcntl

        with open(lock, "ab") as handle:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except ImportError:  # pragma: no cover - not POSIX: no one can tell, so keep what may be in use
        return True
    except BlockingIOError:
        return True
    except OSError:
        return False
    return False


def _prune(parent: Path, keep: str) -> None:
    """Remove all but the newest few build folders (never the one just written)."""
    folders = sorted(
        (p for p in parent.iterdir() if p.is_dir() and (p / "manifest.json").is_file() and p.name != keep),
        key=lambda p: p.stat().st_mtime,
        reverse=True,
    )
    for old in folders[KEEP_BUILDS - 1 :]:
        if any(in_use(store) for store in old.glob(f"{STORE_PREFIX}*") if store.is_dir()):
            continue  # a process still reads it: a later build removes it
        shutil.rmtree(old, ignore_errors=True)
