"""``spinekg import coverage FILE...``: the Medicare Coverage Database article download (CSV, zipped or
not) or Coverage API responses (JSON) into the coverage store, as RDF in spinekg's vocabulary.

**What is kept.** Only the articles that concern our codes: those that list a code of a family the
ontology watches for coverage (``coverage-watched-codes``: the families an LCD addresses and
sacroplasty), and the articles the ontology already types (A56573 ...), whatever their codes. The
download holds about 2,000 articles and 430,000 covered-code rows; keeping them all would put some
1.5 million triples into every process's graph for questions no claim of ours asks. So the
``hcpc-code`` tables are read first (which articles list our codes), then every other table once,
row by row, keeping the rows of those articles only.

**What is written**, per article version (``<A>-v<N>.nt``): the version (dates from ``article``, or
from the typed version of the same number), the codes it lists (``skg:CoveredCodeList``), each
covered group with its codes (``skg:CoveredDiagnosisGroup``; the group's procedure codes are the
article's codes its paragraph names, else all of them), the asterisk rule of a group whose rows carry
the asterisk flag (``skg:DualDiagnosisRequirement``; its companion codes are the listed codes the
asterisk note names, the rule is left out with a warning when the note names none), and the
non-covered groups. Every fact is verified (CMS's own data) and cites the import as its source (a
``skg:Source`` with the files' SHA-256). A version with covered rows has a known-complete list; on
the dates it covers, it supersedes what the ontology types for the same article (the claim rules
prefer imported rows). An article the ontology does not type belongs to the LCD that
``related-documents`` names when the ontology knows that LCD (and so to its jurisdictions); else it
is kept for the questions, but no claim is judged by it (a warning says so).

**Checks.** Every row of every table is checked as it is read (the ids and versions of all rows; the
codes, groups and dates of the rows kept): a bad one stops the import with one line naming the file
and the row, and nothing is published. The new store is written beside the old one and put in place
by one rename (kg/ncci's ``publish``), so a failed or interrupted import leaves the previous import
as it was; versions the new files do not hold are carried over from it."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import pyoxigraph as ox

from spinekg.kg.coverage import tables as t
from spinekg.kg.coverage.reader import CoverageFileError, Table, rows, tables_of
from spinekg.kg.coverage.store import CoverageStore, version_file
from spinekg.kg.errors import InputError
from spinekg.kg.icd10.codes import iri as icd_iri
from spinekg.kg.icd10.codes import undotted
from spinekg.kg.namespaces import PREFIXES
from spinekg.kg.ncci.importer import publish

SKG, MCD, CPT, SRC = PREFIXES["skg"], PREFIXES["mcd"], PREFIXES["cpt"], PREFIXES["src"]
RDF_TYPE = "http://www.w3.org/1999/02/22-rdf-syntax-ns#type"
RDFS, SKOS, DCT, XSD = PREFIXES["rdfs"], PREFIXES["skos"], PREFIXES["dcterms"], PREFIXES["xsd"]
MAX_VERSIONS = 10_000  # article versions kept by one import (ours are a few dozen)
MAX_ROWS_PER_VERSION = 200_000  # covered rows of one version (the largest articles hold a few thousand)


@dataclass(frozen=True)
class Scope:
    """What the graph says the import keeps and how it attaches it (read by ``scope_from_graph``)."""

    codes: frozenset[str]  # CPT/HCPCS codes whose articles are kept
    articles: dict[int, str]  # article number -> display id, of the articles the ontology types
    versions: dict[tuple[int, int], tuple[date | None, date | None]]  # typed article versions -> their dates
    lcds: dict[int, str]  # LCD number -> display id, of the LCDs the ontology types


@dataclass
class CoverageImport:
    """What an import did."""

    versions: list[str]  # "A56573 v19", ...
    rows: dict[str, int]  # table -> rows read
    kept: int  # rows kept
    warnings: list[str]
    seconds: float
    path: Path
    source_id: str
    carried: int = 0  # versions carried over from the previous import

    def lines(self) -> list[str]:
        found = ", ".join(self.versions) or "no article of our codes"
        out = [
            f"coverage: {len(self.versions)} article version(s) imported ({found}); {self.kept:,} of "
            f"{sum(self.rows.values()):,} rows kept, {self.seconds:.1f} s -> {self.path}"
        ]
        if self.carried:
            out.append(f"coverage: {self.carried} version(s) of earlier imports kept")
        out += [f"warning: {w}" for w in self.warnings]
        return out


def import_coverage(
    paths: Sequence[Path],
    scope: Scope,
    *,
    root: Path | None = None,
    today: date | None = None,
    replace: bool = False,
    progress: Callable[[str], None] | None = None,
) -> CoverageImport:
    """Import MCD article tables or Coverage API responses (module docstring); raise InputError naming the
    file and the row for a bad one, leaving the store as it was. ``replace`` keeps none of the earlier
    imports (else the versions these files do not hold are carried over)."""
    if not paths:
        raise InputError("files", "name at least one file of the MCD article download or a Coverage API response")
    started = time.perf_counter()
    store = CoverageStore(root)
    with tempfile.TemporaryDirectory(prefix="spinekg-coverage-") as spool:
        found: list[Table] = []
        warnings: list[str] = []
        for path in paths:
            tables, notes = tables_of(Path(path), Path(spool))
            found += tables
            warnings += notes
        counts: dict[str, int] = {}
        kept_articles = _articles_of_interest(found, scope, counts)
        versions, kept = _read(found, kept_articles, counts, progress)
    if len(versions) > MAX_VERSIONS:
        raise InputError("files", f"{len(versions)} article versions of our codes; at most {MAX_VERSIONS} are imported at once")
    digest = _digest(paths)
    when = today or date.today()
    source_id, source_triples = _source(digest, paths, when, found)
    folder = store.staging()
    try:
        written = []
        for version in sorted(versions.values(), key=lambda v: v.key):
            triples = list(_version_triples(version, scope, source_id, warnings))
            if not triples:
                continue
            with open(folder / version_file(version.display or f"A{version.article}", version.version), "wb") as out:
                ox.serialize([*source_triples, *triples], out, format=ox.RdfFormat.N_TRIPLES)
            written.append(f"{version.display or 'A' + str(version.article)} v{version.version}")
        carried = [] if replace else store.carry_over(folder)
        meta = {
            "format": 1,
            "imported_at": datetime.now(UTC).isoformat(timespec="seconds"),
            "source": source_id,
            "files": [{"path": str(p), "sha256": h} for p, h in _hashes(paths).items()],
            "rows": counts,
            "kept": kept,
            "versions": written,
            "carried": carried,
            "warnings": warnings,
        }
        (folder / "meta.json").write_text(json.dumps(meta, indent=2) + "\n", encoding="utf-8")
        _sync(folder)
        publish(folder, store.root, "current")
    except BaseException:
        shutil.rmtree(folder, ignore_errors=True)
        raise
    return CoverageImport(written, counts, kept, warnings, time.perf_counter() - started, store.current, source_id, len(carried))


# ---------------------------------------------------------------------------------------------- reading


def _articles_of_interest(found: list[Table], scope: Scope, counts: dict[str, int]) -> set[int]:
    """The typed articles, and every article whose code table lists one of our codes (first pass)."""
    kept = set(scope.articles)
    for table in found:
        if table.layout.name != "hcpc-code":
            continue
        for where, row in rows(table):
            counts[table.layout.name] = counts.get(table.layout.name, 0) + 1
            try:
                article = t.whole(row.get("article_id"), "article_id")
                t.whole(row.get("article_version"), "article_version")
                code = t.hcpcs(row.get("hcpc_code_id"))
            except ValueError as exc:
                raise CoverageFileError(table.label, where, str(exc)) from None
            if code in scope.codes:
                kept.add(article)
    return kept


def _read(
    found: list[Table], articles: set[int], counts: dict[str, int], progress: Callable[[str], None] | None
) -> tuple[dict[tuple[int, int], t.Version], int]:
    """Every table once (the code tables again, for the kept articles' codes), keeping their rows."""
    versions: dict[tuple[int, int], t.Version] = {}
    kept = 0

    def version(article: int, number: int) -> t.Version:
        found_version = versions.get((article, number))
        if found_version is None:
            found_version = versions[(article, number)] = t.Version(article, number)
        return found_version

    for table in found:
        layout = table.layout.name
        if not table.layout.used:
            if progress:
                progress(f"{table.label}: {layout} (not used)")
            continue
        if progress:
            progress(f"{table.label}: {layout}")
        first_pass = layout == "hcpc-code"
        for where, row in rows(table):
            if not first_pass:
                counts[layout] = counts.get(layout, 0) + 1
            try:
                article = t.whole(row.get("article_id"), "article_id")
                number = t.whole(row.get("article_version"), "article_version")
                if article not in articles:
                    continue
                kept += 1
                _keep(layout, row, version(article, number))
            except ValueError as exc:
                raise CoverageFileError(table.label, where, str(exc)) from None
    for v in versions.values():
        if sum(len(c) for c in v.covered.values()) > MAX_ROWS_PER_VERSION:
            raise InputError("files", f"A{v.article} v{v.version}: more than {MAX_ROWS_PER_VERSION} covered codes")
    return versions, kept


def _keep(layout: str, row: dict[str, Any], v: t.Version) -> None:
    """Add one row of a kept article to its version (raises ValueError for a bad value)."""
    if layout == "article":
        v.display = str(row.get("display_id") or "").strip() or f"A{v.article}"
        if not v.display.startswith("A") or not v.display[1:].isdigit():
            raise ValueError(f"display_id {row.get('display_id')!r} is not an article id such as A56573")
        v.title = " ".join(str(row.get("title") or "").split())[:500]
        v.start = t.optional_date(row.get("article_eff_date"), "article_eff_date")
        ends = [
            t.day_after(t.optional_date(row.get("article_end_date"), "article_end_date")),
            t.day_after(t.optional_date(row.get("article_rev_end_date"), "article_rev_end_date")),
            t.optional_date(row.get("date_retired"), "date_retired"),
        ]
        v.end = min((d for d in ends if d is not None), default=None)
        v.updated = t.optional_date(row.get("last_updated"), "last_updated")
    elif layout == "icd10-covered":
        group = t.whole(row.get("icd10_covered_group"), "icd10_covered_group")
        v.covered.setdefault(group, []).append((t.diagnosis(row.get("icd10_code_id")), t.flag(row.get("asterisk"))))
    elif layout == "icd10-covered-group":
        group = t.whole(row.get("icd10_covered_group"), "icd10_covered_group")
        v.covered_text[group] = (t.text_of(row.get("paragraph")), t.text_of(row.get("icd10_covered_ast")))
        v.covered.setdefault(group, [])
    elif layout == "icd10-noncovered":
        group = t.whole(row.get("icd10_noncovered_group"), "icd10_noncovered_group")
        v.noncovered.setdefault(group, []).append(t.diagnosis(row.get("icd10_code_id")))
    elif layout == "icd10-noncovered-group":
        group = t.whole(row.get("icd10_noncovered_group"), "icd10_noncovered_group")
        v.noncovered_text[group] = t.text_of(row.get("paragraph"))
    elif layout == "hcpc-code":
        v.codes[t.hcpcs(row.get("hcpc_code_id"))] = None
    elif layout == "related-documents":
        lcd = str(row.get("r_lcd_id") or "").strip()
        if lcd and lcd.lower() not in t.NONE_VALUES and lcd != "0":
            v.lcds[t.whole(lcd, "r_lcd_id")] = None


# ---------------------------------------------------------------------------------------------- writing


def _n(iri: str) -> ox.NamedNode:
    return ox.NamedNode(iri)


def _lit(value: str | int | bool | date) -> ox.Literal:
    if isinstance(value, bool):
        return ox.Literal("true" if value else "false", datatype=_n(XSD + "boolean"))
    if isinstance(value, int):
        return ox.Literal(str(value), datatype=_n(XSD + "integer"))
    if isinstance(value, date):
        return ox.Literal(f"{value.isoformat()}T00:00:00", datatype=_n(XSD + "dateTime"))
    return ox.Literal(value)


def _en(text: str) -> ox.Literal:
    return ox.Literal(text, language="en")


class _Triples:
    def __init__(self) -> None:
        self.out: list[ox.Triple] = []

    def add(self, s: str, p: str, o: ox.NamedNode | ox.Literal | str) -> None:
        self.out.append(ox.Triple(_n(s), _n(p), _n(o) if isinstance(o, str) else o))


def _version_triples(v: t.Version, scope: Scope, source: str, warnings: list[str]) -> Iterable[ox.Triple]:
    display = v.display or scope.articles.get(v.article) or f"A{v.article}"
    start, end = v.start, v.end
    if start is None:
        start, end = scope.versions.get((v.article, v.version), (None, end))
    if start is None:
        warnings.append(
            f"{display} v{v.version}: no article table gives its effective date and the ontology does not know the "
            "version; it is not imported (add article.csv or the /v1/data/article/ response)"
        )
        return []
    art, ver = MCD + display, f"{MCD}{display}-v{v.version}"
    g = _Triples()
    year = start.year
    if v.article not in scope.articles:  # an article the ontology does not type: described from the import
        g.add(art, RDF_TYPE, SKG + "BillingArticle")
        g.add(art, RDF_TYPE, SKG + "CoverageDocument")
        g.add(art, SKOS + "notation", _lit(display))
        g.add(art, RDFS + "label", _en(f"{display} {v.title}".strip()))
        g.add(
            art,
            SKOS + "definition",
            _en(f"The billing and coding article {display}, as the Medicare Coverage Database lists it."),
        )
        g.add(art, DCT + "source", SRC + source)
        g.add(art, SKG + "imported", _lit(True))
        lcds = [scope.lcds[n] for n in v.lcds if n in scope.lcds]
        for lcd in lcds:
            g.add(art, SKG + "articleOfLcd", MCD + lcd)
            g.add(art, SKG + "lcdPairingStatus", SKG + "Verified")
        if not lcds:
            warnings.append(f"{display}: its LCD is not one spinekg knows, so no claim is judged by it")
    g.add(ver, RDF_TYPE, SKG + "DocumentVersion")
    g.add(ver, RDFS + "label", _en(f"{display} version {v.version}"))
    g.add(ver, SKOS + "notation", _lit(f"{display} v{v.version}"))
    g.add(ver, SKOS + "definition", _en(f"Version {v.version} of {display}, imported from the Medicare Coverage Database."))
    g.add(ver, SKG + "versionOf", art)
    g.add(ver, SKG + "versionNumber", _lit(v.version))
    g.add(ver, SKG + "validFrom", _lit(start))
    if end is not None:
        g.add(ver, SKG + "deletedOn", _lit(end))
    if v.updated is not None:
        g.add(ver, SKG + "updatedOn", _lit(v.updated))
    g.add(ver, SKG + "imported", _lit(True))
    g.add(ver, DCT + "source", SRC + source)
    listed = {code for group in v.covered.values() for code, _ in group}
    g.add(ver, SKG + "diagnosisListStatus", SKG + ("CompleteList" if listed else "UnknownList"))

    def provision(iri: str, kind: str, label: str) -> None:
        # both types: the imported graph is not reasoned over, so the super-class is not inferred
        g.add(iri, RDF_TYPE, SKG + kind)
        g.add(iri, RDF_TYPE, SKG + "CoverageProvision")
        g.add(iri, RDFS + "label", _en(label))
        g.add(iri, SKG + "provisionOf", art)
        g.add(iri, SKG + "provisionOfVersion", ver)
        g.add(iri, SKG + "validFrom", _lit(start))
        if end is not None:
            g.add(iri, SKG + "deletedOn", _lit(end))
        g.add(iri, SKG + "evidenceStatus", SKG + "Verified")
        g.add(iri, DCT + "source", SRC + source)
        g.add(iri, SKG + "effectiveYear", _lit(year))
        g.add(iri, SKG + "imported", _lit(True))

    if v.codes:
        codes_iri = f"{ver}-codes"
        provision(codes_iri, "CoveredCodeList", f"{display} v{v.version} lists CPT/HCPCS {', '.join(v.codes)}")
        for code in v.codes:
            g.add(codes_iri, SKG + "governsCode", CPT + code)
    for number, members in sorted(v.covered.items()):
        if not members:
            continue
        paragraph, note = v.covered_text.get(number, ("", ""))
        group = f"{ver}-group-{number}"
        provision(group, "CoveredDiagnosisGroup", f"{display} v{v.version} Group {number}")
        g.add(group, SKG + "groupNumber", _lit(number))
        if paragraph:
            g.add(group, SKG + "rationale", ox.Literal(paragraph))
        for code in _named_codes(paragraph, v.codes):
            g.add(group, SKG + "governsCode", CPT + code)
        for code, _ in dict.fromkeys(members):
            g.add(group, SKG + "listsDiagnosis", icd_iri(code))
        asterisks = [code for code, star in members if star]
        if asterisks:
            companions = _companions(note or paragraph, listed, set(asterisks))
            if not companions:
                warnings.append(
                    f"{display} v{v.version} Group {number}: {len(asterisks)} asterisk code(s) but the asterisk note names no "
                    "listed code to report with them; the dual-diagnosis rule is not encoded"
                )
                continue
            rule = f"{group}-dual-diagnosis"
            provision(rule, "DualDiagnosisRequirement", f"{display} v{v.version} Group {number} asterisk rule")
            if note:
                g.add(rule, SKG + "rationale", ox.Literal(note))
            for code in _named_codes(paragraph, v.codes):
                g.add(rule, SKG + "governsCode", CPT + code)
            for code in dict.fromkeys(asterisks):
                g.add(rule, SKG + "asteriskDiagnosis", icd_iri(code))
            for code in companions:
                g.add(rule, SKG + "companionDiagnosis", icd_iri(code))
    for number, codes in sorted(v.noncovered.items()):
        group = f"{ver}-noncovered-{number}"
        provision(group, "NonCoveredDiagnosisGroup", f"{display} v{v.version} non-covered Group {number}")
        g.add(group, SKG + "groupNumber", _lit(number))
        if v.noncovered_text.get(number):
            g.add(group, SKG + "rationale", ox.Literal(v.noncovered_text[number]))
        for noncovered in dict.fromkeys(codes):
            g.add(group, SKG + "listsNonCoveredDiagnosis", icd_iri(noncovered))
    return g.out


def _named_codes(paragraph: str, codes: dict[str, None]) -> list[str]:
    """The article's own codes its group paragraph names (the MCD tables do not link groups to codes);
    all of them when it names none."""
    named = [c for c in dict.fromkeys(t.CODE_TOKEN.findall(paragraph.upper())) if c in codes]
    return named or list(codes)


def _companions(note: str, listed: set[str], asterisks: set[str]) -> list[str]:
    """The listed, non-asterisk codes an asterisk note names (with or without their dots)."""
    by_undotted = {undotted(code): code for code in listed}
    found = [by_undotted.get(token.replace(".", "")) for token in t.ICD_TOKEN.findall(note.upper())]
    return [c for c in dict.fromkeys(found) if c is not None and c not in asterisks]


def _hashes(paths: Sequence[Path]) -> dict[Path, str]:
    out = {}
    for path in paths:
        digest = hashlib.sha256()
        with open(path, "rb") as handle:
            for block in iter(lambda: handle.read(1 << 20), b""):
                digest.update(block)
        out[Path(path)] = digest.hexdigest()
    return out


def _digest(paths: Sequence[Path]) -> str:
    joined = hashlib.sha256()
    for _, h in sorted(_hashes(paths).items(), key=lambda kv: kv[1]):
        joined.update(h.encode())
    return joined.hexdigest()


def _source(digest: str, paths: Sequence[Path], when: date, found: list[Table]) -> tuple[str, list[ox.Triple]]:
    """The import as a source: T1 (CMS's own data), named by the files' hash."""
    slug = f"mcd-import-{digest[:12]}"
    notation = f"MCD-{digest[:8]}"
    api = any(tb.kind == "json" for tb in found)
    title = (
        f"{'CMS Coverage API responses' if api else 'Medicare Coverage Database article download'} imported by spinekg on "
        f"{when.isoformat()}: {', '.join(Path(p).name for p in paths)[:300]} (SHA-256 {digest[:16]}...)"
    )
    g = _Triples()
    s = SRC + slug
    g.add(s, RDF_TYPE, SKG + "Source")
    g.add(s, SKOS + "notation", _lit(notation))
    g.add(s, RDFS + "label", _en(f"Medicare Coverage Database import {notation}"))
    g.add(s, DCT + "title", _en(title))
    g.add(s, DCT + "publisher", _lit("Centers for Medicare & Medicaid Services, Medicare Coverage Database"))
    g.add(s, SKG + "tier", SKG + "TierT1")
    g.add(s, SKG + "publicationYear", _lit(when.year))
    return slug, g.out


def _sync(folder: Path) -> None:
    for path in folder.iterdir():
        with open(path, "rb") as handle:
            os.fsync(handle.fileno())
