"""Write the ICD-10-CM code set for ``spinekg build``: the SKOS graph (``icd10cm.nt``, loaded into its
own named graph), an Oxigraph store holding only that graph (``icd10cm-store/``, which each build
copies as the start of its own store: a checkpoint of hard links, so a build loads the 690,000 ICD
triples only when they change) and the lookup index (``icd10cm.sqlite``) the claim rules and pages read.

The three are made once per ICD key (the package's version and data files, the code below, and the
release facts the ontology declares) in ``<cache>/icd10/<key>/`` and linked into each build folder, so
that a change to the ontology does not read the package again (2 s) nor reload the triples (5 s).

The graph, per item of the tabular list (chapter, block, category, code)::

    icd10cm:M8008XA a skos:Concept ;
        skos:notation "M80.08XA" ;                 # dotted, as the tabular list writes it
        skos:prefLabel "Age-related osteoporosis ... initial encounter for fracture"@en ;
        skos:broader icd10cm:M8008 ;               # up to the block and the chapter
        skos:inScheme <.../icd10cm/release/2026-04> ;
        skg:billable true ;                        # a leaf: valid for submission
        dcterms:source src:icd10cm-2026-04 .

The release is a skos:ConceptScheme whose dates and source the ontology declares (ontology/icd10cm.ttl:
a skg:IcdRelease with skos:notation "2026-04"); a package release the ontology does not declare stops
the build with a message saying what to add."""

from __future__ import annotations

import hashlib
import os
import shutil
import sqlite3
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path

import pyoxigraph as ox
from rdflib import Graph, Literal, URIRef
from rdflib.namespace import DCTERMS, RDF, RDFS, SKOS

from spinekg.kg import paths
from spinekg.kg.errors import SpinekgError
from spinekg.kg.icd10.codes import block_iri, chapter_iri, release_iri, undotted
from spinekg.kg.icd10.source import Entry, PackageRelease, data_files, package_version, read_package, release_of
from spinekg.kg.icd10.store import INDEX_FILE, INDEX_FORMAT
from spinekg.kg.namespaces import ICD10CM_GRAPH, PREFIXES

SKG = PREFIXES["skg"]
GRAPH_FILE = "icd10cm.nt"
STORE_DIR = "icd10cm-store"
KEEP = 2  # ICD caches kept (the newest)
_XSD_BOOLEAN = "<http://www.w3.org/2001/XMLSchema#boolean>"


@dataclass(frozen=True)
class ReleaseFacts:
    """What the ontology says of a release: its label, first and last day in force, and source."""

    id: str
    iri: str
    label: str
    valid_from: date
    deleted_on: date | None  # the first day it is no longer in force
    source: str  # the src: IRI
    source_id: str  # its notation (S49)


@dataclass(frozen=True)
class IcdBuild:
    triples: int
    entries: int
    billable: int
    release: str
    package_version: str
    graph_path: Path
    index_path: Path
    store_path: Path
    cached: bool = False


def declared_releases(asserted: Graph) -> dict[str, ReleaseFacts]:
    """The ICD-10-CM releases the ontology declares (skg:IcdRelease), by notation."""
    found: dict[str, ReleaseFacts] = {}
    for rel in asserted.subjects(RDF.type, URIRef(SKG + "IcdRelease")):
        notation = asserted.value(rel, SKOS.notation)
        start = asserted.value(rel, URIRef(SKG + "validFrom"))
        source = asserted.value(rel, DCTERMS.source)
        if notation is None or start is None or source is None:
            raise SpinekgError(f"{rel}: an skg:IcdRelease needs skos:notation, skg:validFrom and dcterms:source")
        end = asserted.value(rel, URIRef(SKG + "deletedOn"))
        found[str(notation)] = ReleaseFacts(
            id=str(notation),
            iri=str(rel),
            label=str(asserted.value(rel, RDFS.label) or notation),
            valid_from=_day(start),
            deleted_on=_day(end) if end is not None else None,
            source=str(source),
            source_id=str(asserted.value(URIRef(str(source)), SKOS.notation) or source),
        )
    return found


def _day(term: object) -> date:
    value = term.toPython() if isinstance(term, Literal) else term
    if isinstance(value, datetime):
        return value.date()
    if isinstance(value, date):
        return value
    return date.fromisoformat(str(value)[:10])


def release_facts(asserted: Graph | dict[str, ReleaseFacts], release: str, version: str) -> ReleaseFacts:
    """The ontology's facts of the package's release (from the asserted graph, or the releases it
    declares); a clear error when it does not declare it."""
    declared = asserted if isinstance(asserted, dict) else declared_releases(asserted)
    found = declared.get(release)
    if found is None or found.iri != release_iri(release):
        raise SpinekgError(
            f"simple-icd-10-cm {version} holds the ICD-10-CM release {release}, which ontology/icd10cm.ttl "
            f"does not declare as <{release_iri(release)}>: add it (skg:IcdRelease with skos:notation "
            f'"{release}", skg:validFrom, skg:deletedOn and dcterms:source); declared: {sorted(declared) or "none"}'
        )
    return found


def icd_key(release: ReleaseFacts, version: str, files: tuple[str, ...]) -> str:
    """Hash of what the ICD-10-CM artefacts depend on: the package, the code that reads and writes it,
    and the release facts of the ontology."""
    digest = hashlib.sha256(f"{INDEX_FORMAT};{version};{','.join(files)};{release!r}".encode())
    for name in ("build.py", "source.py", "codes.py"):
        digest.update((Path(__file__).parent / name).read_bytes())
    return digest.hexdigest()[:16]


def cache_root(fallback: Path) -> Path:
    """<cache>/icd10, shared by every build folder; the build folders' parent when it cannot be written."""
    try:
        return paths.writable_dir(paths.cache_dir() / "icd10", "ICD-10-CM cache folder")
    except SpinekgError:
        return paths.writable_dir(fallback / "icd10", "ICD-10-CM cache folder")


def prepare(asserted: Graph | dict[str, ReleaseFacts], fallback: Path) -> IcdBuild:
    """The ICD-10-CM graph, store and index for the package's release, made now or taken from the cache.
    Given the declared releases rather than the graph, it reads nothing the build goes on changing, so it
    can run beside the reasoner (kg/build.py)."""
    version = package_version()
    if version is None:
        raise SpinekgError("the simple-icd-10-cm package is not installed; reinstall spinekg (it is a dependency)")
    files = data_files()
    release = release_facts(asserted, release_of(files), version)
    folder = cache_root(fallback) / icd_key(release, version, files)
    done = folder / "manifest.txt"
    if done.is_file():
        triples, entries, billable = (int(x) for x in done.read_text().split()[:3])
        return IcdBuild(
            triples, entries, billable, release.id, version, folder / GRAPH_FILE, folder / INDEX_FILE, folder / STORE_DIR, True
        )
    folder.mkdir(parents=True, exist_ok=True)
    built = write(read_package(), release, folder)
    done.write_text(f"{built.triples} {built.entries} {built.billable}\n")
    _prune(folder.parent, keep=folder.name)
    return built


def write(package: PackageRelease, release: ReleaseFacts, folder: Path) -> IcdBuild:
    """Write icd10cm.nt, icd10cm-store/ and icd10cm.sqlite into ``folder`` (temporary names, then renamed)."""
    if package.release != release.id:
        raise SpinekgError(f"the release facts are of {release.id}, the package holds {package.release}")
    iris = [_iri(e) for e in package.entries]
    graph_path, index_path, store_path = folder / GRAPH_FILE, folder / INDEX_FILE, folder / STORE_DIR
    tmp = graph_path.with_suffix(f".tmp{os.getpid()}")
    triples = _write_graph(tmp, package.entries, iris, release)
    tmp.replace(graph_path)
    tmp = folder / f"{STORE_DIR}.tmp{os.getpid()}"
    shutil.rmtree(tmp, ignore_errors=True)
    store = ox.Store(str(tmp))
    store.bulk_load(path=str(graph_path), format=ox.RdfFormat.N_TRIPLES, to_graph=ox.NamedNode(ICD10CM_GRAPH))
    store.flush()
    del store  # closes the database before it is renamed
    shutil.rmtree(store_path, ignore_errors=True)
    tmp.rename(store_path)
    tmp = index_path.with_suffix(f".tmp{os.getpid()}")
    _write_index(tmp, package, iris, release)
    tmp.replace(index_path)
    billable = sum(1 for e in package.entries if e.billable)
    return IcdBuild(triples, len(package.entries), billable, package.release, package.version, graph_path, index_path, store_path)


def link_into(icd: IcdBuild, out: Path) -> tuple[Path, Path]:
    """Hard-link (or copy) the graph and the index into a build folder, which then stands alone."""
    placed = []
    for source in (icd.graph_path, icd.index_path):
        target = out / source.name
        if target.exists() and os.path.samefile(source, target):  # linked already (rename would do nothing)
            placed.append(target)
            continue
        tmp = target.with_name(f"{target.name}.tmp{os.getpid()}")
        tmp.unlink(missing_ok=True)
        try:
            os.link(source, tmp)
        except OSError:  # another file system, or no hard links: a copy
            shutil.copyfile(source, tmp)
        tmp.replace(target)
        placed.append(target)
    return placed[0], placed[1]


def _prune(parent: Path, keep: str) -> None:
    """Remove all but the newest few ICD caches (never the one just written)."""
    folders = sorted(
        (p for p in parent.iterdir() if p.is_dir() and (p / "manifest.txt").is_file() and p.name != keep),
        key=lambda p: p.stat().st_mtime,
        reverse=True,
    )
    for old in folders[KEEP - 1 :]:
        shutil.rmtree(old, ignore_errors=True)


def _iri(entry: Entry) -> str:
    if entry.kind == "chapter":
        return chapter_iri(entry.notation)
    if entry.kind == "block":
        return block_iri(entry.notation)
    return PREFIXES["icd10cm"] + undotted(entry.notation)


def _literal(text: str) -> str:
    """An N-Triples string literal (the titles hold quotes and, rarely, backslashes)."""
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n").replace("\r", "\\r") + '"'


def _write_graph(path: Path, entries: list[Entry], iris: list[str], release: ReleaseFacts) -> int:
    """N-Triples written directly (rdflib would take seconds for 600k triples)."""
    concept, notation, label = f"<{SKOS.Concept}>", f"<{SKOS.notation}>", f"<{SKOS.prefLabel}>"
    broader, in_scheme, top = f"<{SKOS.broader}>", f"<{SKOS.inScheme}>", f"<{SKOS.topConceptOf}>"
    billable, source, rdf_type = f"<{SKG}billable>", f"<{DCTERMS.source}>", f"<{RDF.type}>"
    kinds = {"chapter": f"<{SKG}IcdChapter>", "block": f"<{SKG}IcdBlock>"}
    scheme, src = f"<{release.iri}>", f"<{release.source}>"
    true, false = f'"true"^^{_XSD_BOOLEAN}', f'"false"^^{_XSD_BOOLEAN}'
    lines = [f"{scheme} {rdf_type} <{SKOS.ConceptScheme}> ."]
    for entry, iri in zip(entries, iris, strict=True):
        s = f"<{iri}>"
        lines.append(f"{s} {rdf_type} {concept} .")
        if entry.kind in kinds:
            lines.append(f"{s} {rdf_type} {kinds[entry.kind]} .")
        lines.append(f"{s} {notation} {_literal(entry.notation)} .")
        lines.append(f"{s} {label} {_literal(entry.title)}@en .")
        lines.append(f"{s} {in_scheme} {scheme} .")
        if entry.parent is None:
            lines.append(f"{s} {top} {scheme} .")
            lines.append(f"{scheme} <{SKOS.hasTopConcept}> {s} .")
        else:
            lines.append(f"{s} {broader} <{iris[entry.parent]}> .")
        lines.append(f"{s} {billable} {true if entry.billable else false} .")
        lines.append(f"{s} {source} {src} .")
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return len(lines)


SCHEMA = """
CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE release (id TEXT PRIMARY KEY, iri TEXT NOT NULL, label TEXT NOT NULL, valid_from TEXT NOT NULL,
                      deleted_on TEXT, source TEXT NOT NULL, package TEXT NOT NULL);
CREATE TABLE entry (id INTEGER PRIMARY KEY, key TEXT NOT NULL, notation TEXT NOT NULL, kind TEXT NOT NULL,
                    parent INTEGER, title TEXT NOT NULL, children INTEGER NOT NULL, billable INTEGER NOT NULL,
                    iri TEXT NOT NULL, releases TEXT NOT NULL);
"""


def _write_index(path: Path, package: PackageRelease, iris: list[str], release: ReleaseFacts) -> None:
    """One row per item, keyed by the undotted notation (a block and its one category share a key:
    the lookups prefer the category); the parent by row id, so ancestors are a walk up the rows."""
    path.unlink(missing_ok=True)
    db = sqlite3.connect(path)
    try:
        db.executescript(SCHEMA)
        db.executemany(
            "INSERT INTO meta VALUES (?, ?)",
            [("format", str(INDEX_FORMAT)), ("package_version", package.version), ("files", " ".join(package.files))],
        )
        db.execute(
            "INSERT INTO release VALUES (?, ?, ?, ?, ?, ?, ?)",
            (
                release.id,
                release.iri,
                release.label,
                release.valid_from.isoformat(),
                release.deleted_on.isoformat() if release.deleted_on else None,
                release.source_id,
                f"simple-icd-10-cm {package.version}",
            ),
        )
        db.executemany(
            "INSERT INTO entry VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                (i, undotted(e.notation), e.notation, e.kind, e.parent, e.title, e.children, int(e.billable), iri, release.id)
                for i, (e, iri) in enumerate(zip(package.entries, iris, strict=True))
            ),
        )
        db.execute("CREATE INDEX entry_key ON entry (key)")
        db.execute("CREATE INDEX entry_parent ON entry (parent)")
        db.commit()
    finally:
        db.close()
